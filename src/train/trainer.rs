//! The training loops: classification (feature-based, last N layers, or all layers) and pretraining
//! (masked LM and/or sentence order). One GPU submit per step; only the losses (a few bytes) are read
//! back per step. Between steps the loop can be paused, resumed or cancelled through a [`Control`],
//! and reports progress as [`Event`]s.

use crate::error::Result;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::batches::{classification, pad, HostBatch};
use super::masking::{non_special_ids, MlmMasking, Outcome};
use super::metrics::{evaluate, Metrics};
use super::sop;
use super::spec::Adopt;
use crate::model::params::{Param, Part};
use serde::{Deserialize, Serialize};
use crate::error::Error;
use crate::gpu::{now_ms, Gpu};
use crate::kernels::adamw::AdamW;
use crate::kernels::embedding;
use crate::model::Mode as ModelMode;
use crate::train::schedule::linear_schedule;
use crate::model::{Model, ModelConfig, Losses, Pooling};
use crate::rng::Rng;
use crate::text::dataset::Dataset;
use crate::text::tokenizer::{Tokenizer, Encoded};

/// A fine-tuning run's settings (the page's form, the CLI's flags and a checkpoint's state all
/// become this; `session::RunSpec::Train`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub adopt: Adopt,
    pub lr: f32,
    pub epochs: usize,
    pub batch_size: usize,
    pub max_len: usize,
    pub warmup_ratio: f32,
    pub weight_decay: f32,
    pub max_grad_norm: f32,
    pub seed: u64,
    pub dropout: bool,
    /// Stop after this many epochs without a better validation loss (0: never).
    pub patience: usize,
    /// What the classification head reads.
    pub pooling: Pooling,
    /// Emit an [`Event::Checkpoint`] every this many steps (0: never) and whenever the run pauses.
    pub checkpoint_every: usize,
    /// The fraction of the examples held out for validation (stratified by label; 0: none).
    pub val: f64,
    /// A LoRA run's adapters beyond their rank (`Adopt::Lora(r)`): alpha (PEFT's default 8), the
    /// dropout on their input, and the projections they adapt (empty: PEFT's defaults).
    pub lora_alpha: f32,
    pub lora_dropout: f32,
    pub lora_targets: Vec<String>,
    /// Continue a checkpointed run: the steps before this one are skipped (same seed, same order),
    /// and the optimizer state the caller restored is kept. Not a setting: where a run is.
    #[serde(skip)]
    pub start_step: usize,
}

/// The ranges a run's settings must be in, shared by the CLI, the page and [`TrainConfig::validate`]:
/// a value outside is refused with its range before any work starts.
pub mod limits {
    /// Learning rate: above 0, at most this.
    pub const MAX_LR: f32 = 1.0;
    pub const EPOCHS: (usize, usize) = (1, 1000);
    pub const BATCH: (usize, usize) = (1, 1024);
    /// Tokens per text: at least this, at most the model's positions.
    pub const MIN_LEN: usize = 8;
    pub const PRETRAIN_STEPS: (usize, usize) = (1, 1_000_000);
    pub const PATIENCE_MAX: usize = 1000;
}

/// `what`'s value `v` in `[lo, hi]`, or a message naming both.
pub fn in_range(what: &str, v: usize, lo: usize, hi: usize) -> Result<()> {
    if v < lo || v > hi {
        return Err(Error::Limit(format!("{what} must be from {lo} to {hi}; got {v}")));
    }
    Ok(())
}

/// A finite `v` with `lo < v <= hi` (`lo_open`) or `lo <= v <= hi`.
pub fn in_range_f(what: &str, v: f32, lo: f32, hi: f32, lo_open: bool) -> Result<()> {
    let ok = v.is_finite() && (if lo_open { v > lo } else { v >= lo }) && v <= hi;
    if !ok {
        let open = if lo_open { "(" } else { "[" };
        return Err(Error::Limit(format!("{what} must be a number in {open}{lo}, {hi}]; got {v}")));
    }
    Ok(())
}

/// The settings both kinds of run have: learning rate, batch size, and a maximum length within the
/// model's positions.
fn check_shared(lr: f32, batch: usize, max_len: usize, model: &crate::model::ModelConfig) -> Result<()> {
    use limits::*;
    in_range_f("the learning rate", lr, 0.0, MAX_LR, true)?;
    in_range("the batch size", batch, BATCH.0, BATCH.1)?;
    in_range("the maximum length", max_len, MIN_LEN, model.max_tokens()).map_err(|e| Error::Limit(format!("{e} (the model has {} positions)", model.max_tokens())))
}

impl TrainConfig {
    /// The adapters a LoRA run puts on a model with `model`'s shape (None for the other modes).
    pub fn lora(&self, model: &crate::model::ModelConfig) -> Option<crate::model::config::LoraSpec> {
        let Adopt::Lora(r) = self.adopt else { return None };
        Some(crate::model::config::LoraSpec::with(r, model.family, self.lora_alpha, self.lora_dropout, &self.lora_targets))
    }

