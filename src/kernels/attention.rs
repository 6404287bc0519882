//! Multi-head attention on a fused QKV token matrix, with no head split or merge: Q, K and V are the
//! column blocks [0, C), [C, 2C), [2C, 3C) of `qkv` (B*T, 3C), head h is columns h*D.. of each
//! block, and the batched matmuls read the heads where they are (two-level batches: B sequences of
//! H heads, see shaders/matmul_common.wgsl). The context is written the same way into (B*T, C), and
//! the backward writes dQ, dK, dV into the blocks of `dqkv` (B*T, 3C), each element once.
//!
//! Shapes: B batch, T tokens, H heads, D head size, C = H * D.
//!   qkv, dqkv: (B*T, 3C);  scores, probs: (B, H, T, T);  ctx: (B*T, C);  mask: (B, T) additive.

use super::matmul::{Matmul, Operand};
use super::softmax::{Mask, Softmax};
use crate::gpu::{expect_shape, GpuBuf, GpuError, Step, View};

/// How attention splits a batch into heads: B sequences of T tokens, H query heads of D dimensions
/// each, and KV key/value heads (KV = H but for grouped-query attention, where query head h reads
/// key/value head h / (H / KV)); not to be confused with a model's task heads, `model::Heads`.
///
/// With groups (G = H / KV > 1) each product runs as G batched products over (B, KV): the r-th
/// query head of every group at once (query heads r, G + r, 2G + r...), against the group's
/// key/value head; the keys' and values' gradients add up over the G.
#[derive(Clone, Copy, Debug)]
pub struct HeadSplit {
    pub b: usize,
    pub t: usize,
    pub h: usize,
    pub d: usize,
    pub kv: usize,
}

impl HeadSplit {
    /// Multi-head attention: as many key/value heads as query heads.
    pub fn new(b: usize, t: usize, h: usize, d: usize) -> HeadSplit {
        HeadSplit { b, t, h, d, kv: h }
    }
    /// Grouped-query attention with `kv` key/value heads.
    pub fn grouped(self, kv: usize) -> HeadSplit {
        HeadSplit { kv, ..self }
    }
    fn c(&self) -> usize {
        self.h * self.d
    }
    /// Query heads per key/value head.
    fn g(&self) -> usize {
        self.h / self.kv.max(1)
    }
    /// The fused q|k|v row's width, and where K and V begin in it.
    fn w(&self) -> usize {
        (self.h + 2 * self.kv) * self.d
    }
    fn k_off(&self) -> usize {
        self.h * self.d
    }
    fn v_off(&self) -> usize {
        (self.h + self.kv) * self.d
    }
    /// The heads of a (B*T, cols) token matrix: matrix (b, h) starts at b*T*cols + h*D.
    pub fn tokens(&self, cols: usize) -> Operand {
        Operand { ld: cols, outer: self.t * cols, inner_stride: self.d }
    }
    /// Every G-th query head of a (B*T, cols) token matrix (the r-th of each group, from `starts`).
    fn query_group(&self, cols: usize) -> Operand {
        Operand { ld: cols, outer: self.t * cols, inner_stride: self.g() * self.d }
    }
    /// (B, H, rows, cols) contiguous blocks.
    pub fn blocks(&self, rows: usize, cols: usize) -> Operand {
        Operand { ld: cols, outer: self.h * rows * cols, inner_stride: rows * cols }
    }
    /// Every G-th head's block of (B, H, rows, cols).
    fn block_group(&self, rows: usize, cols: usize) -> Operand {
        Operand { ld: cols, outer: self.h * rows * cols, inner_stride: self.g() * rows * cols }
    }
    fn mm(&self, m: usize, n: usize, k: usize) -> Matmul {
        Matmul::new(m, n, k).batch(self.b * self.kv)
    }

    /// An error unless `v` is `want`: (B*T, (H + 2KV) D) for qkv and dqkv, (B*T, H D) for the
    /// context and its gradient, (B*H*T, T) for the scores, the probabilities and their gradients
    /// (as [`HeadSplit::score_rows`] views them).
    fn expect(&self, kernel: &str, views: &[(&str, &View, [usize; 2])]) -> Result<(), GpuError> {
        if self.kv == 0 || self.h % self.kv != 0 {
            return Err(GpuError::Shape(format!("{kernel}: {} query heads in groups over {} key/value heads", self.h, self.kv)));
        }
        views.iter().try_for_each(|(what, v, want)| expect_shape(kernel, what, v, *want))
    }
    fn qkv_shape(&self) -> [usize; 2] {
        [self.b * self.t, self.w()]
    }
    fn ctx_shape(&self) -> [usize; 2] {
        [self.b * self.t, self.c()]
    }
    fn score_shape(&self) -> [usize; 2] {
        [self.b * self.h * self.t, self.t]
    }

    /// scores (B*H*T, T) = Q K^T, unscaled (softmax applies 1/sqrt(D)).
    pub fn scores(&self, step: &mut Step, scores: View, qkv: View) -> Result<(), GpuError> {
        let (t, d, w, tt) = (self.t, self.d, self.w(), self.t * self.t);
        self.expect("attention scores", &[("scores", &scores, self.score_shape()), ("qkv", &qkv, self.qkv_shape())])?;
        for r in 0..self.g() {
            let mm = self.mm(t, t, d).trans_b().starts(r * d, self.k_off(), r * tt).strided(self.kv, self.query_group(w), self.tokens(w), self.block_group(t, t));
            mm.record(step, scores, qkv, qkv, None)?;
        }
        Ok(())
    }

