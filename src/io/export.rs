//! Export in Hugging Face's format: the files of a model directory that `transformers` loads with
//! `BertForSequenceClassification.from_pretrained(dir)` (or BertForMaskedLM / BertForPreTraining /
//! BertModel, by the heads present). Returns (file name, bytes) pairs, so the browser can offer them
//! as downloads and the CLI can write them to a directory.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

use crate::safetensors;
use crate::model::params::hf_name;
use crate::model::config::Body;
use crate::model::{ModelConfig, Heads, Pooling};

/// The head file of a mean-pooling classifier, and the JSON that documents it.
pub const HEAD_FILE: &str = "classifier_head.safetensors";
pub const HEAD_JSON: &str = "bertlab_head.json";
/// The script that continues a classifier's training with transformers' Trainer.
pub const TRAIN_HF: &str = "train_hf.py";
/// PEFT's adapter files.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// The index of a checkpoint whose weights are split into shards.
pub const WEIGHTS_INDEX: &str = "model.safetensors.index.json";

/// The shard files a model.safetensors.index.json names (its `weight_map`'s values), each once, in
/// order.
pub fn shards_of(index: &[u8]) -> Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(index).map_err(|e| Error::Data { line: 0, message: format!("{WEIGHTS_INDEX} is not valid JSON: {e}") })?;
    let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| Error::Data { line: 0, message: format!("{WEIGHTS_INDEX} has no weight_map") })?;
    let mut shards: Vec<String> = map.values().filter_map(|f| f.as_str().map(str::to_string)).collect();
    shards.sort();
    shards.dedup();
    if shards.is_empty() || shards.iter().any(|s| !s.ends_with(".safetensors") || s.contains('/') || s.contains("..")) {
        return Err(Error::Data { line: 0, message: format!("{WEIGHTS_INDEX}: its weight_map must name .safetensors files beside it") });
    }
    Ok(shards)
}

/// Which file a Hugging Face repository's weights are in, given its file list: model.safetensors,
/// or the index of its shards; a repository with only `pytorch_model.bin` gets a message saying how
/// to convert it.
pub fn pick_weights_file<'a>(files: &[&'a str]) -> Result<&'a str> {
    if let Some(f) = files.iter().find(|f| **f == "model.safetensors") {
        return Ok(f);
    }
    if let Some(f) = files.iter().find(|f| **f == WEIGHTS_INDEX) {
        return Ok(f);
    }
    if files.iter().any(|f| f.starts_with("model-") && f.ends_with(".safetensors")) {
        return Err(Error::Data { line: 0, message: format!("these weights are split into safetensors shards, but {WEIGHTS_INDEX} (which says which tensor is in which shard) is missing: load it with the shards") });
    }
    if files.iter().any(|f| *f == "pytorch_model.bin") {
        return Err(Error::Unsupported("this repository offers only pytorch_model.bin (a pickle, which a browser cannot read safely). Convert it once with Python: \
`from transformers import AutoModel; AutoModel.from_pretrained(REPO).save_pretrained(DIR, safe_serialization=True)` and load DIR/model.safetensors, \
or pick a repository that has model.safetensors".into()));
    }
    Err(Error::Data { line: 0, message: "no model.safetensors in this repository".into() })
}

/// What the model card says about how the model was made.
#[derive(Debug, Clone, Default)]
pub struct ModelCard {
    pub base_model: String,
    pub data_summary: String,
    /// (name, value) pairs, e.g. ("validation accuracy", "0.91").
    pub metrics: Vec<(String, String)>,
    pub seed: u64,
    pub notes: String,
    /// What the classification head reads; a mean-pooling head is exported beside the encoder.
    pub pooling: Pooling,
    /// The fine-tuning run's settings, for a classifier's `train_hf.py` (none: no script; the session
    /// gives a classifier's defaults, [`RunSettings::of`] in `session`).
    pub run: Option<RunSettings>,
}

/// A fine-tuning run's settings, as `train_hf.py` continues it with transformers' Trainer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunSettings {
    /// "feature", "last:N" or "full".
    pub mode: String,
    /// "cls", "mean" or "last" ([`Pooling::name`]).
    pub pooling: String,
    pub lr: f64,
    pub epochs: usize,
    pub batch: usize,
    pub max_len: usize,
    pub seed: u64,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    /// Class names in the classifier's row order.
    pub labels: Vec<String>,
}