    /// Every setting in its range for `model` (its depth and positions), or the first that is not.
    pub fn validate(&self, model: &crate::model::ModelConfig) -> Result<()> {
        use limits::*;
        check_shared(self.lr, self.batch_size, self.max_len, model)?;
        in_range("epochs", self.epochs, EPOCHS.0, EPOCHS.1)?;
        if !(self.val.is_finite() && (0.0..1.0).contains(&self.val)) {
            return Err(Error::Limit(format!("the validation fraction must be in [0, 1); got {}", self.val)));
        }
        if let Some(lo) = self.lora(model) {
            lo.validate(model)?;
        }
        if let Adopt::Last(n) = self.adopt {
            in_range("the layers to train", n, 1, model.num_hidden_layers).map_err(|e| Error::Limit(format!("{e} (the model has {} layers)", model.num_hidden_layers)))?;
        }
        in_range_f("the warm-up ratio", self.warmup_ratio, 0.0, 1.0, false)?;
        in_range_f("the weight decay", self.weight_decay, 0.0, 1.0, false)?;
        in_range_f("the gradient-norm clip", self.max_grad_norm, 0.0, 1e6, false)?;
        in_range("the patience", self.patience, 0, PATIENCE_MAX)
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { adopt: Adopt::Full, lr: 5e-5, epochs: 3, batch_size: 16, max_len: 128, warmup_ratio: 0.1, weight_decay: 0.01, max_grad_norm: 1.0, seed: 42, dropout: true, patience: 0, pooling: Pooling::Cls, checkpoint_every: 0, val: 0.2, lora_alpha: crate::model::config::LoraSpec::DEFAULT_ALPHA, lora_dropout: 0.0, lora_targets: Vec::new(), start_step: 0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Before the first step: how much work there is.
    Plan { total_steps: usize, train_examples: usize, val_examples: usize, truncated: usize },
    /// Feature-based runs: the frozen encoder's features were computed once for every example.
    Features { examples: usize, ms: f64 },
    /// A pass over many texts ("features", "predict"): `done` of `total`, texts per second, seconds left.
    Progress { task: &'static str, done: usize, total: usize, per_s: f64, eta_s: f64 },
    /// The weights and optimizer state after `step` steps ([`super::checkpoint`]'s formats).
    Checkpoint { step: usize, weights: Vec<u8>, optimizer: Vec<u8> },
    Step { step: usize, total_steps: usize, loss: f32, lr: f32, ms_per_step: f64, eta_s: f64 },
    Epoch { epoch: usize, train_loss: f32, val: Metrics },
    /// A pretraining step: `lm_loss` and `lm_acc` are the language-model head's (masked words, or
    /// a causal model's next words).
    Pretrain { step: usize, total_steps: usize, lm_loss: f32, sop_loss: f32, lm_acc: f32, sop_acc: f32, lr: f32, ms_per_step: f64, eta_s: f64, batch_outcomes: Vec<Outcome>, first_sequence: Vec<(u32, i32)> },
    /// A step whose gradients were not finite was skipped (weights unchanged) and the run stopped.
    NonFinite { step: usize },
    /// The masked-token probe: for each [MASK] of the probe text, the top (token, probability).
    Probe { step: usize, predictions: Vec<Vec<(String, f32)>> },
    Paused { step: usize },
    Cancelled { step: usize },
}

/// Pause / resume / cancel a running loop from outside (the UI, a signal handler).
#[derive(Clone, Default)]
pub struct Control(Arc<AtomicU8>);

const RUN: u8 = 0;
const PAUSE: u8 = 1;
const CANCEL: u8 = 2;

impl Control {
    pub fn pause(&self) {
        self.0.store(PAUSE, Ordering::SeqCst);
    }
    pub fn resume(&self) {
        self.0.store(RUN, Ordering::SeqCst);
    }
    pub fn cancel(&self) {
        self.0.store(CANCEL, Ordering::SeqCst);
    }
    pub fn is_paused(&self) -> bool {
        self.0.load(Ordering::SeqCst) == PAUSE
    }
    /// Waits while paused; false when cancelled.
    async fn proceed(&self, step: usize, on_event: &mut dyn FnMut(Event)) -> bool {
        let mut told = false;
        loop {
            match self.0.load(Ordering::SeqCst) {
                RUN => return true,
                CANCEL => {
                    on_event(Event::Cancelled { step });
                    return false;
                }
                _ => {
                    if !told {
                        on_event(Event::Paused { step });
                        told = true;
                    }
                    crate::gpu::sleep_ms(50).await;
                }
            }
        }
    }
}

fn shuffle(v: &mut [usize], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u32 + 1) as usize;
        v.swap(i, j);
    }
}

/// One training step: zero grads, forward, backward, AdamW, loss readback; one submit.
pub async fn train_step(gpu: &Gpu, model: &mut Model, hb: &HostBatch, opt: &AdamW, lr: f32, wd: f32, mode: ModelMode) -> Result<Losses, Error> {
    Ok(train_step_timed(gpu, model, hb, opt, lr, wd, mode).await?.0)
}

/// [`train_step`], also returning the milliseconds the host spent recording it (batch upload and
/// command encoding, up to the submit): what the step benchmark reports as host encode time.
pub async fn train_step_timed(gpu: &Gpu, model: &mut Model, hb: &HostBatch, opt: &AdamW, lr: f32, wd: f32, mode: ModelMode) -> Result<(Losses, f64), Error> {
    let t0 = now_ms();
    let batch = hb.to_gpu(gpu, &model.cfg)?;
    let mut step = gpu.begin_step("train");
    model.zero_grads(&mut step);
    model.forward(gpu, &mut step, &batch, mode)?;
    model.backward(&mut step, &batch, mode)?;
    model.optimizer_step(gpu, &mut step, opt, lr, wd)?;
    let state = model.opt_state.as_ref().ok_or_else(|| Error::Internal("no optimizer state".into()))?;
    // one readback per step: the losses and AdamW's skip flag together
    let rb = model.record_loss_readback_with(&mut step, &[(&state.state, crate::kernels::adamw::STATE_SKIPPED, 1)])?;
    let encode_ms = now_ms() - t0;
    step.submit().await?;
    let (l, flag) = Model::read_losses_and_extra(gpu, rb).await?;
    let skipped = flag[0] != 0.0;
    if skipped || !l.total().is_finite() {
        return Err(Error::NonFinite { step: None });
    }
    Ok((l, encode_ms))
}

pub use crate::error::NON_FINITE;

/// Class probabilities for encoded examples, in batches.
pub async fn predict(gpu: &Gpu, model: &mut Model, enc: &[&Encoded], pad_id: u32, batch_size: usize) -> Result<Vec<Vec<f32>>, Error> {
    predict_with_progress(gpu, model, enc, pad_id, batch_size, &mut |_| {}).await
}

/// Indices of `enc` by length (stable), so that each batch pads its texts to about their own
/// length instead of to the longest text that happens to share its batch in file order.
fn by_length(enc: &[&Encoded]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..enc.len()).collect();
    order.sort_by_key(|&i| enc[i].ids.len());
    order
}

