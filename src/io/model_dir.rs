//! A model directory in Hugging Face's layout (config.json, model.safetensors, tokenizer.json or
//! vocab.txt), as a map of file name to bytes, so the same code loads from disk natively and from
//! fetched or picked files in the browser.

use crate::error::Result;
use std::collections::BTreeMap;

use crate::gpu::Gpu;
use crate::safetensors;
use crate::io::export::{HEAD_FILE, HEAD_JSON};
use crate::error::Error;
use crate::model::config::LoraSpec;
use crate::model::{Model, ModelConfig, Heads, LoadReport, Pooling};
use crate::text::tokenizer::Tokenizer;

/// The files that travel with a model's tokenizer (into its exports, from an adapter's folder):
/// the tokenizer's own, and a language model's generation_config.json (its end tokens).
pub const TOKENIZER_FILES: [&str; 7] = ["tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"];

/// The ids of `eos_token_id` in a config.json or generation_config.json: one id or a list.
pub fn end_ids_of(v: &serde_json::Value) -> Vec<u32> {
    match v.get("eos_token_id") {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
        Some(x) => x.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        None => Vec::new(),
    }
}

/// A checkpoint's weights: model.safetensors, or the shards model.safetensors.index.json names
/// (every one of them must be there: a missing shard is named, with how many there are).
pub fn weights_of<'a>(files: &'a BTreeMap<String, Vec<u8>>, weights_name: &str) -> Result<safetensors::SafeTensors<'a>> {
    if weights_name != crate::io::export::WEIGHTS_INDEX {
        return safetensors::parse(&files[weights_name]).map_err(|e| Error::Data { line: 0, message: format!("{weights_name}: {e}") });
    }
    let shards = crate::io::export::shards_of(&files[weights_name])?;
    let missing: Vec<&str> = shards.iter().map(|s| s.as_str()).filter(|s| !files.contains_key(*s)).collect();
    if !missing.is_empty() {
        return Err(Error::Data { line: 0, message: format!("{} names {} shards; {} missing: {}. Load every shard of the checkpoint together with its index", crate::io::export::WEIGHTS_INDEX, shards.len(), if missing.len() == 1 { "this one is".to_string() } else { format!("{} are", missing.len()) }, missing.join(", ")) });
    }
    let mut all = safetensors::SafeTensors { tensors: Default::default(), metadata: Default::default() };
    for shard in &shards {
        let st = safetensors::parse(&files[shard]).map_err(|e| Error::Data { line: 0, message: format!("{shard}: {e}") })?;
        all.tensors.extend(st.tensors);
    }
    Ok(all)
}

pub struct LoadedModel {
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// Class names (id2label order) when the model has a classification head.
    pub labels: Vec<String>,
    /// The tokenizer files, to travel with an export.
    pub tokenizer_files: Vec<(String, Vec<u8>)>,
    pub report: LoadReport,
}

/// The heads a checkpoint carries, from its tensor names and config (the family's own names for
/// them: RoBERTa's lm_head, DistilBERT's vocab_transform...).
pub fn heads_of(names: &[&str], config: &serde_json::Value) -> Heads {
    use crate::model::family::Family;
    let family = config.get("model_type").and_then(|m| m.as_str()).and_then(Family::from_model_type).unwrap_or_default();
    if family == Family::Gpt2 {
        // GPT2LMHeadModel: the LM head is the word embeddings (tied), stored or not;
        // GPT2ForSequenceClassification adds `score`
        let scores = names.iter().any(|n| n.trim_start_matches("transformer.").starts_with("score."));
        return Heads { lm: true, sop: false, num_labels: if scores { labels_of(config).len().max(2) } else { 0 } };
    }
    if family.is_llama() {
        // XForCausalLM (its lm_head, or the word embeddings where tied); XForSequenceClassification
        // adds `score` (and a tied head still continues a text)
        let scores = names.iter().any(|n| n.starts_with("score."));
        let tied = config.get("tie_word_embeddings").and_then(|t| t.as_bool()).unwrap_or(false);
        let lm = !scores || tied || names.iter().any(|n| n.starts_with("lm_head."));
        return Heads { lm, sop: false, num_labels: if scores { labels_of(config).len().max(2) } else { 0 } };
    }
    // whether the checkpoint holds BERT Lab's tensor `ours`, under the family's name (with or
    // without the body's prefix)
    let has = |ours: &str| {
        let hf = family.hf_name(ours);
        let bare = hf.strip_prefix(family.base_prefix()).unwrap_or(&hf).to_string();
        names.iter().any(|n| *n == hf || *n == bare)
    };
    let num_labels = if has("classifier.weight") { labels_of(config).len().max(2) } else { 0 };
    // ModernBERT's masked-LM head and its classifier's dense layer are both `head`: a checkpoint
    // with `head` and no classifier is a masked-LM one (or one with the decoder's bias)
    let lm = if family == Family::ModernBert { has("cls.predictions.bias") || (num_labels == 0 && has("cls.predictions.transform.dense.weight")) } else { has("cls.predictions.transform.dense.weight") };
    Heads { lm, sop: has("cls.seq_relationship.weight"), num_labels }
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
        Tokenizer::from_vocab_txt(std::str::from_utf8(v).map_err(|_| Error::Data { line: 0, message: "vocab.txt is not UTF-8".into() })?, lower)
    } else if let (Some(v), Some(m)) = (files.get("vocab.json"), files.get("merges.txt")) {
        Tokenizer::from_vocab_json_merges(v, m)
    } else {
        Err(Error::Data { line: 0, message: "the model has no tokenizer: it needs tokenizer.json, vocab.txt (BERT) or vocab.json with merges.txt (GPT-2)".into() })
    }
}

