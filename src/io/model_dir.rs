//! A model directory in Hugging Face's layout (config.json, model.safetensors, tokenizer.json or
//! vocab.txt), as a map of file name to bytes, so the same code loads from disk natively and from
//! fetched or picked files in the browser.

use crate::error::Result;
use std::collections::BTreeMap;

use crate::gpu::Gpu;
use crate::io::safetensors;
use crate::io::export::{HEAD_FILE, HEAD_JSON};
use crate::model::{Model, ModelConfig, Heads, LoadReport, Pooling};
use crate::text::tokenizer::Tokenizer;

pub const TOKENIZER_FILES: [&str; 6] = ["tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"];

pub struct LoadedModel {
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// Class names (id2label order) when the model has a classification head.
    pub labels: Vec<String>,
    /// The tokenizer files, to travel with an export.
    pub tokenizer_files: Vec<(String, Vec<u8>)>,
    pub report: LoadReport,
}

/// The heads a checkpoint carries, from its tensor names and config.
pub fn heads_of(names: &[&str], config: &serde_json::Value) -> Heads {
    if config.get("model_type").and_then(|m| m.as_str()) == Some("gpt2") {
        // GPT2LMHeadModel: the LM head is the word embeddings (tied), stored or not;
        // GPT2ForSequenceClassification adds `score`
        let scores = names.iter().any(|n| n.trim_start_matches("transformer.").starts_with("score."));
        return Heads { lm: true, sop: false, num_labels: if scores { labels_of(config).len().max(2) } else { 0 } };
    }
    let has = |p: &str| names.iter().any(|n| n.trim_start_matches("bert.").starts_with(p));
    let num_labels = if has("classifier.") { labels_of(config).len().max(2) } else { 0 };
    Heads { lm: has("cls.predictions."), sop: has("cls.seq_relationship."), num_labels }
}