/// The script that continues a run with transformers' Trainer (src/io/templates/train_hf.py, the
/// run's settings written into it).
pub fn train_hf_py(run: &RunSettings) -> String {
    let settings = serde_json::to_string_pretty(run).unwrap_or_default();
    include_str!("templates/train_hf.py").replace("__SETTINGS__", &settings)
}

pub fn architecture(cfg: &ModelConfig, heads: Heads) -> String {
    use crate::model::family::Family;
    if cfg.body == Body::Gpt2 {
        return if heads.num_labels > 0 { "GPT2ForSequenceClassification" } else { "GPT2LMHeadModel" }.to_string();
    }
    if cfg.body == Body::Llama {
        let p = cfg.family.class_prefix();
        return if heads.num_labels > 0 { format!("{p}ForSequenceClassification") } else { format!("{p}ForCausalLM") };
    }
    let p = cfg.family.class_prefix();
    // the families with a class for both pretraining heads (BERT's next-sentence head is BERT Lab's
    // sentence-order head; ALBERT's is sop_classifier)
    let bert = matches!(cfg.family, Family::Bert | Family::Albert);
    match (heads.lm, heads.sop, heads.num_labels > 0) {
        // a decoder (causal attention) with its language-model head
        (true, _, false) if cfg.is_decoder => format!("{p}LMHeadModel"),
        (_, _, true) => format!("{p}ForSequenceClassification"),
        // BERT's pretraining heads together; the other families have a masked-LM class only (a
        // sentence-order head BERT Lab gave them stays BERT Lab's)
        (true, true, false) if bert => format!("{p}ForPreTraining"),
        (true, _, false) => format!("{p}ForMaskedLM"),
        (false, true, false) if bert => format!("{p}ForPreTraining"),
        _ => format!("{p}Model"),
    }
}

