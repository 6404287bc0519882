//! The session core: what the page's worker and the command line share. A [`Session`] owns the GPU,
//! the loaded model (and, in the page, a companion of the other kind: masked beside causal), the
//! data, and the run control, and runs every kind of run on them: pretraining, fine-tuning,
//! generation, inference, export. The adapters (`app::worker`, `bin/bertlab`) only turn commands
//! into calls and events into messages or progress bars.
//!
//! A run takes the model out of the session for as long as it holds it ([`Session::with_model`]);
//! a command that comes meanwhile is answered "busy: <what holds it>", never "no model is loaded".
//! Runs roll back to the weights they started from when a step goes non-finite, and hand their
//! snapshots to a [`Store`].

pub mod measure;
mod spec;
pub mod store;
pub mod view;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;


pub use measure::MEMORY_BATCH;
pub use spec::RunSpec;
pub use store::{NoStore, Snapshot, SnapshotKind, SnapshotMeta, Store};

// The session's vocabulary: the run settings and the types the adapters (the page, the CLI) name,
// re-exported so that they import them from here and from no layer below (src/lib.rs).
pub use crate::io::export::{self, ModelCard, RunSettings};
pub use crate::io::{model_dir, zip};
pub use crate::model::config::{Body, LoraSpec};
pub use crate::model::family::Family;
pub use crate::model::{Heads, ModelConfig, Pooling};
pub use crate::text::dataset::{self, Dataset, Severity};
pub use crate::train::generate::{GenerateConfig, MAX_NEW, MAX_TOP_K};
pub use crate::train::masking::Outcome;
pub use crate::train::spec::Adopt;
pub use crate::train::trainer::{limits, Event, PretrainConfig, TrainConfig};
pub use crate::train::{checkpoint, metrics};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::safetensors;
use crate::model::Model;
use crate::model::params::Param;
use crate::text::tokenizer::Tokenizer;
use crate::train::generate::{generate_until, Stop};
use crate::train::trainer::{self, Control, HeldOut, PretrainReport, TrainReport};

/// A model ready to use: its weights on the GPU, its tokenizer and labels, and where it came from.
pub struct Loaded {
    pub model: Model,
    pub tok: Tokenizer,
    /// Class names in the classifier's row order (empty without a classifier).
    pub labels: Vec<String>,
    /// The tokenizer's files, to travel with exports and snapshots.
    pub tokenizer_files: Vec<(String, Vec<u8>)>,
    pub source: String,
}

/// What a model is: its family and shape, the layer it is made of, its heads and its tokenizer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    /// The config's model_type and how people write it ("roberta", "RoBERTa").
    pub model_type: String,
    pub family: String,
    /// What transformers' class for it with these heads is.
    pub architecture: String,
    /// The layer, in words.
    pub layer: String,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    /// The embedding tables' width where it differs from the hidden size (ALBERT, small ELECTRAs).
    pub embedding_size: Option<usize>,
    pub shared_layers: bool,
    pub vocab: usize,
    pub max_tokens: usize,
    pub params: usize,
    pub lm_head: bool,
    pub sop_head: bool,
    pub labels: Vec<String>,
    pub mask_token: Option<String>,
    /// The framing of a text, as the tokenizer gives it for "a".
    pub framing: String,
    pub lora: Option<String>,
    /// The attention in words: heads and their size; grouped-query attention's key/value heads;
    /// rotary positions' theta and scaling; the LM head tied or not.
    pub attention: String,
    /// What it needs in GPU memory, in words: its weights; generating (the key-value cache); a
    /// training step at [`MEMORY_BATCH`], all weights or LoRA.
    pub memory: String,
    /// The tokens that end a generated text (a causal model's), as text.
    pub end_tokens: Vec<String>,
}

impl Loaded {
    /// What this model is (see [`ModelInfo`]).
    pub fn describe(&self) -> ModelInfo {
        let c = &self.model.cfg;
        let layer = c.family.layer();
        // the special tokens around a text, with the text as "A"
        let framing = self.tok.encode("a", None, 16).map(|e| {
            let mut parts: Vec<String> = Vec::new();
            for (&id, &special) in e.ids.iter().zip(&e.special) {
                let p = if special { self.tok.id_to_token(id) } else { "A".to_string() };
                if parts.last() != Some(&p) || special {
                    parts.push(p);
                }
            }
            parts.join(" ")
        });
        let framing = framing.unwrap_or_default();
        ModelInfo {
            model_type: c.family.model_type().to_string(),
            family: c.family.display().to_string(),
            architecture: export::architecture(c, self.model.heads),
            layer: format!(
                "{}{} {}, {} positions, {}{} feed-forward{}{}",
                if layer.causal { "causal, " } else { "" },
                if layer.pre_norm { "pre-norm" } else { "post-norm" },
                layer.norm,
                layer.positions,
                match &c.modern {
                    Some(m) if layer.local_attention => format!("global attention every {} layers and local ({} tokens either side) between, ", m.global_every, m.window),
                    _ => String::new(),
                },
                layer.feed_forward,
                if layer.biases { ", biases" } else { ", no biases" },
                if c.shared_layers { format!(", one set of weights for all {} layers", c.num_hidden_layers) } else { String::new() },
            ),
            layers: c.num_hidden_layers,
            hidden: c.hidden_size,
            heads: c.num_attention_heads,
            intermediate: c.intermediate_size,
            embedding_size: c.embedding_size,
            shared_layers: c.shared_layers,
            vocab: c.vocab_size,
            max_tokens: c.max_tokens(),
            params: self.model.params.total_params(),
            lm_head: self.model.heads.lm,
            sop_head: self.model.heads.sop,
            labels: self.labels.clone(),
            mask_token: (!c.is_decoder).then(|| self.tok.mask_token()),
            framing,
            lora: c.lora.as_ref().map(|l| format!("r {} on {}", l.r, l.targets.join(", "))),
            attention: self.attention_words(),
            memory: self.memory_words(),
            end_tokens: if c.is_decoder { self.tok.end_ids().iter().map(|&i| self.tok.id_to_token(i)).collect() } else { Vec::new() },
        }
    }

