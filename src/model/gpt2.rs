//! GPT-2's body (transformers' `GPT2LMHeadModel`): its forward and backward, recorded into a step on
//! the same kernels, activations and dropout sites as BERT's body (layer.rs, embeddings.rs, heads.rs).
//!
//! Per layer, pre-LN: `h = x + attn(ln_1(x))`, `x' = h + mlp(ln_2(h))`; after the last layer
//! `ln_f`; logits = `ln_f(x) @ wte^T` (the LM head is the word embeddings, no bias). Each residual
//! add is fused with the LayerNorm that reads its sum (the layer's `ln_2`, the next layer's `ln_1`,
//! or `ln_f`), as BERT's post-LN residuals are. The projections are `Conv1D`s: weights stored
//! (in, out), so `y = x @ W + b` is a matmul without a transpose.
//!
//! Activations (`LayerActs`) in this body: `x[l]` the residual stream into layer l, `h1` = ln_1(x[l])
//! (written by the layer before, or from the embeddings), `res1` = x[l] + attention, `res2` =
//! ln_2(res1), `inter_pre`/`inter` the MLP's pre-activation and GELU; `fin` = ln_f(x[L]).

use super::acts::Acts;
use super::batch::Batch;
use super::model::{Model, STAT_LM};
use super::handles::{Gpt2Layer, Handles, Norm};
use super::params::Id;
use super::mode::{Mode, Site};
use super::vocab::LmGrad;
use crate::gpu::{GpuBuf, GpuError, Step};
use crate::kernels::layernorm::{BackwardOpts, Fused, Saved, Stats};
use crate::kernels::dropout::Dropout;
use crate::kernels::{cross_entropy, dropout, embedding, gelu};

impl Model {
    /// A decoder's heads backward (GPT-2's and the Llama body's): the LM head's gradients at the
    /// predicted rows (its table `table`'s, and with `body_needs_grad` the final norm's output's,
    /// scattered from the M rows into d_h1, cleared first), the classifier's at each text's last
    /// token. Whether there was a loss to go back from.
    pub(super) fn decoder_heads_backward(&self, step: &mut Step, batch: &Batch, mode: Mode, table: Id, body_needs_grad: bool) -> Result<bool, GpuError> {
        let a = self.acts.as_ref().ok_or_else(|| GpuError::Shape("backward before forward".into()))?;
        let (bt, c) = (batch.b * batch.t, self.cfg.hidden_size);
        let lm = match (&self.lm_acts, &batch.lm_labels, &batch.g_lm) {
            (Some(ma), Some(lab), Some(g)) if self.heads.lm => Some((ma, lab, g)),
            _ => None,
        };
        let cls = self.heads.num_labels > 0 && batch.cls_labels.is_some();
        if lm.is_none() && !cls {
            return Ok(false);
        }
        if body_needs_grad {
            step.clear(&a.d_h1);
        }
        if let Some((ma, lab, g)) = lm {
            let (m, v) = (batch.m, self.cfg.vocab_size);
            cross_entropy::backward(step, ma.d_logits.at([m, v]), ma.logits.at([m, v]), lab, &a.stats[STAT_LM], 1.0)?;
            self.lm_logits_backward(step, LmGrad::Table, &ma.d_logits, &ma.x, m, table)?;
            if body_needs_grad {
                self.lm_logits_backward(step, LmGrad::Input(&ma.d_x), &ma.d_logits, &ma.x, m, table)?;
                embedding::backward(step, a.d_h1.at([bt, c]), &ma.d_x, g)?;
            }
        }
        if cls {
            self.last_token_head_backward(step, batch, mode, body_needs_grad.then_some(&a.d_h1))?;
        }
        Ok(true)
    }

