//! Model families as data: which Hugging Face `model_type` a model is, what its layers are made of
//! ([`LayerSpec`]), and the table that maps BERT Lab's own tensor names (BERT's, see params.rs) to
//! the family's names in transformers' classes, and back.
//!
//! Adding a family on a body BERT Lab has is a config reader (config.rs), a row in [`Family::rename`]
//! and its quirks here ([`Family::pooler_act`], [`Family::position_offset`], [`Family::lora_targets`]).
//!
//! | family      | body | positions          | token types | classifier reads              | MLM head           |
//! |-------------|------|--------------------|-------------|-------------------------------|--------------------|
//! | bert        | BERT | learned            | 2           | pooler: tanh(dense([CLS]))    | cls.predictions    |
//! | distilbert  | BERT | learned            | none        | pre_classifier: ReLU(dense)   | vocab_transform... |
//! | roberta     | BERT | learned, offset 2  | 1           | classifier.dense, tanh        | lm_head            |
//! | xlm-roberta | BERT | learned, offset 2  | 1           | classifier.dense, tanh        | lm_head            |
//! | electra     | BERT | learned            | 2           | classifier.dense, GELU        | generator_...      |
//! | albert      | BERT, one shared layer, embeddings E wide + projection | 2 | pooler: tanh | predictions |
//! | gpt2        | GPT-2| learned            | none        | score on the last token       | tied wte           |
//! | llama       | Llama| rotary (+ llama3/linear scaling) | none | score on the last token | tied or lm_head |
//! | qwen2       | Llama, biases on q, k, v | rotary | none  | score on the last token       | tied or lm_head    |
//! | qwen3       | Llama, RMSNorm on q, k heads | rotary | none | score on the last token   | tied or lm_head    |

use serde::{Deserialize, Serialize};

/// A Hugging Face model family (its config's `model_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    #[default]
    #[serde(rename = "bert")]
    Bert,
    #[serde(rename = "gpt2")]
    Gpt2,
    #[serde(rename = "distilbert")]
    DistilBert,
    #[serde(rename = "roberta")]
    Roberta,
    #[serde(rename = "xlm-roberta")]
    XlmRoberta,
    #[serde(rename = "electra")]
    Electra,
    #[serde(rename = "albert")]
    Albert,
    #[serde(rename = "modernbert")]
    ModernBert,
    #[serde(rename = "llama")]
    Llama,
    #[serde(rename = "qwen2")]
    Qwen2,
    #[serde(rename = "qwen3")]
    Qwen3,
}

/// The activation between the dense layer on [CLS] and the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolerAct {
    /// BERT's pooler, RoBERTa's classification head.
    Tanh,
    /// DistilBERT's pre_classifier.
    Relu,
    /// ELECTRA's classification head (its config's hidden_act).
    Gelu,
}

/// What a layer is made of: the description every body is read from. BERT Lab runs two shapes
/// today ([`super::config::Body`]): BERT's post-LN encoder layer and GPT-2's pre-LN decoder layer;
/// each family names which, and this says what that means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    /// The norm after each sublayer's residual (post-LN, BERT) or before each sublayer (pre-LN,
    /// GPT-2, with a final norm).
    pub pre_norm: bool,
    /// LayerNorm with a bias (every family here).
    pub norm: &'static str,
    /// Learned absolute positions, added to the word embeddings.
    pub positions: &'static str,
    /// The feed-forward: dense, GELU, dense.
    pub feed_forward: &'static str,
    /// Every projection has a bias.
    pub biases: bool,
    /// Attention over the whole sequence (bidirectional) or causal.
    pub causal: bool,
    /// Local (sliding-window) attention on the layers between the global ones.
    pub local_attention: bool,
}

pub const ALL: [Family; 11] = [Family::Bert, Family::DistilBert, Family::Roberta, Family::XlmRoberta, Family::Electra, Family::Albert, Family::ModernBert, Family::Gpt2, Family::Llama, Family::Qwen2, Family::Qwen3];