    fn attention_words(&self) -> String {
        let c = &self.model.cfg;
        let (h, d) = (c.num_attention_heads, c.head_dim());
        let mut s = match c.kv_heads() {
            kv if kv != h => format!("{h} query heads over {kv} key/value heads (grouped-query), each {d} wide"),
            _ => format!("{h} heads of {d}"),
        };
        if let Some(l) = &c.llama {
            s.push_str(&format!("; rotary positions, theta {}", l.rope_theta));
            match l.rope {
                crate::model::config::RopeScaling::Default => {}
                crate::model::config::RopeScaling::Linear { factor } => s.push_str(&format!(", scaled linearly by {factor}")),
                crate::model::config::RopeScaling::Llama3 { factor, original_max_position_embeddings, .. } => s.push_str(&format!(", Llama 3's scaling (factor {factor} from {original_max_position_embeddings} positions)")),
            }
            if l.qk_norm {
                s.push_str("; RMSNorm on each query and key head");
            }
            s.push_str(if l.tied { "; the LM head is the word embeddings (tied)" } else { "; its own LM head (lm_head)" });
        }
        s
    }

    /// A model directory's model, with notes for the person who loaded it.
    pub fn from_dir(lm: model_dir::LoadedModel, source: String) -> (Loaded, Vec<String>) {
        let mut notes = Vec::new();
        if !lm.report.initialised.is_empty() {
            notes.push(format!("initialised fresh: {}", lm.report.initialised.join(", ")));
        }
        if !lm.report.unused.is_empty() {
            notes.push(format!("{} tensors in the checkpoint are not used: {}", lm.report.unused.len(), lm.report.unused.iter().take(6).cloned().collect::<Vec<_>>().join(", ")));
        }
        if !lm.report.replaced.is_empty() {
            notes.push(format!(
                "the model's classifier was for other labels; a fresh head for the {} labels of the data was built and the encoder kept ({})",
                lm.model.heads.num_labels,
                lm.report.replaced.join("; ")
            ));
        }
        (Loaded { model: lm.model, tok: lm.tokenizer, labels: lm.labels, tokenizer_files: lm.tokenizer_files, source }, notes)
    }

    /// A model made from nothing: a WordPiece vocabulary trained on `texts` and fresh weights.
    pub fn scratch(gpu: &Gpu, s: &Scratch, texts: &[String]) -> Result<Loaded> {
        let tok = Tokenizer::train_wordpiece(texts, s.vocab)?;
        let causal = s.causal || matches!(s.body, Body::Gpt2 | Body::Llama);
        let mut cfg = match s.body {
            Body::Gpt2 => ModelConfig::small_gpt2(tok.vocab_size, s.hidden, s.layers, s.heads),
            // SmolLM2's layer (a third as many key/value heads where the heads divide by 3), the
            // vocabulary trained here
            Body::Llama => ModelConfig { vocab_size: tok.vocab_size, max_position_embeddings: 512, eos_token_id: Some(tok.sep as usize), ..ModelConfig::small_of(crate::model::family::Family::Llama, s.hidden, s.layers, s.heads) },
            _ => ModelConfig::small(tok.vocab_size, s.hidden, s.layers, s.heads),
        };
        cfg.is_decoder = causal;
        cfg.pad_token_id = tok.pad as usize;
        cfg.validate()?;
        // a causal model has no sentence-order head: its [CLS] sees only itself
        let (model, _) = Model::new(gpu, cfg, Heads { lm: true, sop: !causal, num_labels: 0 }, None, s.seed)?;
        let tokenizer_files = tok.files()?;
        let kind = if s.body == Body::Llama {
            "Llama-shaped (SmolLM2's layer: RMSNorm, rotary positions, SwiGLU, grouped-query attention) model"
        } else if s.body == Body::Gpt2 {
            "GPT-2 (pre-LN, causal) model"
        } else if causal {
            "GPT-style (causal) model"
        } else {
            "BERT"
        };
        let source = format!("from scratch: a {kind}, {} layers, hidden {}, {} heads, WordPiece vocabulary trained on your text", s.layers, s.hidden, s.heads);
        Ok(Loaded { model, tok, labels: Vec::new(), tokenizer_files, source })
    }

    /// The model a snapshot saved, with its optimizer state; and the step it was taken at.
    pub fn from_snapshot(gpu: &Gpu, snap: &Snapshot) -> Result<(Loaded, usize)> {
        let m = &snap.meta;
        let st = safetensors::parse(&snap.weights).map_err(|e| Error::Data { line: 0, message: format!("the saved weights: {e}") })?;
        // every tensor is in the snapshot: nothing is drawn from the seed
        let (mut model, _) = Model::new(gpu, m.config.clone(), m.heads, Some(&st), DEFAULT_SEED)?;
        model.pooling = m.pooling;
        let step = if snap.optimizer.is_empty() { 0 } else { checkpoint::restore_optimizer(gpu, &mut model, &snap.optimizer)? };
        let files: BTreeMap<String, Vec<u8>> = snap.tokenizer_files.iter().cloned().collect();
        let tok = model_dir::tokenizer_of(&files).map_err(|e| Error::Data { line: 0, message: format!("the saved session's tokenizer: {e}") })?;
        Ok((Loaded { model, tok, labels: m.labels.clone(), tokenizer_files: snap.tokenizer_files.clone(), source: m.source.clone() }, step))
    }

