//! BERT Lab: pretrain, fine-tune and probe a BERT on WebGPU, in the browser or natively.
//!
//! Module map, bottom up (data flows text -> ids -> GPU buffers -> forward -> loss -> backward -> AdamW):
//! - [`shaders`]: the WGSL sources under `shaders/`, one file per op family, forward and backward
//!   together, with each kernel's uniform struct declared once for Rust and WGSL.
//! - [`gpu`]: device acquisition, buffers, pipeline cache, one-submit steps, async readback, counters.
//! - [`kernels`]: one Rust file per shader (params, bindings, dispatch math) and `cpu`, the f64
//!   reference every kernel is tested against; `checks` holds those GPU-vs-CPU checks, shared by the
//!   native tests, the browser tests and the app's self-check.
//! - [`model`]: the bodies (BERT's, GPT-2's, ModernBERT's, the Llama-shaped decoders') and their
//!   heads, forward and backward recorded into one step; key-value-cached decoding; parameters in
//!   arenas with Hugging Face's names.
//! - [`text`]: tokenizers (WordPiece, GPT-2's byte-level BPE) and labeled datasets with messages.
//! - [`train`]: masking, sentence order, batches, the training loops (classification, pretraining),
//!   generation, metrics, schedules and checkpoints.
//! - [`safetensors`]: the file format, checked before anything is sliced.
//! - [`io`]: model directories in Hugging Face's layout, exports, the zip archive.
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
//!
//! Layers, bottom up (a module imports only from the layers below its own; modules on one line are
//! peers and do not import each other; no two files import each other, directly or around a cycle;
//! `scripts/check_layers.py` reads this list and checks all three, in `scripts/test.sh`):
//! 1. `rng`, `shaders`: leaves.
//! 2. `gpu`: speaks its own [`gpu::GpuError`], so that it needs no layer above the shaders.
//! 3. `error`: the crate's error wraps the GPU's.
//! 4. `safetensors`: the file format, read by `model` and written by `io`.
//! 5. `text`, `kernels`
//! 6. `model`
//! 7. `train`
//! 8. `io`
//! 9. `session`: re-exports the run settings and the types the adapters need (the session's vocabulary).
//! 10. `parity`, `bench`: the checks, above what they exercise.
//! 11. `app`, `bin` (may import only: session, error, gpu, bench): the adapters; they name run
//!   settings, models and data through `session`, besides the error, the GPU they acquire, and (the
//!   CLI) the benchmark.
//! 12. `web`, `fuzzing`: the page's wasm entry points (self-check, benchmark) and the fuzz targets.

pub mod app;
pub mod bench;
pub mod error;
pub mod fuzzing;
pub mod io;
pub mod model;
pub mod parity;
pub mod rng;
pub mod safetensors;
pub mod gpu;
pub mod kernels;
pub mod session;
pub mod shaders;
pub mod text;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod web;
