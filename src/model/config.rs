//! `ModelConfig`, read straight from a Hugging Face `config.json` (a BERT's, or a GPT-2's mapped onto
//! the same fields), with presets for small models.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
pub use super::family::Family;

/// The largest vocabulary a config may have (BERT's is 30522, multilingual models' about 250000).
pub const MAX_VOCAB: usize = 1_000_000;

/// The narrowest hidden size a config may have: LayerNorm over fewer values leaves next to nothing
/// of a token (over 1 value its output is its bias alone, the same for every token; over 2, ±1).
pub const MIN_HIDDEN: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f32,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f32,
    /// A decoder (transformers' `BertLMHeadModel`): each token attends only to itself and the
    /// tokens before it, and the masked-LM head predicts the next token. GPT's direction on BERT's
    /// body: the one change that separates reading both ways from reading left to right.
    #[serde(default)]
    pub is_decoder: bool,
    /// Which body the layers have: BERT's post-LN encoder, or GPT-2's pre-LN decoder.
    #[serde(default)]
    pub body: Body,
    /// The Hugging Face family (`model_type`): its tensor names, heads and quirks (family.rs).
    #[serde(default)]
    pub family: Family,
    /// Factorised embeddings (ALBERT, ELECTRA's small models): the tables are this wide, and a
    /// projection takes them to the hidden size (None: as wide as the hidden size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_size: Option<usize>,
    /// One set of layer weights used by every layer (ALBERT), their gradients summed over the uses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared_layers: bool,
    /// ModernBERT's rotary positions and local attention (None for the other bodies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modern: Option<ModernSpec>,
    /// The Llama-shaped decoders' attention, positions and head (None for the other bodies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llama: Option<LlamaSpec>,
    /// The token that ends a text (GPT-2's `<|endoftext|>`), where the config names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<usize>,
    /// Low-rank adapters on some of the layers' projections (None: a plain model). Not a Hugging
    /// Face config key: an export writes it as PEFT's `adapter_config.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraSpec>,
}

/// ModernBERT's layers: rotary positions with one theta for the global layers and another for the
/// local ones, and every `global_every`-th layer (from the first) attending globally, the others to
/// the keys within `window` of each query (transformers' `local_attention / 2`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModernSpec {
    pub global_theta: f64,
    pub local_theta: f64,
    pub window: usize,
    pub global_every: usize,
    /// A bias on the head's dense layer (`classifier_bias`) and on the decoder (`decoder_bias`).
    pub head_bias: bool,
    pub decoder_bias: bool,
}

impl ModernSpec {
    /// Whether layer `l` attends globally.
    pub fn global(&self, l: usize) -> bool {
        l % self.global_every == 0
    }
}

/// The Llama-shaped decoders (Llama, Qwen2, Qwen3): grouped-query attention (`kv_heads` key and
/// value heads shared by the query heads, each `head_dim` wide, which need not be hidden / heads),
/// rotary positions with `rope_theta` and a scaling, biases on q, k, v (Qwen2; Llama's
/// `attention_bias`), RMSNorm on each query and key head (Qwen3), and an LM head tied to the word
/// embeddings or its own `lm_head`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaSpec {
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f64,
    #[serde(default)]
    pub rope: RopeScaling,
    pub qkv_bias: bool,
    /// Llama's attention_bias also puts a bias on o_proj.
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub qk_norm: bool,
    pub tied: bool,
}

impl LlamaSpec {
    /// Plain multi-head attention over a config's heads, theta 10,000, no biases, tied.
    pub fn plain(cfg: &ModelConfig) -> LlamaSpec {
        let h = cfg.num_attention_heads.max(1);
        LlamaSpec { kv_heads: h, head_dim: cfg.hidden_size / h, rope_theta: 10_000.0, rope: RopeScaling::Default, qkv_bias: false, o_bias: false, mlp_bias: false, qk_norm: false, tied: true }
    }
}

/// How a config stretches its rotary frequencies (`rope_scaling` / `rope_parameters`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "rope_type", rename_all = "lowercase")]
pub enum RopeScaling {
    #[default]
    Default,
    /// Every frequency divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3.1's: the low frequencies divided by `factor`, the high ones kept, a smooth band
    /// between, by wavelength against `original_max_position_embeddings`.
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: f64 },
}

impl RopeScaling {
    /// The inverse frequencies of a head of `d` for `theta`, scaled, in f32 as transformers
    /// computes them (`_compute_default_rope_parameters` and the scaled variants).
    pub fn inv_freq(&self, theta: f64, d: usize) -> Vec<f32> {
        let base: Vec<f32> = (0..d / 2).map(|j| 1.0 / (theta as f32).powf((2 * j) as f32 / d as f32)).collect();
        match *self {
            RopeScaling::Default => base,
            RopeScaling::Linear { factor } => base.iter().map(|f| f / factor as f32).collect(),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                let (factor, low, high, old) = (factor as f32, low_freq_factor as f32, high_freq_factor as f32, original_max_position_embeddings as f32);
                let (low_wavelen, high_wavelen) = (old / low, old / high);
                base.iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f32::consts::PI / f;
                        let scaled = if wavelen > low_wavelen { f / factor } else { f };
                        if wavelen < high_wavelen || wavelen > low_wavelen {
                            scaled
                        } else {
                            let smooth = (old / wavelen - low) / (high - low);
                            (1.0 - smooth) * scaled / factor + smooth * scaled
                        }
                    })
                    .collect()
            }
        }
    }

    /// Reads a config's `rope_scaling` or `rope_parameters` object (None, or `rope_type` default).
    fn read(v: Option<&serde_json::Value>) -> Result<RopeScaling> {
        let Some(o) = v.filter(|x| !x.is_null()) else { return Ok(RopeScaling::Default) };
        let kind = o.get("rope_type").or_else(|| o.get("type")).and_then(|t| t.as_str()).unwrap_or("default");
        let num = |k: &str| -> Result<f64> { o.get(k).and_then(|x| x.as_f64()).ok_or_else(|| Error::Data { line: 0, message: format!("config.json: rope_scaling of type \"{kind}\" lacks the number {k}") }) };
        match kind {
            "default" => Ok(RopeScaling::Default),
            "linear" => Ok(RopeScaling::Linear { factor: num("factor")? }),
            "llama3" => Ok(RopeScaling::Llama3 { factor: num("factor")?, low_freq_factor: num("low_freq_factor")?, high_freq_factor: num("high_freq_factor")?, original_max_position_embeddings: num("original_max_position_embeddings")? }),
            other => Err(Error::Unsupported(format!("config.json: rope_scaling of type \"{other}\"; BERT Lab runs rotary positions unscaled, \"linear\" and \"llama3\" (dynamic, yarn and longrope stretch a model past its trained length: load it without them for the lengths it was trained on)"))),
        }
    }

    /// As transformers' `rope_parameters` writes it, with the theta.
    fn json(&self, theta: f64) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("rope_theta".into(), theta.into());
            // a length, which transformers reads as a whole number
            if let Some(n) = o.get("original_max_position_embeddings").and_then(|x| x.as_f64()) {
                o.insert("original_max_position_embeddings".into(), (n as u64).into());
            }
        }
        v
    }
}

