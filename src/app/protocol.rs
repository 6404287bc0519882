//! What the page and the training worker say to each other. Each message is a JS object
//! `{cmd | ev: string, data: JSON string}` plus, where bytes travel, `files` / `bytes` fields.
//! The payload types live here, on every target, so the pure parts are tested natively too.

use serde::{Deserialize, Serialize};

use crate::session::{Adopt, Dataset, Pooling, Severity};

/// One row of the data preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewRow {
    pub line: usize,
    pub label: String,
    pub text: String,
    pub text_b: Option<String>,
}

/// One validation message, for the preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewMessage {
    pub line: usize,
    pub error: bool,
    pub text: String,
}

/// What the data panel shows of a parsed dataset.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DataPreview {
    pub name: String,
    pub examples: usize,
    pub label_counts: Vec<(String, usize)>,
    pub rows: Vec<PreviewRow>,
    pub messages: Vec<PreviewMessage>,
    /// Why it cannot be trained on (no examples, a single class), if so.
    pub problem: Option<String>,
    /// Lines of plain text available for pretraining.
    pub text_lines: usize,
    /// The text reads as plain text (a corpus for pretraining), not as labeled rows.
    #[serde(default)]
    pub plain: bool,
}

pub const PREVIEW_ROWS: usize = 20;

pub fn preview(name: &str, ds: &Dataset, text_lines: usize) -> DataPreview {
    let problem = ds.why_untrainable();
    DataPreview {
        name: name.to_string(),
        examples: ds.examples.len(),
        label_counts: ds.label_counts(),
        rows: ds.examples.iter().take(PREVIEW_ROWS).map(|e| PreviewRow { line: e.line, label: e.label.clone(), text: e.text.clone(), text_b: e.text_b.clone() }).collect(),
        // the problem is said once, as the heading (not again as a bullet)
        messages: ds.messages.iter().filter(|m| Some(&m.text) != problem.as_ref()).map(|m| PreviewMessage { line: m.line, error: m.severity == Severity::Error, text: m.to_string() }).collect(),
        problem,
        text_lines,
        plain: ds.plain,
    }
}

/// The small pretrained BERT (4 layers, 256 wide, with its masked-LM head) the page opens with
/// where the hub is reachable.
pub const FIRST_MODEL: &str = "google/bert_uncased_L-4_H-256_A-4";
/// The model served with the page (scripts/fetch_model.sh), its label, and its id on the hub.
pub const DEFAULT_MODEL_URL: &str = "./models/all-MiniLM-L6-v2/";
pub const DEFAULT_MODEL_LABEL: &str = "all-MiniLM-L6-v2 (default)";
pub const DEFAULT_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Everything the worker tells the page. It travels as `{ev: name, data: JSON string}` (an export's
/// files beside it, as `files`), made by [`Event::to_parts`] and parsed once by the page with
/// [`Event::from_parts`]. Every payload is typed; only the charts' own drawing state (`curves`,
/// which the page wrote and gets back on restore) stays a JSON value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", content = "data", rename_all = "snake_case")]
pub enum Event {
    /// The worker's module has loaded: the page sends `Init`.
    Ready {},
    /// The adapter and its limits.
    Gpu(AdapterSummary),
    NoGpu { reason: String },
    Model(ModelSummary),
    /// Bytes of a file being fetched.
    Progress { file: String, loaded: f64, total: f64 },
    /// A pass over many texts (frozen features, validation predictions).
    Texts { task: String, done: usize, total: usize, per_s: f64, eta: f64 },
    Data(DataPreview),
    Busy { busy: bool },
    Paused { step: usize },
    Resumed {},
    /// A pretraining step: losses, accuracies, timing and the batch drawn token by token.
    PretrainStep(PretrainStep),
    /// The top predictions at the demo sentence's [MASK]s during pretraining.
    Probe { step: usize, predictions: Vec<Vec<(String, f32)>> },
    /// A pretraining run's end; a causal model's next-word accuracy on the lines held out of it.
    PretrainDone { steps: usize, ms_per_step: f64, stopped: Option<String>, held_out: Option<String> },
    /// A fine-tuning run's plan, before its first step.
    Plan { run: String, total: usize, train: usize, val: usize, truncated: usize, max_len: usize },
    Step(TrainStep),
    Epoch(EpochReport),
    Done { run: String, steps: usize, ms_per_step: f64, stopped: Option<String> },
    /// A run stopped early: asked to, or at a non-finite step (`reason` says what happened).
    Stopped { step: usize, reason: String, nonfinite: bool },
    Fill(FillView),
    /// Class probabilities per text, as bars (highest first).
    Classified { bars: Vec<Vec<Bar>> },
    Similarity { cosine: f64 },
    Message { text: String },
    /// A snapshot was saved, or snapshots are off (`off` says why).
    Snapshot(SnapshotNote),
    /// A saved session exists in this browser (offered for restoring).
    Saved(SavedSession),
    Restored(Restored),
    /// Dispatches per kernel of the last run.
    Counters(KernelCounts),
    /// Each kernel of one training step, timed alone.
    Profile(KernelProfile),
    /// An export's files (name, bytes), whose contents travel beside the event.
    Export { files: Vec<(String, usize)> },
    Error { cmd: String, message: String },
    GenStart { prompt: String },
    /// One generated token: its id, the token, and how it continues the text.
    GenToken { id: u32, token: String, text: String },
    /// Generation ended: the new text, its tokens, why it stopped, and the milliseconds from the
    /// prompt to the last token (prefill included).
    GenDone { text: String, tokens: usize, stopped_at: String, ms: f64 },
    /// The worker failed (a panic, an uncaught exception): worker.js sends this one too.
    Crashed { message: String },
}

pub use crate::session::measure::{train_memory_bytes, KernelProfile, ModeCost};
pub use crate::session::view::{BesideView, FillView, NextWords};

/// The adapter the worker found.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AdapterSummary {
    pub summary: String,
    /// A software (CPU) adapter: the page warns that everything is slow.
    pub software: bool,
    /// (limit, value) pairs.
    pub limits: Vec<(String, u64)>,
}

