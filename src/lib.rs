//! BERT Lab: pretrain, fine-tune and probe a BERT on WebGPU, in the browser or natively.
//!
//! Module map, bottom up (data flows text -> ids -> GPU buffers -> forward -> loss -> backward -> AdamW):
//! - [`shaders`]: the WGSL sources under `shaders/`, one file per op family, forward and backward together.
//! - [`gpu`]: device acquisition, buffers, pipeline cache, one-submit steps, async readback, counters.
//! - [`kernels`]: one Rust file per shader (params, bindings, dispatch math) and `cpu`, the f64
//!   reference every kernel is tested against; `checks` holds those GPU-vs-CPU checks, shared by the
//!   native tests, the browser tests and the app's self-check.
//! - [`bench`]: matmul GFLOP/s and softmax/layernorm GB/s at BERT shapes.
//! - [`error`]: the one error type whose variants callers match (non-finite step, lost device, shape,
//!   data line, limit).
//! - `web` (wasm only): the entry points the page calls.

pub mod app;
pub mod bench;
pub mod error;
pub mod fuzzing;
pub mod io;
pub mod model;
pub mod rng;
pub mod gpu;
pub mod kernels;
pub mod shaders;
pub mod text;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod web;
