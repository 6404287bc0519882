//! ModernBERT's body (transformers' `ModernBertModel`): its forward and backward, on the kernels,
//! activations and heads the other bodies use.
//!
//! `x[0] = norm(tok_embeddings[ids])`; per layer, pre-LN without biases:
//! `h = x + Wo(attention(rotary(Wqkv(attn_norm(x)))))` (layer 0 has no attn_norm: its input is x
//! itself), `x' = h + Wo(GeGLU(Wi(mlp_norm(h))))`; after the last layer `final_norm`. The rotary
//! positions turn the queries and keys in place in the fused q|k|v, by the global theta on the
//! global layers (every `global_every`-th from the first) and the local theta on the others, which
//! attend only to the keys within the window (ops.rs). The heads are BERT's (heads.rs) on the final
//! norm's output: the masked-LM head (dense, GELU, norm, the tied decoder), and the classifier's
//! dense, GELU and norm (transformers' `head`) before `classifier`. Dropout is 0 in ModernBERT as
//! released (the config reader refuses other values), so no dropout site is recorded here.
//!
//! Activations: `x[l]` the residual stream into layer l, `h1` = attn_norm(x[l]) (for layer 0 unused:
//! x[0] is read), `qkv` rotated in place, `res1` = x[l] + attention, `res2` = mlp_norm(res1),
//! `inter_pre` Wi's output (2I wide) and `inter` the GeGLU; `fin` = final_norm(x[L]).

use super::acts::Acts;
use super::batch::Batch;
use super::handles::{BertHeads, Handles, ModernLayer, Norm};
use super::mode::Mode;
use super::model::Model;
use super::params::Id;
use crate::gpu::{GpuBuf, GpuError, Step};
use crate::kernels::glu::{self, GluAct};
use crate::kernels::layernorm::{BackwardOpts, Fused, Saved, Stats};
use crate::kernels::rotary::{self, Heads};
use crate::kernels::dropout::Dropout;

impl Model {
    /// ModernBERT's parts (word embedding, embedding norm, layers, final norm); a programming error
    /// on another body.
    pub(super) fn modern_parts(&self) -> (Id, &Norm, &[ModernLayer], &Norm) {
        match &self.handles {
            Handles::Modern { word, emb_norm, layers, final_norm, .. } => (*word, emb_norm, layers, final_norm),
            _ => unreachable!("ModernBERT's layers asked of another body"),
        }
    }

    /// The word embedding and the heads of an encoder (BERT's body or ModernBERT's).
    pub(super) fn encoder_heads(&self) -> (Id, &BertHeads) {
        match &self.handles {
            Handles::Bert { emb, heads, .. } => (emb.word, heads),
            Handles::Modern { word, heads, .. } => (*word, heads),
            Handles::Gpt2 { .. } | Handles::Llama { .. } => unreachable!("an encoder's heads asked of a decoder"),
        }
    }

