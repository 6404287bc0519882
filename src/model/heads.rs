//! The heads on the last hidden states, forward and backward: the pooler on [CLS] (or the family's
//! dense layer there: RoBERTa's classifier.dense, DistilBERT's pre_classifier, with its activation), sentence order,
//! the sequence classifier (on the pooler, the masked mean, or a causal model's last token), and the
//! language-model head `cls.predictions` (masked words, or a causal BERT's next words; at the
//! predicted rows only, its decoder tied to the word embeddings).

use super::batch::Batch;
use super::model::{Model, Pooling, STAT_CLS, STAT_LM, STAT_SOP};
use super::config::Body;
use super::family::PoolerAct;
use super::mode::{Mode, Site};
use crate::gpu::{GpuBuf, GpuError, Step};
use super::vocab::LmGrad;
use crate::kernels::dropout::Dropout;
use crate::kernels::layernorm::{BackwardOpts, Fused, Saved, Stats};
use crate::kernels::matmul::Matmul;
use crate::kernels::{cross_entropy, dropout, elementwise, embedding, gelu};

/// A head the model's `Heads` say it has (its handles were resolved with them).
fn need<T>(h: &Option<T>) -> Result<&T, GpuError> {
    h.as_ref().ok_or_else(|| GpuError::Shape("a head the model does not have".into()))
}

fn lab_of(l: &Option<GpuBuf>) -> &GpuBuf {
    l.as_ref().expect("labels checked by the caller")
}