/// Loads a model directory. `heads` overrides what the checkpoint carries (e.g. to add a fresh
/// classification head, or an MLM head to train on a BertModel); `lowercase` applies to vocab.txt.
pub fn load(gpu: &Gpu, files: &BTreeMap<String, Vec<u8>>, heads: Option<Heads>, seed: u64) -> Result<LoadedModel> {
    load_with(gpu, files, None, heads, seed)
}

/// PEFT's adapter files (named in `export`, which writes them).
pub use crate::io::export::{ADAPTER_CONFIG, ADAPTER_WEIGHTS};

/// A PEFT LoRA adapter directory's spec: what its adapter_config.json says (checked: a LoRA adapter,
/// targets given as names), and the base model it names.
pub fn adapter_spec(files: &BTreeMap<String, Vec<u8>>) -> Result<(LoraSpec, Option<String>)> {
    let bytes = files.get(ADAPTER_CONFIG).ok_or_else(|| Error::Data { line: 0, message: format!("no {ADAPTER_CONFIG}: not a PEFT adapter") })?;
    let c: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Error::Data { line: 0, message: format!("{ADAPTER_CONFIG}: {e}") })?;
    let text = |k: &str| c.get(k).and_then(|v| v.as_str()).map(str::to_string);
    match text("peft_type").as_deref() {
        Some("LORA") => {}
        other => return Err(Error::Data { line: 0, message: format!("{ADAPTER_CONFIG}: a {} adapter; BERT Lab reads LoRA adapters (peft_type \"LORA\")", other.unwrap_or("(unnamed)")) }),
    }
    if c.get("use_rslora").and_then(|v| v.as_bool()) == Some(true) || c.get("use_dora").and_then(|v| v.as_bool()) == Some(true) {
        return Err(Error::Data { line: 0, message: format!("{ADAPTER_CONFIG}: rsLoRA and DoRA adapters scale differently from LoRA; BERT Lab reads plain LoRA") });
    }
    let targets: Vec<String> = match c.get("target_modules") {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        Some(serde_json::Value::String(s)) => return Err(Error::Data { line: 0, message: format!("{ADAPTER_CONFIG}: target_modules is the pattern \"{s}\"; BERT Lab reads a list of module names") }),
        _ => return Err(Error::Data { line: 0, message: format!("{ADAPTER_CONFIG} names no target_modules") }),
    };
    let num = |k: &str| c.get(k).and_then(|v| v.as_f64());
    let r = num("r").filter(|r| *r >= 1.0 && r.fract() == 0.0).ok_or_else(|| Error::Data { line: 0, message: format!("{ADAPTER_CONFIG}: r must be a whole number of at least 1") })? as usize;
    let spec = LoraSpec { r, alpha: num("lora_alpha").map_or(LoraSpec::DEFAULT_ALPHA, |a| a as f32), dropout: num("lora_dropout").unwrap_or(0.0) as f32, targets };
    Ok((spec, text("base_model_name_or_path").filter(|b| !b.is_empty())))
}