/// Progress of a pass over many texts (`Event::Progress`), every batch.
struct Progress {
    task: &'static str,
    total: usize,
    done: usize,
    t0: f64,
}

impl Progress {
    fn new(task: &'static str, total: usize) -> Progress {
        Progress { task, total, done: 0, t0: now_ms() }
    }
    fn advance(&mut self, n: usize, on_event: &mut dyn FnMut(Event)) {
        self.done += n;
        let s = (now_ms() - self.t0) / 1e3;
        let per_s = if s > 0.0 { self.done as f64 / s } else { 0.0 };
        let eta_s = if per_s > 0.0 { (self.total - self.done) as f64 / per_s } else { 0.0 };
        on_event(Event::Progress { task: self.task, done: self.done, total: self.total, per_s, eta_s });
    }
}

/// [`predict`], batching the texts by length and reporting `Event::Progress` after every batch;
/// the probabilities come back in the order of `enc`.
pub async fn predict_with_progress(gpu: &Gpu, model: &mut Model, enc: &[&Encoded], pad_id: u32, batch_size: usize, on_event: &mut dyn FnMut(Event)) -> Result<Vec<Vec<f32>>, Error> {
    let mut out = vec![Vec::new(); enc.len()];
    let order = by_length(enc);
    let mut progress = Progress::new("predict", enc.len());
    for chunk in order.chunks(batch_size.max(1)) {
        let texts: Vec<&Encoded> = chunk.iter().map(|&i| enc[i]).collect();
        let mut hb = classification(&texts, &vec![0; chunk.len()], pad_id);
        hb.cls_labels = None;
        let batch = hb.to_gpu(gpu, &model.cfg)?;
        for (&i, p) in chunk.iter().zip(model.classify(gpu, &batch).await?) {
            out[i] = p;
        }
        progress.advance(chunk.len(), on_event);
    }
    Ok(out)
}

#[derive(Debug, Clone, Default)]
pub struct TrainReport {
    pub epochs: Vec<(f32, Metrics)>,
    pub steps: usize,
    pub ms_per_step: f64,
    pub stopped: Option<String>,
}

/// The frozen encoder's features (what the classification head reads) for every example, computed
/// once on the GPU into one (N, C) buffer; nothing is read back. Texts go through in batches sorted
/// by length (each padded to about its own length), then one gather puts the rows back in the order
/// of `enc`. `Event::Progress` follows every batch.
async fn compute_features(gpu: &Gpu, model: &mut Model, enc: &[Encoded], pad_id: u32, batch_size: usize, on_event: &mut dyn FnMut(Event)) -> Result<crate::gpu::GpuBuf, Error> {
    let c = model.cfg.hidden_size;
    let n = enc.len();
    let refs: Vec<&Encoded> = enc.iter().collect();
    let order = by_length(&refs);
    // rows in length order, then gathered: feats[i] = sorted[rank[i]]
    let sorted = gpu.zeros("features (by length)", n.max(1) * c, crate::gpu::DType::F32)?;
    let mut progress = Progress::new("features", n);
    let mut row = 0;
    for chunk in order.chunks(batch_size.max(1)) {
        let texts: Vec<&Encoded> = chunk.iter().map(|&i| &enc[i]).collect();
        let mut hb = classification(&texts, &vec![0; chunk.len()], pad_id);
        hb.cls_labels = None;
        let batch = hb.to_gpu(gpu, &model.cfg)?;
        let mut step = gpu.begin_step("features");
        model.record_features(gpu, &mut step, &batch, &sorted, row)?;
        step.submit().await?;
        // nothing is read back: without this wait the browser queues every batch at once, the
        // progress says "done" in a second, and the head's first step waits for all of them
        gpu.finished().await;
        row += chunk.len();
        progress.advance(chunk.len(), on_event);
    }
    let mut rank = vec![0u32; n];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r as u32;
    }
    let feats = gpu.zeros("features", n.max(1) * c, crate::gpu::DType::F32)?;
    if n > 0 {
        let ranks = gpu.upload_u32("feature ranks", &rank)?;
        let mut step = gpu.begin_step("features-gather");
        embedding::forward(&mut step, feats.at([n, c]), &ranks, sorted.at([n, c]), false)?;
        step.submit().await?;
    }
    Ok(feats)
}

/// Steps of the head alone, grouped into one submit (see [`head_steps`]).
pub const HEAD_STEPS_PER_SUBMIT: usize = 25;

/// One step of the classification head on cached features: the rows it reads, their labels, its
/// learning rate and dropout.
struct HeadStep {
    idx: Vec<u32>,
    labels: Vec<i32>,
    lr: f32,
    mode: ModelMode,
}