    /// What a snapshot of this model records besides its tensors.
    pub fn meta(&self, step: usize, kind: SnapshotKind, run: Option<RunSpec>) -> SnapshotMeta {
        SnapshotMeta {
            step,
            kind,
            source: self.source.clone(),
            config: self.model.cfg.clone(),
            heads: self.model.heads,
            labels: self.labels.clone(),
            pooling: self.model.pooling,
            run,
            finished: false,
            data: None,
            saved_at: String::new(),
        }
    }

    /// The model now, as a snapshot.
    pub async fn snapshot(&self, gpu: &Gpu, meta: SnapshotMeta) -> Result<Snapshot> {
        let weights = checkpoint::weights_bytes(gpu, &self.model).await?;
        let optimizer = checkpoint::optimizer_bytes(gpu, &self.model, meta.step).await?;
        Ok(Snapshot { meta, weights, optimizer, tokenizer_files: self.tokenizer_files()? })
    }

    /// The tokenizer's files (written from the tokenizer when it came without any).
    pub fn tokenizer_files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        if self.tokenizer_files.is_empty() {
            self.tok.files()
        } else {
            Ok(self.tokenizer_files.clone())
        }
    }

    /// The tokenizer's files as an export carries them: a classifier's tokenizer.json frames texts
    /// as BERT Lab framed them when training it (GPT-2's carries no framing of its own; see
    /// `Tokenizer::export_json`), so that AutoTokenizer and pipeline() give the same ids. A language
    /// model's stay as they came (a GPT-2 continues a prompt that does not end in <|endoftext|>).
    pub fn export_tokenizer_files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let files = self.tokenizer_files()?;
        if self.model.heads.num_labels == 0 {
            return Ok(files);
        }
        let json = self.tok.export_json()?.into_bytes();
        let mut out: Vec<(String, Vec<u8>)> = files.into_iter().filter(|(n, _)| n != "tokenizer.json").collect();
        out.insert(0, ("tokenizer.json".to_string(), json));
        Ok(out)
    }

    /// The same model with `heads` and the adapters `lora` (fresh ones, A Kaiming-uniform and B
    /// zero, where it had none or others; none at all with `None`), its other tensors kept; the
    /// tensors it gains (a head, LoRA's A) are drawn from `seed`.
    async fn rebuilt(self, gpu: &Gpu, heads: Heads, lora: Option<LoraSpec>, fresh_classifier: bool, seed: u64) -> std::result::Result<Loaded, (Loaded, Error)> {
        let same_lora = self.model.cfg.lora == lora;
        if self.model.heads == heads && !fresh_classifier && same_lora {
            return Ok(self);
        }
        let mut tensors = match self.model.params.read_all(gpu).await {
            Ok(t) => t,
            Err(e) => return Err((self, e.into())),
        };
        tensors.retain(|(n, _, _)| {
            let part = crate::model::params::Part::of_in(self.model.cfg.family, n);
            !(fresh_classifier && part == crate::model::params::Part::Classifier) && (same_lora || part != crate::model::params::Part::Lora)
        });
        let cfg = ModelConfig { lora, ..self.model.cfg.clone() };
        let bytes = safetensors::serialize(&tensors, &BTreeMap::new());
        let rebuilt = safetensors::parse(&bytes).map_err(Error::from).and_then(|st| Model::new(gpu, cfg, heads, Some(&st), seed));
        match rebuilt {
            Ok((mut m, _)) => {
                m.pooling = self.model.pooling;
                Ok(Loaded { model: m, ..self })
            }
            Err(e) => Err((self, e)),
        }
    }

    /// The parameters a fine-tuning run adopting this model by `adopt` trains, with a head of
    /// `labels` classes (LoRA's adapters counted as they would be added).
    pub fn trainable_for(&self, adopt: crate::train::spec::Adopt, labels: usize) -> usize {
        use crate::model::params::Part;
        let cfg = &self.model.cfg;
        let body: usize = self.model.params.params.iter().filter(|p| !matches!(p.part, Part::Classifier | Part::Lora) && adopt.trainable(p.part, cfg.num_hidden_layers)).map(|p| p.numel()).sum();
        let head = if cfg.body == Body::Gpt2 { cfg.hidden_size * labels } else { (cfg.hidden_size + 1) * labels };
        let adapters = match adopt {
            crate::train::spec::Adopt::Lora(r) => LoraSpec::new(r, cfg.family).modules(cfg).iter().map(|(_, i, o)| r * (i + o)).sum(),
            _ => 0,
        };
        body + head + adapters
    }

    /// A copy of the model with its LoRA adapters folded into the weights they adapt.
    pub async fn merged(&self, gpu: &Gpu) -> Result<Model> {
        let (cfg, tensors) = export::merge_lora(&self.model.cfg, self.model.params.read_all(gpu).await?);
        let bytes = safetensors::serialize(&tensors, &BTreeMap::new());
        // every tensor is in `tensors`: nothing is drawn from the seed
        let (mut m, _) = Model::new(gpu, cfg, self.model.heads, Some(&safetensors::parse(&bytes)?), DEFAULT_SEED)?;
        m.pooling = self.model.pooling;
        Ok(m)
    }

    /// One sequence through the model, dropout off, leaving its hidden states and attention
    /// readable.
    pub async fn forward_eval(&mut self, gpu: &Gpu, ids: &[u32], types: &[u32]) -> Result<()> {
        // unpadded: the attention the page reads back is (1, H, T, T) over the text's own tokens
        let n = ids.len();
        let hb = crate::train::batches::HostBatch { b: 1, t: n, ids: ids.to_vec(), types: types.to_vec(), mask: vec![1; n], ..Default::default() };
        let batch = hb.to_gpu(gpu, &self.model.cfg)?;
        let mut step = gpu.begin_step("inference");
        self.model.forward(gpu, &mut step, &batch, crate::model::Mode::Eval)?;
        Ok(step.submit().await?)
    }

    /// Mean-pooled last hidden states of `text` (dropout off).
    async fn embed(&mut self, gpu: &Gpu, text: &str, max_len: usize) -> Result<Vec<f32>> {
        let e = self.tok.encode(text, None, max_len)?;
        self.forward_eval(gpu, &e.ids, &e.type_ids).await?;
        let h = gpu.read_f32(self.model.last_hidden().ok_or_else(|| Error::Internal("the forward pass left no hidden states".into()))?).await?;
        let (n, c) = (e.ids.len(), self.model.cfg.hidden_size);
        Ok((0..c).map(|j| (0..n).map(|t| h[t * c + j]).sum::<f32>() / n as f32).collect())
    }
}

