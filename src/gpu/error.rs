use std::fmt;

/// An error a caller can show to a person: what went wrong and, where known, what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuError {
    /// No adapter at all, or only one we refuse (a GL fall-back).
    NoAdapter(String),
    /// The adapter refused to give us a device.
    DeviceRequest(String),
    /// A shader, pipeline, bind group or dispatch failed validation.
    Validation(String),
    /// The device ran out of memory creating a buffer or running a step.
    OutOfMemory(String),
    /// A tensor does not fit the device's limits (binding size, buffer size, workgroup count).
    Limits(String),
    /// Mapping a buffer for readback failed (device lost, buffer destroyed).
    Readback(String),
    /// Wrong shapes or arguments handed to a kernel.
    Shape(String),
    /// The device is gone (destroyed, driver reset, GPU process crash): nothing more runs on it.
    DeviceLost(String),
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::NoAdapter(m) => write!(f, "no usable GPU adapter: {m}"),
            GpuError::DeviceRequest(m) => write!(f, "the GPU adapter refused a device: {m}"),
            GpuError::Validation(m) => write!(f, "GPU validation error: {m}"),
            GpuError::OutOfMemory(m) => write!(f, "GPU out of memory: {m}"),
            GpuError::Limits(m) => write!(f, "beyond the GPU's limits: {m}"),
            GpuError::Readback(m) => write!(f, "reading back from the GPU failed: {m}"),
            GpuError::Shape(m) => write!(f, "bad kernel arguments: {m}"),
            GpuError::DeviceLost(m) => write!(f, "the GPU device was lost ({m})"),
        }
    }
}

impl std::error::Error for GpuError {}

impl GpuError {
    pub(crate) fn from_wgpu(e: wgpu::Error, context: &str) -> GpuError {
        match e {
            wgpu::Error::OutOfMemory { .. } => GpuError::OutOfMemory(format!("{context}: {e}")),
            other => GpuError::Validation(format!("{context}: {other}")),
        }
    }
}