/// Steps of the classification head alone on cached features, in one submit and one readback of
/// 12 bytes per step (its loss, count and AdamW's skip flag, copied aside as each step ends). A
/// step of the head is tiny (batch × hidden × labels), so a browser's round trips for a submit and
/// a readback, not the work, would set its time: a group pays them once. Its inputs come from the
/// recycling pool. A non-finite step is an error naming its place in the group.
async fn head_steps(gpu: &Gpu, model: &mut Model, feats: &crate::gpu::GpuBuf, n: usize, group: &[HeadStep], opt: &AdamW, wd: f32) -> Result<Vec<f32>, Error> {
    // each step's rows and labels start at a multiple of 64 elements (a binding's offset alignment)
    let slot = |b: usize| b.next_multiple_of(64);
    let rows_n: usize = group.iter().map(|h| slot(h.idx.len())).sum();
    let rows = gpu.recycled("head.rows", rows_n, crate::gpu::DType::U32)?;
    let lab = gpu.recycled("head.labels", rows_n, crate::gpu::DType::I32)?;
    let aside = gpu.recycled("head.losses", 3 * group.len(), crate::gpu::DType::F32)?;
    // every step's rows and labels in one write each
    let (mut all_rows, mut all_labels) = (vec![0u32; rows_n], vec![0i32; rows_n]);
    let mut at = 0;
    for h in group {
        all_rows[at..at + h.idx.len()].copy_from_slice(&h.idx);
        all_labels[at..at + h.labels.len()].copy_from_slice(&h.labels);
        at += slot(h.idx.len());
    }
    gpu.write(&rows, 0, &all_rows)?;
    gpu.write(&lab, 0, &all_labels)?;
    let mut step = gpu.begin_step("head");
    let mut at = 0;
    for (i, h) in group.iter().enumerate() {
        let b = h.idx.len();
        let (r, l) = (rows.view(at, b), lab.view(at, b));
        model.zero_grads(&mut step);
        model.record_head_on_features(gpu, &mut step, feats.at([n, model.cfg.hidden_size]), r.at([b]), crate::model::infer::HeadPass::Backward(&l), h.mode)?;
        model.optimizer_step(gpu, &mut step, opt, h.lr, wd)?;
        let state = model.opt_state.as_ref().ok_or_else(|| Error::Internal("no optimizer state".into()))?;
        let stats = model.loss_stats().ok_or_else(|| Error::Internal("no loss statistics".into()))?;
        step.copy(&stats[2], 0, &aside, 3 * i, 2)?;
        step.copy(&state.state, crate::kernels::adamw::STATE_SKIPPED, &aside, 3 * i + 2, 1)?;
        at += slot(b);
    }
    let rb = step.read_back(&aside, 0, 3 * group.len())?;
    let submitted = step.submit().await;
    // writes to them from here on are ordered after this step on the queue
    let recycler = gpu.recycler();
    recycler.give_back("head.rows", &rows);
    recycler.give_back("head.labels", &lab);
    recycler.give_back("head.losses", &aside);
    submitted?;
    let v = rb.f32(gpu).await?;
    let mut losses = Vec::with_capacity(group.len());
    for (i, s) in v.chunks(3).enumerate() {
        if s[2] != 0.0 || !s[0].is_finite() {
            return Err(Error::NonFinite { step: Some(i) });
        }
        losses.push(s[0]);
    }
    Ok(losses)
}

/// Class probabilities from cached features, dropout off.
async fn head_predict(gpu: &Gpu, model: &mut Model, feats: &crate::gpu::GpuBuf, n: usize, batch_size: usize) -> Result<Vec<Vec<f32>>, Error> {
    let nl = model.heads.num_labels;
    let mut out = Vec::new();
    let idx: Vec<u32> = (0..n as u32).collect();
    for chunk in idx.chunks(batch_size.max(1)) {
        let rows = gpu.upload_u32("rows", chunk)?;
        let mut step = gpu.begin_step("head-predict");
        model.record_head_on_features(gpu, &mut step, feats.at([n, model.cfg.hidden_size]), rows.at([chunk.len()]), crate::model::infer::HeadPass::Logits, ModelMode::Eval)?;
        let rb = step.read_back(model.cls_logits().ok_or_else(|| Error::Internal("no logits".into()))?, 0, chunk.len() * nl)?;
        step.submit().await?;
        out.extend(crate::model::infer::softmax_rows(&rb.f32(gpu).await?, nl));
    }
    Ok(out)
}

async fn checkpoint_event(gpu: &Gpu, model: &Model, step: usize) -> Result<Event, Error> {
    Ok(Event::Checkpoint { step, weights: super::checkpoint::weights_bytes(gpu, model).await?, optimizer: super::checkpoint::optimizer_bytes(gpu, model, step).await? })
}

