use bytemuck::Pod;

use super::device::Gpu;
use super::error::GpuError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    U32,
    I32,
}

/// A storage buffer of `len` 4-byte elements. Usable as a kernel binding, a copy source and target.
#[derive(Debug, Clone)]
pub struct GpuBuf {
    pub buf: wgpu::Buffer,
    pub len: usize,
    pub dtype: DType,
}

impl GpuBuf {
    pub fn bytes(&self) -> u64 {
        self.len as u64 * 4
    }
}

const STORAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl Gpu {
    fn check_size(&self, label: &str, bytes: u64) -> Result<(), GpuError> {
        if bytes > self.info.max_buffer_size {
            return Err(GpuError::Limits(format!(
                "buffer '{label}' needs {bytes} bytes but this device allows at most {} per buffer",
                self.info.max_buffer_size
            )));
        }
        Ok(())
    }

    /// A zero-filled buffer of `len` elements (at least one, since WebGPU rejects empty bindings).
    pub fn zeros(&self, label: &str, len: usize, dtype: DType) -> Result<GpuBuf, GpuError> {
        let bytes = (len.max(1) as u64) * 4;
        self.check_size(label, bytes)?;
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: STORAGE_USAGE,
            mapped_at_creation: false,
        });
        Ok(GpuBuf { buf, len, dtype })
    }

    fn upload<T: Pod>(&self, label: &str, data: &[T], dtype: DType) -> Result<GpuBuf, GpuError> {
        let b = self.zeros(label, data.len(), dtype)?;
        if !data.is_empty() {
            self.queue.write_buffer(&b.buf, 0, bytemuck::cast_slice(data));
        }
        Ok(b)
    }

    pub fn upload_f32(&self, label: &str, data: &[f32]) -> Result<GpuBuf, GpuError> {
        self.upload(label, data, DType::F32)
    }

    pub fn upload_u32(&self, label: &str, data: &[u32]) -> Result<GpuBuf, GpuError> {
        self.upload(label, data, DType::U32)
    }

    pub fn upload_i32(&self, label: &str, data: &[i32]) -> Result<GpuBuf, GpuError> {
        self.upload(label, data, DType::I32)
    }

    /// Overwrites elements `[offset, offset + data.len())` of `dst`; ordered before the next submit.
    pub fn write<T: Pod>(&self, dst: &GpuBuf, offset: usize, data: &[T]) -> Result<(), GpuError> {
        if offset + data.len() > dst.len {
            return Err(GpuError::Shape(format!(
                "write of {} elements at {offset} into a buffer of {}",
                data.len(),
                dst.len
            )));
        }
        if !data.is_empty() {
            self.queue.write_buffer(&dst.buf, offset as u64 * 4, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    /// Reads a whole buffer back (one step with one copy). For tests and small results.
    pub async fn read_f32(&self, src: &GpuBuf) -> Result<Vec<f32>, GpuError> {
        let mut step = self.begin_step("read");
        let rb = step.read_back(src, 0, src.len)?;
        step.submit().await?;
        rb.f32(self).await
    }

    pub async fn read_u32(&self, src: &GpuBuf) -> Result<Vec<u32>, GpuError> {
        let mut step = self.begin_step("read");
        let rb = step.read_back(src, 0, src.len)?;
        step.submit().await?;
        rb.u32(self).await
    }
}
