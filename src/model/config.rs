//! `BertConfig`, read straight from a Hugging Face `config.json`, with presets for small models.

use serde::{Deserialize, Serialize};

/// The largest vocabulary a config may have (BERT's is 30522, multilingual models' about 250000).
pub const MAX_VOCAB: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
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

impl BertConfig {
    /// Parses a Hugging Face config.json and checks that BERT Lab can run it.
    pub fn from_json(text: &str) -> Result<BertConfig, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("config.json is not valid JSON: {e}"))?;
        if let Some(mt) = v.get("model_type").and_then(|m| m.as_str()) {
            if mt != "bert" {
                return Err(format!("config.json describes a '{mt}' model; BERT Lab runs BERT models (model_type \"bert\")"));
            }
        }
        let c: BertConfig = serde_json::from_value(v).map_err(|e| format!("config.json is not a BERT config: {e}"))?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!("hidden_act \"{}\" is not supported (BERT's \"gelu\" is)", self.hidden_act));
        }
        for (name, v) in [("vocab_size", self.vocab_size), ("hidden_size", self.hidden_size), ("intermediate_size", self.intermediate_size), ("max_position_embeddings", self.max_position_embeddings), ("type_vocab_size", self.type_vocab_size)] {
            if v == 0 {
                return Err(format!("{name} is 0"));
            }
        }
        // sizes past any BERT that fits a browser, checked before anything is allocated (and before
        // any product of them can overflow)
        for (name, v, max) in [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, 16_384),
            ("intermediate_size", self.intermediate_size, 65_536),
            ("num_hidden_layers", self.num_hidden_layers, 256),
            ("num_attention_heads", self.num_attention_heads, 1024),
            ("max_position_embeddings", self.max_position_embeddings, 65_536),
            ("type_vocab_size", self.type_vocab_size, 1024),
        ] {
            if v > max {
                return Err(format!("{name} is {v}; BERT Lab supports at most {max}"));
            }
        }
        for (name, p) in [("hidden_dropout_prob", self.hidden_dropout_prob), ("attention_probs_dropout_prob", self.attention_probs_dropout_prob)] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("{name} is {p}; it must be in [0, 1)"));
            }
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0) {
            return Err(format!("layer_norm_eps is {}; it must be in (0, 1)", self.layer_norm_eps));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// A from-scratch model of the given size, with BERT's other defaults.
    pub fn small(vocab_size: usize, hidden: usize, layers: usize, heads: usize) -> BertConfig {
        BertConfig {
            vocab_size,
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size: 4 * hidden,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
            pad_token_id: 0,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            is_decoder: false,
        }
    }

    /// Parameters of the encoder + pooler (without heads).
    pub fn encoder_params(&self) -> usize {
        let (h, i, l) = (self.hidden_size, self.intermediate_size, self.num_hidden_layers);
        let emb = (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h;
        emb + l * layer + h * h + h
    }
}