/// What the last run dispatched.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KernelCounts {
    pub submits: u64,
    pub bytes_read_back: u64,
    /// (kernel, dispatches).
    pub dispatches: Vec<(String, u64)>,
}


/// One pretraining step, as the page shows it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PretrainStep {
    pub step: usize,
    pub total: usize,
    /// The language-model loss: masked words, or a causal model's next words (saved sessions
    /// spell it `mlm`).
    #[serde(alias = "mlm")]
    pub lm: f32,
    pub sop: f32,
    #[serde(alias = "mlm_acc")]
    pub lm_acc: f32,
    pub sop_acc: f32,
    pub lr: f32,
    pub ms: f64,
    pub eta: f64,
    /// The batch's first sequence: (token shown, what masking did to it, the original token when
    /// it was replaced).
    pub seq: Vec<(String, String, String)>,
    /// Tokens of the batch chosen for prediction, and what became of them.
    pub chosen: usize,
    pub masked: usize,
    pub random: usize,
    pub unchanged: usize,
}

/// A snapshot was saved at `step`, or snapshots are off (`off` says why).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SnapshotNote {
    pub off: Option<String>,
    pub step: usize,
    pub kind: String,
    pub saved_at: String,
}

/// The session saved in this browser, offered for restoring.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SavedSession {
    pub step: usize,
    pub saved_at: String,
    pub source: String,
    pub kind: String,
}

/// One fine-tuning step, as the page charts it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainStep {
    pub run: String,
    pub step: usize,
    pub total: usize,
    pub loss: f32,
    pub lr: f32,
    pub ms: f64,
    pub eta: f64,
}

/// The end of an epoch: training loss and validation metrics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EpochReport {
    pub run: String,
    pub epoch: usize,
    pub train_loss: f32,
    pub val_loss: Option<f32>,
    pub val_acc: Option<f64>,
    pub val_f1: Option<f64>,
    pub confusion: Vec<Vec<usize>>,
    pub labels: Vec<String>,
}

impl Event {
    /// The event's name and its data as JSON text (none for an event without fields), as they travel.
    pub fn to_parts(&self) -> (String, Option<String>) {
        let v = serde_json::to_value(self).unwrap_or_default();
        let name = v["ev"].as_str().unwrap_or_default().to_string();
        (name, v.get("data").map(|d| d.to_string()))
    }

