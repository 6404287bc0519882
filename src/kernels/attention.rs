//! Multi-head attention on a fused QKV token matrix, with no head split or merge: Q, K and V are the
//! column blocks [0, C), [C, 2C), [2C, 3C) of `qkv` (B*T, 3C), head h is columns h*D.. of each
//! block, and the batched matmuls read the heads where they are (two-level batches: B sequences of
//! H heads, see shaders/matmul_common.wgsl). The context is written the same way into (B*T, C), and
//! the backward writes dQ, dK, dV into the blocks of `dqkv` (B*T, 3C), each element once.
//!
//! Shapes: B batch, T tokens, H heads, D head size, C = H * D.
//!   qkv, dqkv: (B*T, 3C);  scores, probs: (B, H, T, T);  ctx: (B*T, C);  mask: (B, T) additive.

use super::matmul::{Matmul, Operand};
use super::softmax;
use crate::gpu::{GpuBuf, GpuError, Step};

/// How attention splits a batch into heads: B sequences of T tokens, H heads of D dimensions each
/// (not to be confused with a model's task heads, `model::Heads`).
#[derive(Clone, Copy, Debug)]
pub struct HeadSplit {
    pub b: usize,
    pub t: usize,
    pub h: usize,
    pub d: usize,
}

impl HeadSplit {
    fn c(&self) -> usize {
        self.h * self.d
    }
    /// The heads of a (B*T, cols) token matrix: matrix (b, h) starts at b*T*cols + h*D.
    pub fn tokens(&self, cols: usize) -> Operand {
        Operand { ld: cols, outer: self.t * cols, inner_stride: self.d }
    }
    /// (B, H, rows, cols) contiguous blocks.
    pub fn blocks(&self, rows: usize, cols: usize) -> Operand {
        Operand { ld: cols, outer: self.h * rows * cols, inner_stride: rows * cols }
    }
    fn mm(&self, m: usize, n: usize, k: usize) -> Matmul {
        Matmul::new(m, n, k).batch(self.b * self.h)
    }

    /// scores (B, H, T, T) = Q K^T, unscaled (softmax applies 1/sqrt(D)).
    pub fn scores(&self, step: &mut Step, scores: &GpuBuf, qkv: &GpuBuf) -> Result<(), GpuError> {
        let (t, d, c) = (self.t, self.d, self.c());
        let mm = self.mm(t, t, d).trans_b().offsets(0, c, 0).strided(self.h, self.tokens(3 * c), self.tokens(3 * c), self.blocks(t, t));
        mm.record(step, scores, qkv, qkv, None)
    }

    /// ctx (B*T, C) = P V, head by head.
    pub fn context(&self, step: &mut Step, ctx: &GpuBuf, probs: &GpuBuf, qkv: &GpuBuf) -> Result<(), GpuError> {
        let (t, d, c) = (self.t, self.d, self.c());
        let mm = self.mm(t, d, t).offsets(0, 2 * c, 0).strided(self.h, self.blocks(t, t), self.tokens(3 * c), self.tokens(c));
        mm.record(step, ctx, probs, qkv, None)
    }

    /// The backward of [`HeadSplit::context`]: dprobs = dctx V^T, and dV = P^T dctx into dqkv's V block.
    pub fn context_backward(&self, step: &mut Step, dqkv: &GpuBuf, dprobs: &GpuBuf, dctx: &GpuBuf, qkv: &GpuBuf, probs: &GpuBuf) -> Result<(), GpuError> {
        let (t, d, c) = (self.t, self.d, self.c());
        let dp = self.mm(t, t, d).trans_b().offsets(0, 2 * c, 0).strided(self.h, self.tokens(c), self.tokens(3 * c), self.blocks(t, t));
        dp.record(step, dprobs, dctx, qkv, None)?;
        let dv = self.mm(t, d, t).trans_a().offsets(0, 0, 2 * c).strided(self.h, self.blocks(t, t), self.tokens(c), self.tokens(3 * c));
        dv.record(step, dqkv, probs, dctx, None)
    }

    /// The backward of [`HeadSplit::scores`] from dscores (already through the softmax backward and its
    /// scale): dQ = dS K and dK = dS^T Q into dqkv's Q and K blocks.
    pub fn scores_backward(&self, step: &mut Step, dqkv: &GpuBuf, dscores: &GpuBuf, qkv: &GpuBuf) -> Result<(), GpuError> {
        let (t, d, c) = (self.t, self.d, self.c());
        let dq = self.mm(t, d, t).offsets(0, c, 0).strided(self.h, self.blocks(t, t), self.tokens(3 * c), self.tokens(3 * c));
        dq.record(step, dqkv, dscores, qkv, None)?;
        let dk = self.mm(t, d, t).trans_a().offsets(0, 0, c).strided(self.h, self.blocks(t, t), self.tokens(3 * c), self.tokens(3 * c));
        dk.record(step, dqkv, dscores, qkv, None)
    }

    /// scores = Q K^T; probs = softmax(scores / sqrt(D) + mask); ctx = probs V.
    pub fn forward(&self, step: &mut Step, ctx: &GpuBuf, probs: &GpuBuf, scores: &GpuBuf, qkv: &GpuBuf, mask: Option<&GpuBuf>) -> Result<(), GpuError> {
        let (b, h, t, d) = (self.b, self.h, self.t, self.d);
        self.scores(step, scores, qkv)?;
        let scale = 1.0 / (d as f32).sqrt();
        softmax::forward(step, probs, scores, mask.map(|m| (m, h * t)), b * h * t, t, scale)?;
        self.context(step, ctx, probs, qkv)
    }

    /// From dctx (B*T, C): dqkv (B*T, 3C). `dprobs` and `dscores` are scratch of the probs' size.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(&self, step: &mut Step, dqkv: &GpuBuf, dprobs: &GpuBuf, dscores: &GpuBuf, dctx: &GpuBuf, qkv: &GpuBuf, probs: &GpuBuf) -> Result<(), GpuError> {
        let (bh, t, d) = (self.b * self.h, self.t, self.d);
        self.context_backward(step, dqkv, dprobs, dctx, qkv, probs)?;
        let scale = 1.0 / (d as f32).sqrt();
        softmax::backward(step, dscores, probs, dprobs, bh * t, t, scale)?;
        self.scores_backward(step, dqkv, dscores, qkv)
    }
}