    /// The encoder's last hidden states: BERT's last layer's output, or the final norm's (GPT-2's
    /// ln_f, ModernBERT's final_norm).
    pub(super) fn encoder_out<'a>(&self, a: &'a Acts) -> &'a GpuBuf {
        match self.cfg.body {
            super::config::Body::Bert => &a.x[self.cfg.num_hidden_layers],
            _ => &a.fin,
        }
    }

    /// The rotary heads of a batch's fused q|k|v rows (the query heads, then the key heads), and
    /// layer `l`'s tables (cos, sin): ModernBERT's global or local theta, the Llama body's one.
    pub(super) fn rope_of<'a>(&self, a: &'a Acts, batch: &Batch, l: usize) -> Result<(Heads, &'a GpuBuf, &'a GpuBuf), GpuError> {
        let cfg = &self.cfg;
        let (h, kv, d) = (cfg.num_attention_heads, cfg.kv_heads(), cfg.head_dim());
        let r = a.rope.as_ref().ok_or_else(|| GpuError::Shape("rotary tables not made: a model without rotary positions".into()))?;
        let global = cfg.modern.as_ref().map(|m| m.global(l)).unwrap_or(true);
        let (cos, sin) = if global { (&r[0], &r[1]) } else { (&r[2], &r[3]) };
        let heads = Heads { rows: batch.b * batch.t, t: batch.t, ld: cfg.qkv_width(), q_heads: h, k_heads: kv, d, q_off: 0, k_off: h * d, pos_base: 0 };
        Ok((heads, cos, sin))
    }

    /// The norm that follows layer `l`'s output: the next layer's `attn_norm`, or `final_norm`; and
    /// the buffers it writes (output, mean, rstd).
    fn modern_next_norm<'a>(&'a self, a: &'a Acts, l: usize) -> (&'a Norm, &'a GpuBuf, Stats<'a>) {
        let (_, _, layers, final_norm) = self.modern_parts();
        match layers.get(l + 1).and_then(|n| n.attn_norm.as_ref()) {
            Some(norm) => {
                let n = &a.layers[l + 1];
                (norm, &n.h1, Stats { mean: &n.mean1, rstd: &n.rstd1 })
            }
            None => (final_norm, &a.fin, Stats { mean: &a.fin_mean, rstd: &a.fin_rstd }),
        }
    }

    pub(super) fn record_forward_modern(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let a = self.acts.as_ref().unwrap();
        let cfg = &self.cfg;
        let (b, t, c, i) = (batch.b, batch.t, cfg.hidden_size, cfg.intermediate_size);
        let bt = b * t;
        let act = if cfg.gelu() == crate::kernels::gelu::Gelu::Tanh { GluAct::GeluTanh } else { GluAct::Gelu };
        let (word, emb_norm, layers, final_norm) = self.modern_parts();
        // x[0] = norm(tok_embeddings[ids])
        self.word_lookup(step, &a.emb, &batch.ids, word, bt, false)?;
        self.ln_forward(step, self.hidden(&a.x[0], bt), Stats { mean: &a.emb_mean, rstd: &a.emb_rstd }, self.hidden(&a.emb, bt), emb_norm, Fused::None)?;
        if layers.is_empty() {
            return self.ln_forward(step, self.hidden(&a.fin, bt), Stats { mean: &a.fin_mean, rstd: &a.fin_rstd }, self.hidden(&a.x[0], bt), final_norm, Fused::None).and_then(|_| self.heads_forward(step, batch, mode));
        }
        for (l, lp) in layers.iter().enumerate() {
            let la = &a.layers[l];
            // layer 0 reads x itself; the others their attn_norm's output, written by the layer before
            let input = if lp.attn_norm.is_some() { &la.h1 } else { &a.x[l] };
            self.linear(step, &la.qkv, input, &lp.wqkv, bt)?;
            let (heads, cos, sin) = self.rope_of(a, batch, l)?;
            rotary::apply(step, la.qkv.at([bt * 3 * c]), cos, sin, heads, false)?;
            self.attention_forward(step, batch, l, mode)?;
            self.linear(step, &a.lin, &la.ctx, &lp.wo, bt)?;
            // res1 = x + attention, and mlp_norm(res1), in one kernel
            let sum1 = Fused::Residual { res: self.hidden(&la.res1, bt), branch: self.hidden(&a.lin, bt), drop: Dropout::default() };
            self.ln_forward(step, self.hidden(&la.res2, bt), Stats { mean: &la.mean2, rstd: &la.rstd2 }, self.hidden(&a.x[l], bt), &lp.mlp_norm, sum1)?;
            self.linear(step, &la.inter_pre, &la.res2, &lp.wi, bt)?;
            glu::forward(step, act, la.inter.at([bt, i]), la.inter_pre.at([bt, 2 * i]))?;
            self.linear(step, &a.lin, &la.inter, &lp.mlp_wo, bt)?;
            // x[l + 1] = res1 + mlp, and the norm that reads it, in one kernel
            let (norm, y, stats) = self.modern_next_norm(a, l);
            let sum2 = Fused::Residual { res: self.hidden(&a.x[l + 1], bt), branch: self.hidden(&a.lin, bt), drop: Dropout::default() };
            self.ln_forward(step, self.hidden(y, bt), stats, self.hidden(&la.res1, bt), norm, sum2)?;
        }
        self.heads_forward(step, batch, mode)
    }

    pub(super) fn record_backward_modern(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let a = self.acts.as_ref().ok_or_else(|| GpuError::Shape("backward before forward".into()))?;
        let cfg = &self.cfg;
        let (b, t, c, i) = (batch.b, batch.t, cfg.hidden_size, cfg.intermediate_size);
        let (bt, nl, p) = (b * t, cfg.num_hidden_layers, &self.params);
        let act = if cfg.gelu() == crate::kernels::gelu::Gelu::Tanh { GluAct::GeluTanh } else { GluAct::Gelu };
        let (word, emb_norm, layers, final_norm) = self.modern_parts();
        let emb_trainable = self.any_trains([word].into_iter().chain(emb_norm.ids()));
        let layer_trainable: Vec<bool> = layers.iter().map(|lp| self.any_trains(lp.ids())).collect();
        let need_below = |l: usize| emb_trainable || layer_trainable[..l].iter().any(|&x| x);
        let body_needs_grad = need_below(nl) || self.any_trains(final_norm.ids());
        // the heads: their gradients, and d(final_norm's output) in d_x, which they scatter-add into
        self.heads_backward(step, batch, mode, body_needs_grad)?;
        if !body_needs_grad {
            return Ok(());
        }
        // final_norm: d_x (at fin) -> d_h1 -> d x[L] in d_x
        step.copy(&a.d_x, 0, &a.d_h1, 0, bt * c)?;
        let saved = Saved { x: self.hidden(&a.x[nl], bt), stats: Stats { mean: &a.fin_mean, rstd: &a.fin_rstd } };
        self.ln_backward(step, self.hidden(&a.d_x, bt), self.hidden(&a.d_h1, bt), saved, final_norm, BackwardOpts::default())?;
        for l in (0..nl).rev() {
            if !layer_trainable[l] && !need_below(l) {
                break;
            }
            let (la, lp) = (&a.layers[l], &layers[l]);
            // x[l + 1] = res1 + Wo(GeGLU(Wi(res2)))
            self.linear_backward(step, Some((&a.d_inter, false)), &a.d_x, &la.inter, &lp.mlp_wo, bt)?;
            glu::backward(step, act, a.d_inter2.at([bt, 2 * i]), la.inter_pre.at([bt, 2 * i]), a.d_inter.at([bt, i]))?;
            self.linear_backward(step, Some((&a.d_h1, false)), &a.d_inter2, &la.res2, &lp.wi, bt)?;
            // d res1 = d x[l + 1] (the residual) + mlp_norm's backward
            step.copy(&a.d_x, 0, &a.d_res, 0, bt * c)?;
            let saved = Saved { x: self.hidden(&la.res1, bt), stats: Stats { mean: &la.mean2, rstd: &la.rstd2 } };
            self.ln_backward(step, self.hidden(&a.d_res, bt), self.hidden(&a.d_h1, bt), saved, &lp.mlp_norm, BackwardOpts::ACCUMULATE)?;
            // res1 = x[l] + Wo(ctx): d_ctx in lin2
            self.linear_backward(step, Some((&a.lin2, false)), &a.d_res, &la.ctx, &lp.wo, bt)?;
            self.attention_backward(step, batch, l, mode)?;
            // the queries' and keys' gradients turn back by their rotation
            let (heads, cos, sin) = self.rope_of(a, batch, l)?;
            rotary::apply(step, a.dqkv.at([bt * 3 * c]), cos, sin, heads, true)?;
            let input = if lp.attn_norm.is_some() { &la.h1 } else { &a.x[l] };
            let below = need_below(l) || lp.attn_norm.map(|n| self.any_trains(n.ids())).unwrap_or(false);
            self.linear_backward(step, below.then_some((&a.d_h1, false)), &a.dqkv, input, &lp.wqkv, bt)?;
            if below {
                // d x[l] = d res1 (the residual) + attn_norm's backward (layer 0: the input itself)
                step.copy(&a.d_res, 0, &a.d_x, 0, bt * c)?;
                match &lp.attn_norm {
                    Some(norm) => {
                        let saved = Saved { x: self.hidden(&a.x[l], bt), stats: Stats { mean: &la.mean1, rstd: &la.rstd1 } };
                        self.ln_backward(step, self.hidden(&a.d_x, bt), self.hidden(&a.d_h1, bt), saved, norm, BackwardOpts::ACCUMULATE)?;
                    }
                    None => crate::kernels::elementwise::add(step, a.d_x.at([bt * c]), a.d_res.at([bt * c]), a.d_h1.at([bt * c]))?,
                }
            }
        }
        if emb_trainable {
            // x[0] = norm(tok_embeddings[ids])
            let saved = Saved { x: self.hidden(&a.emb, bt), stats: Stats { mean: &a.emb_mean, rstd: &a.emb_rstd } };
            self.ln_backward(step, self.hidden(&a.d_h1, bt), self.hidden(&a.d_x, bt), saved, emb_norm, BackwardOpts::default())?;
            if let Some(dw) = p.grad_of(word) {
                self.word_lookup_backward(step, dw, &a.d_h1, &batch.g_ids)?;
            }
        }
        Ok(())
    }
}
