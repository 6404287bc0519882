//! The app: a Leptos page (ui) and a Web Worker that owns the GPU device and runs the training
//! library (worker). They talk through `protocol`.

pub mod protocol;
#[cfg(target_arch = "wasm32")]
pub mod ui;
#[cfg(target_arch = "wasm32")]
pub mod worker;
