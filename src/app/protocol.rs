//! What the page and the training worker say to each other. Each message is a JS object
//! `{cmd | ev: string, data: JSON string}` plus, where bytes travel, `files` / `bytes` fields.
//! The payload types live here, on every target, so the pure parts are tested natively too.

use serde::{Deserialize, Serialize};

use crate::text::dataset::{Dataset, Severity};

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
}

pub const PREVIEW_ROWS: usize = 20;

pub fn preview(name: &str, ds: &Dataset, text_lines: usize) -> DataPreview {
    DataPreview {
        name: name.to_string(),
        examples: ds.examples.len(),
        label_counts: ds.label_counts(),
        rows: ds.examples.iter().take(PREVIEW_ROWS).map(|e| PreviewRow { line: e.line, label: e.label.clone(), text: e.text.clone(), text_b: e.text_b.clone() }).collect(),
        messages: ds.messages.iter().map(|m| PreviewMessage { line: m.line, error: m.severity == Severity::Error, text: m.to_string() }).collect(),
        problem: ds.trainable().err(),
        text_lines,
    }
}

/// The model panel's summary of a loaded model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelSummary {
    pub source: String,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub vocab: usize,
    pub max_len: usize,
    pub params: usize,
    /// Bytes of GPU memory for a training step at batch 16 x 128 tokens (weights, gradients,
    /// AdamW moments, activations), an estimate.
    pub train_bytes: u64,
    pub has_mlm: bool,
    pub has_sop: bool,
    pub labels: Vec<String>,
    pub mean_pooling: bool,
    pub notes: Vec<String>,
}

/// GPU memory a training step needs, roughly: 4 copies of the weights (value, gradient, m, v)
/// plus the saved activations of (batch x tokens).
pub fn train_memory_bytes(params: usize, layers: usize, hidden: usize, heads: usize, inter: usize, batch: usize, tokens: usize) -> u64 {
    let bt = (batch * tokens) as u64;
    let per_layer = bt * (10 * hidden as u64 + 2 * inter as u64) + 2 * (batch * heads * tokens * tokens) as u64;
    4 * (4 * params as u64 + layers as u64 * per_layer + 12 * bt * hidden as u64)
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

/// What a snapshot's metadata (the JSON saved beside its tensors in IndexedDB) says about the model.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotHeader {
    pub config: crate::model::BertConfig,
    pub heads: crate::model::Heads,
    pub mean_pooling: bool,
    pub labels: Vec<String>,
}

/// Reads a snapshot's metadata: a config BERT Lab can run, heads, pooling and labels. Anything
/// else (not JSON, a config that fails validation, more labels than the head has) is an error that
/// says what is wrong; nothing is trusted before it is checked.
pub fn snapshot_header(meta: &str) -> Result<SnapshotHeader, String> {
    let v: serde_json::Value = serde_json::from_str(meta).map_err(|e| format!("the saved session's metadata is not valid JSON: {e}"))?;
    let config: crate::model::BertConfig = serde_json::from_value(v["config"].clone()).map_err(|e| format!("the saved session's config: {e}"))?;
    config.validate().map_err(|e| format!("the saved session's config: {e}"))?;
    let h = &v["heads"];
    let num_labels = h["num_labels"].as_u64().unwrap_or(0);
    if num_labels > 10_000 {
        return Err(format!("the saved session's classifier has {num_labels} labels; at most 10000 are supported"));
    }
    let heads = crate::model::Heads { mlm: h["mlm"].as_bool().unwrap_or(false), sop: h["sop"].as_bool().unwrap_or(false), num_labels: num_labels as usize };
    let labels: Vec<String> = v["labels"].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default();
    if labels.len() > heads.num_labels.max(1) && heads.num_labels > 0 {
        return Err(format!("the saved session names {} labels for a {}-label classifier", labels.len(), heads.num_labels));
    }
    Ok(SnapshotHeader { config, heads, mean_pooling: v["mean_pooling"].as_bool().unwrap_or(false), labels })
}
