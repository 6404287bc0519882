//! Files in and out: model directories with Hugging Face's names, exports, the zip archive (the
//! safetensors format itself is the leaf [`crate::safetensors`]).

pub mod export;
pub mod model_dir;
pub mod zip;
