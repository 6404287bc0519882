
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

    pub(super) fn take(&self, role: &str, bytes: u64) -> Option<wgpu::Buffer> {
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