/// id2label in id order.
pub fn labels_of(config: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<(usize, String)> = config
        .get("id2label")
        .and_then(|m| m.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    v.sort();
    v.into_iter().map(|(_, l)| l).collect()
}

/// A model directory's tokenizer: tokenizer.json, else vocab.txt (BERT; lowercased unless its
/// tokenizer_config.json says do_lower_case false), else vocab.json with merges.txt (GPT-2).
pub fn tokenizer_of(files: &BTreeMap<String, Vec<u8>>) -> Result<Tokenizer> {
    if let Some(tj) = files.get("tokenizer.json") {
        Tokenizer::from_tokenizer_json(tj)
    } else if let Some(v) = files.get("vocab.txt") {
        let lower = files
            .get("tokenizer_config.json")
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            .and_then(|c| c.get("do_lower_case").and_then(|v| v.as_bool()))
            .unwrap_or(true);
        Tokenizer::from_vocab_txt(std::str::from_utf8(v).map_err(|_| "vocab.txt is not UTF-8".to_string())?, lower)
    } else if let (Some(v), Some(m)) = (files.get("vocab.json"), files.get("merges.txt")) {
        Tokenizer::from_vocab_json_merges(v, m)
    } else {
        Err("the model has no tokenizer: it needs tokenizer.json, vocab.txt (BERT) or vocab.json with merges.txt (GPT-2)".into())
    }
}

/// Loads a model directory. `heads` overrides what the checkpoint carries (e.g. to add a fresh
/// classification head, or an MLM head to train on a BertModel); `lowercase` applies to vocab.txt.
pub fn load(gpu: &Gpu, files: &BTreeMap<String, Vec<u8>>, heads: Option<Heads>, seed: u64) -> Result<LoadedModel> {
    let names: Vec<&str> = files.keys().map(|s| s.as_str()).collect();
    let config_bytes = files.get("config.json").ok_or("the model has no config.json")?;
    let config_text = std::str::from_utf8(config_bytes).map_err(|_| "config.json is not UTF-8".to_string())?;
    let mut cfg = ModelConfig::from_json(config_text)?;
    let config: serde_json::Value = serde_json::from_str(config_text)?;
    let weights_name = crate::io::export::pick_weights_file(&names)?;
    let mut st = safetensors::parse(&files[weights_name]).map_err(|e| format!("{weights_name}: {e}"))?;
    // a mean- or last-token-pooling classifier exported by BERT Lab: the encoder plus a documented
    // head file
    let mut pooling = Pooling::Cls;
    let mut head_labels = None;
    if let Some(doc) = files.get(HEAD_JSON) {
        let doc: serde_json::Value = serde_json::from_slice(doc).map_err(|e| format!("{HEAD_JSON}: {e}"))?;
        pooling = match doc.get("pooling").and_then(|p| p.as_str()).and_then(Pooling::parse) {
            Some(p @ (Pooling::Mean | Pooling::Last)) => p,
            _ => return Err(format!("{HEAD_JSON}: only \"pooling\": \"mean\" or \"last\" heads are known").into()),
        };
        let head = files.get(HEAD_FILE).ok_or_else(|| format!("{HEAD_JSON} names {HEAD_FILE}, which is missing"))?;
        let hs = safetensors::parse(head).map_err(|e| format!("{HEAD_FILE}: {e}"))?;
        st.tensors.extend(hs.tensors);
        head_labels = doc.get("labels").and_then(|l| l.as_array()).map(|l| l.iter().filter_map(|x| x.as_str().map(String::from)).collect::<Vec<_>>());
    }
    let tensor_names: Vec<&str> = st.tensors.keys().map(|s| s.as_str()).collect();
    let mut found = heads_of(&tensor_names, &config);
    if let Some(l) = &head_labels {
        found.num_labels = l.len();
    }
    let heads = heads.unwrap_or(found);
    let tokenizer = tokenizer_of(files)?;
    if tokenizer.vocab_size > cfg.vocab_size {
        return Err(format!("the tokenizer has {} tokens but the model's vocabulary has {} rows", tokenizer.vocab_size, cfg.vocab_size).into());
    }
    // batches are padded with the tokenizer's pad id; a causal model's classifier finds each text's
    // last token by that id (model::batch::summary_rows), and an export says it in config.json
    cfg.pad_token_id = tokenizer.pad as usize;
    let (mut model, report) = Model::new(gpu, cfg, heads, Some(&st), seed)?;
    model.pooling = Pooling::for_model(pooling, &model.cfg)?;
    let mut labels = head_labels.unwrap_or_else(|| labels_of(&config));
    labels.truncate(heads.num_labels);
    while labels.len() < heads.num_labels {
        labels.push(format!("LABEL_{}", labels.len()));
    }
    let tokenizer_files = TOKENIZER_FILES.iter().filter_map(|f| files.get(*f).map(|b| (f.to_string(), b.clone()))).collect();
    Ok(LoadedModel { model, tokenizer, labels, tokenizer_files, report })
}

/// Reads every file of a directory (natively).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_dir(dir: &std::path::Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_file() {
            if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                if name == "config.json" || name == HEAD_JSON || name.ends_with(".safetensors") || name == "pytorch_model.bin" || TOKENIZER_FILES.contains(&name) {
                    let bytes = if name == "pytorch_model.bin" { Vec::new() } else { std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))? };
                    files.insert(name.to_string(), bytes);
                }
            }
        }
    }
    Ok(files)
}

/// OUT is a directory (made if missing), checked before any work so that a run is not lost at its
/// end.
#[cfg(not(target_arch = "wasm32"))]
pub fn check_out(out: &str) -> Result<()> {
    let p = std::path::Path::new(out);
    if p.exists() && !p.is_dir() {
        return Err(format!("--out {out} is a file; OUT must be a directory (it receives config.json, model.safetensors and the tokenizer files), new or existing").into());
    }
    Ok(())
}

/// Writes `files` into the directory `out` (made if missing); each file appears whole or not at
/// all: written beside its name, then renamed over it.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_dir(out: &str, files: Vec<(String, Vec<u8>)>) -> Result<()> {
    check_out(out)?;
    std::fs::create_dir_all(out).map_err(|e| format!("{out}: {e}"))?;
    for (name, bytes) in files {
        let p = std::path::Path::new(out).join(&name);
        let tmp = std::path::Path::new(out).join(format!(".{name}.partial"));
        std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}