/// Fine-tunes `model` (which must carry a classification head with `ds.labels.len()` labels) on
/// `ds.examples[train]`, evaluating on `ds.examples[val]` after every epoch. Feature-based runs
/// compute the frozen encoder's features once and then train the head alone on them.
#[allow(clippy::too_many_arguments)]
pub async fn train_classifier(
    gpu: &Gpu,
    model: &mut Model,
    tok: &Tokenizer,
    ds: &Dataset,
    train: &[usize],
    val: &[usize],
    cfg: &TrainConfig,
    control: &Control,
    on_event: &mut dyn FnMut(Event),
) -> Result<TrainReport, Error> {
    cfg.validate(&model.cfg)?;
    ds.trainable()?;
    if model.heads.num_labels != ds.labels.len() {
        return Err(Error::Shape { tensor: "classifier.weight".into(), message: format!("the model has {} labels but the data has {}", model.heads.num_labels, ds.labels.len()) });
    }
    let layers = model.cfg.num_hidden_layers;
    model.pooling = Pooling::for_model(cfg.pooling, &model.cfg)?;
    model.params.set_trainable(gpu, |p| cfg.adopt.trainable(p.part, layers))?;
    if cfg.start_step == 0 {
        // a fresh run: fresh moments and optimizer state
        model.reset_optimizer(gpu).await?;
    }
    let encode = |i: &usize| tok.encode(&ds.examples[*i].text, ds.examples[*i].text_b.as_deref(), cfg.max_len.min(model.cfg.max_tokens()));
    let enc_train: Vec<Encoded> = train.iter().map(encode).collect::<Result<_, _>>()?;
    let enc_val: Vec<Encoded> = val.iter().map(encode).collect::<Result<_, _>>()?;
    let y_train: Vec<i32> = train.iter().map(|&i| ds.label_id(&ds.examples[i].label).unwrap_or(0) as i32).collect();
    let y_val: Vec<usize> = val.iter().map(|&i| ds.label_id(&ds.examples[i].label).unwrap_or(0)).collect();
    let truncated = enc_train.iter().chain(&enc_val).filter(|e| e.truncated > 0).count();
    let bs = cfg.batch_size.max(1);
    let per_epoch = enc_train.len().div_ceil(bs);
    let total = per_epoch * cfg.epochs;
    on_event(Event::Plan { total_steps: total, train_examples: enc_train.len(), val_examples: enc_val.len(), truncated });
    let cached = if cfg.adopt == Adopt::Feature {
        let t = now_ms();
        let ft = compute_features(gpu, model, &enc_train, tok.pad, bs, on_event).await?;
        let fv = compute_features(gpu, model, &enc_val, tok.pad, bs, on_event).await?;
        on_event(Event::Features { examples: enc_train.len() + enc_val.len(), ms: now_ms() - t });
        Some((ft, fv))
    } else {
        None
    };
    let warmup = (cfg.warmup_ratio * total as f32).round() as usize;
    let opt = AdamW { lr: cfg.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, max_grad_norm: cfg.max_grad_norm };
    let mut rng = Rng::new(cfg.seed);
    let mut report = TrainReport::default();
    let mut best = f32::INFINITY;
    let mut since_best = 0;
    // time inside training steps only: pauses, evaluation and checkpoints are not steps
    let mut step_ms = 0.0;
    let (mut k, mut done) = (0, 0);
    for epoch in 0..cfg.epochs {
        let mut order: Vec<usize> = (0..enc_train.len()).collect();
        shuffle(&mut order, &mut rng);
        let mut sum = 0.0;
        // the head alone runs its steps in groups (head_steps): pauses, stops and checkpoints come
        // between groups, and a group ends at a checkpoint and at the epoch's end
        let mut group: Vec<HeadStep> = Vec::new();
        for (ci, chunk) in order.chunks(bs).enumerate() {
            if k < cfg.start_step {
                k += 1;
                continue;
            }
            if group.is_empty() {
                if control.is_paused() && cfg.checkpoint_every > 0 {
                    on_event(checkpoint_event(gpu, model, k).await?);
                }
                if !control.proceed(k, on_event).await {
                    report.stopped = Some("cancelled".into());
                    report.steps = k;
                    return Ok(report);
                }
            }
            let labels: Vec<i32> = chunk.iter().map(|&i| y_train[i]).collect();
            let lr = linear_schedule(cfg.lr, k + group.len(), warmup, total);
            let mode = ModelMode::train_if(cfg.dropout, cfg.seed.wrapping_add((k + group.len()) as u64));
            let ts = now_ms();
            let (r, lrs) = match &cached {
                Some((ft, _)) => {
                    group.push(HeadStep { idx: chunk.iter().map(|&i| i as u32).collect(), labels, lr, mode });
                    let next = k + group.len();
                    let boundary = group.len() == HEAD_STEPS_PER_SUBMIT || ci + 1 == per_epoch || (cfg.checkpoint_every > 0 && next % cfg.checkpoint_every == 0);
                    if !boundary {
                        continue;
                    }
                    let lrs: Vec<f32> = group.iter().map(|h| h.lr).collect();
                    let r = head_steps(gpu, model, ft, enc_train.len(), &group, &opt, cfg.weight_decay).await;
                    group.clear();
                    (r, lrs)
                }
                None => {
                    let enc: Vec<&Encoded> = chunk.iter().map(|&i| &enc_train[i]).collect();
                    let hb = classification(&enc, &labels, tok.pad);
                    (train_step(gpu, model, &hb, &opt, lr, cfg.weight_decay, mode).await.map(|l| vec![l.cls]), vec![lr])
                }
            };
            let losses = match r {
                Ok(l) => l,
                Err(Error::NonFinite { step }) => {
                    let at = k + step.unwrap_or(0);
                    on_event(Event::NonFinite { step: at });
                    report.stopped = Some(Error::non_finite(at).to_string());
                    report.steps = at;
                    return Ok(report);
                }
                Err(e) => return Err(e),
            };
            // a group's time is shared by its steps
            let each = (now_ms() - ts) / losses.len().max(1) as f64;
            for (loss, lr) in losses.into_iter().zip(lrs) {
                sum += loss;
                k += 1;
                done += 1;
                step_ms += each;
                let ms = step_ms / done as f64;
                on_event(Event::Step { step: k, total_steps: total, loss, lr, ms_per_step: ms, eta_s: ms * (total - k) as f64 / 1e3 });
            }
            if cfg.checkpoint_every > 0 && k % cfg.checkpoint_every == 0 {
                on_event(checkpoint_event(gpu, model, k).await?);
            }
        }
        if k <= cfg.start_step {
            continue; // an epoch finished before the checkpoint
        }
        let probs = match &cached {
            Some((_, fv)) => head_predict(gpu, model, fv, enc_val.len(), bs).await?,
            None => predict_with_progress(gpu, model, &enc_val.iter().collect::<Vec<_>>(), tok.pad, bs, on_event).await?,
        };
        let m = evaluate(&probs, &y_val, ds.labels.len());
        let train_loss = sum / per_epoch.max(1) as f32;
        on_event(Event::Epoch { epoch: epoch + 1, train_loss, val: m.clone() });
        report.epochs.push((train_loss, m.clone()));
        if m.loss < best {
            best = m.loss;
            since_best = 0;
        } else {
            since_best += 1;
            if cfg.patience > 0 && since_best >= cfg.patience {
                report.stopped = Some(format!("early stopping: no better validation loss for {} epochs", cfg.patience));
                break;
            }
        }
    }
    report.steps = k;
    report.ms_per_step = step_ms / done.max(1) as f64;
    Ok(report)
}

