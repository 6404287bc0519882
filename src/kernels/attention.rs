//! Multi-head attention from its pieces: head split/merge (shaders/attention.wgsl), batched matmul for
//! Q K^T and P V, and masked, scaled softmax.
//!
//! Shapes: B batch, T tokens, H heads, D head size, C = H * D.
//!   q, k, v: (B, H, T, D);  scores, probs: (B, H, T, T);  ctx: (B, H, T, D);  mask: (B, T) additive.

use bytemuck::{Pod, Zeroable};

use super::matmul::Matmul;
use super::{grid, need, softmax, u32_of};
use crate::gpu::{GpuBuf, GpuError, KernelId, Step};

pub const SPLIT: KernelId = KernelId::new("attention", "split_heads", &[1, 2]);
pub const MERGE: KernelId = KernelId::new("attention", "merge_heads", &[1, 2]);

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    b: u32,
    t: u32,
    h: u32,
    d: u32,
    cols: u32,
    col_off: u32,
    _p: [u32; 2],
}

#[derive(Clone, Copy, Debug)]
pub struct Heads {
    pub b: usize,
    pub t: usize,
    pub h: usize,
    pub d: usize,
}

impl Heads {
    fn params(&self, cols: usize, col_off: usize) -> Result<Params, GpuError> {
        if col_off + self.h * self.d > cols {
            return Err(GpuError::Shape(format!(
                "heads: columns {col_off}..{} exceed the {cols} columns of the token matrix",
                col_off + self.h * self.d
            )));
        }
        Ok(Params {
            b: u32_of("heads", self.b)?,
            t: u32_of("heads", self.t)?,
            h: u32_of("heads", self.h)?,
            d: u32_of("heads", self.d)?,
            cols: u32_of("heads", cols)?,
            col_off: u32_of("heads", col_off)?,
            _p: [0; 2],
        })
    }
    fn n(&self) -> usize {
        self.b * self.h * self.t * self.d
    }

    /// dst (B, H, T, D) = src (B*T, cols)[:, col_off .. col_off + H*D] rearranged.
    pub fn split(&self, step: &mut Step, dst: &GpuBuf, src: &GpuBuf, cols: usize, col_off: usize) -> Result<(), GpuError> {
        need("split_heads", "src", src, 0, self.b * self.t * cols)?;
        need("split_heads", "dst", dst, 0, self.n())?;
        let p = self.params(cols, col_off)?;
        step.dispatch(SPLIT, &[], bytemuck::bytes_of(&p), &[src, dst], grid(self.n(), 256))
    }

    /// dst (B*T, cols)[:, col_off ..] = src (B, H, T, D) rearranged; other columns untouched.
    pub fn merge(&self, step: &mut Step, dst: &GpuBuf, src: &GpuBuf, cols: usize, col_off: usize) -> Result<(), GpuError> {
        need("merge_heads", "src", src, 0, self.n())?;
        need("merge_heads", "dst", dst, 0, self.b * self.t * cols)?;
        let p = self.params(cols, col_off)?;
        step.dispatch(MERGE, &[], bytemuck::bytes_of(&p), &[src, dst], grid(self.n(), 256))
    }

    /// scores = Q K^T; probs = softmax(scores / sqrt(D) + mask); ctx = probs V.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        step: &mut Step,
        ctx: &GpuBuf,
        probs: &GpuBuf,
        scores: &GpuBuf,
        q: &GpuBuf,
        k: &GpuBuf,
        v: &GpuBuf,
        mask: Option<&GpuBuf>,
    ) -> Result<(), GpuError> {
        let (b, h, t, d) = (self.b, self.h, self.t, self.d);
        Matmul::new(t, t, d).batch(b * h).trans_b().record(step, scores, q, k, None)?;
        let scale = 1.0 / (d as f32).sqrt();
        softmax::forward(step, probs, scores, mask.map(|m| (m, h * t)), b * h * t, t, scale)?;
        Matmul::new(t, d, t).batch(b * h).record(step, ctx, probs, v, None)
    }

    /// From dctx: dprobs = dctx V^T; dv = P^T dctx; dscores = softmax backward (with the 1/sqrt(D));
    /// dq = dscores K; dk = dscores^T Q. `dprobs` and `dscores` are scratch of the probs' size.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        step: &mut Step,
        dq: &GpuBuf,
        dk: &GpuBuf,
        dv: &GpuBuf,
        dprobs: &GpuBuf,
        dscores: &GpuBuf,
        dctx: &GpuBuf,
        q: &GpuBuf,
        k: &GpuBuf,
        v: &GpuBuf,
        probs: &GpuBuf,
    ) -> Result<(), GpuError> {
        let (b, h, t, d) = (self.b, self.h, self.t, self.d);
        let bh = b * h;
        Matmul::new(t, t, d).batch(bh).trans_b().record(step, dprobs, dctx, v, None)?;
        Matmul::new(t, d, t).batch(bh).trans_a().record(step, dv, probs, dctx, None)?;
        let scale = 1.0 / (d as f32).sqrt();
        softmax::backward(step, dscores, probs, dprobs, bh * t, t, scale)?;
        Matmul::new(t, d, t).batch(bh).record(step, dq, dscores, k, None)?;
        Matmul::new(t, d, t).batch(bh).trans_a().record(step, dk, dscores, q, None)
    }
}
