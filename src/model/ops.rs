//! The layer-level operations both bodies are built from, on the model's named parameters: a
//! linear layer (torch's (out, in) weights) and its backward, LayerNorm forward/backward (plain,
//! fused with a residual add and dropout), and a layer's fused query-key-value projection.

use super::acts::Fused;
use super::batch::Batch;
use super::bert::Model;
use super::mode::{Mode, Site};
use super::params::Id;
use crate::kernels::attention::HeadSplit;
use crate::kernels::softmax::{self, RowKernel};
use super::handles::{BertEmbeddings, BertHeads, BertLayer, Handles, Lin, Norm};
use crate::gpu::{GpuBuf, GpuError, Step};
use crate::kernels::dropout::Dropout;
use crate::kernels::{dropout, elementwise};
use crate::kernels::layernorm::{self, LnParams};
use crate::kernels::matmul::Matmul;

impl Model {
    /// A BERT layer's query, key and value projections as one (3C, C) weight and (3C) bias: views
    /// that span the three tensors, which the arena layout keeps side by side.
    pub(super) fn qkv(&self, layer: &BertLayer) -> Result<Fused, GpuError> {
        let (w, dw) = self.params.fused(&layer.qkv_w)?;
        let (b, db) = self.params.fused(&layer.qkv_b)?;
        Ok(Fused { w, b, dw, db })
    }