/// A pretraining run's settings (`session::RunSpec::Pretrain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PretrainConfig {
    pub mlm: bool,
    pub sop: bool,
    /// BERT's 15% / 80-10-10 rule (not a setting the page or the CLI change).
    #[serde(skip)]
    pub masking: MlmMasking,
    pub lr: f32,
    pub steps: usize,
    pub batch_size: usize,
    pub max_len: usize,
    pub warmup: usize,
    pub weight_decay: f32,
    pub max_grad_norm: f32,
    pub seed: u64,
    pub dropout: bool,
    /// A text with [MASK]s whose top predictions are reported every `probe_every` steps
    /// ([`Event::Probe`]), for a live masked-token demo.
    pub probe: Option<String>,
    pub probe_every: usize,
    /// Emit an [`Event::Checkpoint`] every this many steps (0: never) and whenever the run pauses.
    pub checkpoint_every: usize,
    /// Pretrain LoRA adapters (and the pretraining heads) instead of the whole model: the model's
    /// language adapted to the text with a few MB of adapters.
    pub lora: Option<crate::model::config::LoraSpec>,
    /// Continue a run restored at this step: the steps before it draw their batches (same seed,
    /// same data) without training; the optimizer state restored by the caller is kept.
    #[serde(skip)]
    pub start_step: usize,
}

impl PretrainConfig {
    /// Every setting in its range for `model`, or the first that is not.
    pub fn validate(&self, model: &crate::model::ModelConfig) -> Result<()> {
        use limits::*;
        check_shared(self.lr, self.batch_size, self.max_len, model)?;
        in_range("the steps", self.steps, PRETRAIN_STEPS.0, PRETRAIN_STEPS.1)?;
        in_range("the warm-up steps", self.warmup, 0, self.steps)?;
        in_range_f("the weight decay", self.weight_decay, 0.0, 1.0, false)?;
        in_range_f("the gradient-norm clip", self.max_grad_norm, 0.0, 1e6, false)?;
        if !self.mlm && !self.sop {
            return Err(Error::Usage("pretraining needs at least one objective: masked words or sentence order".into()));
        }
        Ok(())
    }
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig { mlm: true, sop: true, masking: MlmMasking::default(), lr: 1e-3, steps: 200, batch_size: 16, max_len: 64, warmup: 20, weight_decay: 0.01, max_grad_norm: 1.0, seed: 42, dropout: true, probe: None, probe_every: 10, checkpoint_every: 0, lora: None, start_step: 0 }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PretrainReport {
    /// The language-model loss of each step: masked words, or a causal model's next words.
    pub lm_losses: Vec<f32>,
    pub sop_losses: Vec<f32>,
    pub ms_per_step: f64,
    pub messages: Vec<String>,
    pub stopped: Option<String>,
    /// A causal model's next-word accuracy on the lines held out of the run (the session holds
    /// out every tenth line of 20 or more).
    pub held_out: Option<HeldOut>,
}

/// Next-word accuracy on texts a run never saw, beside always guessing the most frequent token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldOut {
    pub texts: usize,
    pub accuracy: f64,
    pub unigram: f64,
}

/// The next-token labels of a causal model's sequence: position i predicts the token at i + 1;
/// the last token predicts nothing (-100).
pub fn next_token_labels(ids: &[u32]) -> Vec<i32> {
    (0..ids.len()).map(|i| if i + 1 < ids.len() { ids[i + 1] as i32 } else { -100 }).collect()
}

/// One MLM (+ SOP) batch from `texts`: SOP pairs when `sop`, single texts otherwise. For a causal
/// model (`causal`), single texts with next-token labels and no masking.
pub fn pretrain_batch(tok: &Tokenizer, texts: &[String], cfg: &PretrainConfig, sop_on: bool, causal: bool, candidates: &[u32], rng: &mut Rng) -> Result<HostBatch> {
    let mut encs = Vec::new();
    let mut sop_labels = Vec::new();
    while encs.len() < cfg.batch_size {
        let i = rng.below(texts.len() as u32) as usize;
        if sop_on {
            let pairs = sop::make_pairs(std::slice::from_ref(&texts[i]), rng);
            let Some(p) = pairs.into_iter().next() else { continue };
            encs.push(tok.encode(&p.a, Some(&p.b), cfg.max_len)?);
            sop_labels.push(p.label);
        } else {
            encs.push(tok.encode(&texts[i], None, cfg.max_len)?);
        }
    }
    let mut masked = Vec::new();
    for e in &encs {
        masked.push(if causal {
            super::masking::Masked { input_ids: e.ids.clone(), labels: next_token_labels(&e.ids), outcomes: vec![Outcome::NotChosen; e.ids.len()] }
        } else if cfg.mlm {
            cfg.masking.apply(&e.ids, &e.special, &e.word_ids, tok.mask, candidates, rng)
        } else {
            super::masking::Masked { input_ids: e.ids.clone(), labels: vec![-100; e.ids.len()], outcomes: vec![Outcome::NotChosen; e.ids.len()] }
        });
    }
    let seqs: Vec<(&[u32], &[u32])> = masked.iter().zip(&encs).map(|(m, e)| (&m.input_ids[..], &e.type_ids[..])).collect();
    let mut hb = pad(&seqs, tok.pad);
    if cfg.mlm {
        let mut labels = vec![-100i32; hb.b * hb.t];
        let mut outcomes = vec![Outcome::NotChosen; hb.b * hb.t];
        for (r, m) in masked.iter().enumerate() {
            labels[r * hb.t..r * hb.t + m.labels.len()].copy_from_slice(&m.labels);
            outcomes[r * hb.t..r * hb.t + m.outcomes.len()].copy_from_slice(&m.outcomes);
        }
        hb.lm_labels = Some(labels);
        hb.outcomes = Some(outcomes);
    }
    if sop_on {
        hb.sop_labels = Some(sop_labels);
    }
    Ok(hb)
}