    /// The event from its travelling parts.
    pub fn from_parts(ev: &str, data: Option<&str>) -> Result<Event, String> {
        let data: serde_json::Value = match data {
            Some(d) => serde_json::from_str(d).map_err(|e| format!("the worker sent {ev} with data that is not JSON ({e})"))?,
            None => serde_json::json!({}),
        };
        serde_json::from_value(serde_json::json!({"ev": ev, "data": data})).map_err(|e| format!("the worker sent an event the page does not understand ({ev}: {e}); reload the page"))
    }
}

/// The model panel's summary of a loaded model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelSummary {
    pub source: String,
    /// The model's family and its layer, in words (ModelInfo's), e.g. "RoBERTa (roberta), as
    /// transformers' RobertaForMaskedLM".
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub layer: String,
    /// The tokenizer's mask token ([MASK], RoBERTa's <mask>); None for a causal model.
    #[serde(default)]
    pub mask_token: Option<String>,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub vocab: usize,
    pub max_len: usize,
    pub params: usize,
    /// Bytes of GPU memory for a training step at [`crate::session::MEMORY_BATCH`] (weights, gradients,
    /// AdamW moments, activations), an estimate.
    pub train_bytes: u64,
    /// A language-model head: masked-LM, or a causal model's next-word head.
    #[serde(alias = "has_mlm")]
    pub has_lm: bool,
    pub has_sop: bool,
    pub labels: Vec<String>,
    pub pooling: Pooling,
    /// What fine-tuning it costs by each way of adopting it (feature-based, LoRA, last layers, all).
    #[serde(default)]
    pub modes: Vec<ModeCost>,
    /// The LoRA adapters the model carries, in words (None: none).
    #[serde(default)]
    pub lora: Option<String>,
    /// A causal model (GPT's direction): it predicts the next word and can continue a text.
    #[serde(default)]
    pub causal: bool,
    /// GPT-2's body (pre-LN, transformers' GPT2LMHeadModel); always causal.
    #[serde(default)]
    pub gpt2: bool,
    /// The Llama-shaped decoders' body (Llama, Qwen2, Qwen3): always causal.
    #[serde(default)]
    pub llama: bool,
    /// The attention and what the model needs in GPU memory, in words (`ModelInfo`'s).
    #[serde(default)]
    pub attention: String,
    #[serde(default)]
    pub memory: String,
    /// The model of the other kind kept beside this one (masked beside causal or the reverse),
    /// whose predictions the masked-words panel shows next to this one's.
    #[serde(default)]
    pub beside: Option<String>,
    pub notes: Vec<String>,
    /// The head's pooling that the model's own files ask for (sentence-transformers'
    /// `1_Pooling/config.json`), and where that came from, in words.
    #[serde(default)]
    pub default_pooling: Option<(Pooling, String)>,
    /// The hub id (or folder) of the model as loaded: an adapter's export names it as its base.
    #[serde(default)]
    pub base_id: Option<String>,
    /// This model continues the one before it (its adapters merged into it): what the page showed
    /// for the one before still holds.
    #[serde(default)]
    pub continues: bool,
}


/// One class probability, for the prediction bars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub label: String,
    pub p: f32,
}

/// Bars sorted by probability, highest first.
pub fn bars(labels: &[String], probs: &[f32]) -> Vec<Bar> {
    let mut v: Vec<Bar> = labels.iter().zip(probs).map(|(l, &p)| Bar { label: l.clone(), p }).collect();
    v.sort_by(|a, b| b.p.total_cmp(&a.p));
    v
}

// ---------- commands: what the page asks of the worker ----------

/// A fine-tuning run's settings, every field checked (`TrainForm::parse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub mode: Adopt,
    /// What the head reads ([CLS] or the mean; a causal model reads its last token either way).
    pub pooling: Pooling,
    pub lr: f32,
    pub epochs: usize,
    pub batch: usize,
    pub max_len: usize,
    /// The run's name on the charts.
    pub run: String,
}

