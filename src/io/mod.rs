//! Files in and out: safetensors with Hugging Face's names, checkpoints, exports.

pub mod export;
pub mod safetensors;