/// Low-rank adaptation (LoRA, as PEFT's `LoraConfig` has it): each targeted linear layer's output
/// gains `(alpha / r) · dropout(x) · Aᵀ · Bᵀ`, with A (r × in) and B (out × r) the only weights of
/// the body that train. A starts Kaiming-uniform and B at zero, so training starts from the base
/// model exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraSpec {
    pub r: usize,
    pub alpha: f32,
    #[serde(default)]
    pub dropout: f32,
    /// PEFT's `target_modules`: names matched against the end of each layer's projections' paths
    /// (BERT: query, key, value, attention.output.dense, intermediate.dense, output.dense; GPT-2:
    /// c_attn, attn.c_proj, c_fc, mlp.c_proj).
    pub targets: Vec<String>,
}

impl LoraSpec {
    /// PEFT's default lora_alpha (LoraConfig's, whatever the rank), which the CLI, the page and a
    /// PEFT adapter_config.json without one take.
    pub const DEFAULT_ALPHA: f32 = 8.0;

    /// PEFT's defaults for the family (BERT's query and value, DistilBERT's q_lin and v_lin,
    /// GPT-2's c_attn); alpha [`LoraSpec::DEFAULT_ALPHA`]; no dropout.
    pub fn new(r: usize, family: Family) -> LoraSpec {
        let targets = family.lora_targets().iter().map(|t| t.to_string()).collect();
        LoraSpec { r, alpha: Self::DEFAULT_ALPHA, dropout: 0.0, targets }
    }

    /// Rank `r` on a model of `family` with `alpha` and `dropout`, on `targets` (none given: PEFT's
    /// defaults for the family): what a run's settings (the CLI's flags, the page's form) ask for.
    pub fn with(r: usize, family: Family, alpha: f32, dropout: f32, targets: &[String]) -> LoraSpec {
        let mut spec = LoraSpec { alpha, dropout, ..LoraSpec::new(r, family) };
        if !targets.is_empty() {
            spec.targets = targets.to_vec();
        }
        spec
    }

    /// The factor on the low-rank product.
    pub fn scaling(&self) -> f32 {
        self.alpha / self.r as f32
    }

    /// Every projection LoRA can adapt in a model with `cfg`: (path, in, out), BERT's or GPT-2's.
    pub fn candidates(cfg: &ModelConfig) -> Vec<(String, usize, usize)> {
        let (c, i) = (cfg.hidden_size, cfg.intermediate_size);
        let mut v = Vec::new();
        // ALBERT's layers are one set of weights: one adapter per projection, used by every layer
        let layers = if cfg.shared_layers { 1 } else { cfg.num_hidden_layers };
        for l in 0..layers {
            let (q, kv) = (cfg.q_width(), cfg.kv_heads() * cfg.head_dim());
            let sites: Vec<(&str, usize, usize)> = match cfg.body {
                Body::Gpt2 => vec![("attn.c_attn", c, 3 * c), ("attn.c_proj", c, c), ("mlp.c_fc", c, i), ("mlp.c_proj", i, c)],
                Body::Modern => vec![("attn.Wqkv", c, 3 * c), ("attn.Wo", c, c), ("mlp.Wi", c, 2 * i), ("mlp.Wo", i, c)],
                Body::Llama => vec![
                    ("self_attn.q_proj", c, q),
                    ("self_attn.k_proj", c, kv),
                    ("self_attn.v_proj", c, kv),
                    ("self_attn.o_proj", q, c),
                    ("mlp.gate_proj", c, i),
                    ("mlp.up_proj", c, i),
                    ("mlp.down_proj", i, c),
                ],
                Body::Bert => vec![("attention.self.query", c, c), ("attention.self.key", c, c), ("attention.self.value", c, c), ("attention.output.dense", c, c), ("intermediate.dense", c, i), ("output.dense", i, c)],
            };
            let layer = match cfg.body {
                Body::Gpt2 => format!("h.{l}"),
                Body::Modern | Body::Llama => format!("layers.{l}"),
                Body::Bert => format!("encoder.layer.{l}"),
            };
            v.extend(sites.iter().filter(|s| !s.0.is_empty()).map(|(p, inp, out)| (format!("{layer}.{p}"), *inp, *out)));
        }
        v
    }

    /// Whether target `t` (PEFT's: the end of a module's path in the family's own names) names
    /// the projection at BERT Lab's `path`.
    fn names(cfg: &ModelConfig, path: &str, t: &str) -> bool {
        let hf = LoraSpec::hf_path(cfg, path);
        hf == t || hf.ends_with(&format!(".{t}"))
    }

    /// A projection's path in the family's names (`distilbert.transformer.layer.0.attention.q_lin`).
    fn hf_path(cfg: &ModelConfig, path: &str) -> String {
        let w = cfg.family.hf_name(&format!("{path}.weight"));
        w.strip_suffix(".weight").unwrap_or(&w).to_string()
    }

