//! The BERT model on the GPU engine: configuration, parameters with Hugging Face's names, and
//! forward/backward passes for the encoder and every head.
//!
//! Dimension names, fixed once (llm.c style): B batch, T tokens per sequence, C hidden size, H heads,
//! D = C / H head size, I intermediate size, V vocabulary, M masked positions predicted, L labels.

pub mod bert;
pub mod checks;
pub mod config;
pub mod params;

pub use bert::{Batch, Bert, Heads, LossReadback, Losses, Pooling};
pub use config::BertConfig;
pub use params::{LoadReport, ParamStore};
