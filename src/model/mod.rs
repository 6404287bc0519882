//! The model on the GPU engine (BERT's body, GPT-2's, ModernBERT's and the Llama-shaped decoders'):
//! configuration, parameters with Hugging Face's names, and forward/backward passes for the layers
//! and every head, one file per part.
//!
//! Dimension names, fixed once (llm.c style): B batch, T tokens per sequence, C hidden size, H heads,
//! D = C / H head size, I intermediate size, V vocabulary, M positions the language-model head
//! predicts (masked words, or next words), L labels.

mod acts;
pub mod batch;
mod bert;
pub mod config;
pub mod decode;
mod embeddings;
pub mod family;
mod gpt2;
mod handles;
mod heads;
mod kv;
mod llama;
pub mod infer;
mod layer;
mod lora;
pub mod mode;
// the model every body shares (its name is its parent's: `crate::model::Model`)
#[allow(clippy::module_inception)]
mod model;
mod modern;
mod ops;
pub mod params;
mod vocab;

pub use batch::Batch;
pub use model::{LossReadback, Losses, Model, Pooling};
pub use mode::Mode;
pub use config::{Heads, ModelConfig};
pub use params::{LoadReport, ParamStore};

/// A size in words: whole megabytes, or two decimals below 10 (a tiny model's).
pub fn megabytes(bytes: u64) -> String {
    let m = bytes as f64 / 1e6;
    if m < 10.0 { format!("{m:.2} MB") } else { format!("{m:.0} MB") }
}