/// Whether a pretraining run `cfg` on a model `mc` trains `p` (`sop_on`: whether sentence order is
/// one of its objectives, which the texts decide).
pub fn pretrain_trains(p: &Param, mc: &ModelConfig, cfg: &PretrainConfig, sop_on: bool) -> bool {
    let adapters = mc.lora.is_some();
    match p.part {
        // a family whose classifier has its own dense layer on [CLS] (RoBERTa's classifier.dense)
        // holds it where BERT has its pooler, which sentence order reads: it learns with that head
        Part::Classifier => sop_on && p.name.starts_with("pooler.") && !adapters,
        Part::SopHead => sop_on,
        Part::LmHead => cfg.mlm && (!adapters || mc.family.lm_head_trains_with_adapters()),
        Part::Lora => true,
        _ => !adapters,
    }
}

/// Pretrains `model` (with the heads `cfg` asks for) on unlabeled `texts`.
pub async fn pretrain(gpu: &Gpu, model: &mut Model, tok: &Tokenizer, texts: &[String], cfg: &PretrainConfig, control: &Control, on_event: &mut dyn FnMut(Event)) -> Result<PretrainReport, Error> {
    cfg.validate(&model.cfg)?;
    let mut report = PretrainReport::default();
    if texts.is_empty() {
        return Err(Error::Data { line: 0, message: "no text to pretrain on".into() });
    }
    if cfg.mlm && !model.heads.lm {
        return Err(Error::Unsupported("masked-LM pretraining needs a model with an MLM head".into()));
    }
    // a decoder learns the next token: no masking, and no sentence order (its [CLS] sees nothing)
    let causal = model.cfg.is_decoder;
    if causal && !cfg.mlm {
        return Err(Error::Usage("a causal model pretrains on the next token, through its language-model head: turn the masked-LM objective on".into()));
    }
    let mut sop_on = cfg.sop && model.heads.sop && !causal;
    if sop_on {
        if let Some(why) = sop::unavailable_reason(texts) {
            report.messages.push(why);
            sop_on = false;
        }
    }
    if !cfg.mlm && !sop_on {
        return Err(Error::Usage("nothing to pretrain: masked-LM is off and sentence order is unavailable".into()));
    }
    // the encoder and the heads in use learn; an MLM head's decoder stays tied to the word embeddings
    // with adapters only they and the pretraining heads train (PEFT's modules_to_save for BERT's
    // `cls`; GPT-2's head is its word embeddings, which stay frozen)
    let mc = model.cfg.clone();
    model.params.set_trainable(gpu, |p| pretrain_trains(p, &mc, cfg, sop_on))?;
    if cfg.start_step == 0 {
        // a fresh run: fresh moments and optimizer state (a run restored at a step keeps the state
        // its snapshot brought)
        model.reset_optimizer(gpu).await?;
    }
    let candidates = non_special_ids(tok.vocab_size.min(model.cfg.vocab_size), &tok.special_ids());
    let opt = AdamW { lr: cfg.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, max_grad_norm: cfg.max_grad_norm };
    let mut rng = Rng::new(cfg.seed);
    // time inside training steps only: pauses, probes and checkpoints are not steps
    let mut step_ms = 0.0;
    for k in 0..cfg.steps {
        if k >= cfg.start_step {
            if control.is_paused() && cfg.checkpoint_every > 0 && k > 0 {
                on_event(checkpoint_event(gpu, model, k).await?);
            }
            if !control.proceed(k, on_event).await {
                report.stopped = Some("cancelled".into());
                break;
            }
        }
        let hb = pretrain_batch(tok, texts, cfg, sop_on, causal, &candidates, &mut rng)?;
        if k < cfg.start_step {
            continue; // trained before the snapshot this run continues from
        }
        let lr = linear_schedule(cfg.lr, k, cfg.warmup, cfg.steps);
        let ts = now_ms();
        let l = match train_step(gpu, model, &hb, &opt, lr, cfg.weight_decay, ModelMode::train_if(cfg.dropout, cfg.seed.wrapping_add(k as u64))).await {
            Ok(l) => l,
            Err(Error::NonFinite { .. }) => {
                on_event(Event::NonFinite { step: k });
                report.stopped = Some(Error::non_finite(k).to_string());
                break;
            }
            Err(e) => return Err(e),
        };
        step_ms += now_ms() - ts;
        report.lm_losses.push(l.lm);
        report.sop_losses.push(l.sop);
        if let (Some(text), true) = (&cfg.probe, cfg.mlm && !causal) {
            if cfg.probe_every > 0 && ((k + 1) % cfg.probe_every == 0 || k + 1 == cfg.steps) {
                let predictions = probe(gpu, model, tok, text, 5).await?;
                            on_event(Event::Probe { step: k + 1, predictions });
            }
        }
        let ms = step_ms / (k + 1 - cfg.start_step) as f64;
        on_event(Event::Pretrain { step: k + 1, total_steps: cfg.steps, lm_loss: l.lm, sop_loss: l.sop, lm_acc: l.lm_acc, sop_acc: l.sop_acc, lr, ms_per_step: ms, eta_s: ms * (cfg.steps - k - 1) as f64 / 1e3, batch_outcomes: hb.outcomes.clone().unwrap_or_default(), first_sequence: (0..hb.t).filter(|&j| hb.mask[j] != 0).map(|j| (hb.ids[j], hb.lm_labels.as_ref().map(|l| l[j]).unwrap_or(-100))).collect() });
        if cfg.checkpoint_every > 0 && (k + 1) % cfg.checkpoint_every == 0 {
            on_event(checkpoint_event(gpu, model, k + 1).await?);
        }
    }
    report.ms_per_step = step_ms / report.lm_losses.len().max(1) as f64;
    Ok(report)
}