/// config.json: the model's config plus architectures and, for a classifier, id2label/label2id in
/// label-index order.
pub fn config_json(cfg: &ModelConfig, heads: Heads, labels: &[String]) -> String {
    use crate::model::family::Family;
    let mut v = if cfg.body == Body::Gpt2 {
        // GPT2Config's names; its pad_token_id is the id whose rightmost absence marks the token
        // GPT2ForSequenceClassification reads (model::batch::summary_rows)
        cfg.gpt2_json()
    } else if cfg.body == Body::Llama {
        // LlamaConfig's, Qwen2Config's or Qwen3Config's names; pad_token_id as for GPT-2
        cfg.llama_json()
    } else if cfg.family == Family::DistilBert {
        cfg.distilbert_json()
    } else if cfg.family == Family::ModernBert {
        cfg.modernbert_json()
    } else {
        let mut v = serde_json::to_value(cfg).unwrap_or_default();
        let o = v.as_object_mut().expect("a config serialises to an object");
        o.remove("body");
        o.remove("lora");
        o.remove("family");
        o.insert("model_type".into(), cfg.family.model_type().into());
        o.insert("tie_word_embeddings".into(), true.into());
        o.insert("position_embedding_type".into(), "absolute".into());
        if matches!(cfg.family, Family::Electra | Family::Albert) {
            o.insert("embedding_size".into(), cfg.embed_width().into());
        }
        if cfg.family == Family::Albert {
            o.insert("num_hidden_groups".into(), 1.into());
            o.insert("inner_group_num".into(), 1.into());
        }
        o.remove("shared_layers");
        v
    };
    let o = v.as_object_mut().expect("a config serialises to an object");
    o.insert("architectures".into(), serde_json::json!([architecture(cfg, heads)]));
    if heads.num_labels > 0 {
        let names: Vec<String> = (0..heads.num_labels).map(|i| labels.get(i).cloned().unwrap_or_else(|| format!("LABEL_{i}"))).collect();
        // serde_json's maps are sorted by key: a stable order across exports.
        let id2label: serde_json::Map<String, serde_json::Value> = names.iter().enumerate().map(|(i, n)| (i.to_string(), n.clone().into())).collect();
        let label2id: serde_json::Map<String, serde_json::Value> = names.iter().enumerate().map(|(i, n)| (n.clone(), i.into())).collect();
        o.insert("id2label".into(), id2label.into());
        o.insert("label2id".into(), label2id.into());
        o.insert("num_labels".into(), heads.num_labels.into());
        o.insert("problem_type".into(), "single_label_classification".into());
    }
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn model_card(cfg: &ModelConfig, heads: Heads, card: &ModelCard, labels: &[String]) -> String {
    let mut s = String::new();
    let tag = cfg.family.model_type();
    s.push_str(&format!("---\nlibrary_name: transformers\ntags:\n- {tag}\n- bert-lab\n---\n\n"));
    s.push_str(&format!("# {} trained with BERT Lab\n\n", architecture(cfg, heads)));
    s.push_str("Trained in a web browser on WebGPU with BERT Lab; no data left the user's machine.\n\n");
    s.push_str(&format!("- base model: {}\n", if card.base_model.is_empty() { "from scratch" } else { &card.base_model }));
    s.push_str(&format!(
        "- size: {} layers, hidden {}, {} heads, vocabulary {}\n",
        cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.vocab_size
    ));
    if !labels.is_empty() {
        s.push_str(&format!("- labels: {}\n", labels.join(", ")));
    }
    s.push_str(&format!("- data: {}\n", if card.data_summary.is_empty() { "not recorded" } else { &card.data_summary }));
    s.push_str(&format!("- seed: {}\n", card.seed));
    if !card.metrics.is_empty() {
        s.push_str("\n## Metrics\n\n| metric | value |\n| --- | --- |\n");
        for (k, v) in &card.metrics {
            s.push_str(&format!("| {k} | {v} |\n"));
        }
    }
    if !card.notes.is_empty() {
        s.push_str(&format!("\n{}\n", card.notes));
    }
    if card.pooling == Pooling::Mean && !labels.is_empty() {
        s.push_str(MEAN_HEAD_USE);
        return s;
    }
    if card.pooling == Pooling::Last && !labels.is_empty() {
        s.push_str(match cfg.body {
            Body::Gpt2 => GPT2_HEAD_USE,
            Body::Llama => LLAMA_HEAD_USE,
            _ => LAST_HEAD_USE,
        });
        return s;
    }
    s.push_str("\n## Use\n\n```python\nfrom transformers import AutoTokenizer, ");
    s.push_str(&architecture(cfg, heads));
    s.push_str("\ntok = AutoTokenizer.from_pretrained(\"DIR\")\nmodel = ");
    s.push_str(&architecture(cfg, heads));
    s.push_str(".from_pretrained(\"DIR\")\n```\n");
    s
}

const MEAN_HEAD_USE: &str = "\n## Use\n\nThe classifier reads the attention-masked mean of the last hidden states (as sentence-transformers \
pools), which no `BertFor*` class does. So `model.safetensors` holds the encoder (`BertModel`), and the head is \
in `classifier_head.safetensors` (`classifier.weight` (labels, hidden), `classifier.bias` (labels)), described by \
`bertlab_head.json` (pooling, label names in id order):\n\n```python\nimport json, torch\nfrom safetensors.torch import load_file\n\
from transformers import AutoTokenizer, BertModel\ntok = AutoTokenizer.from_pretrained(\"DIR\")\nenc = BertModel.from_pretrained(\"DIR\").eval()\n\
head = load_file(\"DIR/classifier_head.safetensors\")\nlabels = json.load(open(\"DIR/bertlab_head.json\"))[\"labels\"]\n\
x = tok([\"some text\"], return_tensors=\"pt\", padding=True)\nwith torch.no_grad():\n    h = enc(**x).last_hidden_state\n\
m = x[\"attention_mask\"].unsqueeze(-1).float()\nmean = (h * m).sum(1) / m.sum(1)\n\
probs = torch.softmax(mean @ head[\"classifier.weight\"].T + head[\"classifier.bias\"], -1)\n```\n";

const LAST_HEAD_USE: &str = "\n## Use\n\nThis is a causal (GPT-style) BERT: its [CLS] sees only itself, so the classifier reads the hidden \
state of each text's last token that is not padding (the closing [SEP]), which no `BertFor*` class does. So `model.safetensors` \
holds the encoder (`BertModel`, `is_decoder`), and the head is in `classifier_head.safetensors` (`classifier.weight` (labels, \
hidden), `classifier.bias` (labels)), described by `bertlab_head.json` (pooling, label names in id order):\n\n```python\n\
import json, torch\nfrom safetensors.torch import load_file\nfrom transformers import AutoTokenizer, BertModel\n\
tok = AutoTokenizer.from_pretrained(\"DIR\")\nenc = BertModel.from_pretrained(\"DIR\").eval()\n\
head = load_file(\"DIR/classifier_head.safetensors\")\nlabels = json.load(open(\"DIR/bertlab_head.json\"))[\"labels\"]\n\
x = tok([\"some text\"], return_tensors=\"pt\", padding=True)\nwith torch.no_grad():\n    h = enc(**x).last_hidden_state\n\
last = (torch.arange(x[\"input_ids\"].shape[1]) * (x[\"input_ids\"] != tok.pad_token_id)).argmax(-1)\n\
probs = torch.softmax(h[torch.arange(len(last)), last] @ head[\"classifier.weight\"].T + head[\"classifier.bias\"], -1)\n```\n";

const GPT2_HEAD_USE: &str = "\n## Use\n\n`GPT2ForSequenceClassification` reads the hidden state of each text's rightmost token that is not \
`pad_token_id`. BERT Lab frames every text as `<|endoftext|> text <|endoftext|>` and pads with `<|endoftext|>`, so the \
token read is the text's last. This directory's tokenizer.json frames texts the same way (its post-processor), so the \
tokenizer gives transformers the ids BERT Lab trained on:\n\n```python\n\
import torch\nfrom transformers import AutoTokenizer, GPT2ForSequenceClassification\n\
tok = AutoTokenizer.from_pretrained(\"DIR\")\nmodel = GPT2ForSequenceClassification.from_pretrained(\"DIR\").eval()\n\
x = tok([\"some text\"], return_tensors=\"pt\")\n\
with torch.no_grad():\n    probs = torch.softmax(model(**x).logits, -1)\n```\n";

const LLAMA_HEAD_USE: &str = "\n## Use\n\n`AutoModelForSequenceClassification` (Llama's, Qwen2's or Qwen3's class) reads the hidden state of each \
text's rightmost token that is not `pad_token_id`. BERT Lab frames texts as this directory's tokenizer does (a BOS where its \
post-processor adds one, no end token) and pads with `pad_token_id`, so the token read is the text's last:\n\n```python\n\
import torch\nfrom transformers import AutoTokenizer, AutoModelForSequenceClassification\n\
tok = AutoTokenizer.from_pretrained(\"DIR\")\nmodel = AutoModelForSequenceClassification.from_pretrained(\"DIR\").eval()\n\
if tok.pad_token is None:\n    tok.pad_token = tok.convert_ids_to_tokens(model.config.pad_token_id)\n\
x = tok([\"some text\"], return_tensors=\"pt\", padding=True)\n\
with torch.no_grad():\n    probs = torch.softmax(model(**x).logits, -1)\n```\n";

/// All files of the export. `tensors` are (our name, shape, values) as `ParamStore::read_all` gives;
/// `tokenizer_files` (tokenizer.json, vocab.txt, tokenizer_config.json, special_tokens_map.json)
/// travel with the model unchanged.
pub fn export_files(
    cfg: &ModelConfig,
    heads: Heads,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    labels: &[String],
    tokenizer_files: &[(String, Vec<u8>)],
    card: &ModelCard,
) -> Vec<(String, Vec<u8>)> {
    if let Some(lora) = &cfg.lora {
        return adapter_files(cfg, lora, heads, tensors, labels, tokenizer_files, card);
    }
    // a head no BertFor* class has (the masked mean, a causal BERT's last token) travels beside
    // the encoder; GPT-2's last-token head is GPT2ForSequenceClassification's own
    let head_file = heads.num_labels > 0 && (card.pooling == Pooling::Mean || (card.pooling == Pooling::Last && cfg.body == Body::Bert));
    // a classifier travels with the script that continues its training on a cluster
    let script = card.run.as_ref().filter(|_| heads.num_labels > 0).map(train_hf_py);
    let (tensors, head): (Vec<_>, Vec<_>) = tensors.into_iter().partition(|(n, _, _)| !(head_file && n.starts_with("classifier.")));
    let heads = if head_file { Heads { num_labels: 0, ..heads } } else { heads };
    let arch = architecture(cfg, heads);
    // BertModel's own names have no prefix; the BertFor* classes put the encoder under `bert.`
    // (RobertaFor* under `roberta.`...)
    let prefixed = !arch.ends_with("Model") || arch.ends_with("LMHeadModel");
    // BertForMaskedLM and BertLMHeadModel are built without a pooler; exporting one would only
    // draw a warning. The other families' dense layer on [CLS] is their classifier's, which only
    // their ForSequenceClassification has
    let classifies = arch.ends_with("ForSequenceClassification");
    let drop_pooler = arch.ends_with("ForMaskedLM") || arch.ends_with("LMHeadModel") || (cfg.family.pooler_in_head() && !classifies);
    // a classifier that kept its pretraining heads (the page keeps them, so that a fine-tuned model
    // still fills masks) exports as the class transformers has, which holds none
    let drop_pretraining_heads = classifies || arch.ends_with("Model") && !arch.ends_with("LMHeadModel");
    // BERT Lab's sentence-order head on a family whose masked-LM class has none stays out
    let drop_sop = !matches!(cfg.family, crate::model::family::Family::Bert | crate::model::family::Family::Albert);
    let base = cfg.family.base_prefix();
    let tensors: Vec<_> = tensors
        .into_iter()
        .filter(|(n, _, _)| !(drop_pooler && n.starts_with("pooler.")) && !(drop_pretraining_heads && (n.starts_with("cls.") || n.starts_with("lm_head."))) && !(drop_sop && n.starts_with("cls.seq_relationship")))
        .map(|(n, s, v)| {
            let hf = hf_name(cfg.family, &n);
            (if prefixed { hf } else { hf.strip_prefix(base).map(str::to_string).unwrap_or(hf) }, s, v)
        })
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let mut files = vec![
        ("model.safetensors".to_string(), safetensors::serialize(&tensors, &meta)),
        ("config.json".to_string(), config_json(cfg, heads, labels).into_bytes()),
        ("README.md".to_string(), model_card(cfg, heads, card, labels).into_bytes()),
    ];
    if head_file {
        let pooling = card.pooling.name();
        let mut hm = BTreeMap::new();
        hm.insert("pooling".to_string(), pooling.to_string());
        files.push((HEAD_FILE.to_string(), safetensors::serialize(&head, &hm)));
        let formula = if card.pooling == Pooling::Mean {
            "probs = softmax(classifier.weight @ mean_t(last_hidden_state[t] * mask[t]) + classifier.bias)"
        } else {
            "probs = softmax(classifier.weight @ last_hidden_state[t_last] + classifier.bias), t_last the rightmost position whose id is not pad_token_id"
        };
        let doc = serde_json::json!({
            "pooling": pooling,
            "weights": HEAD_FILE,
            "labels": labels,
            "formula": formula,
        });
        files.push((HEAD_JSON.to_string(), serde_json::to_vec_pretty(&doc).unwrap_or_default()));
    }
    for (name, bytes) in tokenizer_files {
        files.push((name.clone(), bytes.clone()));
    }
    if let Some(s) = script {
        files.push((TRAIN_HF.to_string(), s.into_bytes()));
    }
    files
}

/// A model with LoRA adapters as PEFT saves one: `adapter_config.json` and
/// `adapter_model.safetensors` (the adapters' A and B, and the classification head as PEFT's
/// `modules_to_save`, under PEFT's names), the base model's config.json with the run's labels, the
/// tokenizer and a model card. `peft.PeftModel.from_pretrained(<base>, OUT)` loads it. A head no
/// transformers class holds (mean pooling, a GPT-style BERT's last token) travels beside it as
/// BERT Lab's own head file, as in a plain export.
fn adapter_files(cfg: &ModelConfig, lora: &crate::model::config::LoraSpec, heads: Heads, tensors: Vec<(String, Vec<usize>, Vec<f32>)>, labels: &[String], tokenizer_files: &[(String, Vec<u8>)], card: &ModelCard) -> Vec<(String, Vec<u8>)> {
    use crate::model::params::Part;
    let base = ModelConfig { lora: None, ..cfg.clone() };
    let head_file = heads.num_labels > 0 && (card.pooling == Pooling::Mean || (card.pooling == Pooling::Last && cfg.body == Body::Bert));
    let classifies = heads.num_labels > 0 && !head_file;
    let peft_name = |n: &str| format!("base_model.model.{}", hf_name(cfg.family, n));
    let mut adapter = Vec::new();
    let mut head = Vec::new();
    // whether pretraining heads went into the adapter: then they are its modules_to_save
    let mut heads_saved = false;
    for (n, shape, v) in tensors {
        match Part::of_in(cfg.family, &n) {
            Part::Lora => adapter.push((peft_name(&n), shape, v)),
            Part::Classifier if classifies => adapter.push((peft_name(&n), shape, v)),
            Part::Classifier => head.push((n, shape, v)),
            // a BERT's pretraining heads, which a LoRA pretraining run trains beside the adapters
            // (not a decoder's untied lm_head, frozen: the base's own)
            Part::LmHead if heads.num_labels == 0 && cfg.family.lm_head_trains_with_adapters() => {
                heads_saved = true;
                adapter.push((peft_name(&n), shape, v))
            }
            Part::SopHead if heads.num_labels == 0 => {
                heads_saved = true;
                adapter.push((peft_name(&n), shape, v))
            }
            _ => {}
        }
    }
    let task = if classifies { serde_json::json!("SEQ_CLS") } else if cfg.is_decoder { serde_json::json!("CAUSAL_LM") } else { serde_json::Value::Null };
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": task,
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "target_modules": lora.targets,
        "modules_to_save": if classifies && cfg.family == crate::model::family::Family::DistilBert { serde_json::json!(["pre_classifier", "classifier"]) } else if classifies && cfg.family == crate::model::family::Family::ModernBert { serde_json::json!(["head", "classifier"]) } else if classifies { serde_json::json!(["classifier", "score"]) } else if heads_saved { serde_json::json!(cfg.family.lm_head_modules()) } else { serde_json::Value::Null },
        "base_model_name_or_path": card.base_model,
        "bias": "none",
        "fan_in_fan_out": cfg.body == Body::Gpt2,
        "inference_mode": true,
        "init_lora_weights": true,
        "use_rslora": false,
        "use_dora": false,
        "layers_to_transform": null,
        "layers_pattern": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "revision": null,
    });
    let heads_out = if classifies { heads } else { Heads { num_labels: 0, ..heads } };
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let mut files = vec![
        (ADAPTER_CONFIG.to_string(), serde_json::to_vec_pretty(&config).unwrap_or_default()),
        (ADAPTER_WEIGHTS.to_string(), safetensors::serialize(&adapter, &meta)),
        ("config.json".to_string(), config_json(&base, heads_out, labels).into_bytes()),
        ("README.md".to_string(), adapter_card(&base, lora, heads_out, card, labels).into_bytes()),
    ];
    if head_file {
        let mut hm = BTreeMap::new();
        hm.insert("pooling".to_string(), card.pooling.name().to_string());
        files.push((HEAD_FILE.to_string(), safetensors::serialize(&head, &hm)));
        let doc = serde_json::json!({"pooling": card.pooling.name(), "weights": HEAD_FILE, "labels": labels});
        files.push((HEAD_JSON.to_string(), serde_json::to_vec_pretty(&doc).unwrap_or_default()));
    }
    files.extend(tokenizer_files.iter().cloned());
    if let Some(run) = card.run.as_ref().filter(|_| classifies) {
        // the script that continues the run with peft and transformers' Trainer
        files.push((TRAIN_HF.to_string(), train_hf_py(run).into_bytes()));
    }
    files
}

