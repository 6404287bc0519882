//! Parameters, gradients and AdamW moments, named exactly as Hugging Face's `BertModel` names them
//! (without the `bert.` prefix) plus the heads' `cls.*` and `classifier.*` names; a GPT-2 body's as
//! `GPT2Model` names them (`wte`, `wpe`, `h.{l}.*`, `ln_f`, without the `transformer.` prefix).
//!
//! Tensors live in arenas: a few large buffers, each tensor a view at a 256-byte-aligned offset, so
//! that AdamW updates a whole run of consecutive trainable tensors in one dispatch. Arenas are split
//! by weight-decay group (decayed weights / biases and LayerNorm) and by part (encoder / pooler and
//! heads, so that training a head alone allocates gradients and moments for the heads' arenas
//! only), and capped at the device's storage-binding size (BERT-base's 94 MB word embedding is one
//! arena's worth). An arena's gradient and moment buffers are allocated when one of its tensors
//! first becomes trainable.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

use super::config::{Family, ModelConfig};
use crate::gpu::{DType, Gpu, GpuBuf, GpuError};
use crate::safetensors::{self, SafeTensors};

pub struct Param {
    pub name: String,
    /// The part of the model it belongs to (read once from its name).
    pub part: Part,
    pub shape: Vec<usize>,
    /// A view of its arena's value buffer.
    pub value: GpuBuf,
    /// Views of the arena's gradient and moments, set when the parameter first becomes trainable.
    pub grad: Option<GpuBuf>,
    pub m: Option<GpuBuf>,
    pub v: Option<GpuBuf>,
    pub trainable: bool,
    /// Its arena, and its offset there in elements.
    pub arena: usize,
    pub off: usize,
}

/// One arena: the buffers its tensors are views of, and their weight-decay group.
pub struct Arena {
    pub value: GpuBuf,
    pub grad: Option<GpuBuf>,
    pub m: Option<GpuBuf>,
    pub v: Option<GpuBuf>,
    pub decays: bool,
}

impl Param {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// HF Trainer's groups: no weight decay on biases and LayerNorm weights.
    pub fn decays(&self) -> bool {
        decays(&self.name)
    }
}

#[derive(Default)]
pub struct ParamStore {
    /// In arena order: by arena, then by offset.
    pub params: Vec<Param>,
    pub arenas: Vec<Arena>,
    index: BTreeMap<String, usize>,
}

/// The part of the model a tensor belongs to: what decides which tensors a run trains, read once
/// from the tensor's Hugging Face name (BERT's and GPT-2's, as [`tensor_names`] writes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Word, position and token-type embeddings (GPT-2: `wte`, `wpe`, also its tied LM head).
    Embeddings,
    /// Encoder layer k (BERT's `encoder.layer.k`, GPT-2's `h.k`).
    Layer(usize),
    /// ALBERT's one set of layer weights, used by every layer (the top layer among them).
    SharedLayers,
    /// BERT's pooler over [CLS].
    Pooler,
    /// GPT-2's final LayerNorm, `ln_f`.
    FinalNorm,
    /// The classification head (BERT's `classifier`, GPT-2's `score`).
    Classifier,
    /// BERT's masked-LM head, `cls.predictions`.
    LmHead,
    /// BERT's sentence-order head, `cls.seq_relationship`.
    SopHead,
    /// A low-rank adapter's A or B (`<projection>.lora_A.weight`, `.lora_B.weight`).
    Lora,
}

impl Part {
    /// The part of BERT Lab's tensor `name` in a model of `family`: a family whose classifier has
    /// its own dense layer on [CLS] (RoBERTa's classifier.dense, DistilBERT's pre_classifier) holds
    /// that layer where BERT has its pooler, and it is part of the head: trained with it, saved
    /// with it.
    pub fn of_in(family: Family, name: &str) -> Part {
        match Part::of(name) {
            Part::Pooler if family.pooler_in_head() => Part::Classifier,
            Part::Layer(_) if family == Family::Albert => Part::SharedLayers,
            p => p,
        }
    }