/// A from-scratch model's shape.
#[derive(Debug, Clone)]
pub struct Scratch {
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub body: Body,
    /// Causal attention on a BERT body (a GPT-2 body is always causal).
    pub causal: bool,
    pub seed: u64,
}

/// The data in use: its name, its text (kept for snapshots and plain-text pretraining) and the
/// parsed rows, shared with a run rather than copied.
pub struct Data {
    pub name: String,
    pub text: Rc<str>,
    pub ds: Rc<Dataset>,
    /// Non-empty lines of the text.
    pub lines: usize,
}

impl Data {
    /// Texts to pretrain on: the labeled examples' texts, or every non-empty line of plain text.
    pub fn pretrain_texts(&self) -> Vec<String> {
        if self.ds.examples.len() >= 8 {
            self.ds.examples.iter().map(|e| e.text.clone()).collect()
        } else {
            self.text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
        }
    }

    /// One line on what the data is, for a model card.
    pub fn summary(&self) -> String {
        if self.ds.examples.is_empty() {
            format!("{} ({} lines of text)", self.name, self.lines)
        } else {
            format!("{}: {} examples, labels {}", self.name, self.ds.examples.len(), self.ds.label_counts().iter().map(|(l, n)| format!("{l} ({n})")).collect::<Vec<_>>().join(", "))
        }
    }
}

/// What a model taken for a run becomes before it runs.
struct Reshape {
    /// The run's class names (None: the model's own).
    labels: Option<Vec<String>>,
    heads: Heads,
    lora: Option<LoraSpec>,
    fresh_classifier: bool,
    /// The run's seed, which the tensors the model gains are drawn from.
    seed: u64,
}

/// What holds the model while it is out of the session.
#[derive(Default)]
struct Slot {
    loaded: Option<Loaded>,
    companion: Option<Loaded>,
    held_by: Option<&'static str>,
    /// The holder is a run (pretraining, fine-tuning): it can be paused or stopped.
    run: bool,
}

/// What a command that finds the model held is told: what holds it, and what to do.
fn busy(holder: &str, run: bool) -> Error {
    let hint = if run {
        "pause or stop it first"
    } else if holder == GENERATING {
        "wait for it to finish, or press Stop"
    } else {
        "wait for it to finish"
    };
    Error::Busy(format!("{holder}; {hint}"))
}

fn no_model() -> Error {
    Error::Usage("no model is loaded: load the default model, one from the hub or your files, or make one from scratch".into())
}

/// The seed of a session's fresh tensors until it is told another ([`Session::set_seed`]), and of
/// the page's runs.
pub const DEFAULT_SEED: u64 = 42;

/// How a refusal to adopt a model with LoRA adapters by another way begins: the page offers its
/// merge beside it, the command line `bertlab export --merge`.
pub const ADAPTERS_CARRIED: &str = "this model carries LoRA adapters";

/// What the model is doing while generation holds it (the page's busy message names it).
pub const GENERATING: &str = "the model is continuing a text";

/// A run's result: the trainer's report, and the step at which it went non-finite if it did (the
/// weights are then back to where they were before the run).
pub struct Ran<R> {
    pub report: R,
    pub rolled_back: Option<usize>,
}

/// A fine-tuning run's result, with the examples it trained and validated on.
pub struct Trained {
    pub ran: Ran<TrainReport>,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
}

/// A generated continuation.
pub struct Generated {
    pub ids: Vec<u32>,
    pub text: String,
    pub stop: Stop,
}

pub struct Session {
    gpu: Rc<Gpu>,
    slot: RefCell<Slot>,
    data: RefCell<Option<Data>>,
    control: Control,
    stop_generating: Cell<bool>,
    /// The last fine-tuning run's settings, written into an export's train_hf.py.
    last_run: RefCell<Option<RunSettings>>,
    /// The seed of the tensors a load initialises fresh (a head the checkpoint lacks); a run draws
    /// the tensors it adds from its own seed.
    seed: Cell<u64>,
}