/// A base model directory with a PEFT LoRA adapter directory on it: the adapters (and the head the
/// adapter saved, PEFT's modules_to_save) on the base's weights; the adapter's config.json labels,
/// and its tokenizer when it has one. An adapter made for another base is refused, naming the first
/// tensor whose shape differs.
pub fn load_adapted(gpu: &Gpu, base: &BTreeMap<String, Vec<u8>>, adapter: &BTreeMap<String, Vec<u8>>, heads: Option<Heads>, seed: u64) -> Result<LoadedModel> {
    let (spec, _) = adapter_spec(adapter)?;
    let bytes = adapter.get(ADAPTER_WEIGHTS).ok_or_else(|| Error::Data { line: 0, message: format!("the adapter has {ADAPTER_CONFIG} but no {ADAPTER_WEIGHTS}") })?;
    let mut st = safetensors::parse(bytes).map_err(|e| Error::Data { line: 0, message: format!("{ADAPTER_WEIGHTS}: {e}") })?;
    // PEFT's names: base_model.model.<the model's own name>, ".default" where an adapter is named
    st.tensors = std::mem::take(&mut st.tensors).into_iter().map(|(n, t)| (n.strip_prefix("base_model.model.").unwrap_or(&n).replace(".default.", ".").replace(".modules_to_save.", "."), t)).collect();
    let mut files = base.clone();
    // the adapter's tokenizer, and a head BERT Lab saved beside it, over the base's
    for f in TOKENIZER_FILES.iter().chain(&[HEAD_JSON, HEAD_FILE]) {
        if let Some(b) = adapter.get(*f) {
            files.insert(f.to_string(), b.clone());
        }
    }
    let labels = adapter.get("config.json").and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok()).map(|c| labels_of(&c)).filter(|l| !l.is_empty());
    load_with(gpu, &files, Some(Adapted { spec, tensors: st, labels }), heads, seed)
}

/// An adapter to put on a base model as it loads.
struct Adapted<'a> {
    spec: LoraSpec,
    tensors: safetensors::SafeTensors<'a>,
    labels: Option<Vec<String>>,
}

fn load_with<'a>(gpu: &Gpu, files: &'a BTreeMap<String, Vec<u8>>, adapter: Option<Adapted<'a>>, heads: Option<Heads>, seed: u64) -> Result<LoadedModel> {
    let names: Vec<&str> = files.keys().map(|s| s.as_str()).collect();
    let config_bytes = files.get("config.json").ok_or_else(|| Error::Data { line: 0, message: "the model has no config.json".into() })?;
    let config_text = std::str::from_utf8(config_bytes).map_err(|_| Error::Data { line: 0, message: "config.json is not UTF-8".into() })?;
    let mut cfg = ModelConfig::from_json(config_text)?;
    let config: serde_json::Value = serde_json::from_str(config_text)?;
    let weights_name = crate::io::export::pick_weights_file(&names)?;
    let mut st = weights_of(files, weights_name)?;
    // a mean- or last-token-pooling classifier exported by BERT Lab: the encoder plus a documented
    // head file
    let mut pooling = Pooling::Cls;
    let mut head_labels = None;
    if let Some(doc) = files.get(HEAD_JSON) {
        let doc: serde_json::Value = serde_json::from_slice(doc).map_err(|e| Error::Data { line: 0, message: format!("{HEAD_JSON}: {e}") })?;
        pooling = match doc.get("pooling").and_then(|p| p.as_str()).and_then(Pooling::parse) {
            Some(p @ (Pooling::Mean | Pooling::Last)) => p,
            _ => return Err(Error::Unsupported(format!("{HEAD_JSON}: only \"pooling\": \"mean\" or \"last\" heads are known"))),
        };
        let head = files.get(HEAD_FILE).ok_or_else(|| Error::Data { line: 0, message: format!("{HEAD_JSON} names {HEAD_FILE}, which is missing") })?;
        let hs = safetensors::parse(head).map_err(|e| Error::Data { line: 0, message: format!("{HEAD_FILE}: {e}") })?;
        st.tensors.extend(hs.tensors);
        head_labels = doc.get("labels").and_then(|l| l.as_array()).map(|l| l.iter().filter_map(|x| x.as_str().map(String::from)).collect::<Vec<_>>());
    }
    let mut adapter_labels = None;
    if let Some(a) = adapter {
        cfg.lora = Some(a.spec.clone());
        a.spec.validate(&cfg)?;
        // every adapter tensor this base needs, of the shape it needs
        for (name, shape) in crate::model::params::tensor_names(&cfg, false, false, 0).into_iter().filter(|(n, _)| crate::model::params::Part::of(n) == crate::model::params::Part::Lora) {
            let hf = cfg.family.hf_name(&name);
            let found = a.tensors.tensors.iter().find(|(n, _)| **n == hf || n.strip_prefix("bert.").or_else(|| n.strip_prefix("transformer.")).unwrap_or(n) == name);
            match found {
                None => return Err(Error::Shape { tensor: name.clone(), message: format!("the adapter has no {name}, which its config's targets and this base model call for") }),
                Some((_, t)) if t.shape != shape => return Err(Error::Shape { tensor: name.clone(), message: format!("the adapter's {name} is {:?}, but this base model needs {shape:?}: the adapter was made for another base model", t.shape) }),
                _ => {}
            }
        }
        st.tensors.extend(a.tensors.tensors);
        adapter_labels = a.labels;
    }
    let tensor_names: Vec<&str> = st.tensors.keys().map(|s| s.as_str()).collect();
    let mut found = heads_of(&tensor_names, &config);
    if let Some(l) = &adapter_labels {
        if found.num_labels > 0 {
            found.num_labels = l.len();
        }
    }
    if let Some(l) = &head_labels {
        found.num_labels = l.len();
    }
    let heads = heads.unwrap_or(found);
    let mut tokenizer = tokenizer_of(files)?;
    if cfg.family.is_llama() {
        // a Llama-shaped decoder frames texts as its own tokenizer does, pads with the config's pad
        // id, and ends a generated text at any end token its generation_config.json names
        tokenizer.use_lm_framing(cfg.pad_token_id as u32);
        let generation = files.get("generation_config.json").and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
        let ends = generation.as_ref().map(end_ids_of).filter(|e| !e.is_empty()).unwrap_or_else(|| end_ids_of(&config));
        if !ends.is_empty() {
            tokenizer.stop_ids = ends;
        }
    }
    if tokenizer.vocab_size > cfg.vocab_size {
        return Err(Error::Shape { tensor: "word_embeddings".into(), message: format!("the tokenizer has {} tokens but the model's vocabulary has {} rows", tokenizer.vocab_size, cfg.vocab_size) });
    }
    // batches are padded with the tokenizer's pad id; a causal model's classifier finds each text's
    // last token by that id (model::batch::summary_rows), and an export says it in config.json
    if cfg.family.position_offset(cfg.pad_token_id) > 0 && tokenizer.pad as usize != cfg.pad_token_id {
        return Err(Error::Shape { tensor: "pad_token_id".into(), message: format!("the tokenizer pads with id {} but config.json's pad_token_id is {}: {}'s positions count from the padding id, so the two must agree", tokenizer.pad, cfg.pad_token_id, cfg.family.display()) });
    }
    cfg.pad_token_id = tokenizer.pad as usize;
    let (mut model, report) = Model::new(gpu, cfg, heads, Some(&st), seed)?;
    model.pooling = Pooling::for_model(pooling, &model.cfg)?;
    let mut labels = head_labels.or(adapter_labels).unwrap_or_else(|| labels_of(&config));
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
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display(), e))?;
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_file() {
            if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                if name == "config.json" || name == HEAD_JSON || name == ADAPTER_CONFIG || name.ends_with(".safetensors") || name == crate::io::export::WEIGHTS_INDEX || name == "pytorch_model.bin" || TOKENIZER_FILES.contains(&name) {
                    let bytes = if name == "pytorch_model.bin" { Vec::new() } else { std::fs::read(&p).map_err(|e| Error::io(p.display(), e))? };
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
        return Err(Error::Usage(format!("--out {out} is a file; OUT must be a directory (it receives config.json, model.safetensors and the tokenizer files), new or existing")));
    }
    Ok(())
}