    /// The LayerNorm that follows layer `l`'s output: the next layer's `ln_1`, or `ln_f`; and the
    /// buffers it writes (output, mean, rstd).
    fn gpt2_next_ln<'a>(&'a self, a: &'a Acts, l: usize) -> (&'a Norm, &'a GpuBuf, Stats<'a>) {
        let (_, _, layers, ln_f) = self.gpt2_parts();
        if l + 1 < self.cfg.num_hidden_layers {
            let n = &a.layers[l + 1];
            (&layers[l + 1].ln_1, &n.h1, Stats { mean: &n.mean1, rstd: &n.rstd1 })
        } else {
            (ln_f, &a.fin, Stats { mean: &a.fin_mean, rstd: &a.fin_rstd })
        }
    }

    /// GPT-2's parts (wte, wpe, layers, ln_f); a programming error on a BERT.
    pub(super) fn gpt2_parts(&self) -> (Id, Id, &[Gpt2Layer], &Norm) {
        match &self.handles {
            Handles::Gpt2 { wte, wpe, layers, ln_f, .. } => (*wte, *wpe, layers, ln_f),
            _ => unreachable!("GPT-2's layers asked of another body"),
        }
    }

    pub(super) fn record_forward_gpt2(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let a = self.acts.as_ref().unwrap();
        let cfg = &self.cfg;
        let (b, t, c, i) = (batch.b, batch.t, cfg.hidden_size, cfg.intermediate_size);
        let (bt, p) = (b * t, &self.params);
        let hp = mode.prob(cfg.hidden_dropout_prob);
        let gelu_kind = cfg.gelu();
        let (wte, wpe, hl, ln_f) = self.gpt2_parts();

        // embeddings: word + position (straight into x[0] when nothing is dropped), dropout; then
        // the first layer's ln_1
        let sum = if hp > 0.0 { &a.emb } else { &a.x[0] };
        self.word_lookup(step, sum, &batch.ids, wte, bt, false)?;
        embedding::forward(step, sum.at([bt, c]), &batch.pos, p.value(wpe).at([cfg.max_position_embeddings, c]), true)?;
        if hp > 0.0 {
            dropout::apply(step, a.x[0].at([bt, c]), a.emb.at([bt, c]), Dropout::new(hp, mode.seed(Site::Embeddings)))?;
        }
        if cfg.num_hidden_layers > 0 {
            let l0 = &a.layers[0];
            let stats = Stats { mean: &l0.mean1, rstd: &l0.rstd1 };
            self.ln_forward(step, self.hidden(&l0.h1, bt), stats, self.hidden(&a.x[0], bt), &hl[0].ln_1, Fused::None)?;
        } else {
            let stats = Stats { mean: &a.fin_mean, rstd: &a.fin_rstd };
            self.ln_forward(step, self.hidden(&a.fin, bt), stats, self.hidden(&a.x[0], bt), ln_f, Fused::None)?;
        }

        for l in 0..cfg.num_hidden_layers {
            let (la, lp) = (&a.layers[l], &hl[l]);
            // attention on ln_1(x): c_attn gives q|k|v side by side, as BERT's fused projection
            self.linear(step, &la.qkv, &la.h1, &lp.c_attn, bt)?;
            self.attention_forward(step, batch, l, mode)?;
            self.linear(step, &a.lin, &la.ctx, &lp.c_proj, bt)?;
            // res1 = x + dropout(attention), and ln_2(res1), in one kernel
            let drop1 = Dropout::new(hp, mode.seed(Site::AttentionOutput(l)));
            let sum1 = Fused::Residual { res: self.hidden(&la.res1, bt), branch: self.hidden(&a.lin, bt), drop: drop1 };
            self.ln_forward(step, self.hidden(&la.res2, bt), Stats { mean: &la.mean2, rstd: &la.rstd2 }, self.hidden(&a.x[l], bt), &lp.ln_2, sum1)?;
            // MLP on ln_2(res1)
            self.linear(step, &la.inter_pre, &la.res2, &lp.c_fc, bt)?;
            gelu::forward(step, gelu_kind, la.inter.at([bt, i]), la.inter_pre.at([bt, i]))?;
            self.linear(step, &a.lin, &la.inter, &lp.mlp_proj, bt)?;
            // x[l + 1] = res1 + dropout(mlp), and the LayerNorm that reads it, in one kernel
            let drop2 = Dropout::new(hp, mode.seed(Site::Output(l)));
            let (norm, y, stats) = self.gpt2_next_ln(a, l);
            let sum2 = Fused::Residual { res: self.hidden(&a.x[l + 1], bt), branch: self.hidden(&a.lin, bt), drop: drop2 };
            self.ln_forward(step, self.hidden(y, bt), stats, self.hidden(&la.res1, bt), norm, sum2)?;
        }

        // the LM head at the M predicted rows: ln_f(x) @ wte^T
        if let (true, Some(rows), Some(ma)) = (self.heads.lm, &batch.lm_rows, &self.lm_acts) {
            let (m, v) = (batch.m, cfg.vocab_size);
            embedding::forward(step, ma.x.at([m, c]), rows, a.fin.at([bt, c]), false)?;
            self.lm_logits_forward(step, &ma.logits, &ma.x, m, wte, None)?;
            if let Some(lab) = &batch.lm_labels {
                cross_entropy::forward(step, &a.stats[STAT_LM], &ma.ce_rows, ma.logits.at([m, v]), lab)?;
            }
        }
        // the classifier (GPT2ForSequenceClassification's score) on each text's last token
        if self.heads.num_labels > 0 {
            self.last_token_head_forward(step, batch, mode, &a.fin)?;
        }
        Ok(())
    }

    pub(super) fn record_backward_gpt2(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let a = self.acts.as_ref().ok_or_else(|| GpuError::Shape("backward before forward".into()))?;
        let cfg = &self.cfg;
        let (b, t, c, i) = (batch.b, batch.t, cfg.hidden_size, cfg.intermediate_size);
        let (bt, nl, p) = (b * t, cfg.num_hidden_layers, &self.params);
        let hp = mode.prob(cfg.hidden_dropout_prob);
        let gelu_kind = cfg.gelu();
        let (wte, wpe, hl, ln_f) = self.gpt2_parts();
        let emb_trainable = self.any_trains([wte, wpe]);
        let layer_trainable: Vec<bool> = hl.iter().map(|lp| self.any_trains(lp.ids())).collect();
        let need_below = |l: usize| emb_trainable || layer_trainable[..l].iter().any(|&x| x);
        let body_needs_grad = need_below(nl) || self.any_trains(ln_f.ids());

        // the heads: their gradients and d(ln_f output) in d_h1
        if !self.decoder_heads_backward(step, batch, mode, wte, body_needs_grad)? || !body_needs_grad {
            return Ok(());
        }
        // ln_f: d_x = d x[L]
        let saved = Saved { x: self.hidden(&a.x[nl], bt), stats: Stats { mean: &a.fin_mean, rstd: &a.fin_rstd } };
        self.ln_backward(step, self.hidden(&a.d_x, bt), self.hidden(&a.d_h1, bt), saved, ln_f, BackwardOpts::default())?;

        // d_x: the gradient at x[l + 1], then at x[l]
        for l in (0..nl).rev() {
            if !layer_trainable[l] && !need_below(l) {
                break;
            }
            let (la, lp) = (&a.layers[l], &hl[l]);
            // x[l + 1] = res1 + dropout(mlp): the MLP's output gradient is dropout(d_x)
            let d_mlp = Model::dropped(step, &a.d_tmp, &a.d_x, bt * c, Dropout::new(hp, mode.seed(Site::Output(l))))?;
            self.linear_backward(step, Some((&a.d_inter, false)), d_mlp, &la.inter, &lp.mlp_proj, bt)?;
            gelu::backward(step, gelu_kind, a.d_inter2.at([bt, i]), la.inter_pre.at([bt, i]), a.d_inter.at([bt, i]))?;
            // d(ln_2 output) in d_h1
            self.linear_backward(step, Some((&a.d_h1, false)), &a.d_inter2, &la.res2, &lp.c_fc, bt)?;
            // d_res = d res1 = d_x (the residual) + ln_2's backward
            step.copy(&a.d_x, 0, &a.d_res, 0, bt * c)?;
            let saved = Saved { x: self.hidden(&la.res1, bt), stats: Stats { mean: &la.mean2, rstd: &la.rstd2 } };
            self.ln_backward(step, self.hidden(&a.d_res, bt), self.hidden(&a.d_h1, bt), saved, &lp.ln_2, BackwardOpts::ACCUMULATE)?;
            // res1 = x + dropout(attention output)
            let d_attn = Model::dropped(step, &a.d_tmp, &a.d_res, bt * c, Dropout::new(hp, mode.seed(Site::AttentionOutput(l))))?;
            // d_ctx in lin2
            self.linear_backward(step, Some((&a.lin2, false)), d_attn, &la.ctx, &lp.c_proj, bt)?;
            self.attention_backward(step, batch, l, mode)?;
            // d(ln_1 output) in d_h1, wanted when something below learns or ln_1 itself does
            let ln1_needed = need_below(l) || layer_trainable[l];
            self.linear_backward(step, ln1_needed.then_some((&a.d_h1, false)), &a.dqkv, &la.h1, &lp.c_attn, bt)?;
            if ln1_needed {
                // d x[l] = d_res (the residual) + ln_1's backward
                step.copy(&a.d_res, 0, &a.d_x, 0, bt * c)?;
                let saved = Saved { x: self.hidden(&a.x[l], bt), stats: Stats { mean: &la.mean1, rstd: &la.rstd1 } };
                self.ln_backward(step, self.hidden(&a.d_x, bt), self.hidden(&a.d_h1, bt), saved, &lp.ln_1, BackwardOpts::ACCUMULATE)?;
            }
        }
        if emb_trainable {
            // x[0] = dropout(wte[ids] + wpe[pos])
            let d_emb = Model::dropped(step, &a.d_tmp, &a.d_x, bt * c, Dropout::new(hp, mode.seed(Site::Embeddings)))?;
            if let Some(dw) = p.grad_of(wte) {
                self.word_lookup_backward(step, dw, d_emb, &batch.g_ids)?;
            }
            if let Some(dw) = p.grad_of(wpe) {
                embedding::backward(step, dw.at([cfg.max_position_embeddings, c]), d_emb, &batch.g_pos)?;
            }
        }
        Ok(())
    }
}