impl Family {
    /// The config's `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Gpt2 => "gpt2",
            Family::DistilBert => "distilbert",
            Family::Roberta => "roberta",
            Family::XlmRoberta => "xlm-roberta",
            Family::Electra => "electra",
            Family::Albert => "albert",
            Family::ModernBert => "modernbert",
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
        }
    }

    pub fn from_model_type(t: &str) -> Option<Family> {
        ALL.iter().copied().find(|f| f.model_type() == t)
    }

    /// The supported `model_type`s, for messages.
    pub fn supported() -> String {
        ALL.iter().map(|f| format!("\"{}\"", f.model_type())).collect::<Vec<_>>().join(", ")
    }

    /// The supported families as people write them ("BERT, DistilBERT, ... and GPT-2").
    pub fn names() -> String {
        let v: Vec<&str> = ALL.iter().map(|f| f.display()).collect();
        format!("{} and {}", v[..v.len() - 1].join(", "), v[v.len() - 1])
    }

    /// How people write its name.
    pub fn display(self) -> &'static str {
        match self {
            Family::Bert => "BERT",
            Family::Gpt2 => "GPT-2",
            Family::DistilBert => "DistilBERT",
            Family::Roberta => "RoBERTa",
            Family::XlmRoberta => "XLM-RoBERTa",
            Family::Electra => "ELECTRA",
            Family::Albert => "ALBERT",
            Family::ModernBert => "ModernBERT",
            Family::Llama => "Llama",
            Family::Qwen2 => "Qwen2",
            Family::Qwen3 => "Qwen3",
        }
    }

    /// transformers' class-name prefix (`{prefix}ForSequenceClassification`).
    pub fn class_prefix(self) -> &'static str {
        match self {
            Family::Bert => "Bert",
            Family::Gpt2 => "GPT2",
            Family::DistilBert => "DistilBert",
            Family::Roberta => "Roberta",
            Family::XlmRoberta => "XLMRoberta",
            Family::Electra => "Electra",
            Family::Albert => "Albert",
            Family::ModernBert => "ModernBert",
            Family::Llama => "Llama",
            Family::Qwen2 => "Qwen2",
            Family::Qwen3 => "Qwen3",
        }
    }

    /// Where the `For*` classes keep the body (`bert.`, `roberta.`...).
    pub fn base_prefix(self) -> &'static str {
        match self {
            Family::Bert => "bert.",
            Family::Gpt2 => "transformer.",
            Family::DistilBert => "distilbert.",
            Family::Roberta | Family::XlmRoberta => "roberta.",
            Family::Electra => "electra.",
            Family::Albert => "albert.",
            Family::ModernBert | Family::Llama | Family::Qwen2 | Family::Qwen3 => "model.",
        }
    }

    /// Whether it runs on ModernBERT's body.
    pub fn is_modern(self) -> bool {
        self == Family::ModernBert
    }

    /// Whether it runs on the Llama-shaped decoder body (Llama, Qwen2, Qwen3).
    pub fn is_llama(self) -> bool {
        matches!(self, Family::Llama | Family::Qwen2 | Family::Qwen3)
    }

    /// Whether it runs on GPT-2's body.
    pub fn is_gpt2(self) -> bool {
        self == Family::Gpt2
    }

    /// The layer its body is made of.
    pub fn layer(self) -> LayerSpec {
        let bert = LayerSpec { pre_norm: false, norm: "LayerNorm", positions: "learned", feed_forward: "GELU", biases: true, causal: false, local_attention: false };
        match self {
            Family::Gpt2 => LayerSpec { pre_norm: true, causal: true, ..bert },
            Family::ModernBert => LayerSpec { pre_norm: true, norm: "LayerNorm without bias", positions: "rotary (a global and a local theta)", feed_forward: "GeGLU", biases: false, causal: false, local_attention: true },
            Family::Llama | Family::Qwen2 | Family::Qwen3 => LayerSpec {
                pre_norm: true,
                norm: if self == Family::Qwen3 { "RMSNorm (also on each query and key head)" } else { "RMSNorm" },
                positions: "rotary",
                feed_forward: "SwiGLU",
                // Qwen2's q, k and v have biases (Llama's where attention_bias says)
                biases: self == Family::Qwen2,
                causal: true,
                local_attention: false,
            },
            _ => bert,
        }
    }

    /// The activation after the dense layer on [CLS] that the classifier reads.
    pub fn pooler_act(self) -> PoolerAct {
        match self {
            Family::DistilBert => PoolerAct::Relu,
            Family::Electra | Family::ModernBert => PoolerAct::Gelu,
            _ => PoolerAct::Tanh,
        }
    }

    /// How far positions are shifted: RoBERTa's start after its padding id (`padding_idx + 1`).
    pub fn position_offset(self, pad_token_id: usize) -> usize {
        match self {
            Family::Roberta | Family::XlmRoberta => pad_token_id + 1,
            _ => 0,
        }
    }

    /// PEFT's default LoRA targets for the family (its
    /// TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
    pub fn lora_targets(self) -> &'static [&'static str] {
        match self {
            Family::Gpt2 => &["c_attn"],
            Family::DistilBert => &["q_lin", "v_lin"],
            Family::ModernBert => &["Wqkv"],
            Family::Llama | Family::Qwen2 | Family::Qwen3 => &["q_proj", "v_proj"],
            _ => &["query", "value"],
        }
    }

    /// The modules of the masked-LM head, for PEFT's modules_to_save (BERT's `cls` also holds
    /// BERT Lab's sentence-order head).
    pub fn lm_head_modules(self) -> &'static [&'static str] {
        match self {
            Family::Roberta | Family::XlmRoberta => &["lm_head"],
            Family::DistilBert => &["vocab_transform", "vocab_layer_norm", "vocab_projector"],
            Family::Electra => &["generator_predictions", "generator_lm_head"],
            Family::Albert => &["predictions", "sop_classifier"],
            Family::ModernBert => &["head", "decoder"],
            Family::Llama | Family::Qwen2 | Family::Qwen3 => &["lm_head"],
            _ => &["cls"],
        }
    }

    /// Whether the masked-LM or next-word head trains beside LoRA's adapters (PEFT's
    /// `modules_to_save`, [`Family::lm_head_modules`]): so for the encoders; a Llama-shaped decoder's
    /// untied `lm_head` stays frozen as peft's causal-LM LoRA keeps it (GPT-2's head is its word
    /// embeddings, frozen with the body).
    pub fn lm_head_trains_with_adapters(self) -> bool {
        !self.is_llama()
    }

    /// Whether the family's classifier has its own dense layer (`classifier.dense`,
    /// `pre_classifier`) where BERT's has the pooler.
    pub fn pooler_in_head(self) -> bool {
        !matches!(self, Family::Bert | Family::Gpt2 | Family::Albert | Family::Llama | Family::Qwen2 | Family::Qwen3)
    }

    /// The family's name for one of BERT Lab's tensors, as its `For*` classes store it (the body
    /// under [`Family::base_prefix`], the heads at the top). Low-rank adapters keep their
    /// projection's name with `.lora_A.weight` / `.lora_B.weight` after it.
    pub fn hf_name(self, ours: &str) -> String {
        if let Some(i) = ours.find(".lora_") {
            let (path, rest) = ours.split_at(i);
            let mapped = self.hf_name(&format!("{path}.weight"));
            return format!("{}{rest}", mapped.strip_suffix(".weight").unwrap_or(&mapped));
        }
        let (inner, body) = self.rename(ours);
        if body {
            format!("{}{inner}", self.base_prefix())
        } else {
            inner
        }
    }

    /// The family's name for one of BERT Lab's tensors without the body's prefix, and whether it
    /// is in the body (else a head at the top level).
    fn rename(self, ours: &str) -> (String, bool) {
        let head = |s: &str| (s.to_string(), false);
        let sub = |prefix: &str, to: &str| ours.strip_prefix(prefix).map(|rest| format!("{to}{rest}"));
        match self {
            Family::Gpt2 => (ours.to_string(), !(ours.starts_with("score."))),
            // BERT Lab's names are transformers' without `model.`; the LM head and the classifier
            // are at the top
            Family::Llama | Family::Qwen2 | Family::Qwen3 => (ours.to_string(), !(ours.starts_with("score.") || ours.starts_with("lm_head."))),
            Family::Bert => {
                if ours.starts_with("cls.") || ours.starts_with("classifier.") {
                    head(ours)
                } else {
                    (ours.to_string(), true)
                }
            }
            Family::ModernBert => {
                // BERT Lab's names for the body are transformers' without `model.`; the masked-LM
                // head and the classifier's dense layer are both transformers' `head` (each model
                // class has one of them)
                for (a, b) in [("cls.predictions.transform.dense", "head.dense"), ("cls.predictions.transform.LayerNorm", "head.norm"), ("cls.predictions.bias", "decoder.bias"), ("pooler.dense", "head.dense"), ("pooler.norm", "head.norm")] {
                    if let Some(s) = sub(a, b) {
                        return head(&s);
                    }
                }
                if ours.starts_with("cls.") || ours.starts_with("classifier.") {
                    return head(ours);
                }
                (ours.to_string(), true)
            }
            Family::Albert => {
                if let Some(s) = sub("embeddings.projection", "encoder.embedding_hidden_mapping_in") {
                    return (s, true);
                }
                if let Some(s) = sub("pooler.dense", "pooler") {
                    return (s, true);
                }
                for (a, b) in [("cls.predictions.transform.dense", "predictions.dense"), ("cls.predictions.transform.LayerNorm", "predictions.LayerNorm"), ("cls.predictions.bias", "predictions.bias"), ("cls.seq_relationship", "sop_classifier.classifier")] {
                    if let Some(s) = sub(a, b) {
                        return head(&s);
                    }
                }
                if ours.starts_with("cls.") || ours.starts_with("classifier.") {
                    return head(ours);
                }
                if let Some(rest) = ours.strip_prefix("encoder.layer.") {
                    // every layer is the one shared set, the first layer of the first group
                    let within = rest.split_once('.').map(|(_, w)| w).unwrap_or("");
                    let table = [
                        ("attention.self.query", "attention.query"),
                        ("attention.self.key", "attention.key"),
                        ("attention.self.value", "attention.value"),
                        ("attention.output.dense", "attention.dense"),
                        ("attention.output.LayerNorm", "attention.LayerNorm"),
                        ("intermediate.dense", "ffn"),
                        ("output.dense", "ffn_output"),
                        ("output.LayerNorm", "full_layer_layer_norm"),
                    ];
                    for (a, b) in table {
                        if let Some(tail) = within.strip_prefix(a) {
                            return (format!("encoder.albert_layer_groups.0.albert_layers.0.{b}{tail}"), true);
                        }
                    }
                }
                (ours.to_string(), true)
            }
            Family::Roberta | Family::XlmRoberta | Family::Electra => {
                if let Some(s) = sub("embeddings.projection", "embeddings_project") {
                    return (s, true);
                }
                let lm = if self == Family::Electra { ("generator_predictions.dense", "generator_predictions.LayerNorm", "generator_lm_head.bias") } else { ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias") };
                if let Some(s) = sub("pooler.dense", "classifier.dense") {
                    head(&s)
                } else if let Some(s) = sub("classifier.", "classifier.out_proj.") {
                    head(&s)
                } else if let Some(s) = sub("cls.predictions.transform.dense", lm.0) {
                    head(&s)
                } else if let Some(s) = sub("cls.predictions.transform.LayerNorm", lm.1) {
                    head(&s)
                } else if ours == "cls.predictions.bias" {
                    head(lm.2)
                } else if ours.starts_with("cls.") {
                    head(ours)
                } else {
                    (ours.to_string(), true)
                }
            }
            Family::DistilBert => {
                if let Some(s) = sub("pooler.dense", "pre_classifier") {
                    return head(&s);
                }
                if let Some(s) = sub("cls.predictions.transform.dense", "vocab_transform") {
                    return head(&s);
                }
                if let Some(s) = sub("cls.predictions.transform.LayerNorm", "vocab_layer_norm") {
                    return head(&s);
                }
                if ours == "cls.predictions.bias" {
                    return head("vocab_projector.bias");
                }
                if ours.starts_with("cls.") || ours.starts_with("classifier.") {
                    return head(ours);
                }
                if let Some(rest) = ours.strip_prefix("encoder.layer.") {
                    let (l, within) = rest.split_once('.').unwrap_or((rest, ""));
                    let table = [
                        ("attention.self.query", "attention.q_lin"),
                        ("attention.self.key", "attention.k_lin"),
                        ("attention.self.value", "attention.v_lin"),
                        ("attention.output.dense", "attention.out_lin"),
                        ("attention.output.LayerNorm", "sa_layer_norm"),
                        ("intermediate.dense", "ffn.lin1"),
                        ("output.dense", "ffn.lin2"),
                        ("output.LayerNorm", "output_layer_norm"),
                    ];
                    for (a, b) in table {
                        if let Some(tail) = within.strip_prefix(a) {
                            return (format!("transformer.layer.{l}.{b}{tail}"), true);
                        }
                    }
                    return (format!("transformer.layer.{l}.{within}"), true);
                }
                (ours.to_string(), true)
            }
        }
    }

    /// Names a checkpoint of the family stores that are not parameters, or are tied to one it
    /// stores elsewhere (the MLM decoder is the word embedding), and so are skipped on load.
    pub fn skipped_on_load(self, stored: &str) -> bool {
        let s = stored.strip_prefix(self.base_prefix()).unwrap_or(stored);
        if self.is_llama() {
            // an untied LM head is a parameter; older checkpoints store the rotary frequencies
            return s.ends_with("rotary_emb.inv_freq");
        }
        s.ends_with("position_ids")
            || s == "embeddings.token_type_ids"
            || matches!(s, "cls.predictions.decoder.weight" | "lm_head.weight" | "lm_head.decoder.weight" | "vocab_projector.weight" | "generator_lm_head.weight" | "predictions.decoder.weight")
            || (self == Family::ModernBert && s == "decoder.weight")
            || s.ends_with(".attn.bias")
            || s.ends_with(".attn.masked_bias")
    }

    /// Older names for the same tensor: (stored, the family's current name).
    pub fn legacy_alias(self, stored: &str) -> Option<&'static str> {
        match (self, stored) {
            (Family::Bert, "cls.predictions.decoder.bias") => Some("cls.predictions.bias"),
            (Family::Roberta | Family::XlmRoberta, "lm_head.decoder.bias") => Some("lm_head.bias"),
            (Family::Albert, "predictions.decoder.bias") => Some("predictions.bias"),
            _ => None,
        }
    }

    /// The family a checkpoint's tensor names suggest, for a file loaded without its config.
    pub fn guess_from_names<'a>(names: impl Iterator<Item = &'a str>) -> Option<Family> {
        for n in names {
            for f in [Family::DistilBert, Family::Roberta, Family::Electra, Family::Albert] {
                if n.starts_with(f.base_prefix()) {
                    return Some(f);
                }
            }
        }
        None
    }
}
