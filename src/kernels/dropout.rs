//! Inverted dropout with a counter-based RNG (shaders/dropout.wgsl). The backward is the same kernel
//! applied to dy with the same seed.

use bytemuck::{Pod, Zeroable};

use super::{grid, need, u32_of};
use crate::gpu::{GpuBuf, GpuError, KernelId, Step};

pub const DROPOUT: KernelId = KernelId::new("dropout", "dropout", &[1, 2]);

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    prob: f32,
}

/// y = x * keep(seed, i) / (1 - prob). Call with (dx, dy) and the same seed for the backward.
pub fn apply(step: &mut Step, y: &GpuBuf, x: &GpuBuf, n: usize, prob: f32, seed: u64) -> Result<(), GpuError> {
    if !(0.0..1.0).contains(&prob) {
        return Err(GpuError::Shape(format!("dropout probability must be in [0, 1), got {prob}")));
    }
    need("dropout", "x", x, 0, n)?;
    need("dropout", "y", y, 0, n)?;
    let p = Params { n: u32_of("dropout", n)?, seed_lo: seed as u32, seed_hi: (seed >> 32) as u32, prob };
    step.dispatch(DROPOUT, &[], bytemuck::bytes_of(&p), &[x, y], grid(n, 256))
}