/// The page's runs hand a snapshot to the browser's store every this many steps (and at a
/// pause): a reload, a lost device or a failed worker loses at most this many steps.
pub const CHECKPOINT_EVERY: usize = 25;

impl TrainSettings {
    /// The run these settings ask for, continuing at `start_step` (0: a new run). The page's runs
    /// use the session's default seed, a 20% validation split and a checkpoint every
    /// [`CHECKPOINT_EVERY`] steps.
    pub fn spec(&self, start_step: usize) -> crate::session::TrainConfig {
        crate::session::TrainConfig { adopt: self.mode, pooling: self.pooling, lr: self.lr, epochs: self.epochs, batch_size: self.batch, max_len: self.max_len, seed: crate::session::DEFAULT_SEED, val: 0.2, checkpoint_every: CHECKPOINT_EVERY, start_step, ..Default::default() }
    }
}

/// The run a snapshot belongs to, as the page asked for it (its forms and its name on the charts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageRun {
    Train(TrainSettings),
    Pretrain(PretrainSettings),
}

/// A session restored from this browser's snapshot: where it was, what the page drew, and the run
/// it belonged to (offered for continuing unless it finished).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Restored {
    pub step: usize,
    pub saved_at: String,
    /// The charts as the page drew them (runs, curves), given back as they were saved.
    pub curves: serde_json::Value,
    pub run: Option<PageRun>,
    pub finished: bool,
}

/// A pretraining run's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainSettings {
    pub mlm: bool,
    pub sop: bool,
    pub steps: usize,
    pub lr: f32,
    pub batch: usize,
    pub max_len: usize,
    /// A sentence with [MASK] whose predictions are shown as the run goes.
    pub probe: Option<String>,
    pub probe_every: usize,
    /// LoRA adapters of this rank on the model in use, trained alone (with the objective's heads):
    /// the model's language adapted to the text with a few MB of adapter. None: every weight trains.
    #[serde(default)]
    pub lora_r: Option<usize>,
}

impl PretrainSettings {
    /// The run these settings ask for, continuing at `start_step` (0: a new run); a probe without a
    /// [MASK] is left out.
    pub fn spec(&self, start_step: usize) -> crate::session::PretrainConfig {
        crate::session::PretrainConfig {
            mlm: self.mlm,
            sop: self.sop,
            steps: self.steps,
            batch_size: self.batch,
            lr: self.lr,
            max_len: self.max_len,
            warmup: self.steps / 10,
            probe: self.probe.clone().filter(|s| s.contains("[MASK]")),
            probe_every: self.probe_every.max(1),
            checkpoint_every: CHECKPOINT_EVERY,
            start_step,
            ..Default::default()
        }
    }

    /// The adapters a LoRA run puts on a model of `body`: PEFT's default targets and lora_alpha, as
    /// `bertlab pretrain --mode lora:R`.
    pub fn lora_spec(&self, family: crate::session::Family) -> Option<crate::session::LoraSpec> {
        self.lora_r.map(|r| crate::session::LoraSpec::new(r, family))
    }
}

/// A small BERT made from scratch, with a WordPiece vocabulary trained on the user's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScratchSettings {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub vocab: usize,
    /// GPT-style: causal attention, trained on the next word.
    #[serde(default)]
    pub causal: bool,
    /// GPT-2's body (pre-LN layers, as GPT2LMHeadModel) instead of BERT's; implies `causal`.
    #[serde(default)]
    pub gpt2: bool,
    /// The Llama body (RMSNorm, rotary positions, SwiGLU, grouped-query attention: SmolLM2's
    /// layer); implies `causal`.
    #[serde(default)]
    pub llama: bool,
}

impl ScratchSettings {
    /// The model these settings make.
    pub fn spec(&self) -> crate::session::Scratch {
        use crate::session::Body;
        let body = if self.llama {
            Body::Llama
        } else if self.gpt2 {
            Body::Gpt2
        } else {
            Body::Bert
        };
        crate::session::Scratch { vocab: self.vocab, hidden: self.hidden, layers: self.layers, heads: self.heads, body, causal: self.causal, seed: crate::session::DEFAULT_SEED }
    }
}

