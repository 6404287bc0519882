use bytemuck::Pod;

use super::device::Gpu;
use super::error::GpuError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    U32,
    I32,
}

/// `len` 4-byte elements of a storage buffer, from element `off` on: a whole buffer, or a view of
/// one (a parameter inside its arena). Usable as a kernel binding, a copy source and target; as a
/// binding, `off` must be a multiple of [`GpuBuf::BIND_ALIGN`] elements (WebGPU's 256-byte
/// storage offset alignment).
#[derive(Debug, Clone)]
pub struct GpuBuf {
    pub buf: wgpu::Buffer,
    pub off: usize,
    pub len: usize,
    pub dtype: DType,
}

impl GpuBuf {
    /// Elements between bindable view offsets (256 bytes, the largest alignment WebGPU allows a
    /// device to require).
    pub const BIND_ALIGN: usize = 64;

    pub fn bytes(&self) -> u64 {
        self.len as u64 * 4
    }
    /// Byte offset of element 0 in the underlying buffer.
    pub fn byte_off(&self) -> u64 {
        self.off as u64 * 4
    }
    /// Elements `[off, off + len)` of this buffer or view, as a view.
    pub fn view(&self, off: usize, len: usize) -> GpuBuf {
        assert!(off + len <= self.len, "view {off}+{len} of {} elements", self.len);
        GpuBuf { buf: self.buf.clone(), off: self.off + off, len, dtype: self.dtype }
    }
}

/// Storage buffers given back by their owners (a [`crate::model::Batch`] when it is dropped), by
/// role and byte size, so that the next batch of the same shape creates none, and each role gets
/// the buffer it had (so the bind groups cached with them match again). At most
/// [`Recycler::MAX_BYTES`] are kept; more are released.
#[derive(Clone, Default)]
pub struct Recycler(std::sync::Arc<std::sync::Mutex<RecyclerInner>>);

#[derive(Default)]
struct RecyclerInner {
    free: std::collections::HashMap<(String, u64), Vec<wgpu::Buffer>>,
    bytes: u64,
}

impl Recycler {
    pub const MAX_BYTES: u64 = 256 << 20;

    fn take(&self, role: &str, bytes: u64) -> Option<wgpu::Buffer> {
        let mut g = self.0.lock().unwrap();
        let buf = g.free.get_mut(&(role.to_string(), bytes))?.pop()?;
        g.bytes -= bytes;
        Some(buf)
    }

    /// Gives `b` back for the next [`Gpu::recycled`] of the same `role` and size.
    pub fn give_back(&self, role: &str, b: &GpuBuf) {
        let mut g = self.0.lock().unwrap();
        if b.off != 0 || b.bytes() != b.buf.size() {
            return; // a view: its owner keeps the buffer
        }
        let bytes = b.buf.size();
        if g.bytes + bytes <= Self::MAX_BYTES {
            g.bytes += bytes;
            g.free.entry((role.to_string(), bytes)).or_default().push(b.buf.clone());
        }
    }
}

const STORAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl Gpu {
    /// A 4-element placeholder for a writable binding that a kernel's specialisation leaves unused.
    pub fn dummy_rw(&self) -> GpuBuf {
        GpuBuf { buf: self.dummy_rw.clone(), off: 0, len: 4, dtype: DType::F32 }
    }

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
        self.counters.lock().unwrap().buffers_created += 1;
        Ok(GpuBuf { buf, off: 0, len, dtype })
    }

    /// A buffer of `len` elements for `role` (also its label), taken from the recycling pool when
    /// one of that role and size was given back (see [`Recycler`]), created otherwise. Its contents
    /// are whatever was there: write them.
    pub fn recycled(&self, role: &str, len: usize, dtype: DType) -> Result<GpuBuf, GpuError> {
        let bytes = (len.max(1) as u64) * 4;
        if let Some(buf) = self.recycler.take(role, bytes) {
            self.counters.lock().unwrap().buffers_recycled += 1;
            return Ok(GpuBuf { buf, off: 0, len, dtype });
        }
        self.zeros(role, len, dtype)
    }

    /// A handle on the recycling pool, for owners that give their buffers back when dropped.
    pub fn recycler(&self) -> Recycler {
        self.recycler.clone()
    }

    fn upload<T: Pod>(&self, label: &str, data: &[T], dtype: DType) -> Result<GpuBuf, GpuError> {
        let b = self.zeros(label, data.len(), dtype)?;
        self.write(&b, 0, data)?;
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
            self.queue.write_buffer(&dst.buf, dst.byte_off() + offset as u64 * 4, bytemuck::cast_slice(data));
            self.counters.lock().unwrap().bytes_written += std::mem::size_of_val(data) as u64;
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
