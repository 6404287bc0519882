//! Files in and out: safetensors with Hugging Face's names, checkpoints, exports.

pub mod export;
pub mod model_dir;
pub mod safetensors;
pub mod zip;