/// Everything the page asks of the worker. Sent as JSON (`{"cmd": .., "data": ..}`), parsed once
/// by the worker; files travel beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "data", rename_all = "snake_case")]
pub enum Command {
    Init,
    /// A model from a URL prefix (the hub, or the locally served default model). `id` is the hub id
    /// (or folder) that loads its base elsewhere: an adapter's export names it.
    LoadUrl {
        base: String,
        label: String,
        #[serde(default)]
        id: Option<String>,
    },
    /// The page's first model, asked for once as it opens (unless a model was asked for already): a
    /// small pretrained BERT with its masked-LM head from `hub`, or where the hub cannot be reached,
    /// the served default model.
    FirstModel { hub: String },
    /// Fold the model's LoRA adapters into its weights: a plain model that any way of fine-tuning
    /// adopts.
    Merge,
    /// A model from the files sent beside the command.
    LoadFiles,
    Scratch(ScratchSettings),
    /// Labeled or plain text typed or pasted in the page.
    Data { name: String, text: String },
    /// A file too large for the page to show, sent beside the command and read by the worker.
    DataFile { name: String },
    Pretrain(PretrainSettings),
    Train(TrainSettings),
    /// Finish the fine-tuning run of the restored snapshot, from its step.
    Continue,
    Pause,
    Resume,
    Cancel,
    FillMask { text: String, k: usize, layer: usize, head: usize },
    Classify { texts: Vec<String>, max_len: usize },
    Similarity { a: String, b: String },
    /// Continue `prompt` with a causal model, streaming each token (`gen_token` events).
    Generate { prompt: String, max_new: usize, top_k: usize, temperature: f32, seed: u64 },
    /// Stop the generation under way after the token being drawn.
    StopGenerate,
    /// The model's files; with `merge`, a LoRA model's adapters folded into its weights.
    Export {
        #[serde(default)]
        merge: bool,
    },
    Profile,
    Restore,
    /// The page's charts, kept in the snapshot.
    Curves(serde_json::Value),
    /// "Start fresh": the saved session is deleted, so it is not offered again.
    Discard,
}

impl Command {
    /// The command's name, as it travels.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Init => "init",
            Command::LoadUrl { .. } => "load_url",
            Command::FirstModel { .. } => "first_model",
            Command::Merge => "merge",
            Command::LoadFiles => "load_files",
            Command::Scratch(_) => "scratch",
            Command::Data { .. } => "data",
            Command::DataFile { .. } => "data_file",
            Command::Pretrain(_) => "pretrain",
            Command::Train(_) => "train",
            Command::Continue => "continue",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Cancel => "cancel",
            Command::FillMask { .. } => "fill_mask",
            Command::Classify { .. } => "classify",
            Command::Similarity { .. } => "similarity",
            Command::Generate { .. } => "generate",
            Command::StopGenerate => "stop_generate",
            Command::Export { .. } => "export",
            Command::Profile => "profile",
            Command::Restore => "restore",
            Command::Curves(_) => "curves",
            Command::Discard => "discard",
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Command, String> {
        serde_json::from_str(s).map_err(|e| format!("the page sent a command the worker does not understand ({e}); reload the page"))
    }
}

// ---------- settings typed into the page, checked field by field ----------

/// A field of a form that is not acceptable: the input's id, and a message that names the field and
/// its allowed range.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// A whole number typed into `field` (called `what`), from `lo` to `hi`.
pub fn whole(field: &'static str, what: &str, raw: &str, lo: usize, hi: usize) -> Result<usize, FieldError> {
    let err = |m: String| FieldError { field, message: m };
    let t = raw.trim();
    let v: usize = t.parse().map_err(|_| err(format!("{what} must be a whole number from {lo} to {hi}; “{t}” is not")))?;
    if v < lo || v > hi {
        return Err(err(format!("{what} must be from {lo} to {hi}; got {v}")));
    }
    Ok(v)
}

/// A learning rate typed into `field`: a finite number in (0, MAX_LR].
pub fn learning_rate(field: &'static str, raw: &str) -> Result<f32, FieldError> {
    let max = crate::session::limits::MAX_LR;
    let t = raw.trim();
    let v: f32 = t.parse().map_err(|_| FieldError { field, message: format!("the learning rate must be a number in (0, {max}], like 5e-5 or 0.001; “{t}” is not a number") })?;
    if !(v.is_finite() && v > 0.0 && v <= max) {
        return Err(FieldError { field, message: format!("the learning rate must be a number in (0, {max}]; got {t}") });
    }
    Ok(v)
}

