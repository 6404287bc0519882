//! What a [`Gpu`] makes and reads: buffers (zeroed, uploaded, recycled), writes and reads, and the
//! compute pipelines of the kernels, built once and cached.

use std::sync::Arc;

use bytemuck::Pod;

use super::buffer::{DType, GpuBuf, Recycler};
use super::device::Gpu;
use super::error::GpuError;
use super::pipeline::{cache_key, KernelId};

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
        let mut c = self.counters.lock().unwrap();
        c.buffers_created += 1;
        c.storage_bytes += bytes;
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

impl Gpu {
    fn compile_module(&self, shader: &'static str) -> wgpu::ShaderModule {
        let src = crate::shaders::source(shader).unwrap_or_else(|| panic!("unknown shader file {shader}"));
        self.device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(shader), source: wgpu::ShaderSource::Wgsl(src.into()) })
    }

    fn build_pipeline(&self, module: &wgpu::ShaderModule, k: KernelId, constants: &[(&str, f64)]) -> wgpu::ComputePipeline {
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(k.entry),
            layout: None,
            module,
            entry_point: Some(k.entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants, zero_initialize_workgroup_memory: false },
            cache: None,
        })
    }

    /// The pipeline for `k` specialised with `constants`, built on first use. Errors in building it
    /// land in whatever error scope is open (a `Step` always has one).
    pub(crate) fn pipeline(&self, k: KernelId, constants: &[(&str, f64)]) -> Arc<wgpu::ComputePipeline> {
        let key = cache_key(k, constants);
        if let Some(p) = self.pipelines.pipelines.lock().unwrap().get(&key) {
            return p.clone();
        }
        let module = {
            let mut modules = self.pipelines.modules.lock().unwrap();
            modules.entry(k.shader).or_insert_with(|| self.compile_module(k.shader)).clone()
        };
        let pipeline = Arc::new(self.build_pipeline(&module, k, constants));
        self.counters.lock().unwrap().pipelines_built += 1;
        self.pipelines.pipelines.lock().unwrap().insert(key, pipeline.clone());
        pipeline
    }

    /// Compiles `k`'s shader file afresh and builds `k` with `constants` inside a validation error
    /// scope, returning any error as a value (the cache is bypassed so that nothing cached earlier
    /// hides an error). Used by the self-check and browser tests so no pipeline goes unchecked.
    pub async fn check_pipeline(&self, k: KernelId, constants: &[(&str, f64)]) -> Result<(), GpuError> {
        let v = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.compile_module(k.shader);
        let _ = self.build_pipeline(&module, k, constants);
        if let Some(e) = v.pop().await {
            return Err(GpuError::from_wgpu(e, &format!("building pipeline {}::{}", k.shader, k.entry)));
        }
        Ok(())
    }
}