    /// ctx (B*T, H D) = P V, head by head.
    pub fn context(&self, step: &mut Step, ctx: View, probs: View, qkv: View) -> Result<(), GpuError> {
        let (t, d, w, c, tt) = (self.t, self.d, self.w(), self.c(), self.t * self.t);
        self.expect("attention context", &[("ctx", &ctx, self.ctx_shape()), ("probs", &probs, self.score_shape()), ("qkv", &qkv, self.qkv_shape())])?;
        for r in 0..self.g() {
            let mm = self.mm(t, d, t).starts(r * tt, self.v_off(), r * d).strided(self.kv, self.block_group(t, t), self.tokens(w), self.query_group(c));
            mm.record(step, ctx, probs, qkv, None)?;
        }
        Ok(())
    }

    /// The backward of [`HeadSplit::context`]: dprobs = dctx V^T, and dV = sum over the group of
    /// P^T dctx into dqkv's V block.
    pub fn context_backward(&self, step: &mut Step, dqkv: View, dprobs: View, dctx: View, qkv: View, probs: View) -> Result<(), GpuError> {
        let (t, d, w, c, tt) = (self.t, self.d, self.w(), self.c(), self.t * self.t);
        let (qs, cs, ss) = (self.qkv_shape(), self.ctx_shape(), self.score_shape());
        self.expect("attention context backward", &[("dqkv", &dqkv, qs), ("dprobs", &dprobs, ss), ("dctx", &dctx, cs), ("qkv", &qkv, qs), ("probs", &probs, ss)])?;
        for r in 0..self.g() {
            let dp = self.mm(t, t, d).trans_b().starts(r * d, self.v_off(), r * tt).strided(self.kv, self.query_group(c), self.tokens(w), self.block_group(t, t));
            dp.record(step, dprobs, dctx, qkv, None)?;
        }
        for r in 0..self.g() {
            let mut dv = self.mm(t, d, t).trans_a().starts(r * tt, r * d, self.v_off()).strided(self.kv, self.block_group(t, t), self.query_group(c), self.tokens(w));
            dv.accumulate = r > 0;
            dv.record(step, dqkv, probs, dctx, None)?;
        }
        Ok(())
    }

    /// The backward of [`HeadSplit::scores`] from dscores (already through the softmax backward and its
    /// scale): dQ = dS K and dK = sum over the group of dS^T Q into dqkv's Q and K blocks.
    pub fn scores_backward(&self, step: &mut Step, dqkv: View, dscores: View, qkv: View) -> Result<(), GpuError> {
        let (t, d, w, tt) = (self.t, self.d, self.w(), self.t * self.t);
        self.expect("attention scores backward", &[("dqkv", &dqkv, self.qkv_shape()), ("dscores", &dscores, self.score_shape()), ("qkv", &qkv, self.qkv_shape())])?;
        for r in 0..self.g() {
            let dq = self.mm(t, d, t).starts(r * tt, self.k_off(), r * d).strided(self.kv, self.block_group(t, t), self.tokens(w), self.query_group(w));
            dq.record(step, dqkv, dscores, qkv, None)?;
        }
        for r in 0..self.g() {
            let mut dk = self.mm(t, d, t).trans_a().starts(r * tt, r * d, self.k_off()).strided(self.kv, self.block_group(t, t), self.query_group(w), self.tokens(w));
            dk.accumulate = r > 0;
            dk.record(step, dqkv, dscores, qkv, None)?;
        }
        Ok(())
    }

    /// The probabilities' softmax: scale 1/sqrt(D), and the (B, T) additive `mask` when given.
    pub fn softmax<'a>(&self, mask: Option<&'a GpuBuf>) -> Softmax<'a> {
        let rows_per_mask = self.h * self.t;
        Softmax::new(1.0 / (self.d as f32).sqrt()).mask(mask.map(|mask| Mask { mask, rows_per_mask }))
    }
    /// The scores or probabilities (B, H, T, T) in `buf`, as the softmax's rows (B*H*T, T): the
    /// view every method here takes them as.
    pub fn score_rows<'a>(&self, buf: &'a GpuBuf) -> View<'a> {
        buf.at(self.score_shape())
    }
    /// A (B*T, (H + 2KV) D) qkv or dqkv in `buf`.
    pub fn qkv_rows<'a>(&self, buf: &'a GpuBuf) -> View<'a> {
        buf.at(self.qkv_shape())
    }
    /// A (B*T, H D) context or its gradient in `buf`.
    pub fn ctx_rows<'a>(&self, buf: &'a GpuBuf) -> View<'a> {
        buf.at(self.ctx_shape())
    }

    /// scores = Q K^T; probs = softmax(scores / sqrt(D) + mask); ctx = probs V.
    pub fn forward(&self, step: &mut Step, ctx: View, probs: View, scores: View, qkv: View, mask: Option<&GpuBuf>) -> Result<(), GpuError> {
        self.scores(step, scores, qkv)?;
        self.softmax(mask).forward(step, probs, scores, None)?;
        self.context(step, ctx, probs, qkv)
    }

    /// From dctx (B*T, C): dqkv (B*T, 3C), with `scratch` of the probabilities' shape.
    pub fn backward(&self, step: &mut Step, dqkv: View, scratch: Scratch, dctx: View, qkv: View, probs: View) -> Result<(), GpuError> {
        self.context_backward(step, dqkv, scratch.dprobs, dctx, qkv, probs)?;
        self.softmax(None).backward(step, scratch.dscores, probs, scratch.dprobs, None)?;
        self.scores_backward(step, dqkv, scratch.dscores, qkv)
    }
}

/// The gradients at the probabilities and at the scores, (B, H, T, T) each: scratch of
/// [`HeadSplit::backward`].
#[derive(Clone, Copy, Debug)]
pub struct Scratch<'a> {
    pub dprobs: View<'a>,
    pub dscores: View<'a>,
}