    /// The projections this spec adapts: (path, in, out), in BERT Lab's names.
    pub fn modules(&self, cfg: &ModelConfig) -> Vec<(String, usize, usize)> {
        LoraSpec::candidates(cfg).into_iter().filter(|(p, _, _)| self.targets.iter().any(|t| LoraSpec::names(cfg, p, t))).collect()
    }

    /// A rank from 1 to the narrowest adapted layer, a dropout in [0, 1), and targets that each
    /// name a layer (else the names that exist).
    pub fn validate(&self, cfg: &ModelConfig) -> Result<()> {
        let cands = LoraSpec::candidates(cfg);
        for t in &self.targets {
            if !cands.iter().any(|(p, _, _)| LoraSpec::names(cfg, p, t)) {
                // each projection's path within its layer (after the layer's number), in the
                // family's names
                let within = |p: &str| p.split('.').skip_while(|s| s.parse::<usize>().is_err()).skip(1).collect::<Vec<_>>().join(".");
                let mut names: Vec<String> = cands.iter().map(|(p, _, _)| within(&LoraSpec::hf_path(cfg, p))).collect();
                names.sort();
                names.dedup();
                return Err(Error::Limit(format!("the LoRA target \"{t}\" names no layer of this model; its layers' projections are: {}", names.join(", "))));
            }
        }
        if self.targets.is_empty() {
            return Err(Error::Limit("LoRA needs at least one target layer".into()));
        }
        let narrowest = self.modules(cfg).iter().map(|(_, i, o)| (*i).min(*o)).min().unwrap_or(0);
        if self.r == 0 || self.r > narrowest {
            return Err(Error::Limit(format!("the LoRA rank must be from 1 to {narrowest} (the narrowest adapted layer's width); got {}", self.r)));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::Limit(format!("lora_alpha must be a positive number; got {}", self.alpha)));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Limit(format!("lora_dropout must be in [0, 1); got {}", self.dropout)));
        }
        Ok(())
    }
}

/// The shape of the layers.
///
/// - `Bert`: post-LN (`x = LN(x + attention(x))`, `x = LN(x + mlp(x))`), an embedding LayerNorm,
///   token types, the masked-LM head's transform (dense, GELU, LayerNorm) and output bias.
/// - `Gpt2`: transformers' `GPT2LMHeadModel`: pre-LN (`x = x + attention(LN1(x))`,
///   `x = x + mlp(LN2(x))`, a final `ln_f`), learned positions, no token types and no embedding
///   LayerNorm, always causal, the LM head the word embeddings themselves (tied, no bias). Its
///   projections are `Conv1D`s, whose weights are stored (in, out): the transpose of a Linear's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    #[default]
    Bert,
    Gpt2,
    /// ModernBERT's: pre-LN without biases, rotary positions, GeGLU, local and global attention, a
    /// final norm.
    Modern,
    /// The Llama-shaped decoders': pre-RMSNorm, rotary positions, grouped-query attention, SwiGLU,
    /// a final norm, the LM head tied or not.
    Llama,
}

fn default_max_pos() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f32 {
    0.1
}

/// `k` of a config.json as a whole number (`default` when absent or null), or which key is not one.
fn json_usize(v: &serde_json::Value, k: &str, default: usize) -> Result<usize> {
    match v.get(k).filter(|x| !x.is_null()) {
        Some(x) => Ok(x.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| Error::Data { line: 0, message: format!("config.json: {k} is {x}, not a whole number") })?),
        None => Ok(default),
    }
}

/// `k` of a config.json as a number (`default` when absent or null), or which key is not one.
fn json_f64(v: &serde_json::Value, k: &str, default: f64) -> Result<f64> {
    match v.get(k).filter(|x| !x.is_null()) {
        Some(x) => Ok(x.as_f64().ok_or_else(|| Error::Data { line: 0, message: format!("config.json: {k} is {x}, not a number") })?),
        None => Ok(default),
    }
}

