//! BERT Lab: pretrain, fine-tune and probe a BERT on WebGPU, in the browser or natively.
//!
//! Module map, bottom up (data flows text -> ids -> GPU buffers -> forward -> loss -> backward -> AdamW):
//! - [`shaders`]: the WGSL sources under `shaders/`, one file per op family, forward and backward
//!   together, with each kernel's uniform struct declared once for Rust and WGSL.
//! - [`gpu`]: device acquisition, buffers, pipeline cache, one-submit steps, async readback, counters.
//! - [`kernels`]: one Rust file per shader (params, bindings, dispatch math) and `cpu`, the f64
//!   reference every kernel is tested against; `checks` holds those GPU-vs-CPU checks, shared by the
//!   native tests, the browser tests and the app's self-check.
//! - [`model`]: the two bodies (BERT, GPT-2) and their heads, forward and backward recorded into one
//!   step; key-value-cached decoding; parameters in arenas with Hugging Face's names.
//! - [`text`]: tokenizers (WordPiece, GPT-2's byte-level BPE) and labeled datasets with messages.
//! - [`train`]: masking, sentence order, batches, the training loops (classification, pretraining),
//!   generation, metrics, schedules and checkpoints.
//! - [`io`]: safetensors, model directories in Hugging Face's layout, exports, the zip archive.
//! - [`session`]: the core the page and the CLI share: the loaded model(s), the data and the run
//!   control; every kind of run (pretraining, fine-tuning, generation, inference, export) once, with
//!   typed run settings, snapshot records and the stores they go to.
//! - [`parity`]: the model against PyTorch's fixtures, shared by the native tests, the browser
//!   tests and the app's self-check.
//! - [`app`] (the page): the Leptos UI, the worker (the page's adapter to the session) and the typed
//!   protocol between them.
//! - [`bench`]: kernel GFLOP/s and GB/s, the training-step and generation benchmarks.
//! - [`error`]: the one error type whose variants callers match (non-finite step, lost device, shape,
//!   data line, limit).
//! - [`rng`]: the seeded generator every random choice comes from; [`fuzzing`]: the fuzz targets.
//! - `web` (wasm only): the entry points the page calls.

pub mod app;
pub mod bench;
pub mod error;
pub mod fuzzing;
pub mod io;
pub mod model;
pub mod parity;
pub mod rng;
pub mod gpu;
pub mod kernels;
pub mod session;
pub mod shaders;
pub mod text;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod web;
