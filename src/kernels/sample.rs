//! The next token chosen on the GPU (shaders/sample.wgsl): the `k` most likely tokens of one row
//! of logits with their probabilities, and one of the first `top_k` drawn with a temperature (or
//! the first, greedy). Only the chosen id and the candidates come back.

use super::{need, u32_of};
use crate::gpu::{GpuBuf, GpuError, KernelId, Step, View};
use crate::shaders::params::sample::Params;

pub const SAMPLE: KernelId = KernelId::new("sample", "sample_top_k", &[1, 2]);

/// The most candidates one call finds (the shader's workgroup arrays).
pub const MAX_CANDIDATES: usize = 1024;
/// `out[0]` when no logit is a number.
pub const NONE: u32 = u32::MAX;

/// What one draw asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Draw {
    /// Candidates to find and report (>= top_k).
    pub k: usize,
    /// 1: greedy; else the draw is among the first `top_k` candidates.
    pub top_k: usize,
    pub temperature: f32,
    /// A uniform number in [0, 1) from the caller's seeded generator.
    pub u: f32,
}

/// Elements of `out` a draw of `k` candidates writes: the chosen id, the count, (id, p) pairs.
pub fn out_len(k: usize) -> usize {
    2 + 2 * k
}

/// Records a draw from one row of `logits` (v), which may start anywhere in its buffer, into `out`
/// (see [`out_len`]).
pub fn record(step: &mut Step, out: &GpuBuf, logits: View, d: Draw) -> Result<(), GpuError> {
    let (off, v) = (logits.off, logits.numel());
    if d.k == 0 || d.k > MAX_CANDIDATES || d.top_k == 0 || d.top_k > d.k {
        return Err(GpuError::Shape(format!("sample: {} candidates and top-k {} (1 <= top-k <= candidates <= {MAX_CANDIDATES})", d.k, d.top_k)));
    }
    if !(d.temperature > 0.0) || !(0.0..1.0).contains(&d.u) {
        return Err(GpuError::Shape(format!("sample: temperature {} and u {}", d.temperature, d.u)));
    }
    logits.check("sample", "logits")?;
    need("sample", "out", out, 0, out_len(d.k))?;
    let p = Params { v: u32_of("sample", v)?, k: d.k as u32, top_k: d.top_k as u32, off: u32_of("sample", off)?, inv_temp: 1.0 / d.temperature, u: d.u };
    step.dispatch(SAMPLE, &[], bytemuck::bytes_of(&p), &[logits.buf, out], [1, 1, 1])
}

/// A draw's result as read back: the chosen id (None when no logit was a number) and the
/// candidates (id, probability), most likely first.
pub fn parse(out: &[u32]) -> (Option<u32>, Vec<(u32, f32)>) {
    let chosen = out.first().copied().filter(|&id| id != NONE);
    let n = out.get(1).copied().unwrap_or(0) as usize;
    let cands = (0..n).filter_map(|i| Some((*out.get(2 + 2 * i)?, f32::from_bits(*out.get(3 + 2 * i)?)))).collect();
    (chosen, cands)
}