/// What the page knows of the loaded model, for the ranges that depend on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelBounds {
    pub layers: usize,
    pub positions: usize,
}

/// The fine-tuning form as typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainForm {
    /// "full", "last", "feature" or "lora".
    pub mode: String,
    pub last_n: String,
    /// LoRA's rank.
    pub lora_r: String,
    pub lr: String,
    pub epochs: String,
    pub batch: String,
    pub max_len: String,
    /// "cls" or "mean".
    pub pooling: String,
}

impl TrainForm {
    /// Every field checked; every bad field is reported (not just the first). Without a model, the
    /// model-dependent ranges use BERT's usual 512 positions and 24 layers; the worker checks again
    /// against the model it has.
    pub fn parse(&self, model: Option<ModelBounds>, run: String) -> Result<TrainSettings, Vec<FieldError>> {
        use crate::session::limits::*;
        let m = model.unwrap_or(ModelBounds { layers: 24, positions: 512 });
        let mut errs = Vec::new();
        let mut ok = |r: Result<usize, FieldError>| r.map_err(|e| errs.push(e)).unwrap_or(0);
        let last_n = if self.mode == "last" { ok(whole("ft-last", "the layers to train (N)", &self.last_n, 1, m.layers)) } else { 0 };
        let lora_r = if self.mode == "lora" { ok(whole("ft-lora-r", "the LoRA rank (r)", &self.lora_r, 1, 1024)) } else { 0 };
        let epochs = ok(whole("ft-epochs", "epochs", &self.epochs, EPOCHS.0, EPOCHS.1));
        let batch = ok(whole("ft-batch", "the batch size", &self.batch, BATCH.0, BATCH.1));
        let max_len = ok(whole("ft-maxlen", "the maximum length", &self.max_len, MIN_LEN, m.positions));
        let lr = learning_rate("ft-lr", &self.lr).map_err(|e| errs.push(e)).unwrap_or(0.0);
        let mode = match self.mode.as_str() {
            "full" => Adopt::Full,
            "last" => Adopt::Last(last_n),
            "feature" => Adopt::Feature,
            "lora" => Adopt::Lora(lora_r),
            other => {
                errs.push(FieldError { field: "ft-mode", message: format!("unknown way to adopt the encoder “{other}”") });
                Adopt::Full
            }
        };
        if errs.is_empty() {
            Ok(TrainSettings { mode, pooling: if self.pooling == "mean" { Pooling::Mean } else { Pooling::Cls }, lr, epochs, batch, max_len, run })
        } else {
            Err(errs)
        }
    }
}

/// The pretraining form as typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PretrainForm {
    pub mlm: bool,
    pub sop: bool,
    pub steps: String,
    pub lr: String,
    pub batch: String,
    /// "full" or "lora", and LoRA's rank as typed.
    pub mode: String,
    pub lora_r: String,
}

impl PretrainForm {
    pub fn parse(&self, model: Option<ModelBounds>, probe: Option<String>) -> Result<PretrainSettings, Vec<FieldError>> {
        use crate::session::limits::*;
        let max_len = model.map(|m| m.positions.min(64)).unwrap_or(64);
        let mut errs = Vec::new();
        let mut ok = |r: Result<usize, FieldError>| r.map_err(|e| errs.push(e)).unwrap_or(0);
        let steps = ok(whole("pt-steps", "the steps", &self.steps, PRETRAIN_STEPS.0, PRETRAIN_STEPS.1));
        let batch = ok(whole("pt-batch", "the batch size", &self.batch, BATCH.0, BATCH.1));
        let lora_r = (self.mode == "lora").then(|| ok(whole("pt-lora-r", "the LoRA rank (r)", &self.lora_r, 1, 1024)));
        let lr = learning_rate("pt-lr", &self.lr).map_err(|e| errs.push(e)).unwrap_or(0.0);
        if !self.mlm && !self.sop {
            errs.push(FieldError { field: "pt-mlm", message: "choose at least one objective: masked words or sentence order".into() });
        }
        if errs.is_empty() {
            Ok(PretrainSettings { mlm: self.mlm, sop: self.sop, steps, lr, batch, max_len, probe, probe_every: 5, lora_r })
        } else {
            Err(errs)
        }
    }
}