    pub fn of(name: &str) -> Part {
        let layer = |prefix: &str| name.strip_prefix(prefix).and_then(|r| r.split('.').next()).and_then(|k| k.parse().ok());
        if name.contains(".lora_A.") || name.contains(".lora_B.") {
            Part::Lora
        } else if name.starts_with("classifier.") || name.starts_with("score.") {
            Part::Classifier
        } else if name.starts_with("cls.predictions") || name.starts_with("lm_head.") {
            Part::LmHead
        } else if name.starts_with("cls.seq_relationship") {
            Part::SopHead
        } else if name.starts_with("pooler.") {
            Part::Pooler
        } else if name.starts_with("ln_f.") {
            Part::FinalNorm
        } else if name.starts_with("final_norm.") || name == "norm.weight" {
            Part::FinalNorm
        } else if let Some(k) = layer("encoder.layer.").or_else(|| layer("h.")).or_else(|| layer("layers.")) {
            Part::Layer(k)
        } else {
            Part::Embeddings
        }
    }
}

/// HF Trainer's groups: no weight decay on biases and LayerNorm weights (GPT-2's are `ln_1`, `ln_2`
/// and `ln_f`).
pub fn decays(name: &str) -> bool {
    !(name.ends_with("bias") || name.contains("LayerNorm") || name.starts_with("ln_f.") || name.contains(".ln_") || name.ends_with("norm.weight"))
}

/// Where each tensor of `names` goes: (arena, offset) per tensor and each arena's length and decay
/// group, for arenas of at most `cap` elements. A tensor larger than `cap` gets an arena of its own
/// (and the error of binding it comes from the kernel that binds it, naming the limit).
pub fn arena_layout(names: &[(String, Vec<usize>)], cap: usize) -> (Vec<(usize, usize)>, Vec<(usize, bool)>) {
    let align = GpuBuf::BIND_ALIGN;
    let mut arenas: Vec<(usize, bool)> = Vec::new();
    // the open arena of each (decay group, part)
    let mut open: BTreeMap<(bool, u8), usize> = BTreeMap::new();
    let mut last: BTreeMap<(bool, u8), &str> = BTreeMap::new();
    let mut place = Vec::with_capacity(names.len());
    let sizes: BTreeMap<&str, usize> = names.iter().map(|(n, s)| (n.as_str(), s.iter().product::<usize>().max(1))).collect();
    let size_of = |n: String| sizes.get(n.as_str()).copied().unwrap_or(0);
    for (name, shape) in names {
        let n: usize = shape.iter().product::<usize>().max(1);
        // the body, the heads and the low-rank adapters each in arenas of their own, so that a run
        // that trains only heads or adapters gives gradients and moments to nothing else
        let part = match Part::of(name) {
            Part::Pooler | Part::LmHead | Part::SopHead | Part::Classifier if !name.starts_with("score.") => 1,
            Part::Lora => 2,
            _ => 0,
        };
        let key = (decays(name), part);
        // a layer's key and value follow its query and key with no gap: one (3C, C) projection
        let packed = part == 0 && last.get(&key).map(|prev| packs_after(prev, name)).unwrap_or(false);
        let at = open.get(&key).map(|&a| (a, if packed { arenas[a].0 } else { arenas[a].0.div_ceil(align) * align }));
        // a query opens a group of three tensors that must share an arena (equal but for
        // grouped-query attention's keys and values), a gate the SwiGLU's pair
        let group = if part != 0 {
            n
        } else if name.contains(".attention.self.query.") {
            3 * n
        } else if name.contains(".self_attn.q_proj.") {
            n + size_of(name.replace(".q_proj.", ".k_proj.")) + size_of(name.replace(".q_proj.", ".v_proj."))
        } else if name.contains(".mlp.gate_proj.") {
            n + size_of(name.replace(".gate_proj.", ".up_proj."))
        } else {
            n
        };
        let (a, off) = match at {
            Some((a, off)) if off + group <= cap => (a, off),
            _ => {
                arenas.push((0, key.0));
                open.insert(key, arenas.len() - 1);
                (arenas.len() - 1, 0)
            }
        };
        arenas[a].0 = off + n;
        last.insert(key, name);
        place.push((a, off));
    }
    (place, arenas)
}

/// Whether `name` goes right after `prev`: attention.self.key after .query, .value after .key (and
/// the Llama body's k_proj, v_proj after q_proj, k_proj; up_proj after gate_proj).
fn packs_after(prev: &str, name: &str) -> bool {
    let pairs = [(".attention.self.query.", ".attention.self.key."), (".attention.self.key.", ".attention.self.value."), (".self_attn.q_proj.", ".self_attn.k_proj."), (".self_attn.k_proj.", ".self_attn.v_proj."), (".mlp.gate_proj.", ".mlp.up_proj.")];
    pairs.iter().any(|(pa, pb)| name.contains(pb) && prev.replace(pa, pb) == name)
}

