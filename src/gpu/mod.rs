//! The GPU runtime: one `Gpu` per device, shared by every kernel.
//!
//! - `device`: adapter/device acquisition natively (Vulkan/Metal/DX12) and in the browser (WebGPU).
//! - `buffer`: typed storage buffers (`GpuBuf`) with size checks against the device's limits.
//! - `pipeline`: compute pipelines built once per (shader, entry point, override constants).
//! - `step`: a `Step` records a whole training/inference step into one command encoder and one submit;
//!   `Readback` resolves asynchronously (never blocking the browser's thread).
//! - `view`: a tensor's buffer, offset and shape (`View`), which the kernels take and check.
//! - `texture`: vec4 textures (`GpuTex`) for the packed weights of decoding and the subgroup matmul's
//!   operands on CPU adapters.
//! - `counters`: submits, dispatches per kernel and bytes read back, for tests to assert on.

mod bind_groups;
mod buffer;
mod counters;
mod device;
mod error;
mod pipeline;
mod resources;
mod step;
mod texture;
mod view;

pub use buffer::{DType, GpuBuf, Recycler};
pub use counters::Counters;
pub use device::{Gpu, GpuInfo, NO_ADAPTER_HELP};
pub use error::GpuError;
pub use pipeline::KernelId;
pub use step::{now_ms, sleep_ms, Readback, Step};
pub use texture::GpuTex;
pub use view::{Shape, View};
pub(crate) use view::need;
pub(crate) use view::{expect_shape, same_whole};