impl Model {
    /// Every head's logits and, where `batch` has its targets, its loss.
    pub(super) fn heads_forward(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg, p) = (self.acts.as_ref().unwrap(), &self.cfg, &self.params);
        let (b, c) = (batch.b, cfg.hidden_size);
        let bt = b * batch.t;
        let hp = mode.prob(cfg.hidden_dropout_prob);
        let last = self.encoder_out(a);
        let (word, hh) = self.encoder_heads();
        // pooler on [CLS]: tanh(dense(x[b*T]))
        let mean = self.pooling == Pooling::Mean;
        if self.heads.sop || (self.heads.num_labels > 0 && self.pooling == Pooling::Cls) {
            embedding::forward(step, a.cls_x.at([b, c]), &batch.cls_rows, last.at([bt, c]), false)?;
            self.linear(step, &a.pooled_pre, &a.cls_x, &hh.pooler, b)?;
            // with a norm after the activation (ModernBERT's head), the activation goes to pooled_act
            let act_out = if hh.pooler_norm.is_some() { &a.pooled_act } else { &a.pooled };
            match cfg.family.pooler_act() {
                PoolerAct::Tanh => elementwise::tanh_forward(step, act_out.at([b, c]), a.pooled_pre.at([b, c]))?,
                PoolerAct::Relu => elementwise::relu_forward(step, act_out.at([b, c]), a.pooled_pre.at([b, c]))?,
                PoolerAct::Gelu => gelu::forward(step, cfg.gelu(), act_out.at([b, c]), a.pooled_pre.at([b, c]))?,
            }
            if let Some(norm) = &hh.pooler_norm {
                self.ln_forward(step, a.pooled.at([b, c]), Stats { mean: &a.pooled_mean, rstd: &a.pooled_rstd }, a.pooled_act.at([b, c]), norm, Fused::None)?;
            }
        }
        if self.heads.sop {
            self.linear(step, &a.sop_logits, &a.pooled, need(&hh.sop)?, b)?;
            if let Some(lab) = &batch.sop_labels {
                cross_entropy::forward(step, &a.stats[STAT_SOP], &a.ce_rows, a.sop_logits.at([b, 2]), lab)?;
            }
        }
        if self.heads.num_labels > 0 && self.pooling == Pooling::Last {
            self.last_token_head_forward(step, batch, mode, last)?;
        } else if self.heads.num_labels > 0 {
            let nl = self.heads.num_labels;
            let src = if mean {
                let pool = batch.pool.get().ok_or_else(|| GpuError::Shape("mean pooling without its matrix".into()))?;
                Matmul::new(b, c, bt).record(step, a.mean.at([b, c]), pool.at([b, bt]), last.at([bt, c]), None)?;
                &a.mean
            } else {
                &a.pooled
            };
            let pooled = Model::dropped(step, &a.pooled_d, src, b * c, Dropout::new(hp, mode.seed(Site::Classifier)))?;
            self.linear(step, &a.cls_logits, pooled, need(&hh.classifier)?, b)?;
            if let Some(lab) = &batch.cls_labels {
                cross_entropy::forward(step, &a.stats[STAT_CLS], &a.ce_rows, a.cls_logits.at([b, nl]), lab)?;
            }
        }
        // masked LM, only at the M predicted rows: transform (dense, GELU, layernorm), then the
        // decoder tied to the word embeddings plus the output bias
        if let (true, Some(rows), Some(ma)) = (self.heads.lm, &batch.lm_rows, &self.lm_acts) {
            let (m, ew) = (batch.m, cfg.embed_width());
            embedding::forward(step, ma.x.at([m, c]), rows, last.at([bt, c]), false)?;
            self.linear(step, &ma.pre, &ma.x, &need(&hh.lm)?.0, m)?;
            gelu::forward(step, cfg.gelu(), ma.act.at([m, ew]), ma.pre.at([m, ew]))?;
            self.ln_forward(step, ma.ln.at([m, ew]), Stats { mean: &ma.mean, rstd: &ma.rstd }, ma.act.at([m, ew]), &need(&hh.lm)?.1, Fused::None)?;
            let v = cfg.vocab_size;
            self.lm_logits_forward(step, &ma.logits, &ma.ln, m, word, need(&hh.lm)?.2.map(|b| p.value(b)))?;
            if let Some(lab) = &batch.lm_labels {
                cross_entropy::forward(step, &a.stats[STAT_LM], &ma.ce_rows, ma.logits.at([m, v]), lab)?;
            }
        }
        Ok(())
    }

    /// The heads' gradients, and (when `encoder_needs_grad`) the gradient at the last hidden states
    /// in d_x, which the heads scatter-add into.
    pub(super) fn heads_backward(&self, step: &mut Step, batch: &Batch, mode: Mode, encoder_needs_grad: bool) -> Result<(), GpuError> {
        let (a, cfg, p) = (self.acts.as_ref().unwrap(), &self.cfg, &self.params);
        let (b, c) = (batch.b, cfg.hidden_size);
        let bt = b * batch.t;
        let hp = mode.prob(cfg.hidden_dropout_prob);
        let (word, hh) = self.encoder_heads();
        if encoder_needs_grad {
            step.clear(&a.d_x);
        }
        if let (true, Some(ma), Some(lab), Some(g)) = (self.heads.lm, &self.lm_acts, &batch.lm_labels, &batch.g_lm) {
            let (m, v, ew) = (batch.m, cfg.vocab_size, cfg.embed_width());
            cross_entropy::backward(step, ma.d_logits.at([m, v]), ma.logits.at([m, v]), lab, &a.stats[STAT_LM], 1.0)?;
            self.lm_logits_backward(step, LmGrad::Table, &ma.d_logits, &ma.ln, m, word)?;
            if let Some(db) = need(&hh.lm)?.2.and_then(|b| p.grad_of(b)) {
                elementwise::bias_grad(step, db.at([v]), ma.d_logits.at([m, v]))?;
            }
            self.lm_logits_backward(step, LmGrad::Input(&ma.d_ln), &ma.d_logits, &ma.ln, m, word)?;
            let saved = Saved { x: ma.act.at([m, ew]), stats: Stats { mean: &ma.mean, rstd: &ma.rstd } };
            self.ln_backward(step, ma.d_act.at([m, ew]), ma.d_ln.at([m, ew]), saved, &need(&hh.lm)?.1, BackwardOpts::default())?;
            gelu::backward(step, cfg.gelu(), ma.d_ln.at([m, ew]), ma.pre.at([m, ew]), ma.d_act.at([m, ew]))?;
            let dx = encoder_needs_grad.then_some((&ma.d_x, false));
            self.linear_backward(step, dx, &ma.d_ln, &ma.x, &need(&hh.lm)?.0, m)?;
            if encoder_needs_grad {
                embedding::backward(step, a.d_x.at([bt, c]), &ma.d_x, g)?;
            }
        }
        let mean = self.pooling == Pooling::Mean;
        let cls_used = self.heads.num_labels > 0 && batch.cls_labels.is_some();
        if mean && cls_used {
            // classifier on the masked mean: d_mean = dropout(W^T d_logits); d_x += P^T d_mean
            let nl = self.heads.num_labels;
            cross_entropy::backward(step, a.d_cls_logits.at([b, nl]), a.cls_logits.at([b, nl]), lab_of(&batch.cls_labels), &a.stats[STAT_CLS], 1.0)?;
            let input = if hp > 0.0 { &a.pooled_d } else { &a.mean };
            if hp > 0.0 {
                self.linear_backward(step, encoder_needs_grad.then_some((&a.d_pooled_pre, false)), &a.d_cls_logits, input, need(&hh.classifier)?, b)?;
                if encoder_needs_grad {
                    dropout::apply(step, a.d_mean.at([b, c]), a.d_pooled_pre.at([b, c]), Dropout::new(hp, mode.seed(Site::Classifier)))?;
                }
            } else {
                self.linear_backward(step, encoder_needs_grad.then_some((&a.d_mean, false)), &a.d_cls_logits, input, need(&hh.classifier)?, b)?;
            }
            if encoder_needs_grad {
                let pool = batch.pool.get().ok_or_else(|| GpuError::Shape("mean pooling without its matrix".into()))?;
                Matmul::new(bt, c, b).trans_a().accumulate().record(step, a.d_x.at([bt, c]), pool.at([b, bt]), a.d_mean.at([b, c]), None)?;
            }
        }
        if cls_used && self.pooling == Pooling::Last {
            self.last_token_head_backward(step, batch, mode, encoder_needs_grad.then_some(&a.d_x))?;
        }
        let cls_pooled = self.pooling == Pooling::Cls;
        let pooled_used = self.heads.sop && batch.sop_labels.is_some() || (cls_used && cls_pooled);
        if pooled_used {
            step.clear(&a.d_pooled);
            if let (true, Some(lab)) = (self.heads.sop, &batch.sop_labels) {
                cross_entropy::backward(step, a.d_sop_logits.at([b, 2]), a.sop_logits.at([b, 2]), lab, &a.stats[STAT_SOP], 1.0)?;
                self.linear_backward(step, Some((&a.d_pooled, true)), &a.d_sop_logits, &a.pooled, need(&hh.sop)?, b)?;
            }
            if let (true, Some(lab)) = (self.heads.num_labels > 0 && cls_pooled, &batch.cls_labels) {
                let nl = self.heads.num_labels;
                cross_entropy::backward(step, a.d_cls_logits.at([b, nl]), a.cls_logits.at([b, nl]), lab, &a.stats[STAT_CLS], 1.0)?;
                let pooled = if hp > 0.0 { &a.pooled_d } else { &a.pooled };
                if hp > 0.0 {
                    self.linear_backward(step, Some((&a.d_pooled_pre, false)), &a.d_cls_logits, pooled, need(&hh.classifier)?, b)?;
                    dropout::apply(step, a.d_cls_x.at([b, c]), a.d_pooled_pre.at([b, c]), Dropout::new(hp, mode.seed(Site::Classifier)))?;
                    elementwise::add(step, a.d_pooled_pre.at([b, c]), a.d_pooled.at([b, c]), a.d_cls_x.at([b, c]))?;
                    step.copy(&a.d_pooled_pre, 0, &a.d_pooled, 0, b * c)?;
                } else {
                    self.linear_backward(step, Some((&a.d_pooled, true)), &a.d_cls_logits, pooled, need(&hh.classifier)?, b)?;
                }
            }
            let pooler_needs = encoder_needs_grad || self.any_trains(hh.pooler.ids()) || hh.pooler_norm.map(|n| self.any_trains(n.ids())).unwrap_or(false);
            if pooler_needs {
                // through the norm after the activation first (ModernBERT's head): d_pooled becomes
                // the gradient at the activation's output
                if let Some(norm) = &hh.pooler_norm {
                    let saved = Saved { x: a.pooled_act.at([b, c]), stats: Stats { mean: &a.pooled_mean, rstd: &a.pooled_rstd } };
                    self.ln_backward(step, a.d_pooled_act.at([b, c]), a.d_pooled.at([b, c]), saved, norm, BackwardOpts::default())?;
                    step.copy(&a.d_pooled_act, 0, &a.d_pooled, 0, b * c)?;
                }
                match cfg.family.pooler_act() {
                    PoolerAct::Tanh => elementwise::tanh_backward(step, a.d_pooled_pre.at([b, c]), a.pooled.at([b, c]), a.d_pooled.at([b, c]))?,
                    PoolerAct::Relu => elementwise::relu_backward(step, a.d_pooled_pre.at([b, c]), a.pooled.at([b, c]), a.d_pooled.at([b, c]))?,
                    PoolerAct::Gelu => gelu::backward(step, cfg.gelu(), a.d_pooled_pre.at([b, c]), a.pooled_pre.at([b, c]), a.d_pooled.at([b, c]))?,
                }
                let dx = encoder_needs_grad.then_some((&a.d_cls_x, false));
                self.linear_backward(step, dx, &a.d_pooled_pre, &a.cls_x, &hh.pooler, b)?;
                if encoder_needs_grad {
                    embedding::backward(step, a.d_x.at([bt, c]), &a.d_cls_x, &batch.g_cls)?;
                }
            }
        }
        Ok(())
    }

    /// The dropout on the classifier's input: BERT's hidden dropout; none for GPT-2, whose
    /// GPT2ForSequenceClassification applies its score to the hidden state as it is.
    pub(super) fn classifier_dropout(&self, mode: Mode) -> Dropout {
        let p = if self.cfg.body == Body::Gpt2 { 0.0 } else { mode.prob(self.cfg.hidden_dropout_prob) };
        Dropout::new(p, mode.seed(Site::Classifier))
    }

    /// The classifier on each text's last token ([`Pooling::Last`]): `hidden`'s rows at the batch's
    /// summary rows (B, C) into cls_x, dropout, the classifier (GPT-2's `score` has no bias), and
    /// the loss where the batch has labels.
    pub(super) fn last_token_head_forward(&self, step: &mut Step, batch: &Batch, mode: Mode, hidden: &GpuBuf) -> Result<(), GpuError> {
        let a = self.acts.as_ref().unwrap();
        let (b, c, nl) = (batch.b, self.cfg.hidden_size, self.heads.num_labels);
        let head = self.handles.classifier().ok_or_else(|| GpuError::Shape("a head the model does not have".into()))?;
        embedding::forward(step, a.cls_x.at([b, c]), &batch.cls_rows, hidden.at([b * batch.t, c]), false)?;
        let x = Model::dropped(step, &a.pooled_d, &a.cls_x, b * c, self.classifier_dropout(mode))?;
        self.linear(step, &a.cls_logits, x, &head, b)?;
        if let Some(lab) = &batch.cls_labels {
            cross_entropy::forward(step, &a.stats[STAT_CLS], &a.ce_rows, a.cls_logits.at([b, nl]), lab)?;
        }
        Ok(())
    }

    /// The backward of [`Model::last_token_head_forward`]: the classifier's gradients and, with
    /// `d_hidden`, the gradient at the hidden states, scatter-added into it at the summary rows.
    pub(super) fn last_token_head_backward(&self, step: &mut Step, batch: &Batch, mode: Mode, d_hidden: Option<&GpuBuf>) -> Result<(), GpuError> {
        let a = self.acts.as_ref().unwrap();
        let (b, c, nl) = (batch.b, self.cfg.hidden_size, self.heads.num_labels);
        let head = self.handles.classifier().ok_or_else(|| GpuError::Shape("a head the model does not have".into()))?;
        let drop = self.classifier_dropout(mode);
        cross_entropy::backward(step, a.d_cls_logits.at([b, nl]), a.cls_logits.at([b, nl]), lab_of(&batch.cls_labels), &a.stats[STAT_CLS], 1.0)?;
        let input = if drop.prob > 0.0 { &a.pooled_d } else { &a.cls_x };
        // d(input) lands in d_cls_x, through the dropout's mask when there is one
        let d_input = if drop.prob > 0.0 { &a.d_pooled_pre } else { &a.d_cls_x };
        self.linear_backward(step, d_hidden.is_some().then_some((d_input, false)), &a.d_cls_logits, input, &head, b)?;
        if let Some(dh) = d_hidden {
            if drop.prob > 0.0 {
                dropout::apply(step, a.d_cls_x.at([b, c]), a.d_pooled_pre.at([b, c]), drop)?;
            }
            embedding::backward(step, dh.at([b * batch.t, c]), &a.d_cls_x, &batch.g_cls)?;
        }
        Ok(())
    }
}