/// What loading a checkpoint did, for the UI and the tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    pub loaded: Vec<String>,
    /// Parameters the checkpoint lacked that were initialised fresh (e.g. an MLM head on MiniLM).
    pub initialised: Vec<String>,
    /// Tensors in the file that the model does not use.
    pub unused: Vec<String>,
    /// Classifier tensors whose shape in the file is for another number of labels: initialised
    /// fresh (a new task on a fine-tuned model), each with what it was and what it is now.
    pub replaced: Vec<String>,
}

/// Every tensor a GPT-2 body with `cfg` has, with GPT2Model's names and shapes: each `Conv1D`
/// weight is (in, out). The LM head is `wte` itself.
fn gpt2_tensor_names(cfg: &ModelConfig, num_labels: usize) -> Vec<(String, Vec<usize>)> {
    let (c, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let mut t: Vec<(String, Vec<usize>)> = vec![("wte.weight".into(), vec![v, c]), ("wpe.weight".into(), vec![cfg.max_position_embeddings, c])];
    let conv = |t: &mut Vec<(String, Vec<usize>)>, p: &str, inp: usize, out: usize| {
        t.push((format!("{p}.weight"), vec![inp, out]));
        t.push((format!("{p}.bias"), vec![out]));
    };
    let ln = |t: &mut Vec<(String, Vec<usize>)>, p: &str| {
        t.push((format!("{p}.weight"), vec![c]));
        t.push((format!("{p}.bias"), vec![c]));
    };
    for l in 0..cfg.num_hidden_layers {
        ln(&mut t, &format!("h.{l}.ln_1"));
        conv(&mut t, &format!("h.{l}.attn.c_attn"), c, 3 * c);
        conv(&mut t, &format!("h.{l}.attn.c_proj"), c, c);
        ln(&mut t, &format!("h.{l}.ln_2"));
        conv(&mut t, &format!("h.{l}.mlp.c_fc"), c, i);
        conv(&mut t, &format!("h.{l}.mlp.c_proj"), i, c);
    }
    ln(&mut t, "ln_f");
    if num_labels > 0 {
        // GPT2ForSequenceClassification's head: a linear score without bias
        t.push(("score.weight".into(), vec![num_labels, c]));
    }
    t
}

/// Every tensor a model with `cfg` has: (name, shape). `heads` picks which heads exist (a GPT-2
/// body has its tied LM head and, when it classifies, `score`).
pub fn tensor_names(cfg: &ModelConfig, lm: bool, sop: bool, num_labels: usize) -> Vec<(String, Vec<usize>)> {
    let mut t = match cfg.body {
        super::config::Body::Gpt2 => gpt2_tensor_names(cfg, num_labels),
        super::config::Body::Modern => modern_tensor_names(cfg, lm, sop, num_labels),
        super::config::Body::Llama => llama_tensor_names(cfg, lm, num_labels),
        super::config::Body::Bert => bert_tensor_names(cfg, lm, sop, num_labels),
    };
    // low-rank adapters: A (r, in) and B (out, r) beside each adapted projection, PEFT's names
    if let Some(lo) = &cfg.lora {
        for (path, inp, out) in lo.modules(cfg) {
            t.push((format!("{path}.lora_A.weight"), vec![lo.r, inp]));
            t.push((format!("{path}.lora_B.weight"), vec![out, lo.r]));
        }
    }
    t
}

/// A Llama-shaped body's tensors, transformers' names without `model.`: per layer the input and
/// post-attention RMSNorms, q, k, v (biases where the config has them; k and v `kv_heads` heads
/// wide), Qwen3's per-head q_norm and k_norm, o_proj, and the SwiGLU's gate, up and down; the final
/// `norm`; `lm_head` when the head is not tied to the word embeddings; `score` when it classifies.
fn llama_tensor_names(cfg: &ModelConfig, lm: bool, num_labels: usize) -> Vec<(String, Vec<usize>)> {
    let (c, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let l = cfg.llama.clone().unwrap_or_else(|| super::config::LlamaSpec::plain(cfg));
    let (q, kv, d) = (cfg.q_width(), l.kv_heads * l.head_dim, l.head_dim);
    let mut t: Vec<(String, Vec<usize>)> = vec![("embed_tokens.weight".into(), vec![v, c])];
    let lin = |t: &mut Vec<(String, Vec<usize>)>, p: &str, out: usize, inp: usize, bias: bool| {
        t.push((format!("{p}.weight"), vec![out, inp]));
        if bias {
            t.push((format!("{p}.bias"), vec![out]));
        }
    };
    for layer in 0..cfg.num_hidden_layers {
        let p = format!("layers.{layer}");
        t.push((format!("{p}.input_layernorm.weight"), vec![c]));
        lin(&mut t, &format!("{p}.self_attn.q_proj"), q, c, l.qkv_bias);
        lin(&mut t, &format!("{p}.self_attn.k_proj"), kv, c, l.qkv_bias);
        lin(&mut t, &format!("{p}.self_attn.v_proj"), kv, c, l.qkv_bias);
        if l.qk_norm {
            t.push((format!("{p}.self_attn.q_norm.weight"), vec![d]));
            t.push((format!("{p}.self_attn.k_norm.weight"), vec![d]));
        }
        lin(&mut t, &format!("{p}.self_attn.o_proj"), c, q, l.o_bias);
        t.push((format!("{p}.post_attention_layernorm.weight"), vec![c]));
        lin(&mut t, &format!("{p}.mlp.gate_proj"), i, c, l.mlp_bias);
        lin(&mut t, &format!("{p}.mlp.up_proj"), i, c, l.mlp_bias);
        lin(&mut t, &format!("{p}.mlp.down_proj"), c, i, l.mlp_bias);
    }
    t.push(("norm.weight".into(), vec![c]));
    if lm && !l.tied {
        t.push(("lm_head.weight".into(), vec![v, c]));
    }
    if num_labels > 0 {
        // LlamaForSequenceClassification's head: a linear score without bias
        t.push(("score.weight".into(), vec![num_labels, c]));
    }
    t
}

/// ModernBERT's tensors, transformers' names without `model.`: no biases in the body or its norms
/// (layer 0 has no attention norm), Wi as wide as two feed-forwards (GeGLU's halves), a final norm;
/// the heads as BERT Lab's (the pooler with a norm after its GELU: transformers' `head`).
fn modern_tensor_names(cfg: &ModelConfig, lm: bool, sop: bool, num_labels: usize) -> Vec<(String, Vec<usize>)> {
    let (c, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let m = cfg.modern.as_ref();
    let head_bias = m.map(|m| m.head_bias).unwrap_or(false);
    let mut t: Vec<(String, Vec<usize>)> = vec![("embeddings.tok_embeddings.weight".into(), vec![v, c]), ("embeddings.norm.weight".into(), vec![c])];
    for l in 0..cfg.num_hidden_layers {
        let p = format!("layers.{l}");
        if l > 0 {
            t.push((format!("{p}.attn_norm.weight"), vec![c]));
        }
        t.push((format!("{p}.attn.Wqkv.weight"), vec![3 * c, c]));
        t.push((format!("{p}.attn.Wo.weight"), vec![c, c]));
        t.push((format!("{p}.mlp_norm.weight"), vec![c]));
        t.push((format!("{p}.mlp.Wi.weight"), vec![2 * i, c]));
        t.push((format!("{p}.mlp.Wo.weight"), vec![c, i]));
    }
    t.push(("final_norm.weight".into(), vec![c]));
    let dense = |t: &mut Vec<(String, Vec<usize>)>, p: &str| {
        t.push((format!("{p}.weight"), vec![c, c]));
        if head_bias {
            t.push((format!("{p}.bias"), vec![c]));
        }
    };
    dense(&mut t, "pooler.dense");
    t.push(("pooler.norm.weight".into(), vec![c]));
    if lm {
        dense(&mut t, "cls.predictions.transform.dense");
        t.push(("cls.predictions.transform.LayerNorm.weight".into(), vec![c]));
        if m.map(|m| m.decoder_bias).unwrap_or(true) {
            t.push(("cls.predictions.bias".into(), vec![v]));
        }
    }
    if sop {
        t.push(("cls.seq_relationship.weight".into(), vec![2, c]));
        t.push(("cls.seq_relationship.bias".into(), vec![2]));
    }
    if num_labels > 0 {
        t.push(("classifier.weight".into(), vec![num_labels, c]));
        t.push(("classifier.bias".into(), vec![num_labels]));
    }
    t
}

fn bert_tensor_names(cfg: &ModelConfig, lm: bool, sop: bool, num_labels: usize) -> Vec<(String, Vec<usize>)> {
    let (c, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let mut t: Vec<(String, Vec<usize>)> = Vec::new();
    let lin = |t: &mut Vec<(String, Vec<usize>)>, p: &str, out: usize, inp: usize| {
        t.push((format!("{p}.weight"), vec![out, inp]));
        t.push((format!("{p}.bias"), vec![out]));
    };
    let ln_of = |t: &mut Vec<(String, Vec<usize>)>, p: &str, width: usize| {
        t.push((format!("{p}.weight"), vec![width]));
        t.push((format!("{p}.bias"), vec![width]));
    };
    let ln = |t: &mut Vec<(String, Vec<usize>)>, p: &str| ln_of(t, p, c);
    // the tables are E wide (the hidden size, or ALBERT's factorised width, projected to C)
    let e = cfg.embed_width();
    t.push(("embeddings.word_embeddings.weight".into(), vec![v, e]));
    t.push(("embeddings.position_embeddings.weight".into(), vec![cfg.max_position_embeddings, e]));
    if cfg.type_vocab_size > 0 {
        t.push(("embeddings.token_type_embeddings.weight".into(), vec![cfg.type_vocab_size, e]));
    }
    ln_of(&mut t, "embeddings.LayerNorm", e);
    if cfg.embedding_size.is_some() {
        lin(&mut t, "embeddings.projection", c, e);
    }
    // ALBERT's layers are one set of weights
    let layers = if cfg.shared_layers { 1 } else { cfg.num_hidden_layers };
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        for qkv in ["query", "key", "value"] {
            lin(&mut t, &format!("{p}.attention.self.{qkv}"), c, c);
        }
        lin(&mut t, &format!("{p}.attention.output.dense"), c, c);
        ln(&mut t, &format!("{p}.attention.output.LayerNorm"));
        lin(&mut t, &format!("{p}.intermediate.dense"), i, c);
        lin(&mut t, &format!("{p}.output.dense"), c, i);
        ln(&mut t, &format!("{p}.output.LayerNorm"));
    }
    lin(&mut t, "pooler.dense", c, c);
    if lm {
        lin(&mut t, "cls.predictions.transform.dense", e, c);
        ln_of(&mut t, "cls.predictions.transform.LayerNorm", e);
        t.push(("cls.predictions.bias".into(), vec![v]));
    }
    if sop {
        lin(&mut t, "cls.seq_relationship", 2, c);
    }
    if num_labels > 0 {
        lin(&mut t, "classifier", num_labels, c);
    }
    t
}

/// BERT's initialisation (and GPT-2's): normal(0, 0.02) weights, zero biases, LayerNorm weight 1.
pub fn init_value(name: &str, shape: &[usize], seed: u64) -> Vec<f32> {
    let n: usize = shape.iter().product();
    if name.contains("LayerNorm.weight") || name.ends_with("norm.weight") || (name.ends_with(".weight") && (name.starts_with("ln_f.") || name.contains(".ln_"))) {
        return vec![1.0; n];
    }
    if name.ends_with("bias") || name.ends_with(".lora_B.weight") {
        return vec![0.0; n];
    }
    let mut rng = crate::rng::Rng::new(seed ^ fnv(name));
    if name.ends_with(".lora_A.weight") {
        // PEFT's A: Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))
        let bound = 1.0 / (shape[1] as f32).sqrt();
        return (0..n).map(|_| (2.0 * rng.uniform() - 1.0) as f32 * bound).collect();
    }
    rng.normals(n, 0.02)
}

/// Whether `name` is the classification head's: BERT's `classifier`, GPT-2's `score`.
fn is_classifier(name: &str) -> bool {
    name.starts_with("classifier.") || name.starts_with("score.")
}

/// The name the family's Hugging Face `For*` classes store a parameter under (family.rs).
pub fn hf_name(family: Family, name: &str) -> String {
    family.hf_name(name)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// The family's names for the tensors `names` (BERT Lab's), mapped back to them: each tensor
/// under its name in the `For*` classes, without the body's prefix (the family's bare `*Model`),
/// and under BERT Lab's own name.
/// One name may stand for two of BERT Lab's tensors (ModernBERT's `head` is its masked-LM head's
/// transform and its classifier's dense layer): both take the stored values, as transformers loads
/// a masked-LM checkpoint's head into a classifier's.
fn reverse_table(family: Family, names: &[(String, Vec<usize>)]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, _) in names {
        let hf = family.hf_name(n);
        if let Some(bare) = hf.strip_prefix(family.base_prefix()) {
            m.entry(bare.to_string()).or_default().push(n.clone());
        }
        m.entry(hf).or_default().push(n.clone());
    }
    // BERT Lab's own names too (its snapshots and checkpoints), where no family name is the same
    for (n, _) in names {
        m.entry(n.clone()).or_insert_with(|| vec![n.clone()]);
    }
    for v in m.values_mut() {
        v.dedup();
    }
    m
}

/// Hugging Face checkpoints name the same tensor in several ways; this maps a stored name to ours
/// (None: a name the model does not have, reported as unused under its stored name).
fn canonical(family: Family, table: &BTreeMap<String, Vec<String>>, stored: &str) -> Vec<String> {
    let s = stored.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias");
    let s = family.legacy_alias(&s).map(str::to_string).unwrap_or(s);
    table.get(&s).cloned().unwrap_or_default()
}

/// A parameter resolved by name once, when the model is built: its place in the store. The model's
/// layers hold these (see handles.rs) instead of looking names up on every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(usize);

impl Id {
    /// Its place among the model's parameters (stable for a model's layout).
    pub fn index(self) -> usize {
        self.0
    }
}

impl ParamStore {
    /// The handle of `name`, or which tensor is missing.
    pub fn id(&self, name: &str) -> Result<Id> {
        Ok(self.index.get(name).map(|&i| Id(i)).ok_or_else(|| Error::Shape { tensor: name.to_string(), message: format!("the model has no tensor {name}") })?)
    }

    /// The value buffer of a resolved parameter.
    pub fn value(&self, id: Id) -> &GpuBuf {
        &self.params[id.0].value
    }

    /// The shape of a resolved parameter.
    pub fn shape(&self, id: Id) -> &[usize] {
        &self.params[id.0].shape
    }

    /// Its gradient buffer, when it is trainable.
    pub fn grad_of(&self, id: Id) -> Option<&GpuBuf> {
        let p = &self.params[id.0];
        if p.trainable {
            p.grad.as_ref()
        } else {
            None
        }
    }

    /// Whether a resolved parameter is trainable.
    pub fn trains(&self, id: Id) -> bool {
        self.params[id.0].trainable
    }

    pub fn get(&self, name: &str) -> Option<&Param> {
        self.index.get(name).map(|&i| &self.params[i])
    }

    pub fn total_params(&self) -> usize {
        self.params.iter().map(|p| p.numel()).sum()
    }

    /// Builds every tensor of `names`, taking values from `file` where it has them (any dtype, with
    /// or without `bert.`, legacy gamma/beta) and initialising the rest. Shape mismatches, and
    /// encoder tensors missing from the file, are errors naming each tensor.
    pub fn load(gpu: &Gpu, family: Family, names: &[(String, Vec<usize>)], file: Option<&SafeTensors>, seed: u64) -> Result<(ParamStore, LoadReport), crate::error::Error> {
        let mut by_name: BTreeMap<String, &safetensors::TensorView> = BTreeMap::new();
        let mut unused: Vec<String> = Vec::new();
        if let Some(f) = file {
            let table = reverse_table(family, names);
            for (stored, view) in &f.tensors {
                // tied to the word embeddings, or a buffer (position ids; older GPT-2 checkpoints'
                // causal masks `h.{l}.attn.bias` and `.attn.masked_bias`), not a parameter
                if family.skipped_on_load(stored) {
                    continue;
                }
                let ours = canonical(family, &table, stored);
                if ours.is_empty() {
                    unused.push(stored.clone());
                }
                // a name stored twice (a legacy alias beside the current one) keeps the first
                for c in ours {
                    by_name.entry(c).or_insert(view);
                }
            }
        }
        let mut problems = Vec::new();
        // the first tensor that does not fit, for the error's variant
        let mut first_bad: Option<String> = None;
        let mut report = LoadReport { unused, ..Default::default() };
        let mut store = ParamStore::default();
        let cap = (gpu.info.max_storage_buffer_binding_size.min(gpu.info.max_buffer_size) / 4) as usize;
        let (place, arenas) = arena_layout(names, cap);
        for (i, &(len, decays)) in arenas.iter().enumerate() {
            let value = gpu.zeros(&format!("params.{i}"), len, DType::F32)?;
            store.arenas.push(Arena { value, grad: None, m: None, v: None, decays });
        }
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by_key(|&i| place[i]);
        let part_of = |name: &str| Part::of_in(family, name);
        for i in order {
            let (name, shape) = &names[i];
            let values = match by_name.get(name) {
                // a classifier for other labels: a fresh head for these, the encoder kept (as
                // transformers' ignore_mismatched_sizes)
                Some(view) if view.shape != *shape && is_classifier(name) => {
                    report.replaced.push(format!("{}: {:?} in the checkpoint, {shape:?} for these labels", family.hf_name(name), view.shape));
                    init_value(name, shape, seed)
                }
                Some(view) => {
                    if view.shape != *shape {
                        problems.push(format!("{}: the checkpoint has shape {:?}, the config needs {shape:?}", family.hf_name(name), view.shape));
                        first_bad.get_or_insert_with(|| name.clone());
                        continue;
                    }
                    report.loaded.push(name.clone());
                    view.to_f32()
                }
                None => {
                    // heads, the pooler and new adapters may start fresh on a checkpoint without them
                    let fresh_ok = name.starts_with("cls.") || name.starts_with("lm_head.") || is_classifier(name) || name.starts_with("pooler.") || Part::of(name) == Part::Lora;
                    if file.is_some() && !fresh_ok {
                        problems.push(format!("{}: missing from the checkpoint", family.hf_name(name)));
                        first_bad.get_or_insert_with(|| name.clone());
                        continue;
                    }
                    report.initialised.push(family.hf_name(name));
                    init_value(name, shape, seed)
                }
            };
            let (arena, off) = place[i];
            let value = store.arenas[arena].value.view(off, values.len());
            gpu.write(&value, 0, &values)?;
            store.index.insert(name.clone(), store.params.len());
            store.params.push(Param { part: part_of(name), name: name.clone(), shape: shape.clone(), value, grad: None, m: None, v: None, trainable: false, arena, off });
        }
        if !problems.is_empty() {
            let mut msg = format!("the checkpoint does not fit the model config ({} problems):\n  ", problems.len());
            msg.push_str(&problems.join("\n  "));
            if !report.unused.is_empty() {
                msg.push_str(&format!("\n  unexpected tensors in the checkpoint: {}", report.unused.join(", ")));
            }
            return Err(crate::error::Error::Shape { tensor: first_bad.unwrap_or_default(), message: msg });
        }
        Ok((store, report))
    }

    /// Marks the parameters for which `pred(name)` holds as trainable (allocating their gradient and
    /// moments) and the others as frozen.
    pub fn set_trainable(&mut self, gpu: &Gpu, pred: impl Fn(&Param) -> bool) -> Result<(), GpuError> {
        for p in &mut self.params {
            p.trainable = pred(p);
            if p.trainable && p.grad.is_none() {
                let a = &mut self.arenas[p.arena];
                if a.grad.is_none() {
                    let n = a.value.len;
                    a.grad = Some(gpu.zeros(&format!("grads.{}", p.arena), n, DType::F32)?);
                    a.m = Some(gpu.zeros(&format!("adam_m.{}", p.arena), n, DType::F32)?);
                    a.v = Some(gpu.zeros(&format!("adam_v.{}", p.arena), n, DType::F32)?);
                }
                let n = p.numel();
                p.grad = a.grad.as_ref().map(|b| b.view(p.off, n));
                p.m = a.m.as_ref().map(|b| b.view(p.off, n));
                p.v = a.v.as_ref().map(|b| b.view(p.off, n));
            }
        }
        Ok(())
    }

    /// One view spanning the tensors `names`, which must be consecutive in one arena with no gap
    /// (the layout packs a layer's query, key and value so), and the view of their gradients when
    /// they are trainable (all of them or none).
    pub fn fused(&self, ids: &[Id]) -> Result<(GpuBuf, Option<GpuBuf>), GpuError> {
        let idx: Vec<usize> = ids.iter().map(|i| i.0).collect();
        let names: Vec<&str> = idx.iter().map(|&i| self.params[i].name.as_str()).collect();
        let first = &self.params[idx[0]];
        let mut end = first.off;
        for &i in &idx {
            let p = &self.params[i];
            if p.arena != first.arena || p.off != end {
                return Err(GpuError::Shape(format!("{} is not packed after {}", p.name, names[0])));
            }
            end += p.numel();
        }
        let value = self.arenas[first.arena].value.view(first.off, end - first.off);
        let trainable = idx.iter().filter(|&&i| self.params[i].trainable).count();
        let grad = match trainable {
            0 => None,
            n if n == idx.len() => self.arenas[first.arena].grad.as_ref().map(|g| g.view(first.off, end - first.off)),
            _ => return Err(GpuError::Shape(format!("{} must be trained together or not at all", names.join(", ")))),
        };
        Ok((value, grad))
    }

    /// Runs of consecutive trainable tensors, as (arena, first element, elements): each run is one
    /// AdamW dispatch and one gradient clear (the alignment gaps inside a run are zero and stay so).
    pub fn trainable_runs(&self) -> Vec<(usize, usize, usize)> {
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        let mut prev: Option<usize> = None;
        for (i, p) in self.params.iter().enumerate() {
            if !p.trainable {
                continue;
            }
            let joins = prev == Some(i.wrapping_sub(1)) && runs.last().map(|r| r.0 == p.arena).unwrap_or(false);
            if joins {
                let r = runs.last_mut().unwrap();
                r.2 = p.off + p.numel() - r.1;
            } else {
                runs.push((p.arena, p.off, p.numel()));
            }
            prev = Some(i);
        }
        runs
    }

    /// The AdamW slices of [`ParamStore::trainable_runs`], with `weight_decay` on the decayed group.
    /// An arena over one storage binding (a word embedding too large for one, which has an arena of
    /// its own) is bound as views of at most `binding` elements, so a run in it is cut at their
    /// edges.
    pub fn adamw_slices(&self, weight_decay: f32, binding: usize) -> Vec<crate::kernels::adamw::ParamSlice> {
        let mut out = Vec::new();
        for (a, off, len) in self.trainable_runs() {
            let ar = &self.arenas[a];
            let (grad, m, v) = (ar.grad.as_ref().expect("a trainable arena has gradients"), ar.m.as_ref().expect("a trainable arena has moments"), ar.v.as_ref().expect("a trainable arena has moments"));
            let wd = if ar.decays { weight_decay } else { 0.0 };
            if ar.value.len <= binding {
                out.push(crate::kernels::adamw::ParamSlice { param: ar.value.clone(), grad: grad.clone(), m: m.clone(), v: v.clone(), off, len, weight_decay: wd });
                continue;
            }
            let ch = (binding / GpuBuf::BIND_ALIGN * GpuBuf::BIND_ALIGN).max(GpuBuf::BIND_ALIGN);
            let mut at = off;
            while at < off + len {
                let base = at / ch * ch;
                let view_len = ch.min(ar.value.len - base);
                let end = (off + len).min(base + view_len);
                let view = |b: &GpuBuf| b.view(base, view_len);
                out.push(crate::kernels::adamw::ParamSlice { param: view(&ar.value), grad: view(grad), m: view(m), v: view(v), off: at - base, len: end - at, weight_decay: wd });
                at = end;
            }
        }
        out
    }

    /// Partial-sum slots AdamW's gradient norm needs for the current trainable set.
    pub fn adamw_slots(&self, binding: usize) -> usize {
        crate::kernels::adamw::slots_for(&self.adamw_slices(0.0, binding).iter().map(|s| s.len).collect::<Vec<_>>())
    }

    /// Reads every parameter back as (HF name, shape, values), for export and tests.
    pub async fn read_all(&self, gpu: &Gpu) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>, GpuError> {
        self.read_where(gpu, |_| true).await
    }

    /// [`ParamStore::read_all`] of the tensors `keep` picks, in their order.
    pub async fn read_where(&self, gpu: &Gpu, keep: impl Fn(&Param) -> bool) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>, GpuError> {
        let mut out = Vec::new();
        for p in self.params.iter().filter(|p| keep(p)) {
            let mut v = gpu.read_f32(&p.value).await?;
            v.truncate(p.numel());
            out.push((p.name.clone(), p.shape.clone(), v));
        }
        Ok(out)
    }
}
