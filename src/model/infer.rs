//! Inference on a model: the language-model head's top tokens (masked words, or next words), class
//! probabilities, the frozen features feature-based training caches, and the classification head
//! on those features.

use super::batch::Batch;
use super::model::{Model, Pooling, STAT_CLS};
use super::mode::Mode;
use crate::error::Error;
use crate::gpu::{Gpu, GpuBuf, GpuError, Step, View};
use crate::kernels::{cross_entropy, embedding};

/// Softmax of each row of `nl` logits.
pub fn softmax_rows(logits: &[f32], nl: usize) -> Vec<Vec<f32>> {
    logits
        .chunks(nl)
        .map(|row| {
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = row.iter().map(|x| (x - m).exp()).collect();
            let s: f32 = e.iter().sum();
            e.into_iter().map(|x| x / s).collect()
        })
        .collect()
}

/// Top-k (token id, probability) for one predicted row of logits.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let m = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = logits.iter().map(|&x| ((x - m) as f64).exp()).sum();
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(idx.len());
    idx.select_nth_unstable_by(k.saturating_sub(1), |&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    idx.truncate(k);
    idx.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    idx.into_iter().map(|i| (i, (((logits[i as usize] - m) as f64).exp() / z) as f32)).collect()
}

/// What [`Model::record_head_on_features`] records after the logits.
#[derive(Clone, Copy, Debug)]
pub enum HeadPass<'a> {
    /// The logits alone.
    Logits,
    /// The loss against these labels (B, i32).
    Loss(&'a GpuBuf),
    /// The loss and the classifier's gradients.
    Backward(&'a GpuBuf),
}

impl Model {
    /// The language-model head's top-k (token id, probability) at each of `positions` of one
    /// sequence, in position order: a masked model's guesses for the (masked) words there, a causal
    /// model's guesses for the word after each. Also leaves every layer's attention probabilities
    /// readable through [`Model::attention_probs`] (shape (1, H, T, T)). Inference only: dropout is
    /// off for it.
    pub async fn top_tokens(&mut self, gpu: &Gpu, ids: &[u32], types: &[u32], positions: &[usize], k: usize) -> Result<Vec<Vec<(u32, f32)>>, Error> {
        if !self.heads.lm {
            return Err(Error::Unsupported("this model has no language-model head (cls.predictions); train one on your text first".into()));
        }
        let t = ids.len();
        let mut labels = vec![-100i32; t];
        for &p in positions {
            if p >= t {
                return Err(Error::Range { id: p, size: t, message: format!("position {p} is outside the {t} tokens") });
            }
            labels[p] = 0;
        }
        let batch = Batch::new(gpu, &self.cfg, 1, t, ids, types, &vec![1; t], Some(&labels), None, None)?;
        let mut step = gpu.begin_step("top-tokens");
        self.forward(gpu, &mut step, &batch, Mode::Eval)?;
        let v = self.cfg.vocab_size;
        let m = batch.m;
        let rb = match self.lm_logits() {
            Some(l) if m > 0 => Some(step.read_back(l, 0, m * v)?),
            _ => None,
        };
        step.submit().await?;
        let logits = match rb {
            Some(rb) => rb.f32(gpu).await?,
            None => return Ok(Vec::new()),
        };
        // rows come back in position order (Batch keeps them ascending)
        Ok((0..m).map(|r| top_k(&logits[r * v..(r + 1) * v], k)).collect())
    }

    /// Class probabilities for a batch of sequences (B, num_labels), dropout off.
    pub async fn classify(&mut self, gpu: &Gpu, batch: &Batch) -> Result<Vec<Vec<f32>>, Error> {
        let nl = self.heads.num_labels;
        if nl == 0 {
            return Err(Error::Unsupported("this model has no classification head".into()));
        }
        let mut step = gpu.begin_step("classify");
        self.forward(gpu, &mut step, batch, Mode::Eval)?;
        let rb = step.read_back(self.cls_logits().ok_or_else(|| Error::Internal("no logits".into()))?, 0, batch.b * nl)?;
        step.submit().await?;
        let logits = rb.f32(gpu).await?;
        Ok(softmax_rows(&logits, nl))
    }

    /// Records an inference forward (dropout off) of `batch` and copies what the classification
    /// head reads (pooled [CLS] or the masked mean, (B, C)) into rows `row..row + B` of `dst`:
    /// the features of a frozen encoder, computed once for feature-based training.
    pub fn record_features(&mut self, gpu: &Gpu, step: &mut Step, batch: &Batch, dst: &GpuBuf, row: usize) -> Result<(), Error> {
        if self.heads.num_labels == 0 {
            return Err(Error::Unsupported("features are what a classification head reads; this model has none".into()));
        }
        self.forward(gpu, step, batch, Mode::Eval)?;
        let a = self.acts.as_ref().unwrap();
        let src = match self.pooling {
            Pooling::Mean => &a.mean,
            Pooling::Last => &a.cls_x,
            Pooling::Cls => &a.pooled,
        };
        let c = self.cfg.hidden_size;
        Ok(step.copy(src, 0, dst, row * c, batch.b * c)?)
    }

    /// The classification head alone on cached features: gathers `rows` (B indices into `feats`,
    /// (N, C)), applies dropout (in `Mode::Train`), the classifier and what `pass` asks for. Logits
    /// land in [`Model::cls_logits`], the loss in the usual statistics.
    pub fn record_head_on_features(&mut self, gpu: &Gpu, step: &mut Step, feats: View, rows: View, pass: HeadPass, mode: Mode) -> Result<(), Error> {
        let (nl, b) = (self.heads.num_labels, rows.numel());
        let (labels, backward) = match pass {
            HeadPass::Logits => (None, false),
            HeadPass::Loss(l) => (Some(l), false),
            HeadPass::Backward(l) => (Some(l), true),
        };
        if nl == 0 {
            return Err(Error::Unsupported("this model has no classification head".into()));
        }
        self.ensure_acts(gpu, b, 1, 0)?;
        let a = self.acts.as_ref().unwrap();
        let c = self.cfg.hidden_size;
        let classifier = self.handles.classifier().ok_or_else(|| Error::Unsupported("this model has no classification head".into()))?;
        let r = (|| -> Result<(), GpuError> {
            embedding::forward(step, a.cls_x.at([b, c]), rows.whole("head_on_features", "rows")?, feats, false)?;
            let x = Model::dropped(step, &a.pooled_d, &a.cls_x, b * c, self.classifier_dropout(mode))?;
            self.linear(step, &a.cls_logits, x, &classifier, b)?;
            if let Some(lab) = labels {
                cross_entropy::forward(step, &a.stats[STAT_CLS], &a.ce_rows, a.cls_logits.at([b, nl]), lab)?;
                if backward {
                    cross_entropy::backward(step, a.d_cls_logits.at([b, nl]), a.cls_logits.at([b, nl]), lab, &a.stats[STAT_CLS], 1.0)?;
                    self.linear_backward(step, None, &a.d_cls_logits, x, &classifier, b)?;
                }
            }
            Ok(())
        })();
        Ok(r?)
    }
}

