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
