//! Text in: datasets read from the user's bytes, and tokenizers.

pub mod dataset;
pub mod tokenizer;
