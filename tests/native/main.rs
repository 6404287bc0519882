//! The native suite, as one test binary (one link, one compile of the harness, instead of one per
//! file): the kernel checks, the model against PyTorch, training, and host-side units. It runs on
//! wgpu natively (lavapipe on a machine without a GPU); a missing adapter fails every GPU test with
//! instructions, nothing is skipped.
#![cfg(not(target_arch = "wasm32"))]

mod common;
mod kernels;
mod model;
mod train;
mod units;