/// The model card of a LoRA adapter: what it adapts and how to load it with peft.
fn adapter_card(base: &ModelConfig, lora: &crate::model::config::LoraSpec, heads: Heads, card: &ModelCard, labels: &[String]) -> String {
    let class = architecture(base, heads);
    let metrics: String = card.metrics.iter().map(|(k, v)| format!("- {k}: {v}\n")).collect();
    format!(
        "---\nlibrary_name: peft\nbase_model: {base_model}\ntags:\n- bertlab\n- lora\n---\n\n# A LoRA adapter trained in BERT Lab\n\nLow-rank adapters (r = {r}, alpha = {alpha}) on {targets} of `{base_model}`{head}.\n{data}\n{metrics}\n```python\nfrom transformers import AutoTokenizer, {class}\nfrom peft import PeftModel\n\nbase = {class}.from_pretrained(\"{base_model}\"{labels_arg})\nmodel = PeftModel.from_pretrained(base, \"THIS_DIRECTORY\")\n# or fold the adapters into the weights: model = model.merge_and_unload()\n```\n\n{base_note}BERT Lab reads this directory back (`bertlab predict --model THIS_DIRECTORY`, with `--base DIR` when the base is elsewhere), and `bertlab export --merge` writes a plain model with the adapters folded in.\n",
        base_note = if card.base_model.is_empty() { "The base model was loaded from files, so its hub id is not known here: put the folder of those files (config.json, model.safetensors, the tokenizer) where BASE_MODEL_DIRECTORY stands.\n\n" } else { "" },
        base_model = if card.base_model.is_empty() { "BASE_MODEL_DIRECTORY" } else { &card.base_model },
        r = lora.r,
        alpha = lora.alpha,
        targets = lora.targets.join(", "),
        head = if heads.num_labels > 0 { format!(", with a classifier over {}", labels.join(", ")) } else { String::new() },
        data = if card.data_summary.is_empty() { String::new() } else { format!("\nTrained on {}.\n", card.data_summary) },
        labels_arg = if heads.num_labels > 0 { format!(", num_labels={}, id2label={{{}}}", labels.len(), labels.iter().enumerate().map(|(i, l)| format!("{i}: {l:?}")).collect::<Vec<_>>().join(", ")) } else { String::new() },
    )
}