impl ModelConfig {
    /// Parses a Hugging Face config.json and checks that BERT Lab can run it.
    pub fn from_json(text: &str) -> Result<ModelConfig> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Data { line: 0, message: format!("config.json is not valid JSON: {e}") })?;
        let family = match v.get("model_type").and_then(|m| m.as_str()) {
            None => Family::Bert,
            Some(mt) => Family::from_model_type(mt).ok_or_else(|| Error::Unsupported(format!("config.json describes a '{mt}' model; BERT Lab runs {} models (model_type {})", Family::names(), Family::supported())))?,
        };
        match family {
            Family::Gpt2 => return Self::from_gpt2(&v),
            Family::DistilBert => return Self::from_distilbert(&v),
            Family::ModernBert => return Self::from_modernbert(&v),
            Family::Llama | Family::Qwen2 | Family::Qwen3 => return Self::from_llama(&v, family),
            _ => {}
        }
        if let Some(pe) = v.get("position_embedding_type").and_then(|p| p.as_str()).filter(|p| *p != "absolute") {
            return Err(Error::Unsupported(format!("config.json: position_embedding_type \"{pe}\"; BERT Lab's {} runs absolute (learned) positions", family.display())));
        }
        let mut obj = v.clone();
        if let Some(o) = obj.as_object_mut() {
            // a field BERT Lab keeps with its own meaning
            o.remove("family");
            o.remove("body");
            o.remove("shared_layers");
        }
        let mut c: ModelConfig = serde_json::from_value(obj).map_err(|e| Error::Data { line: 0, message: format!("config.json is not a {} config: {e}", family.display()) })?;
        c.family = family;
        c.shared_layers = false;
        c.embedding_size = None;
        if matches!(family, Family::Electra | Family::Albert) {
            let e = v.get("embedding_size").and_then(|x| x.as_u64()).map(|x| x as usize).unwrap_or(if family == Family::Albert { 128 } else { c.hidden_size });
            c.embedding_size = (e != c.hidden_size || family == Family::Albert).then_some(e);
        }
        if family == Family::Albert {
            for k in ["num_hidden_groups", "inner_group_num"] {
                let n = v.get(k).and_then(|x| x.as_u64()).unwrap_or(1);
                if n != 1 {
                    return Err(Error::Unsupported(format!("config.json: {k} is {n}; BERT Lab runs ALBERTs whose layers all share one set of weights ({k} 1, as every released ALBERT)")));
                }
            }
            c.shared_layers = true;
        }
        c.validate()?;
        Ok(c)
    }

    /// A DistilBERT config.json (DistilBertConfig's names) on BERT's body, without token types.
    fn from_distilbert(v: &serde_json::Value) -> Result<ModelConfig> {
        let get = |k: &str| v.get(k).filter(|x| !x.is_null());
        let usize_of = |k: &str, default: usize| json_usize(v, k, default);
        let f_of = |k: &str, default: f64| json_f64(v, k, default);
        if get("sinusoidal_pos_embds").and_then(|x| x.as_bool()).unwrap_or(false) {
            return Err(Error::Unsupported("config.json: this DistilBERT has fixed sinusoidal positions (sinusoidal_pos_embds); BERT Lab runs DistilBERT's learned positions".into()));
        }
        let hidden = usize_of("dim", 768)?;
        let c = ModelConfig {
            vocab_size: usize_of("vocab_size", 30522)?,
            hidden_size: hidden,
            num_hidden_layers: usize_of("n_layers", 6)?,
            num_attention_heads: usize_of("n_heads", 12)?,
            intermediate_size: usize_of("hidden_dim", 4 * hidden)?,
            max_position_embeddings: usize_of("max_position_embeddings", 512)?,
            type_vocab_size: 0,
            layer_norm_eps: 1e-12,
            hidden_act: get("activation").and_then(|a| a.as_str()).unwrap_or("gelu").to_string(),
            pad_token_id: usize_of("pad_token_id", 0)?,
            hidden_dropout_prob: f_of("dropout", 0.1)? as f32,
            attention_probs_dropout_prob: f_of("attention_dropout", 0.1)? as f32,
            is_decoder: false,
            body: Body::Bert,
            family: Family::DistilBert,
            embedding_size: None,
            shared_layers: false,
            modern: None,
            llama: None,
            eos_token_id: None,
            lora: None,
        };
        c.validate()?;
        Ok(c)
    }

    /// A ModernBERT config.json (ModernBertConfig's names) on ModernBERT's body.
    fn from_modernbert(v: &serde_json::Value) -> Result<ModelConfig> {
        let get = |k: &str| v.get(k).filter(|x| !x.is_null());
        let usize_of = |k: &str, default: usize| json_usize(v, k, default);
        let f_of = |k: &str, default: f64| json_f64(v, k, default);
        let flag = |k: &str, default: bool| get(k).and_then(|x| x.as_bool()).unwrap_or(default);
        for (k, default) in [("norm_bias", false), ("attention_bias", false), ("mlp_bias", false)] {
            if flag(k, default) {
                return Err(Error::Unsupported(format!("config.json: {k} is true; BERT Lab runs ModernBERT as released, without biases in its norms and layers")));
            }
        }
        for k in ["embedding_dropout", "mlp_dropout", "attention_dropout"] {
            if f_of(k, 0.0)? != 0.0 {
                return Err(Error::Unsupported(format!("config.json: {k} is {}; BERT Lab runs ModernBERT with its dropouts at 0, as released", f_of(k, 0.0)?)));
            }
        }
        // the rope thetas: the older keys, or rope_parameters per layer type
        let theta = |kind: &str, old: &str, default: f64| -> Result<f64> {
            match v.pointer(&format!("/rope_parameters/{kind}/rope_theta")).and_then(|x| x.as_f64()) {
                Some(t) => Ok(t),
                None => f_of(old, default),
            }
        };
        for kind in ["full_attention", "sliding_attention"] {
            if let Some(t) = v.pointer(&format!("/rope_parameters/{kind}/rope_type")).and_then(|x| x.as_str()).filter(|t| *t != "default") {
                return Err(Error::Unsupported(format!("config.json: rope_type \"{t}\" for {kind}; BERT Lab runs ModernBERT's default rotary embedding")));
            }
        }
        let layers = usize_of("num_hidden_layers", 22)?;
        let every = usize_of("global_attn_every_n_layers", 3)?.max(1);
        if let Some(types) = get("layer_types").and_then(|t| t.as_array()) {
            let expect: Vec<&str> = (0..layers).map(|l| if l % every == 0 { "full_attention" } else { "sliding_attention" }).collect();
            let got: Vec<&str> = types.iter().filter_map(|t| t.as_str()).collect();
            if got != expect {
                return Err(Error::Unsupported(format!("config.json: layer_types {got:?}; BERT Lab runs ModernBERT's pattern, a global layer every {every} from the first")));
            }
        }
        let pooling = get("classifier_pooling").and_then(|p| p.as_str()).unwrap_or("cls");
        if pooling != "cls" {
            return Err(Error::Unsupported(format!("config.json: classifier_pooling \"{pooling}\"; BERT Lab's ModernBERT classifier reads [CLS] (its own mean pooling has no head: --pooling mean)")));
        }
        let hidden = usize_of("hidden_size", 768)?;
        let c = ModelConfig {
            vocab_size: usize_of("vocab_size", 50368)?,
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: usize_of("num_attention_heads", 12)?,
            intermediate_size: usize_of("intermediate_size", 1152)?,
            max_position_embeddings: usize_of("max_position_embeddings", 8192)?,
            type_vocab_size: 0,
            layer_norm_eps: f_of("norm_eps", 1e-5)?,
            hidden_act: get("hidden_activation").and_then(|a| a.as_str()).unwrap_or("gelu").to_string(),
            pad_token_id: usize_of("pad_token_id", 50283)?,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            is_decoder: false,
            body: Body::Modern,
            family: Family::ModernBert,
            embedding_size: None,
            shared_layers: false,
            modern: Some(ModernSpec {
                global_theta: theta("full_attention", "global_rope_theta", 160_000.0)?,
                local_theta: theta("sliding_attention", "local_rope_theta", 10_000.0)?,
                window: usize_of("local_attention", 128)? / 2,
                global_every: every,
                head_bias: flag("classifier_bias", false),
                decoder_bias: flag("decoder_bias", true),
            }),
            llama: None,
            eos_token_id: None,
            lora: None,
        };
        if get("classifier_activation").and_then(|a| a.as_str()).unwrap_or("gelu") != c.hidden_act {
            return Err(Error::Unsupported("config.json: classifier_activation differs from hidden_activation; BERT Lab's ModernBERT uses one GELU".into()));
        }
        c.validate()?;
        Ok(c)
    }

    /// ModernBertConfig's names for a ModernBERT.
    pub fn modernbert_json(&self) -> serde_json::Value {
        let m = self.modern.clone().unwrap_or(ModernSpec { global_theta: 160_000.0, local_theta: 10_000.0, window: 64, global_every: 3, head_bias: false, decoder_bias: true });
        serde_json::json!({
            "model_type": "modernbert",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "hidden_activation": self.hidden_act,
            "classifier_activation": self.hidden_act,
            "max_position_embeddings": self.max_position_embeddings,
            "norm_eps": self.layer_norm_eps,
            "norm_bias": false,
            "attention_bias": false,
            "mlp_bias": false,
            "classifier_bias": m.head_bias,
            "decoder_bias": m.decoder_bias,
            "global_rope_theta": m.global_theta,
            "local_rope_theta": m.local_theta,
            "local_attention": 2 * m.window,
            "global_attn_every_n_layers": m.global_every,
            "classifier_pooling": "cls",
            "pad_token_id": self.pad_token_id,
            "tie_word_embeddings": true,
        })
    }

    /// DistilBertConfig's names for a DistilBERT (what `config.json` holds for it).
    pub fn distilbert_json(&self) -> serde_json::Value {
        serde_json::json!({
            "model_type": "distilbert",
            "vocab_size": self.vocab_size,
            "dim": self.hidden_size,
            "n_layers": self.num_hidden_layers,
            "n_heads": self.num_attention_heads,
            "hidden_dim": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "activation": self.hidden_act,
            "dropout": self.hidden_dropout_prob,
            "attention_dropout": self.attention_probs_dropout_prob,
            "seq_classif_dropout": self.hidden_dropout_prob,
            "sinusoidal_pos_embds": false,
            "pad_token_id": self.pad_token_id,
            "tie_weights_": true,
            "tie_word_embeddings": true,
        })
    }

    /// A GPT-2 config.json (transformers' `GPT2Config` names) as a config of the GPT-2 body.
    fn from_gpt2(v: &serde_json::Value) -> Result<ModelConfig> {
        let usize_of = |k: &str, default: Option<usize>| -> Result<usize> {
            match default {
                Some(d) => json_usize(v, k, d),
                None if v.get(k).is_some_and(|x| !x.is_null()) => json_usize(v, k, 0),
                None => Err(Error::Data { line: 0, message: format!("config.json (GPT-2) lacks {k}") }),
            }
        };
        let f64_of = |k: &str, default: f64| json_f64(v, k, default);
        let flag = |k: &str, default: bool| v.get(k).and_then(|x| x.as_bool()).unwrap_or(default);
        // what GPT2LMHeadModel can do and BERT Lab's GPT-2 body does not
        if !flag("scale_attn_weights", true) || flag("scale_attn_by_inverse_layer_idx", false) || flag("reorder_and_upcast_attn", false) {
            return Err(Error::Unsupported("config.json: BERT Lab's GPT-2 scales attention by 1/sqrt(head size) only (scale_attn_weights true, scale_attn_by_inverse_layer_idx and reorder_and_upcast_attn false)".into()));
        }
        if !flag("tie_word_embeddings", true) {
            return Err(Error::Unsupported("config.json: BERT Lab's GPT-2 ties its LM head to the word embeddings (tie_word_embeddings true)".into()));
        }
        let hidden = usize_of("n_embd", Some(768))?;
        let eos = usize_of("eos_token_id", Some(usize::MAX)).ok().filter(|&e| e != usize::MAX);
        let c = ModelConfig {
            vocab_size: usize_of("vocab_size", None)?,
            hidden_size: hidden,
            num_hidden_layers: usize_of("n_layer", Some(12))?,
            num_attention_heads: usize_of("n_head", Some(12))?,
            intermediate_size: usize_of("n_inner", Some(hidden.saturating_mul(4)))?,
            max_position_embeddings: usize_of("n_positions", Some(1024))?,
            type_vocab_size: 1,
            layer_norm_eps: f64_of("layer_norm_epsilon", 1e-5)?,
            hidden_act: v.get("activation_function").and_then(|a| a.as_str()).unwrap_or("gelu_new").to_string(),
            pad_token_id: usize_of("pad_token_id", Some(eos.unwrap_or(0)))?,
            hidden_dropout_prob: f64_of("resid_pdrop", 0.1)? as f32,
            attention_probs_dropout_prob: f64_of("attn_pdrop", 0.1)? as f32,
            is_decoder: true,
            body: Body::Gpt2,
            family: Family::Gpt2,
            embedding_size: None,
            shared_layers: false,
            modern: None,
            llama: None,
            eos_token_id: eos,
            lora: None,
        };
        c.validate()?;
        Ok(c)
    }

    /// A Llama, Qwen2 or Qwen3 config.json (transformers' LlamaConfig, Qwen2Config, Qwen3Config).
    fn from_llama(v: &serde_json::Value, family: Family) -> Result<ModelConfig> {
        let name = family.display();
        let need = |k: &str| -> Result<usize> {
            match v.get(k).filter(|x| !x.is_null()) {
                Some(_) => json_usize(v, k, 0),
                None => Err(Error::Data { line: 0, message: format!("config.json ({name}) lacks {k}") }),
            }
        };
        let flag = |k: &str, default: bool| v.get(k).and_then(|x| x.as_bool()).unwrap_or(default);
        let hidden = need("hidden_size")?;
        let heads = need("num_attention_heads")?;
        let kv_heads = json_usize(v, "num_key_value_heads", heads)?;
        let head_dim = json_usize(v, "head_dim", if heads > 0 { hidden / heads } else { 0 })?;
        // rope_parameters (transformers 5) holds theta and the scaling; older configs rope_theta and
        // rope_scaling
        let params = v.get("rope_parameters").filter(|x| x.is_object());
        let rope = RopeScaling::read(params.or_else(|| v.get("rope_scaling")))?;
        let rope_theta = params.and_then(|p| p.get("rope_theta")).and_then(|x| x.as_f64()).map(Ok).unwrap_or_else(|| json_f64(v, "rope_theta", 10_000.0))?;
        let act = v.get("hidden_act").and_then(|a| a.as_str()).unwrap_or("silu");
        if act != "silu" {
            return Err(Error::Unsupported(format!("config.json: hidden_act \"{act}\"; BERT Lab's {name} runs SwiGLU (\"silu\")")));
        }
        if flag("use_sliding_window", false) {
            return Err(Error::Unsupported(format!("config.json: use_sliding_window is true; BERT Lab's {name} attends over the whole text (load it with use_sliding_window false)")));
        }
        if json_usize(v, "pretraining_tp", 1)? != 1 {
            return Err(Error::Unsupported("config.json: pretraining_tp other than 1 (a tensor-parallel slicing of the products) is not supported".into()));
        }
        // eos_token_id may be one id or a list: the first ends a text; generation_config.json
        // names every end token
        let eos = match v.get("eos_token_id") {
            Some(serde_json::Value::Array(a)) => a.first().and_then(|x| x.as_u64()).map(|x| x as usize),
            Some(x) => x.as_u64().map(|x| x as usize),
            None => None,
        };
        let attention_bias = flag("attention_bias", family == Family::Qwen2);
        let c = ModelConfig {
            vocab_size: need("vocab_size")?,
            hidden_size: hidden,
            num_hidden_layers: need("num_hidden_layers")?,
            num_attention_heads: heads,
            intermediate_size: need("intermediate_size")?,
            max_position_embeddings: json_usize(v, "max_position_embeddings", 2048)?,
            type_vocab_size: 0,
            layer_norm_eps: json_f64(v, "rms_norm_eps", 1e-6)?,
            hidden_act: "silu".into(),
            pad_token_id: json_usize(v, "pad_token_id", eos.unwrap_or(0))?,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: json_f64(v, "attention_dropout", 0.0)? as f32,
            is_decoder: true,
            body: Body::Llama,
            family,
            embedding_size: None,
            shared_layers: false,
            modern: None,
            llama: Some(LlamaSpec {
                kv_heads,
                head_dim,
                rope_theta,
                rope,
                // Qwen2's q, k and v always have biases (its o_proj none); Llama's attention_bias
                // puts one on all four
                qkv_bias: family == Family::Qwen2 || attention_bias,
                o_bias: family != Family::Qwen2 && attention_bias,
                mlp_bias: flag("mlp_bias", false),
                qk_norm: family == Family::Qwen3,
                tied: flag("tie_word_embeddings", false),
            }),
            eos_token_id: eos,
            lora: None,
        };
        c.validate()?;
        Ok(c)
    }

    /// transformers' config for a Llama-shaped body (LlamaConfig, Qwen2Config, Qwen3Config).
    pub fn llama_json(&self) -> serde_json::Value {
        let l = self.llama.clone().unwrap_or_else(|| LlamaSpec::plain(self));
        let mut v = serde_json::json!({
            "model_type": self.family.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": l.kv_heads,
            "head_dim": l.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.layer_norm_eps,
            "rope_parameters": l.rope.json(l.rope_theta),
            "attention_dropout": self.attention_probs_dropout_prob,
            "tie_word_embeddings": l.tied,
            "pad_token_id": self.pad_token_id,
            "bos_token_id": self.eos_token_id,
            "eos_token_id": self.eos_token_id,
            "use_cache": true,
        });
        if let Some(o) = v.as_object_mut() {
            if self.family == Family::Llama {
                o.insert("attention_bias".into(), l.qkv_bias.into());
                o.insert("mlp_bias".into(), l.mlp_bias.into());
            }
            if self.family != Family::Llama {
                o.insert("use_sliding_window".into(), false.into());
            }
        }
        v
    }

    /// The width of each attention head (hidden / heads, or a Llama-shaped config's head_dim).
    pub fn head_dim(&self) -> usize {
        self.llama.as_ref().map(|l| l.head_dim).unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Key and value heads (the query heads' number but for grouped-query attention).
    pub fn kv_heads(&self) -> usize {
        self.llama.as_ref().map(|l| l.kv_heads).unwrap_or(self.num_attention_heads)
    }

    /// The width of the queries (heads x head size) and of the fused q|k|v rows.
    pub fn q_width(&self) -> usize {
        self.num_attention_heads * self.head_dim()
    }
    pub fn qkv_width(&self) -> usize {
        (self.num_attention_heads + 2 * self.kv_heads()) * self.head_dim()
    }

    /// The width of the embedding tables (the hidden size, or ALBERT's and ELECTRA-small's
    /// embedding_size).
    pub fn embed_width(&self) -> usize {
        self.embedding_size.unwrap_or(self.hidden_size)
    }

    /// The positions a sequence of `t` tokens uses (RoBERTa's start after the padding id).
    pub fn positions_needed(&self, t: usize) -> usize {
        t + self.family.position_offset(self.pad_token_id)
    }

    /// The longest sequence the model reads: its positions, less those before the first
    /// (RoBERTa's padding_idx + 1).
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings.saturating_sub(self.family.position_offset(self.pad_token_id))
    }

    /// The GELU of the feed-forward layers (and of BERT's masked-LM head).
    pub fn gelu(&self) -> crate::kernels::gelu::Gelu {
        match self.hidden_act.as_str() {
            "gelu_new" | "gelu_pytorch_tanh" => crate::kernels::gelu::Gelu::Tanh,
            _ => crate::kernels::gelu::Gelu::Erf,
        }
    }

    /// transformers' GPT2Config for a GPT-2 body (what `config.json` holds for it).
    pub fn gpt2_json(&self) -> serde_json::Value {
        serde_json::json!({
            "model_type": "gpt2",
            "vocab_size": self.vocab_size,
            "n_positions": self.max_position_embeddings,
            "n_embd": self.hidden_size,
            "n_layer": self.num_hidden_layers,
            "n_head": self.num_attention_heads,
            "n_inner": self.intermediate_size,
            "activation_function": self.hidden_act,
            "resid_pdrop": self.hidden_dropout_prob,
            "embd_pdrop": self.hidden_dropout_prob,
            "attn_pdrop": self.attention_probs_dropout_prob,
            "layer_norm_epsilon": self.layer_norm_eps,
            "pad_token_id": self.pad_token_id,
            "bos_token_id": self.eos_token_id,
            "eos_token_id": self.eos_token_id,
            "tie_word_embeddings": true,
            "scale_attn_weights": true,
        })
    }

    /// Every size from 1 to a bound past any BERT that fits a browser (checked before anything is
    /// allocated, and before any product of them can overflow), heads that divide the hidden size,
    /// a supported activation and body, dropouts in [0, 1) and a LayerNorm epsilon in (0, 1). A size
    /// out of its range is a `Limit`, sizes that do not fit each other a `Shape` naming the field;
    /// each names the field, so that no config reaches the code that builds the model's shapes
    /// with sizes it cannot use.
    pub fn validate(&self) -> Result<()> {
        for (name, v, max) in [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, 16_384),
            ("intermediate_size", self.intermediate_size, 65_536),
            ("num_hidden_layers", self.num_hidden_layers, 256),
            ("num_attention_heads", self.num_attention_heads, 1024),
            ("max_position_embeddings", self.max_position_embeddings, 65_536),
            ("type_vocab_size", self.type_vocab_size, 1024),
        ] {
            // DistilBERT has no token types
            let none_ok = name == "type_vocab_size" && (matches!(self.family, Family::DistilBert | Family::ModernBert) || self.family.is_llama());
            if (v == 0 && !none_ok) || v > max {
                return Err(Error::Limit(format!("{name} is {v}; BERT Lab supports 1 to {max}")));
            }
        }
        if let Some(l) = &self.llama {
            if l.kv_heads == 0 || self.num_attention_heads % l.kv_heads != 0 {
                return Err(Error::Shape { tensor: "num_key_value_heads".into(), message: format!("num_attention_heads {} is not a multiple of num_key_value_heads {}", self.num_attention_heads, l.kv_heads) });
            }
            if l.head_dim == 0 || l.head_dim % 2 != 0 || l.head_dim > 1024 {
                return Err(Error::Shape { tensor: "head_dim".into(), message: format!("head_dim is {}; rotary positions need an even head size from 2 to 1024", l.head_dim) });
            }
            if !(l.rope_theta.is_finite() && l.rope_theta > 0.0) {
                return Err(Error::Limit(format!("rope_theta is {}; it must be a positive number", l.rope_theta)));
            }
        } else if self.hidden_size % self.num_attention_heads != 0 {
            return Err(Error::Shape {
                tensor: "num_attention_heads".into(),
                message: format!("hidden_size {} is not divisible by num_attention_heads {}", self.hidden_size, self.num_attention_heads),
            });
        }
        if self.hidden_size < MIN_HIDDEN {
            return Err(Error::Shape { tensor: "hidden_size".into(), message: format!("hidden_size is {}; it must be at least {MIN_HIDDEN} (LayerNorm over fewer values leaves next to nothing of a token)", self.hidden_size) });
        }
        if self.body == Body::Llama && self.hidden_act != "silu" {
            return Err(Error::Unsupported(format!("the activation \"{}\" on a {}: its feed-forward is SwiGLU (\"silu\")", self.hidden_act, self.family.display())));
        }
        if self.body != Body::Llama && !matches!(self.hidden_act.as_str(), "gelu" | "gelu_new" | "gelu_pytorch_tanh") {
            return Err(Error::Unsupported(format!("the activation \"{}\" is not supported (BERT's \"gelu\" and GPT-2's \"gelu_new\" are)", self.hidden_act)));
        }
        if let Some(e) = self.embedding_size {
            if e == 0 || e > 16_384 {
                return Err(Error::Limit(format!("embedding_size is {e}; BERT Lab supports 1 to 16384")));
            }
            if self.is_decoder {
                return Err(Error::Unsupported("a causal model with factorised embeddings (embedding_size) is not supported".into()));
            }
        }
        let body = if self.family.is_gpt2() {
            Body::Gpt2
        } else if self.family.is_modern() {
            Body::Modern
        } else if self.family.is_llama() {
            Body::Llama
        } else {
            Body::Bert
        };
        if (body == Body::Llama) != self.llama.is_some() {
            return Err(Error::Shape { tensor: "llama".into(), message: format!("a {} config {} the Llama body's attention and positions", self.family.display(), if body == Body::Llama { "lacks" } else { "carries" }) });
        }
        if self.body != body {
            return Err(Error::Shape { tensor: "body".into(), message: format!("a {} model runs on the {body:?} body, not the {:?} one", self.family.display(), self.body) });
        }
        if self.body == Body::Modern {
            let d = self.hidden_size / self.num_attention_heads;
            if d % 2 != 0 || self.modern.as_ref().map(|m| m.global_every == 0 || m.global_theta <= 0.0 || m.local_theta <= 0.0).unwrap_or(true) {
                return Err(Error::Shape { tensor: "hidden_size".into(), message: format!("ModernBERT's rotary positions need an even head size (here {d}), positive thetas and a global-attention period") });
            }
        }
        if self.family.position_offset(self.pad_token_id) >= self.max_position_embeddings {
            return Err(Error::Limit(format!("{} positions start after the padding id {}: max_position_embeddings {} leaves none", self.family.display(), self.pad_token_id, self.max_position_embeddings)));
        }
        if matches!(self.body, Body::Gpt2 | Body::Llama) && !self.is_decoder {
            return Err(Error::Shape { tensor: "is_decoder".into(), message: "a GPT-2 body is always causal (is_decoder)".into() });
        }
        for (name, p) in [("hidden_dropout_prob", self.hidden_dropout_prob), ("attention_probs_dropout_prob", self.attention_probs_dropout_prob)] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::Limit(format!("{name} is {p}; it must be in [0, 1)")));
            }
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0) {
            return Err(Error::Limit(format!("layer_norm_eps is {}; it must be in (0, 1)", self.layer_norm_eps)));
        }
        if let Some(lo) = &self.lora {
            lo.validate(self)?;
        }
        Ok(())
    }

    /// A from-scratch model of the given size, with BERT's other defaults.
    pub fn small(vocab_size: usize, hidden: usize, layers: usize, heads: usize) -> ModelConfig {
        ModelConfig {
            vocab_size,
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size: hidden.saturating_mul(4),
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
            pad_token_id: 0,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            is_decoder: false,
            body: Body::Bert,
            family: Family::Bert,
            embedding_size: None,
            shared_layers: false,
            modern: None,
            llama: None,
            eos_token_id: None,
            lora: None,
        }
    }

    /// A from-scratch model of `family` with the given size and the family's own defaults: its
    /// vocabulary (BERT's 30,522, RoBERTa's 50,265, XLM-R's 250,002, ALBERT's 30,000), RoBERTa's
    /// positions after the padding id, DistilBERT without token types, ALBERT's 128-wide embeddings
    /// and one shared set of layers with GPT-2's GELU.
    pub fn small_of(family: Family, hidden: usize, layers: usize, heads: usize) -> ModelConfig {
        let bert = ModelConfig { family, ..Self::small(30522, hidden, layers, heads) };
        match family {
            Family::Gpt2 => Self::small_gpt2(50257, hidden, layers, heads),
            Family::DistilBert => ModelConfig { type_vocab_size: 0, ..bert },
            Family::Roberta | Family::XlmRoberta => ModelConfig {
                vocab_size: if family == Family::Roberta { 50265 } else { 250_002 },
                type_vocab_size: 1,
                pad_token_id: 1,
                max_position_embeddings: 514,
                layer_norm_eps: 1e-5,
                ..bert
            },
            Family::Albert => ModelConfig { vocab_size: 30000, embedding_size: Some(128), shared_layers: true, hidden_act: "gelu_new".into(), ..bert },
            Family::Bert | Family::Electra => bert,
            Family::ModernBert => ModelConfig {
                vocab_size: 50368,
                type_vocab_size: 0,
                intermediate_size: hidden * 3 / 2,
                layer_norm_eps: 1e-5,
                pad_token_id: 50283,
                max_position_embeddings: 8192,
                hidden_dropout_prob: 0.0,
                attention_probs_dropout_prob: 0.0,
                body: Body::Modern,
                modern: Some(ModernSpec { global_theta: 160_000.0, local_theta: 10_000.0, window: 64, global_every: 3, head_bias: false, decoder_bias: true }),
                ..bert
            },
            Family::Llama | Family::Qwen2 | Family::Qwen3 => {
                // SmolLM2's shape of layer (a third as many key/value heads, SwiGLU 8/3 as wide) and
                // vocabulary (49,152), or Qwen's (151,936)
                let kv = if heads % 3 == 0 { heads / 3 } else if heads % 2 == 0 { heads / 2 } else { heads };
                let llama = family == Family::Llama;
                let (vocab, eos) = if llama { (49_152, 0) } else { (151_936, 151_643) };
                let h = heads.max(1);
                ModelConfig {
                    vocab_size: vocab,
                    type_vocab_size: 0,
                    intermediate_size: (hidden * 8 / 3).div_ceil(8) * 8,
                    layer_norm_eps: if llama { 1e-5 } else { 1e-6 },
                    hidden_act: "silu".into(),
                    pad_token_id: eos,
                    eos_token_id: Some(eos),
                    max_position_embeddings: 2048,
                    hidden_dropout_prob: 0.0,
                    attention_probs_dropout_prob: 0.0,
                    is_decoder: true,
                    body: Body::Llama,
                    llama: Some(LlamaSpec {
                        kv_heads: kv,
                        head_dim: hidden / h,
                        rope_theta: if llama { 100_000.0 } else { 1_000_000.0 },
                        rope: RopeScaling::Default,
                        qkv_bias: family == Family::Qwen2,
                        o_bias: false,
                        mlp_bias: false,
                        qk_norm: family == Family::Qwen3,
                        tied: true,
                    }),
                    ..bert
                }
            }
        }
    }

    /// A from-scratch GPT-2 body of the given size (GPT-2's defaults: gelu_new, eps 1e-5).
    pub fn small_gpt2(vocab_size: usize, hidden: usize, layers: usize, heads: usize) -> ModelConfig {
        ModelConfig {
            type_vocab_size: 1,
            layer_norm_eps: 1e-5,
            hidden_act: "gelu_new".into(),
            is_decoder: true,
            body: Body::Gpt2,
            family: Family::Gpt2,
            ..Self::small(vocab_size, hidden, layers, heads)
        }
    }
}

/// Which heads the model carries.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Heads {
    /// A language-model head: masked-LM (`cls.predictions`) or next-word (GPT-2's tied head).
    #[serde(alias = "mlm")]
    pub lm: bool,
    pub sop: bool,
    /// Sequence-classification labels; 0 for none.
    pub num_labels: usize,
}
