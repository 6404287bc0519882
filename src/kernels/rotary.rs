//! Rotary position embeddings (shaders/rotary.wgsl) on the query and key heads of a fused
//! projection, in place, in transformers' `rotate_half` layout; the backward is the same kernel
//! turning the other way. [`tables`] makes the cos and sin tables as transformers does (its
//! frequencies in f32), for a config's theta.

use super::{grid, u32_of};
use crate::gpu::{GpuBuf, GpuError, KernelId, Step, View};
use crate::shaders::params::rotary::Params;

pub const ROTARY: KernelId = KernelId::new("rotary", "rotary", &[1, 2, 3]);

/// Where the rotated heads are in each row: `q_heads` query heads of `d` from column `q_off`, and
/// `k_heads` key heads from `k_off`, in rows `ld` wide, each row at position `pos_base + row % t`.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    pub rows: usize,
    pub t: usize,
    pub ld: usize,
    pub q_heads: usize,
    pub k_heads: usize,
    pub d: usize,
    pub q_off: usize,
    pub k_off: usize,
    pub pos_base: usize,
}

/// The cos and sin tables (positions, d/2) for `theta`, as transformers' default rotary embedding
/// computes them: inv_freq[j] = 1 / theta^(2j/d) and the angle pos * inv_freq[j], both in f32, then
/// cos and sin of that angle.
pub fn tables(theta: f64, d: usize, positions: usize) -> (Vec<f32>, Vec<f32>) {
    let inv: Vec<f32> = (0..d / 2).map(|j| 1.0 / (theta as f32).powf((2 * j) as f32 / d as f32)).collect();
    tables_of(&inv, positions)
}

/// The cos and sin tables (positions, inv.len()) of the inverse frequencies `inv` (a scaled
/// rotary embedding's, `model::config::RopeScaling::inv_freq`).
pub fn tables_of(inv: &[f32], positions: usize) -> (Vec<f32>, Vec<f32>) {
    let half = inv.len();
    let (mut c, mut s) = (Vec::with_capacity(positions * half), Vec::with_capacity(positions * half));
    for pos in 0..positions {
        for &f in inv {
            let a = pos as f32 * f;
            c.push((a as f64).cos() as f32);
            s.push((a as f64).sin() as f32);
        }
    }
    (c, s)
}

/// Rotates (`inverse`: turns back) the heads `h` of `x` in place, by the tables `cos`, `sin`.
pub fn apply(step: &mut Step, x: View, cos: &GpuBuf, sin: &GpuBuf, h: Heads, inverse: bool) -> Result<(), GpuError> {
    const K: &str = "rotary";
    if h.d % 2 != 0 || h.d == 0 {
        return Err(GpuError::Shape(format!("{K}: the head size {} must be even", h.d)));
    }
    // one row may start anywhere in x (a key-value cache's row at its position: its offsets say
    // where); rows of a matrix keep their heads within the row
    let end = |off: usize, heads: usize| h.rows.saturating_sub(1) * h.ld + off + heads * h.d;
    let within_row = h.rows <= 1 || (h.q_off + h.q_heads * h.d <= h.ld && h.k_off + h.k_heads * h.d <= h.ld);
    if !within_row || x.numel() < end(h.q_off, h.q_heads) || x.numel() < end(h.k_off, h.k_heads) {
        return Err(GpuError::Shape(format!("{K}: heads past the row ({h:?}) or a buffer of {} values", x.numel())));
    }
    let positions = h.pos_base + h.t.min(h.rows);
    if cos.len < positions * h.d / 2 || sin.len < positions * h.d / 2 {
        return Err(GpuError::Shape(format!("{K}: tables of {} values for {positions} positions of {} pairs", cos.len.min(sin.len), h.d / 2)));
    }
    let p = Params {
        rows: u32_of(K, h.rows)?,
        t: u32_of(K, h.t.max(1))?,
        ld: u32_of(K, h.ld)?,
        q_heads: u32_of(K, h.q_heads)?,
        k_heads: u32_of(K, h.k_heads)?,
        d: u32_of(K, h.d)?,
        q_off: u32_of(K, h.q_off)?,
        k_off: u32_of(K, h.k_off)?,
        pos_base: u32_of(K, h.pos_base)?,
        sign: if inverse { -1.0 } else { 1.0 },
    };
    let xb = x.whole(K, "x")?;
    let n = h.rows * (h.q_heads + h.k_heads) * (h.d / 2);
    step.dispatch(ROTARY, &[], bytemuck::bytes_of(&p), &[xb, cos, sin], grid(n, 256))
}