    /// y (rows, out) = x (rows, inp) W + b: W^T of torch's (out, inp) weight, or Conv1D's (inp, out)
    /// weight as it is.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn linear(&self, step: &mut Step, y: &GpuBuf, x: &GpuBuf, lin: &Lin, rows: usize, out: usize, inp: usize) -> Result<(), GpuError> {
        let p = &self.params;
        let mut mm = Matmul::new(rows, out, inp);
        mm.trans_b = !lin.in_out;
        mm.record(step, y, x, p.value(lin.w), lin.b.map(|b| p.value(b)))
    }

    /// The backward of `linear`: the weight's gradient (dy^T x, or x^T dy for Conv1D's layout) and
    /// db += sum(dy) when trainable; dx = (or +=) dy times the weight's transpose.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn linear_backward(&self, step: &mut Step, dx: Option<(&GpuBuf, bool)>, dy: &GpuBuf, x: &GpuBuf, lin: &Lin, rows: usize, out: usize, inp: usize) -> Result<(), GpuError> {
        let p = &self.params;
        if let Some(dw) = p.grad_of(lin.w) {
            if lin.in_out {
                Matmul::new(inp, out, rows).trans_a().accumulate().record(step, dw, x, dy, None)?;
            } else {
                Matmul::new(out, inp, rows).trans_a().accumulate().record(step, dw, dy, x, None)?;
            }
        }
        if let Some(db) = lin.b.and_then(|b| p.grad_of(b)) {
            elementwise::bias_grad(step, db, dy, rows, out)?;
        }
        if let Some((dx, acc)) = dx {
            let mut mm = Matmul::new(rows, inp, out);
            mm.trans_b = lin.in_out;
            mm.accumulate = acc;
            mm.record(step, dx, dy, p.value(lin.w), None)?;
        }
        Ok(())
    }

    /// `src` through the dropout `drop` into `dst` (the same mask as the forward's with its seed),
    /// or `src` itself when nothing is dropped.
    pub(super) fn dropped<'a>(step: &mut Step, dst: &'a GpuBuf, src: &'a GpuBuf, n: usize, drop: Dropout) -> Result<&'a GpuBuf, GpuError> {
        if drop.prob > 0.0 {
            dropout::apply(step, dst, src, n, drop.prob, drop.seed)?;
            Ok(dst)
        } else {
            Ok(src)
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn ln_forward(&self, step: &mut Step, y: &GpuBuf, mean: &GpuBuf, rstd: &GpuBuf, x: &GpuBuf, n: &Norm, rows: usize) -> Result<(), GpuError> {
        let p = &self.params;
        let eps = self.cfg.layer_norm_eps as f32;
        layernorm::forward(step, y, mean, rstd, x, p.value(n.g), p.value(n.b), LnParams::default(), rows, self.cfg.hidden_size, eps)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn ln_backward(&self, step: &mut Step, dx: &GpuBuf, dy: &GpuBuf, x: &GpuBuf, mean: &GpuBuf, rstd: &GpuBuf, n: &Norm, rows: usize, accumulate: bool, scratch: &GpuBuf) -> Result<(), GpuError> {
        let p = &self.params;
        let dg = p.grad_of(n.g).unwrap_or(scratch);
        let db = p.grad_of(n.b).unwrap_or(scratch);
        layernorm::backward(step, dx, dg, db, dy, x, mean, rstd, p.value(n.g), LnParams::default(), rows, self.cfg.hidden_size, accumulate)
    }

    /// y = layernorm(res), res = skip + dropout(branch) written too: one dispatch.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ln_residual(&self, step: &mut Step, y: &GpuBuf, mean: &GpuBuf, rstd: &GpuBuf, res: &GpuBuf, skip: &GpuBuf, branch: &GpuBuf, drop: Dropout, n: &Norm, rows: usize) -> Result<(), GpuError> {
        let p = &self.params;
        let eps = self.cfg.layer_norm_eps as f32;
        layernorm::forward_residual(step, y, mean, rstd, res, skip, branch, drop, p.value(n.g), p.value(n.b), LnParams::default(), rows, self.cfg.hidden_size, eps)
    }

    /// [`Model::ln_backward`] (not accumulating) that also writes dropout(dx) into `dxd`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ln_backward_dropped(&self, step: &mut Step, dx: &GpuBuf, dxd: Option<(&GpuBuf, Dropout)>, dy: &GpuBuf, x: &GpuBuf, mean: &GpuBuf, rstd: &GpuBuf, n: &Norm, rows: usize, scratch: &GpuBuf) -> Result<(), GpuError> {
        let p = &self.params;
        let dg = p.grad_of(n.g).unwrap_or(scratch);
        let db = p.grad_of(n.b).unwrap_or(scratch);
        layernorm::backward_dropped(step, dx, dxd, None, dg, db, dy, x, mean, rstd, p.value(n.g), LnParams::default(), rows, self.cfg.hidden_size, false)
    }

    /// Layer `l`'s self-attention on its qkv (B*T, 3C): scores = q k^T, probs = softmax(scores /
    /// sqrt(D) + padding mask), the triangle for a decoder (computed in the kernel), and ctx =
    /// dropout(probs) v. Both bodies attend so.
    pub(super) fn attention_forward(&self, step: &mut Step, batch: &Batch, l: usize, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg) = (self.acts.as_ref().unwrap(), &self.cfg);
        let (b, t, h) = (batch.b, batch.t, cfg.num_attention_heads);
        let d = cfg.hidden_size / h;
        let (heads, la) = (HeadSplit { b, t, h, d }, &a.layers[l]);
        let ap = mode.prob(cfg.attention_probs_dropout_prob);
        heads.scores(step, &a.scores, &la.qkv)?;
        let (scale, mask) = (1.0 / (d as f32).sqrt(), Some((&batch.mask, h * t)));
        let causal = cfg.is_decoder;
        let probs_used = if ap > 0.0 {
            let drop = Dropout::new(ap, mode.seed(Site::AttentionProbs(l)));
            softmax::record_forward(RowKernel::Auto, step, &la.probs, Some((&la.probs_d, drop)), &a.scores, mask, causal, b * h * t, t, scale)?;
            &la.probs_d
        } else {
            softmax::record_forward(RowKernel::Auto, step, &la.probs, None, &a.scores, mask, causal, b * h * t, t, scale)?;
            &la.probs
        };
        heads.context(step, &la.ctx, probs_used, &la.qkv)
    }

    /// The backward of [`Model::attention_forward`]: from d_ctx (in lin2) to dqkv. ctx = P' v with
    /// P' = dropout(P): dP' = dctx v^T and dv = P'^T dctx; the softmax's backward takes dP' back
    /// through the dropout.
    pub(super) fn attention_backward(&self, step: &mut Step, batch: &Batch, l: usize, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg) = (self.acts.as_ref().unwrap(), &self.cfg);
        let (b, t, h) = (batch.b, batch.t, cfg.num_attention_heads);
        let d = cfg.hidden_size / h;
        let (heads, la) = (HeadSplit { b, t, h, d }, &a.layers[l]);
        let ap = mode.prob(cfg.attention_probs_dropout_prob);
        let scale = 1.0 / (d as f32).sqrt();
        let probs_used = if ap > 0.0 { &la.probs_d } else { &la.probs };
        heads.context_backward(step, &a.dqkv, &a.dprobs, &a.lin2, &la.qkv, probs_used)?;
        if ap > 0.0 {
            softmax::backward_dropped(step, &a.dscores, &la.probs, &a.dprobs, Dropout::new(ap, mode.seed(Site::AttentionProbs(l))), b * h * t, t, scale)?;
        } else {
            softmax::backward(step, &a.dscores, &la.probs, &a.dprobs, b * h * t, t, scale)?;
        }
        heads.scores_backward(step, &a.dqkv, &a.dscores, &la.qkv)
    }

    /// Whether any of `ids` is trainable.
    pub(super) fn any_trains(&self, ids: impl IntoIterator<Item = Id>) -> bool {
        ids.into_iter().any(|id| self.params.trains(id))
    }

    /// BERT's parts (embeddings, layers, heads); a programming error on a GPT-2.
    pub(super) fn bert_parts(&self) -> (&BertEmbeddings, &[BertLayer], &BertHeads) {
        match &self.handles {
            Handles::Bert { emb, layers, heads } => (emb, layers, heads),
            Handles::Gpt2 { .. } => unreachable!("BERT's layers asked of a GPT-2"),
        }
    }
}