/// Top-k predictions at every [MASK] of `text` (written with the literal "[MASK]"), as token strings.
pub async fn probe(gpu: &Gpu, model: &mut Model, tok: &Tokenizer, text: &str, k: usize) -> Result<Vec<Vec<(String, f32)>>, Error> {
    let e = tok.encode(text, None, model.cfg.max_tokens())?;
    let positions: Vec<usize> = (0..e.ids.len()).filter(|&i| e.ids[i] == tok.mask).collect();
    if positions.is_empty() {
        return Err(Error::Data { line: 0, message: "the text has no [MASK] to predict".into() });
    }
    let top = model.top_tokens(gpu, &e.ids, &e.type_ids, &positions, k).await?;
    Ok(top.into_iter().map(|row| row.into_iter().map(|(id, p)| (tok.piece(id), p)).collect()).collect())
}

/// A causal model's next-token accuracy on held-out `texts` (every position of `[CLS] text [SEP]`
/// predicts the token after it), and that of a unigram baseline: always guessing the token most
/// frequent in `train_texts` (counting [SEP], which ends every text).
pub async fn next_token_accuracy(gpu: &Gpu, model: &mut Model, tok: &Tokenizer, texts: &[String], train_texts: &[String], max_len: usize) -> Result<(f64, f64), Error> {
    if !model.cfg.is_decoder {
        return Err(Error::Unsupported("next-token accuracy is for a causal model (is_decoder); this one reads both ways".into()));
    }
    let mut freq = std::collections::BTreeMap::new();
    for t in train_texts {
        for &id in &tok.encode(t, None, max_len)?.ids[1..] {
            *freq.entry(id).or_insert(0usize) += 1;
        }
    }
    let most = freq.iter().max_by_key(|(id, c)| (**c, std::cmp::Reverse(**id))).map(|(id, _)| *id).unwrap_or(0);
    let (mut correct, mut base, mut n) = (0.0f64, 0usize, 0usize);
    for chunk in texts.chunks(16) {
        let encs: Vec<Encoded> = chunk.iter().map(|t| tok.encode(t, None, max_len)).collect::<Result<_, _>>()?;
        let seqs: Vec<(&[u32], &[u32])> = encs.iter().map(|e| (&e.ids[..], &e.type_ids[..])).collect();
        let mut hb = pad(&seqs, tok.pad);
        let mut labels = vec![-100i32; hb.b * hb.t];
        for (r, e) in encs.iter().enumerate() {
            labels[r * hb.t..r * hb.t + e.ids.len()].copy_from_slice(&next_token_labels(&e.ids));
        }
        let count = labels.iter().filter(|&&l| l >= 0).count();
        base += labels.iter().filter(|&&l| l >= 0 && l as u32 == most).count();
        hb.lm_labels = Some(labels);
        let batch = hb.to_gpu(gpu, &model.cfg)?;
        let mut step = gpu.begin_step("next-token accuracy");
        model.forward(gpu, &mut step, &batch, ModelMode::Eval)?;
        let rb = model.record_loss_readback(&mut step)?;
        step.submit().await?;
        let l = Model::read_losses(gpu, rb).await?;
        correct += l.lm_acc as f64 * count as f64;
        n += count;
    }
    Ok((correct / n.max(1) as f64, base as f64 / n.max(1) as f64))
}

/// Masked-token accuracy on held-out `texts`: every chosen token is replaced by [MASK] and predicted;
/// returns (model accuracy, accuracy of always guessing the most frequent token of `train_texts`).
pub async fn mlm_accuracy(gpu: &Gpu, model: &mut Model, tok: &Tokenizer, texts: &[String], train_texts: &[String], max_len: usize, seed: u64) -> Result<(f64, f64), Error> {
    let mut freq = std::collections::HashMap::new();
    let specials = tok.special_ids();
    for t in train_texts {
        for id in tok.tokenize(t)?.0 {
            if specials.binary_search(&id).is_err() {
                *freq.entry(id).or_insert(0usize) += 1;
            }
        }
    }
    let most = freq.iter().max_by_key(|(id, c)| (**c, std::cmp::Reverse(**id))).map(|(id, _)| *id).unwrap_or(0);
    let masking = MlmMasking { mask_frac: 1.0, random_frac: 0.0, ..MlmMasking::default() };
    let mut rng = Rng::new(seed);
    let (mut correct, mut base, mut n) = (0usize, 0usize, 0usize);
    for t in texts {
        let e = tok.encode(t, None, max_len)?;
        let m = masking.apply(&e.ids, &e.special, &e.word_ids, tok.mask, &[], &mut rng);
        let positions: Vec<usize> = (0..m.labels.len()).filter(|&i| m.labels[i] >= 0).collect();
        if positions.is_empty() {
            continue;
        }
        let preds = model.top_tokens(gpu, &m.input_ids, &e.type_ids, &positions, 1).await?;
        for (p, pred) in positions.iter().zip(&preds) {
            let truth = m.labels[*p] as u32;
            correct += (pred[0].0 == truth) as usize;
            base += (most == truth) as usize;
            n += 1;
        }
    }
    Ok((correct as f64 / n.max(1) as f64, base as f64 / n.max(1) as f64))
}