/// Writes `files` into the directory `out` (made if missing); each file appears whole or not at
/// all: written beside its name, then renamed over it.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_dir(out: &str, files: Vec<(String, Vec<u8>)>) -> Result<()> {
    check_out(out)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    for (name, bytes) in files {
        let p = std::path::Path::new(out).join(&name);
        let tmp = std::path::Path::new(out).join(format!(".{name}.partial"));
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(tmp.display(), e))?;
        std::fs::rename(&tmp, &p).map_err(|e| Error::io(p.display(), e))?;
    }
    Ok(())
}

/// Where a sentence-transformers model keeps its pooling module's settings.
pub const POOLING_CONFIG: &str = "1_Pooling/config.json";

/// Is `bytes` a sentence-transformers pooling config (`pooling_mode_*` keys), rather than a model's
/// config.json? (A file picker gives both files the name config.json.)
pub fn is_pooling_config(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes).ok().and_then(|v| v.as_object().map(|o| o.keys().any(|k| k.starts_with("pooling_mode_")))).unwrap_or(false)
}

/// The pooling a sentence-transformers model was trained with, from its [`POOLING_CONFIG`], and in
/// words where that came from; None where the files have no such config. Max pooling, which BERT
/// Lab's heads do not read, gives mean, and says so.
pub fn sentence_pooling(files: &BTreeMap<String, Vec<u8>>) -> Option<(Pooling, String)> {
    let v: serde_json::Value = serde_json::from_slice(files.get(POOLING_CONFIG)?).ok()?;
    let on = |k: &str| v.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
    let from = format!("the model's own {POOLING_CONFIG} (sentence-transformers)");
    if on("pooling_mode_cls_token") {
        Some((Pooling::Cls, format!("[CLS] pooling, from {from}")))
    } else if on("pooling_mode_mean_tokens") || on("pooling_mode_mean_sqrt_len_tokens") {
        Some((Pooling::Mean, format!("mean pooling, from {from}")))
    } else if on("pooling_mode_max_tokens") {
        Some((Pooling::Mean, format!("mean pooling: {from} asks for max pooling, which BERT Lab's heads do not read; mean is the nearest")))
    } else {
        None
    }
}
