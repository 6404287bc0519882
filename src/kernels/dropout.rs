//! Inverted dropout with a counter-based RNG (shaders/dropout.wgsl). The backward is the same kernel
//! applied to dy with the same seed.

use super::{grid, u32_of};
use crate::gpu::{same_whole, GpuError, KernelId, Step, View};
use crate::shaders::params::dropout::Params;

pub const DROPOUT: KernelId = KernelId::new("dropout", "dropout", &[1, 2]);

/// A dropout that a kernel applies on its way (layernorm's residual, softmax's probabilities): the
/// same mask as [`apply`] over the whole tensor with that seed. The default drops nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dropout {
    pub prob: f32,
    pub seed: u64,
}

impl Dropout {
    pub fn new(prob: f32, seed: u64) -> Dropout {
        Dropout { prob, seed }
    }
    pub(crate) fn check(&self) -> Result<(), GpuError> {
        if !(0.0..1.0).contains(&self.prob) {
            return Err(GpuError::Shape(format!("dropout probability must be in [0, 1), got {}", self.prob)));
        }
        Ok(())
    }
}

/// y = x * keep(seed, i) / (1 - prob), the two of one shape. Call with (dx, dy) and the same
/// dropout for the backward.
pub fn apply(step: &mut Step, y: View, x: View, drop: Dropout) -> Result<(), GpuError> {
    drop.check()?;
    let n = x.numel();
    let [x, y] = same_whole("dropout", [("x", x), ("y", y)])?;
    let p = Params { n: u32_of("dropout", n)?, seed_lo: drop.seed as u32, seed_hi: (drop.seed >> 32) as u32, prob: drop.prob };
    step.dispatch(DROPOUT, &[], bytemuck::bytes_of(&p), &[x, y], grid(n, 256))
}