impl Session {
    pub fn new(gpu: Rc<Gpu>) -> Session {
        Session { gpu, slot: RefCell::default(), data: RefCell::default(), control: Control::default(), stop_generating: Cell::new(false), last_run: RefCell::default(), seed: Cell::new(DEFAULT_SEED) }
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// The seed of the tensors the next loads initialise fresh (the CLI's `--seed`).
    pub fn set_seed(&self, seed: u64) {
        self.seed.set(seed);
    }

    /// Pause, resume and cancel for the run in progress.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Stops the generation under way after the token being drawn (twice, or after the end: nothing).
    pub fn stop_generating(&self) {
        self.stop_generating.set(true);
    }

    /// Whether a run (pretraining, fine-tuning) holds the model.
    pub fn running(&self) -> bool {
        self.slot.borrow().run
    }

    /// What the model in use is, for `bertlab info` and the model panel (None before one is loaded).
    pub fn describe(&self) -> Option<ModelInfo> {
        self.peek(|l| l.describe())
    }

    /// Reads the model in place (None while a command holds it, or before one is loaded).
    pub fn peek<T>(&self, f: impl FnOnce(&Loaded) -> T) -> Option<T> {
        self.slot.borrow().loaded.as_ref().map(f)
    }

    /// Reads the companion model (the last one of the other kind).
    pub fn peek_companion<T>(&self, f: impl FnOnce(&Loaded) -> T) -> Option<T> {
        self.slot.borrow().companion.as_ref().map(f)
    }

    /// The data in use, read in place.
    pub fn data<T>(&self, f: impl FnOnce(Option<&Data>) -> T) -> T {
        f(self.data.borrow().as_ref())
    }

    /// Makes `bytes` (a file or pasted text called `name`) the data in use. Input that is no data at
    /// all (not text, empty, over the size limit) is refused with its reason, and the data in use
    /// stays; otherwise the previous data is let go before the new text is kept.
    pub fn set_data(&self, name: String, bytes: Vec<u8>) -> Result<Rc<Dataset>> {
        let ds = Rc::new(dataset::parse(&bytes, None));
        if ds.unreadable {
            let why = ds.why_untrainable().unwrap_or_default();
            let kept = self.data(|d| d.map(|d| format!("; {} stays in use", d.name)));
            return Err(Error::Data { line: 0, message: format!("{name}: {why}{}", kept.unwrap_or_default()) });
        }
        *self.data.borrow_mut() = None;
        let lines = bytes.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
        // invalid UTF-8 was reported per line by the parser; the kept text replaces those bytes
        let text = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        *self.data.borrow_mut() = Some(Data { name, text: Rc::from(text), ds: ds.clone(), lines });
        Ok(ds)
    }

    /// The texts to pretrain on, from the data in use.
    pub fn pretrain_texts(&self) -> Result<Vec<String>> {
        self.data(|d| d.map(Data::pretrain_texts)).ok_or_else(|| Error::Data { line: 0, message: "bring some text first (paste it, upload a file, or try the sample corpus)".into() })
    }

    /// Ok when a command could take the model now; else what holds it (or that there is none).
    pub fn free(&self) -> Result<()> {
        let s = self.slot.borrow();
        if let (Some(holder), None) = (s.held_by, &s.loaded) {
            return Err(busy(holder, s.run));
        }
        if s.loaded.is_none() {
            return Err(no_model());
        }
        Ok(())
    }

    fn take(&self, what: &'static str, run: bool) -> Result<Loaded> {
        self.free()?;
        let mut s = self.slot.borrow_mut();
        let l = s.loaded.take().ok_or_else(no_model)?;
        s.held_by = Some(what);
        s.run = run;
        if run {
            self.control.resume();
        }
        Ok(l)
    }

    fn put(&self, l: Loaded) {
        let mut s = self.slot.borrow_mut();
        s.loaded = Some(l);
        s.held_by = None;
        s.run = false;
    }

    /// Runs `f` on the model, which is held by `what` meanwhile and put back on every path.
    pub async fn with_model<T>(&self, what: &'static str, f: impl AsyncFnOnce(&Gpu, &mut Loaded) -> Result<T>) -> Result<T> {
        let mut l = self.take(what, false)?;
        let r = f(&self.gpu, &mut l).await;
        self.put(l);
        r
    }

    /// Runs `f` on the companion model, if there is one.
    pub async fn with_companion<T>(&self, f: impl AsyncFnOnce(&Gpu, &mut Loaded) -> T) -> Option<T> {
        let mut c = self.slot.borrow_mut().companion.take()?;
        let r = f(&self.gpu, &mut c).await;
        self.slot.borrow_mut().companion = Some(c);
        Some(r)
    }

    /// Makes `l` the model in use; refused while a command holds the current one (it would put that
    /// one back over `l` when it ends). The model it replaces is kept as the companion when it is of
    /// the other kind (masked vs causal); a model of the same kind is let go.
    pub fn install(&self, l: Loaded) -> Result<()> {
        let mut s = self.slot.borrow_mut();
        if let (Some(holder), None) = (s.held_by, &s.loaded) {
            return Err(Error::Busy(format!("{holder}; load or make the new model when it has finished")));
        }
        if let Some(old) = s.loaded.take() {
            if old.model.cfg.is_decoder != l.model.cfg.is_decoder {
                s.companion = Some(old);
            }
        }
        s.loaded = Some(l);
        Ok(())
    }

    /// Loads a model directory (file name -> bytes) and makes it the model in use; `heads`
    /// overrides the heads the checkpoint carries. Returns notes for the person who loaded it.
    pub fn load(&self, files: &BTreeMap<String, Vec<u8>>, heads: Option<Heads>, source: String) -> Result<Vec<String>> {
        if self.running() {
            return Err(Error::Busy("a run is in progress; stop it before loading another model".into()));
        }
        let lm = model_dir::load(&self.gpu, files, heads, self.seed.get())?;
        let (l, notes) = Loaded::from_dir(lm, source);
        self.install(l)?;
        Ok(notes)
    }

    /// Loads a base model directory with a PEFT LoRA adapter directory on it and makes it the model in
    /// use (see `model_dir::load_adapted`).
    pub fn load_adapted(&self, base: &BTreeMap<String, Vec<u8>>, adapter: &BTreeMap<String, Vec<u8>>, heads: Option<Heads>, source: String) -> Result<Vec<String>> {
        if self.running() {
            return Err(Error::Busy("a run is in progress; stop it before loading another model".into()));
        }
        let lm = model_dir::load_adapted(&self.gpu, base, adapter, heads, self.seed.get())?;
        let (l, notes) = Loaded::from_dir(lm, source);
        self.install(l)?;
        Ok(notes)
    }

    /// Puts a PEFT LoRA adapter directory (`adapter_config.json`, `adapter_model.safetensors`, and
    /// a `config.json` with its labels where BERT Lab wrote it) on the model in use, which is its
    /// base, and makes the result the model in use: the page's file picker takes an adapter's files
    /// this way (one folder at a time). The base goes in as it is, less a classifier of its own (the
    /// adapter brings its head, PEFT's modules_to_save). An adapter whose shapes do not fit the base
    /// is refused by name, and the model in use stays.
    pub async fn adapt(&self, adapter: &BTreeMap<String, Vec<u8>>, source: String) -> Result<Vec<String>> {
        let base = self
            .with_model("reading the base model", async |g, l| {
                if l.model.cfg.lora.is_some() {
                    return Err(Error::Unsupported("the model in use already carries LoRA adapters: load the adapter's base model first (the default model, or the base's files), then choose the adapter's files".into()));
                }
                let mut tensors = l.model.params.read_all(g).await?;
                tensors.retain(|(n, _, _)| crate::model::params::Part::of_in(l.model.cfg.family, n) != crate::model::params::Part::Classifier);
                let heads = Heads { num_labels: 0, ..l.model.heads };
                Ok(export::export_files(&l.model.cfg, heads, tensors, &[], &l.tokenizer_files()?, &ModelCard::default()))
            })
            .await?;
        self.load_adapted(&base.into_iter().collect(), adapter, None, source)
    }

    /// Makes the model a snapshot saved the one in use, with its optimizer state; returns the step
    /// it was taken at.
    pub fn restore(&self, snap: &Snapshot) -> Result<usize> {
        if self.running() {
            return Err(Error::Busy("a run is in progress; stop it before restoring a saved session".into()));
        }
        let (l, step) = Loaded::from_snapshot(&self.gpu, snap)?;
        self.install(l)?;
        Ok(step)
    }

    /// Pretrains the model on `texts` (masked LM and/or sentence order; next word for a causal
    /// model), adding the heads the objectives need. Checkpoints go to `store`; a run that goes
    /// non-finite is rolled back to the weights it started from.
    pub async fn pretrain(&self, spec: PretrainConfig, texts: &[String], store: &dyn Store, on: &mut dyn FnMut(Event)) -> Result<Ran<PretrainReport>> {
        let mut l = self
            .take_for_run("pretraining", |l| {
                spec.validate(&l.model.cfg)?;
                let (causal, h) = (l.model.cfg.is_decoder, l.model.heads);
                // LoRA pretraining adds adapters (kept when the model has these already)
                let lora = spec.lora.clone().or(l.model.cfg.lora.clone());
                Ok(Reshape { labels: None, heads: Heads { lm: h.lm || spec.mlm || causal, sop: (h.sop || spec.sop) && !causal, num_labels: h.num_labels }, lora, fresh_classifier: false, seed: spec.seed })
            })
            .await?;
        let causal = l.model.cfg.is_decoder;
        let pc = PretrainConfig { mlm: spec.mlm || causal, sop: spec.sop && !causal, max_len: spec.max_len.min(l.model.cfg.max_tokens()), ..spec };
        // a causal model is judged on lines it never saw: every tenth, of 20 lines or more
        let (train, held_out): (Vec<String>, Vec<String>) = if causal && texts.len() >= 20 {
            let (h, t): (Vec<_>, Vec<_>) = texts.iter().cloned().enumerate().partition(|(i, _)| i % 10 == 9);
            (t.into_iter().map(|x| x.1).collect(), h.into_iter().map(|x| x.1).collect())
        } else {
            (texts.to_vec(), Vec::new())
        };
        // what the run can train (sentence order as the texts will decide it, assumed on)
        let mc = l.model.cfg.clone();
        let trains = |p: &Param| trainer::pretrain_trains(p, &mc, &pc, pc.sop);
        let mut r = self.run(&mut l, RunSpec::Pretrain(pc.clone()), &trains, store, async |g, l, on| trainer::pretrain(g, &mut l.model, &l.tok, &train, &pc, &self.control, on).await, on).await;
        if let (Ok(ran), false) = (&mut r, held_out.is_empty()) {
            if ran.rolled_back.is_none() {
                match trainer::next_token_accuracy(&self.gpu, &mut l.model, &l.tok, &held_out, &train, pc.max_len).await {
                    Ok((accuracy, unigram)) => {
                        ran.report.held_out = Some(HeldOut { texts: held_out.len(), accuracy, unigram });
                    }
                    Err(e) => r = Err(e),
                }
            }
        }
        self.put(l);
        r
    }

    /// Takes the model for a run: `reshape` checks it and says what it becomes (its labels, heads,
    /// adapters, a fresh classifier), and it is rebuilt so. On any error the model goes back as it
    /// was.
    async fn take_for_run(&self, what: &'static str, reshape: impl FnOnce(&Loaded) -> Result<Reshape>) -> Result<Loaded> {
        let l = self.take(what, true)?;
        let r = match reshape(&l).and_then(|r| r.lora.as_ref().map_or(Ok(()), |lo| lo.validate(&l.model.cfg)).map(|_| r)) {
            Ok(r) => r,
            Err(e) => {
                self.put(l);
                return Err(e);
            }
        };
        let l = match r.labels {
            Some(labels) => Loaded { labels, ..l },
            None => l,
        };
        match l.rebuilt(&self.gpu, r.heads, r.lora, r.fresh_classifier, r.seed).await {
            Ok(l) => Ok(l),
            Err((l, e)) => {
                self.put(l);
                Err(e)
            }
        }
    }

    /// Fine-tunes a classifier on the data in use (`spec.val` of it held out for validation): a new
    /// classification head for the data's labels when the model's is for others, beside the heads it
    /// has (its masked-LM or next-word head keeps working; the run does not train it).
    pub async fn train(&self, mut spec: TrainConfig, store: &dyn Store, on: &mut dyn FnMut(Event)) -> Result<Trained> {
        let ds = self.data(|d| d.map(|d| d.ds.clone())).ok_or_else(|| Error::Data { line: 0, message: "bring labeled data first (paste it, upload a file, or try a sample)".into() })?;
        ds.trainable()?;
        let mut l = self
            .take_for_run("fine-tuning", |l| {
                // every setting in its range (the validation fraction among them) before the split
                spec.validate(&l.model.cfg)?;
                // a causal model (GPT-2, GPT-style BERT) reads each text's last token, not its [CLS]
                spec.pooling = Pooling::for_model(spec.pooling, &l.model.cfg)?;
                // a LoRA run adds adapters (kept when the model has these already); the other modes
                // adapt the model's own weights, which a model with adapters must have merged first
                let lora = spec.lora(&l.model.cfg);
                if lora.is_none() && l.model.cfg.lora.is_some() {
                    return Err(Error::Limit(format!("{ADAPTERS_CARRIED}: fine-tune it with LoRA, or merge the adapters into its weights first to adopt it by {}", spec.adopt)));
                }
                let nl = ds.labels.len();
                // a classifier for other labels (other names, or another count) starts afresh
                let fresh_classifier = l.model.heads.num_labels != nl || (!l.labels.is_empty() && l.labels != ds.labels);
                Ok(Reshape { labels: Some(ds.labels.clone()), heads: Heads { num_labels: nl, ..l.model.heads }, lora, fresh_classifier, seed: spec.seed })
            })
            .await?;
        let (tr, va) = dataset::stratified_split(&ds, spec.val, spec.seed);
        *self.last_run.borrow_mut() = Some(RunSettings::of(&spec, &ds.labels));
        let layers = l.model.cfg.num_hidden_layers;
        let trains = |p: &Param| spec.adopt.trainable(p.part, layers);
        let ran = self.run(&mut l, RunSpec::Train(spec.clone()), &trains, store, async |g, l, on| trainer::train_classifier(g, &mut l.model, &l.tok, &ds, &tr, &va, &spec, &self.control, on).await, on).await;
        self.put(l);
        Ok(Trained { ran: ran?, train: tr, val: va })
    }

    /// One run on `l`: the tensors it can train (`trains`) kept as they were for a rollback,
    /// checkpoints handed to `store`, and the end of the run saved when the store keeps it. The
    /// first error a store gave is the run's error when it ends (the run itself goes on without it).
    async fn run<R: Stopped>(
        &self, l: &mut Loaded, spec: RunSpec, trains: &dyn Fn(&Param) -> bool, store: &dyn Store, body: impl AsyncFnOnce(&Gpu, &mut Loaded, &mut dyn FnMut(Event)) -> Result<R>, on: &mut dyn FnMut(Event),
    ) -> Result<Ran<R>> {
        let g = &*self.gpu;
        // only what the run can change (LoRA's adapters and a head: not the whole model)
        let before = l.model.params.read_where(g, trains).await?;
        let meta = l.meta(0, SnapshotKind::Checkpoint, Some(spec));
        let data = self.data(|d| d.map(|d| d.name.clone()));
        let (tokenizer_files, mut store_err, mut nonfinite) = (l.tokenizer_files()?, None, None);
        let report = body(g, l, &mut |e| match e {
            Event::Checkpoint { step, weights, optimizer } => {
                let meta = SnapshotMeta { step, data: data.clone(), ..meta.clone() };
                if let Err(e) = store.save(Snapshot { meta, weights, optimizer, tokenizer_files: tokenizer_files.clone() }) {
                    store_err.get_or_insert(e);
                }
            }
            Event::NonFinite { step } => {
                nonfinite = Some(step);
                on(e);
            }
            e => on(e),
        })
        .await?;
        let end = if nonfinite.is_some() {
            for (name, _, v) in &before {
                if let Some(p) = l.model.params.get(name) {
                    g.write(&p.value, 0, v)?;
                }
            }
            l.model.weights_written();
            // and the optimizer as before the run: no moments of the steps rolled back
            l.model.reset_optimizer(g).await?;
            Some(SnapshotMeta { step: 0, kind: SnapshotKind::RolledBack, ..meta })
        } else if !report.stopped() {
            Some(SnapshotMeta { step: report.steps(), kind: SnapshotKind::EndOfRun, finished: true, ..meta })
        } else {
            None
        };
        if let (Some(meta), true) = (end, store.keeps_end_of_run()) {
            let snap = l.snapshot(g, SnapshotMeta { data, ..meta }).await?;
            if let Err(e) = store.save(snap) {
                store_err.get_or_insert(e);
            }
        }
        match store_err {
            Some(e) => Err(e),
            None => Ok(Ran { report, rolled_back: nonfinite }),
        }
    }

    /// Class probabilities of each text (pairs: `(a, Some(b))`), `max_len` tokens at most.
    pub async fn predict(&self, texts: &[(String, Option<String>)], max_len: usize, on: &mut dyn FnMut(Event)) -> Result<Vec<Vec<f32>>> {
        self.with_model("classifying", async |g, l| {
            if l.model.heads.num_labels == 0 {
                return Err(Error::Unsupported("this model has no classification head yet: fine-tune it on labeled data first (`bertlab train`, or the page's panel 4)".into()));
            }
            let max_len = max_len.clamp(2, l.model.cfg.max_tokens());
            let enc: Vec<_> = texts.iter().map(|(a, b)| l.tok.encode(a, b.as_deref(), max_len)).collect::<Result<_>>()?;
            trainer::predict_with_progress(g, &mut l.model, &enc.iter().collect::<Vec<_>>(), l.tok.pad, 16, on).await
        })
        .await
    }

    /// Each text's mean-pooled last hidden states (an answer any encoder can give).
    pub async fn embed(&self, texts: &[String], max_len: usize) -> Result<Vec<Vec<f32>>> {
        self.with_model("embedding texts", async |g, l| {
            let mut out = Vec::with_capacity(texts.len());
            for t in texts {
                out.push(l.embed(g, t, max_len).await?);
            }
            Ok(out)
        })
        .await
    }

    /// Continues `prompt` with a causal model; `on_token(id, token, continuation text)` hears each
    /// token as it is chosen. [`Session::stop_generating`] stops it after the token being drawn.
    pub async fn generate(&self, prompt: &str, cfg: &GenerateConfig, on_token: &mut dyn FnMut(u32, &str, String)) -> Result<Generated> {
        cfg.validate()?;
        self.stop_generating.set(false);
        let asked = || self.stop_generating.get();
        self.with_model(GENERATING, async |g, l| {
            // the one-row decode kernels read each projection's own weight: a model with LoRA
            // adapters generates from a copy with them folded in (W + (alpha/r) B A)
            let mut merged = match l.model.cfg.lora {
                Some(_) => Some(l.merged(g).await?),
                None => None,
            };
            let (tok, model) = (&l.tok, merged.as_mut().unwrap_or(&mut l.model));
            let (ids, stop) = generate_until(g, model, tok, prompt, cfg, &asked, &mut |id, t| on_token(id, t, tok.continuation(id))).await?;
            Ok(Generated { text: l.tok.decode(&ids)?, ids, stop })
        })
        .await
    }

    /// The top `k` tokens at each [MASK] of `text` (a masked model): (position, [(id, token, p)]).
    pub async fn fill_mask(&self, text: &str, k: usize) -> Result<Vec<(usize, Vec<(u32, String, f32)>)>> {
        self.with_model("predicting masked words", async |g, l| {
            if l.model.cfg.is_decoder {
                return Err(Error::Unsupported("this is a causal model (is_decoder): it predicts the next word from the words before, so it cannot fill a [MASK] from both sides; continue a text with `bertlab generate --model DIR --prompt TEXT`".into()));
            }
            if !l.model.heads.lm {
                return Err(Error::Unsupported("this model has no masked-LM head (cls.predictions.*); pretrain one with `bertlab pretrain --model DIR`".into()));
            }
            let e = l.tok.encode(text, None, l.model.cfg.max_tokens())?;
            let positions: Vec<usize> = (0..e.ids.len()).filter(|&i| e.ids[i] == l.tok.mask).collect();
            if positions.is_empty() {
                return Err(Error::Data { line: 0, message: "the text has no [MASK] token".into() });
            }
            let top = l.model.top_tokens(g, &e.ids, &e.type_ids, &positions, k).await?;
            Ok(positions.into_iter().zip(top).map(|(p, row)| (p, row.into_iter().map(|(id, pr)| (id, l.tok.piece(id), pr)).collect())).collect())
        })
        .await
    }

    /// The model's files in Hugging Face's layout (see `io::export`). The card's pooling is the
    /// model's; without a run of its own, the card takes the last fine-tuning run's settings when
    /// its labels are the model's.
    /// With `merge`, a model with LoRA adapters is written as a plain model, the adapters folded
    /// into its weights; without, as PEFT's adapter files.
    pub async fn export(&self, mut card: ModelCard, merge: bool) -> Result<Vec<(String, Vec<u8>)>> {
        let last_run = self.last_run.borrow().clone();
        self.with_model("exporting", async |g, l| {
            let tensors = l.model.params.read_all(g).await?;
            card.pooling = l.model.pooling;
            if card.run.is_none() {
                card.run = last_run.filter(|r| r.labels == l.labels);
            }
            let (cfg, tensors) = if merge { export::merge_lora(&l.model.cfg, tensors) } else { (l.model.cfg.clone(), tensors) };
            if card.run.is_none() && l.model.heads.num_labels > 0 {
                // a classifier's defaults (an adapter's with its rank)
                let defaults = TrainConfig { pooling: card.pooling, seed: card.seed, ..Default::default() };
                let defaults = match &cfg.lora { Some(lora) => TrainConfig { adopt: Adopt::Lora(lora.r), ..defaults }, None => defaults };
                card.run = Some(RunSettings::of(&defaults, &l.labels));
            }
            Ok(export::export_files(&cfg, l.model.heads, tensors, &l.labels, &l.export_tokenizer_files()?, &card))
        })
        .await
    }
}

/// What the session reads of any run's report: whether it stopped early, and its steps.
pub trait Stopped {
    fn stopped(&self) -> bool;
    fn steps(&self) -> usize;
}

impl Stopped for TrainReport {
    fn stopped(&self) -> bool {
        self.stopped.is_some()
    }
    fn steps(&self) -> usize {
        self.steps
    }
}

impl Stopped for PretrainReport {
    fn stopped(&self) -> bool {
        self.stopped.is_some()
    }
    fn steps(&self) -> usize {
        self.lm_losses.len()
    }
}
