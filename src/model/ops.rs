//! The layer-level operations the bodies are built from, on the model's named parameters: a
//! linear layer (torch's (out, in) weights) and its backward, LayerNorm forward/backward (plain,
//! fused with a residual add and dropout), and a layer's fused query-key-value projection.

use super::acts::Fused;
use super::batch::Batch;
use super::model::Model;
use super::mode::{Mode, Site};
use super::params::Id;
use crate::kernels::attention::HeadSplit;
use super::handles::{BertEmbeddings, BertHeads, BertLayer, Handles, Lin, Norm};
use crate::gpu::{GpuBuf, GpuError, Step, View};
use crate::kernels::dropout::Dropout;
use crate::kernels::layernorm::{self, Affine, AffineGrad, BackwardOpts, FusedBack, LayerNorm, Saved, Stats};
use crate::kernels::matmul::Matmul;
use crate::kernels::{dropout, elementwise};

impl Model {
    /// A BERT layer's query, key and value projections as one (3C, C) weight and (3C) bias: views
    /// that span the three tensors, which the arena layout keeps side by side.
    pub(super) fn qkv(&self, layer: &BertLayer) -> Result<Fused, GpuError> {
        let (w, dw) = self.params.fused(&layer.qkv_w)?;
        let (b, db) = self.params.fused(&layer.qkv_b)?;
        Ok(Fused { w, b, dw, db })
    }

    /// (out, inp) of a linear layer's weight: torch's (out, inp), or Conv1D's (inp, out).
    pub(super) fn lin_dims(&self, lin: &Lin) -> Result<(usize, usize), GpuError> {
        match *self.params.shape(lin.w) {
            [o, i] if !lin.in_out => Ok((o, i)),
            [i, o] => Ok((o, i)),
            ref s => Err(GpuError::Shape(format!("linear: a weight of shape {s:?}, not a matrix"))),
        }
    }

    /// y (rows, out) = x (rows, inp) W + b: W^T of torch's (out, inp) weight, or Conv1D's (inp, out)
    /// weight as it is; out and inp are the weight's.
    pub(super) fn linear(&self, step: &mut Step, y: &GpuBuf, x: &GpuBuf, lin: &Lin, rows: usize) -> Result<(), GpuError> {
        let p = &self.params;
        let (out, inp) = self.lin_dims(lin)?;
        let mut mm = Matmul::new(rows, out, inp);
        mm.trans_b = !lin.in_out;
        let w = p.value(lin.w).at(if lin.in_out { [inp, out] } else { [out, inp] });
        mm.record(step, y.at([rows, out]), x.at([rows, inp]), w, lin.b.map(|b| p.value(b).at([out])))?;
        match &lin.lora {
            Some(lo) => self.lora_forward(step, y, out, x, rows, lo),
            None => Ok(()),
        }
    }

    /// The backward of `linear`: the weight's gradient (dy^T x, or x^T dy for Conv1D's layout) and
    /// db += sum(dy) when trainable; dx = (or += with its `true`) dy times the weight's transpose.
    pub(super) fn linear_backward(&self, step: &mut Step, dx: Option<(&GpuBuf, bool)>, dy: &GpuBuf, x: &GpuBuf, lin: &Lin, rows: usize) -> Result<(), GpuError> {
        let p = &self.params;
        let (out, inp) = self.lin_dims(lin)?;
        if let Some(dw) = p.grad_of(lin.w) {
            let (x, dy) = (x.at([rows, inp]), dy.at([rows, out]));
            if lin.in_out {
                Matmul::new(inp, out, rows).trans_a().accumulate().record(step, dw.at([inp, out]), x, dy, None)?;
            } else {
                Matmul::new(out, inp, rows).trans_a().accumulate().record(step, dw.at([out, inp]), dy, x, None)?;
            }
        }
        if let Some(db) = lin.b.and_then(|b| p.grad_of(b)) {
            elementwise::bias_grad(step, db.at([out]), dy.at([rows, out]))?;
        }
        if let Some((dx, acc)) = dx {
            let mut mm = Matmul::new(rows, inp, out);
            mm.trans_b = lin.in_out;
            mm.accumulate = acc;
            let w = p.value(lin.w).at(if lin.in_out { [inp, out] } else { [out, inp] });
            mm.record(step, dx.at([rows, inp]), dy.at([rows, out]), w, None)?;
        }
        if let Some(lo) = &lin.lora {
            self.lora_backward(step, dx.map(|d| d.0), (dy, out), x, rows, lo)?;
        }
        Ok(())
    }

    /// `src` through the dropout `drop` into `dst` (the same mask as the forward's with its seed),
    /// or `src` itself when nothing is dropped.
    pub(super) fn dropped<'a>(step: &mut Step, dst: &'a GpuBuf, src: &'a GpuBuf, n: usize, drop: Dropout) -> Result<&'a GpuBuf, GpuError> {
        if drop.prob > 0.0 {
            dropout::apply(step, dst.at([n]), src.at([n]), drop)?;
            Ok(dst)
        } else {
            Ok(src)
        }
    }