/// The model with its LoRA adapters folded into the weights it adapts (W + (alpha / r) B A, or its
/// transpose for GPT-2's Conv1D layout): a plain model, the adapters gone.
pub fn merge_lora(cfg: &ModelConfig, tensors: Vec<(String, Vec<usize>, Vec<f32>)>) -> (ModelConfig, Vec<(String, Vec<usize>, Vec<f32>)>) {
    let Some(lora) = &cfg.lora else { return (cfg.clone(), tensors) };
    let s = lora.scaling();
    let by_name: BTreeMap<String, (Vec<usize>, Vec<f32>)> = tensors.iter().filter(|(n, _, _)| n.contains(".lora_")).map(|(n, sh, v)| (n.clone(), (sh.clone(), v.clone()))).collect();
    let mut out = Vec::new();
    for (n, shape, mut v) in tensors {
        if n.contains(".lora_") {
            continue;
        }
        if let Some(path) = n.strip_suffix(".weight") {
            if let (Some((sa, a)), Some((sb, b))) = (by_name.get(&format!("{path}.lora_A.weight")), by_name.get(&format!("{path}.lora_B.weight"))) {
                let (r, inp, out_dim) = (sa[0], sa[1], sb[0]);
                // delta[o][i] = s * sum_k B[o][k] A[k][i]
                for o in 0..out_dim {
                    for i in 0..inp {
                        let d: f32 = (0..r).map(|k| b[o * r + k] * a[k * inp + i]).sum::<f32>() * s;
                        let at = if cfg.body == Body::Gpt2 { i * out_dim + o } else { o * inp + i };
                        v[at] += d;
                    }
                }
            }
        }
        out.push((n, shape, v));
    }
    (ModelConfig { lora: None, ..cfg.clone() }, out)
}