/// The from-scratch model form as typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScratchForm {
    pub hidden: String,
    pub layers: String,
    pub heads: String,
    pub vocab: String,
    pub causal: bool,
    pub gpt2: bool,
    pub llama: bool,
}

/// Sizes offered for a model made in the page (a browser trains small models; the CLI takes more).
pub mod scratch_limits {
    pub const HIDDEN: (usize, usize) = (8, 1024);
    pub const LAYERS: (usize, usize) = (1, 12);
    pub const HEADS: (usize, usize) = (1, 16);
    pub const VOCAB: (usize, usize) = (100, 30_000);
}

impl ScratchForm {
    pub fn parse(&self) -> Result<ScratchSettings, Vec<FieldError>> {
        use scratch_limits::*;
        let mut errs = Vec::new();
        let mut ok = |r: Result<usize, FieldError>| r.map_err(|e| errs.push(e)).unwrap_or(0);
        let hidden = ok(whole("scratch-hidden", "the hidden size", &self.hidden, HIDDEN.0, HIDDEN.1));
        let layers = ok(whole("scratch-layers", "the layers", &self.layers, LAYERS.0, LAYERS.1));
        let heads = ok(whole("scratch-heads", "the heads", &self.heads, HEADS.0, HEADS.1));
        let vocab = ok(whole("scratch-vocab", "the vocabulary", &self.vocab, VOCAB.0, VOCAB.1));
        if errs.is_empty() && hidden % heads != 0 {
            errs.push(FieldError { field: "scratch-heads", message: format!("the heads must divide the hidden size: {hidden} is not a multiple of {heads}") });
        }
        if errs.is_empty() && self.llama && (hidden / heads) % 2 != 0 {
            errs.push(FieldError { field: "scratch-heads", message: format!("rotary positions turn pairs of values: each head must be an even width, and {hidden} / {heads} is {}", hidden / heads) });
        }
        if errs.is_empty() {
            Ok(ScratchSettings { hidden, layers, heads, vocab, causal: self.causal || self.gpt2 || self.llama, gpt2: self.gpt2, llama: self.llama })
        } else {
            Err(errs)
        }
    }
}

/// The generation form as typed: how many words to add, top-k (1: greedy), the temperature and the
/// seed. The ranges are `GenerateConfig::validate`'s (the CLI's).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenerateForm {
    pub max_new: String,
    pub top_k: String,
    pub temperature: String,
    pub seed: String,
}

impl GenerateForm {
    pub fn parse(&self) -> Result<crate::session::GenerateConfig, Vec<FieldError>> {
        use crate::session::{MAX_NEW, MAX_TOP_K};
        let mut errs = Vec::new();
        let mut ok = |r: Result<usize, FieldError>| r.map_err(|e| errs.push(e)).unwrap_or(0);
        let max_new = ok(whole("gen-max-new", "the new words", &self.max_new, 1, MAX_NEW));
        let top_k = ok(whole("gen-top-k", "top-k", &self.top_k, 1, MAX_TOP_K));
        let seed = ok(whole("gen-seed", "the seed", &self.seed, 0, u32::MAX as usize));
        let t = self.temperature.trim();
        let temperature = match t.parse::<f32>() {
            Ok(v) if v.is_finite() && v > 0.0 && v <= 100.0 => v,
            Ok(_) => {
                errs.push(FieldError { field: "gen-temperature", message: format!("the temperature must be a number in (0, 100]; got {t}") });
                1.0
            }
            Err(_) => {
                errs.push(FieldError { field: "gen-temperature", message: format!("the temperature must be a number in (0, 100], like 0.8; “{t}” is not a number") });
                1.0
            }
        };
        if errs.is_empty() {
            Ok(crate::session::GenerateConfig { max_new, top_k, temperature, seed: seed as u64 })
        } else {
            Err(errs)
        }
    }
}