    /// `buf` as `rows` rows of the hidden size.
    pub(super) fn hidden<'a>(&self, buf: &'a GpuBuf, rows: usize) -> View<'a> {
        buf.at([rows, self.cfg.hidden_size])
    }

    /// The model's LayerNorm (its eps; the row kernel for the adapter).
    fn layernorm(&self) -> LayerNorm {
        LayerNorm::new(self.cfg.layer_norm_eps as f32)
    }

    /// y = layernorm `n` of x, with what `fused` adds (a residual sum and its dropout, or dropout on
    /// the output) in the same dispatch.
    pub(super) fn ln_forward(&self, step: &mut Step, y: View, stats: Stats, x: View, n: &Norm, fused: layernorm::Fused) -> Result<(), GpuError> {
        let p = &self.params;
        let beta = match n.b {
            Some(b) => p.value(b),
            // a LayerNorm without a bias (ModernBERT's) adds zeros
            None => &self.norm_zeros,
        };
        self.layernorm().forward(step, y, stats, x, Affine { gamma: p.value(n.g), beta }, fused)
    }

    /// The backward of layernorm `n`: dx per `opts`, and its gamma's and beta's gradients where they
    /// train (else into the activations' scratch).
    pub(super) fn ln_backward(&self, step: &mut Step, dx: View, dy: View, saved: Saved, n: &Norm, opts: BackwardOpts) -> Result<(), GpuError> {
        let p = &self.params;
        let dgamma = p.grad_of(n.g);
        let dbeta = match n.b {
            Some(b) => p.grad_of(b),
            // without a bias, beta's gradient goes to scratch that nothing reads (cleared first, so
            // that it never grows)
            None if dgamma.is_some() => {
                step.clear(&self.norm_scratch);
                Some(&self.norm_scratch)
            }
            None => None,
        };
        let w = AffineGrad { gamma: p.value(n.g), dgamma, dbeta };
        self.layernorm().backward(step, dx, dy, saved, w, opts)
    }

    /// A layernorm backward's options (dx written, not added) where dx also feeds a residual branch
    /// that went through a dropout of `prob` with `seed`: `dropout(dx)` into `dxd` (`rows` of the
    /// hidden size) in the same dispatch, when anything is dropped.
    pub(super) fn drop_dx<'a>(&self, dxd: &'a GpuBuf, rows: usize, prob: f32, seed: u64) -> BackwardOpts<'a> {
        let fused = if prob > 0.0 { FusedBack::DropDx(self.hidden(dxd, rows), Dropout::new(prob, seed)) } else { FusedBack::None };
        BackwardOpts { accumulate: false, fused }
    }

    /// Layer `l`'s self-attention on its qkv (B*T, 3C): scores = q k^T, probs = softmax(scores /
    /// sqrt(D) + padding mask), the triangle for a decoder (computed in the kernel), and ctx =
    /// dropout(probs) v. Both bodies attend so.
    pub(super) fn attention_forward(&self, step: &mut Step, batch: &Batch, l: usize, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg) = (self.acts.as_ref().unwrap(), &self.cfg);
        let (b, t, h) = (batch.b, batch.t, cfg.num_attention_heads);
        let (heads, la) = (HeadSplit::new(b, t, h, cfg.head_dim()).grouped(cfg.kv_heads()), &a.layers[l]);
        let ap = mode.prob(cfg.attention_probs_dropout_prob);
        let (probs, scores, qkv) = (heads.score_rows(&la.probs), heads.score_rows(&a.scores), heads.qkv_rows(&la.qkv));
        heads.scores(step, scores, qkv)?;
        // ModernBERT's local layers see the keys within its window
        let window = cfg.modern.as_ref().filter(|m| !m.global(l)).map(|m| m.window).unwrap_or(0);
        let sm = heads.softmax(Some(&batch.mask)).causal(cfg.is_decoder).window(window);
        let probs_used = if ap > 0.0 {
            let drop = Dropout::new(ap, mode.seed(Site::AttentionProbs(l)));
            let probs_d = heads.score_rows(&la.probs_d);
            sm.forward(step, probs, scores, Some((probs_d, drop)))?;
            probs_d
        } else {
            sm.forward(step, probs, scores, None)?;
            probs
        };
        heads.context(step, heads.ctx_rows(&la.ctx), probs_used, qkv)
    }

    /// The backward of [`Model::attention_forward`]: from d_ctx (in lin2) to dqkv. ctx = P' v with
    /// P' = dropout(P): dP' = dctx v^T and dv = P'^T dctx; the softmax's backward takes dP' back
    /// through the dropout.
    pub(super) fn attention_backward(&self, step: &mut Step, batch: &Batch, l: usize, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg) = (self.acts.as_ref().unwrap(), &self.cfg);
        let (b, t, h) = (batch.b, batch.t, cfg.num_attention_heads);
        let (heads, la) = (HeadSplit::new(b, t, h, cfg.head_dim()).grouped(cfg.kv_heads()), &a.layers[l]);
        let ap = mode.prob(cfg.attention_probs_dropout_prob);
        let probs_used = heads.score_rows(if ap > 0.0 { &la.probs_d } else { &la.probs });
        let (dqkv, qkv) = (heads.qkv_rows(&a.dqkv), heads.qkv_rows(&la.qkv));
        let (dscores, probs, dprobs) = (heads.score_rows(&a.dscores), heads.score_rows(&la.probs), heads.score_rows(&a.dprobs));
        heads.context_backward(step, dqkv, dprobs, heads.ctx_rows(&a.lin2), qkv, probs_used)?;
        let drop = (ap > 0.0).then(|| Dropout::new(ap, mode.seed(Site::AttentionProbs(l))));
        heads.softmax(None).backward(step, dscores, probs, dprobs, drop)?;
        heads.scores_backward(step, dqkv, dscores, qkv)
    }

    /// Whether any of `ids` is trainable.
    pub(super) fn any_trains(&self, ids: impl IntoIterator<Item = Id>) -> bool {
        ids.into_iter().any(|id| self.params.trains(id))
    }

    /// BERT's parts (embeddings, layers, heads); a programming error on a GPT-2.
    pub(super) fn bert_parts(&self) -> (&BertEmbeddings, &[BertLayer], &BertHeads) {
        match &self.handles {
            Handles::Bert { emb, layers, heads } => (emb, layers, heads),
            _ => unreachable!("BERT's layers asked of another body"),
        }
    }
}
