//! What each fuzz target does with its bytes (`fuzz/fuzz_targets/*.rs` call these, and
//! `tests/native/units.rs` replays every saved input through them): every parser that takes user
//! bytes, and what its result is used for next, without a GPU. A target must never panic, whatever
//! the bytes; errors are fine.

use crate::app::protocol;
use crate::model::{params, ModelConfig};
use crate::text::dataset::{self, Format};
use crate::text::tokenizer::Tokenizer;
use crate::train::checkpoint;

/// A fuzz target: bytes in, no panic out.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, for the replay test and `scripts/fuzz.sh`.
pub const TARGETS: &[(&str, Target)] = &[("safetensors", safetensors), ("config_json", config_json), ("dataset", dataset), ("tokenizer", tokenizer), ("snapshot", snapshot)];

/// A safetensors file: the header, then every tensor converted to f32 as loading does.
pub fn safetensors(data: &[u8]) {
    if let Ok(st) = crate::safetensors::parse(data) {
        for t in st.tensors.values() {
            let _ = t.to_f32();
        }
    }
}

/// A config.json: parsed and validated, then what its sizes build without a GPU: the tensor list
/// and arena layout, the parameter count and training memory the page shows, the projections LoRA
/// can adapt. Degenerate sizes (a hidden size of 1, zero heads, sizes whose products overflow) must
/// be refused by the parse, never reach these.
pub fn config_json(data: &[u8]) {
    if let Ok(cfg) = ModelConfig::from_json(&String::from_utf8_lossy(data)) {
        let names = params::tensor_names(&cfg, true, true, 3);
        let _ = params::arena_layout(&names, 32 << 20);
        let n: usize = names.iter().map(|(_, shape)| shape.iter().product::<usize>()).sum();
        let (c, h) = (cfg.hidden_size, cfg.num_attention_heads);
        let _ = protocol::train_memory_bytes(n, cfg.num_hidden_layers, c, h, cfg.intermediate_size, 16, 128.min(cfg.max_position_embeddings));
        let _ = (c / h, crate::model::config::LoraSpec::candidates(&cfg));
    }
}

/// A dataset: the first byte picks the format (detected, TSV, CSV, JSON lines); then the preview and
/// the stratified split the page and the trainer make of it.
pub fn dataset(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let format = [None, Some(Format::Tsv), Some(Format::Csv), Some(Format::JsonLines)][sel as usize % 4];
    let ds = dataset::parse(rest, format);
    let _ = protocol::preview("fuzz", &ds, 0);
    let _ = dataset::stratified_split(&ds, 0.2, 7);
    let _ = ds.trainable();
}

/// Tokenizer files: the first byte picks tokenizer.json or vocab.txt; a tokenizer that loads then
/// encodes a demo sentence and a pair at a small length.
pub fn tokenizer(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let tok = if sel % 2 == 0 { Tokenizer::from_tokenizer_json(rest) } else { Tokenizer::from_vocab_txt(&String::from_utf8_lossy(rest), sel % 4 == 1) };
    if let Ok(t) = tok {
        let _ = t.encode("The curious kitten deftly [MASK] the bookshelf.", Some("It fell."), 16);
        let _ = t.encode(&String::from_utf8_lossy(rest), None, 8);
    }
}

/// A snapshot as restored from IndexedDB: metadata JSON, optimizer file and weights file, separated
/// by the first two 0xFF bytes (which UTF-8 text never contains).
pub fn snapshot(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == 0xFF);
    let (meta, opt, weights) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if let Ok(m) = crate::session::SnapshotMeta::parse(&String::from_utf8_lossy(meta)) {
        let _ = params::tensor_names(&m.config, m.heads.lm, m.heads.sop, m.heads.num_labels);
    }
    let _ = checkpoint::optimizer_header(opt);
    safetensors(weights);
}
