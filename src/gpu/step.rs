use std::collections::BTreeMap;
use std::num::NonZeroU64;

use super::buffer::GpuBuf;
use super::device::Gpu;
use super::error::GpuError;
use super::bind_groups::BindGroupKey;
use super::pipeline::KernelId;
use super::texture::GpuTex;

/// Bytes of one recycled uniform chunk; each dispatch takes one aligned slot of it.
const UNIFORM_CHUNK: u64 = 64 * 1024;

/// One step of GPU work: every dispatch and copy goes into one command encoder, consecutive
/// dispatches share one compute pass, and `submit` makes exactly one queue submission. The step has
/// validation and out-of-memory error scopes open from `begin_step` to `submit`, so a bad shader,
/// binding or allocation comes back from `submit` as an error instead of a panic.
pub struct Step<'g> {
    gpu: &'g Gpu,
    encoder: wgpu::CommandEncoder,
    pass: Option<wgpu::ComputePass<'static>>,
    /// Uniform chunks in use, with the bytes staged for each.
    uniforms: Vec<(wgpu::Buffer, Vec<u8>)>,
    dispatches: BTreeMap<&'static str, u64>,
    /// (out-of-memory, validation): the later-pushed scope first, so that dropping an unsubmitted
    /// step pops them in reverse order too.
    scopes: Option<(wgpu::ErrorScopeGuard, wgpu::ErrorScopeGuard)>,
    error: Option<GpuError>,
    label: &'static str,
    /// Profiling mode: the step's commands, replayed one by one at submit.
    ops: Option<Vec<Op>>,
}

/// One recorded command of a profiled step.
enum Op {
    Dispatch { pipeline: std::sync::Arc<wgpu::ComputePipeline>, bind_group: wgpu::BindGroup, workgroups: [u32; 3], entry: &'static str },
    Copy { src: wgpu::Buffer, src_offset: u64, dst: wgpu::Buffer, dst_offset: u64, size: u64 },
    Clear(wgpu::Buffer, u64, Option<u64>),
    /// See [`Step::copy_to_texture`].
    ToTexture { src: wgpu::Buffer, offset: u64, rows: u32, width: u32, tex: wgpu::Texture, y: u32 },
}

/// Profiling: submits `enc` alone, waits for it, and adds the time to `name`'s.
async fn submit_timed(gpu: &Gpu, enc: wgpu::CommandEncoder, name: &str) {
    let t0 = now_ms();
    gpu.queue.submit(Some(enc.finish()));
    queue_done(gpu).await;
    let dt = now_ms() - t0;
    let mut times = gpu.kernel_times.lock().unwrap();
    let e = times.entry(name.to_string()).or_insert((0.0, 0));
    e.0 += dt;
    e.1 += 1;
}

/// Records an [`Op::ToTexture`]: `rows` rows of `width` texels from `offset`, rows as long as the
/// texture's apart in the buffer, to row `y` of the texture.
fn record_to_texture(enc: &mut wgpu::CommandEncoder, op: Op) {
    let Op::ToTexture { src, offset, rows, width, tex, y } = op else { unreachable!("not a copy to a texture") };
    enc.copy_buffer_to_texture(
        wgpu::TexelCopyBufferInfo { buffer: &src, layout: wgpu::TexelCopyBufferLayout { offset, bytes_per_row: Some(tex.width() * 16), rows_per_image: None } },
        wgpu::TexelCopyTextureInfo { texture: &tex, mip_level: 0, origin: wgpu::Origin3d { x: 0, y, z: 0 }, aspect: wgpu::TextureAspect::All },
        wgpu::Extent3d { width, height: rows, depth_or_array_layers: 1 },
    );
}

/// Milliseconds from a monotonic clock (performance.now in the browser and in workers).
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsCast;
        js_sys::Reflect::get(&js_sys::global(), &"performance".into())
            .ok()
            .and_then(|p| js_sys::Reflect::get(&p, &"now".into()).ok().map(|f| (p, f)))
            .and_then(|(p, f)| f.dyn_ref::<js_sys::Function>().and_then(|f| f.call0(&p).ok()))
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<std::time::Instant> = OnceLock::new();
        T0.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1e3
    }
}

/// Waits `ms` milliseconds without blocking the page (a timer in the browser; a sleep natively).
pub async fn sleep_ms(ms: u32) {
    #[cfg(target_arch = "wasm32")]
    {
        let p = js_sys::Promise::new(&mut |resolve, _| {
            let g = js_sys::global();
            if let Ok(f) = js_sys::Reflect::get(&g, &"setTimeout".into()) {
                if let Some(f) = wasm_bindgen::JsCast::dyn_ref::<js_sys::Function>(&f) {
                    let _ = f.call2(&g, &resolve, &(ms as f64).into());
                }
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(p).await;
    }
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::sleep(std::time::Duration::from_millis(ms as u64));
}

/// `e`, or the device loss behind it: in the browser the device-lost promise can settle after the
/// failed map that it caused, so a failure waits up to 2 s for it (natively the callback has run
/// by then). 200 ms was not enough with two Chromiums and their SwiftShaders on two busy cores: a
/// destroyed device was reported as "Error occurred when trying to async map a buffer".
async fn lost_or(gpu: &Gpu, e: GpuError) -> GpuError {
    for _ in 0..200 {
        if let Some(why) = gpu.lost() {
            return GpuError::DeviceLost(why);
        }
        if cfg!(not(target_arch = "wasm32")) {
            break;
        }
        sleep_ms(10).await;
    }
    e
}

/// Waits until the queue has finished everything submitted so far.
pub(crate) async fn queue_done(gpu: &Gpu) {
    let (tx, rx) = futures_channel::oneshot::channel();
    gpu.queue.on_submitted_work_done(move || {
        let _ = tx.send(());
    });
    gpu.wait_idle();
    let _ = rx.await;
}

/// A copy recorded in a step; after the step is submitted, `f32()`/`u32()` map it asynchronously.
pub struct Readback {
    staging: wgpu::Buffer,
    bytes: u64,
}

impl Gpu {
    /// Waits until the GPU has finished everything submitted so far. A submit returns once the work
    /// is queued: a loop whose steps read nothing back (and whose progress the user watches) waits
    /// here, so that its progress is the GPU's and not the queue's.
    pub async fn finished(&self) {
        queue_done(self).await
    }

    pub fn begin_step(&self, label: &'static str) -> Step<'_> {
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        Step {
            gpu: self,
            encoder,
            pass: None,
            uniforms: Vec::new(),
            dispatches: BTreeMap::new(),
            scopes: Some((oom, validation)),
            error: None,
            label,
            ops: self.profiling.load(std::sync::atomic::Ordering::SeqCst).then(Vec::new),
        }
    }
}

impl<'g> Step<'g> {
    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    fn uniform_slot(&mut self, params: &[u8]) -> (wgpu::Buffer, u64) {
        let align = self.gpu.info.min_uniform_buffer_offset_alignment.max(16) as u64;
        let need = (params.len() as u64).div_ceil(16) * 16;
        let fits = self
            .uniforms
            .last()
            .map(|(_, staged)| (staged.len() as u64).div_ceil(align) * align + need <= UNIFORM_CHUNK)
            .unwrap_or(false);
        if !fits {
            // first in, first out: a step that repeats the last one gets the same chunks in the same
            // order, so its uniform slots (and with them its cached bind groups) are the same
            let chunk = self.gpu.uniform_pool.lock().unwrap().pop_front().unwrap_or_else(|| {
                self.gpu.counters.lock().unwrap().buffers_created += 1;
                self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("uniforms"),
                    size: UNIFORM_CHUNK,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            });
            self.uniforms.push((chunk, Vec::with_capacity(4096)));
        }
        let (buf, staged) = self.uniforms.last_mut().unwrap();
        let offset = (staged.len() as u64).div_ceil(align) * align;
        staged.resize(offset as usize, 0);
        staged.extend_from_slice(params);
        staged.resize((offset + need) as usize, 0);
        (buf.clone(), offset)
    }

    /// Records one dispatch of `kernel`. Binding 0 is the uniform `params` (when not empty); the
    /// `buffers` take the binding numbers listed in `kernel.bindings`, in order. Shape errors are returned now; validation errors come back from `submit`.
    pub fn dispatch(
        &mut self,
        kernel: KernelId,
        constants: &[(&str, f64)],
        params: &[u8],
        buffers: &[&GpuBuf],
        workgroups: [u32; 3],
    ) -> Result<(), GpuError> {
        self.dispatch_with_textures(kernel, constants, params, buffers, &[], workgroups)
    }

    /// [`Step::dispatch`] with textures besides the buffers: they take the binding numbers of
    /// `kernel.bindings` that follow the buffers'.
    pub fn dispatch_with_textures(
        &mut self,
        kernel: KernelId,
        constants: &[(&str, f64)],
        params: &[u8],
        buffers: &[&GpuBuf],
        textures: &[&GpuTex],
        workgroups: [u32; 3],
    ) -> Result<(), GpuError> {
        let max_wg = self.gpu.info.max_compute_workgroups_per_dimension;
        if workgroups.iter().any(|&w| w > max_wg) {
            return Err(GpuError::Limits(format!(
                "{} needs {:?} workgroups; this device allows {max_wg} per dimension",
                kernel.entry, workgroups
            )));
        }
        let max_binding = self.gpu.info.max_storage_buffer_binding_size;
        for b in buffers {
            if b.bytes() > max_binding {
                return Err(GpuError::Limits(format!(
                    "{} binds a buffer of {} bytes; this device allows {max_binding} per storage binding",
                    kernel.entry,
                    b.bytes()
                )));
            }
        }
        if let Some(b) = buffers.iter().find(|b| b.off % GpuBuf::BIND_ALIGN != 0) {
            return Err(GpuError::Shape(format!("{} binds a view at element {}, not a multiple of {}", kernel.entry, b.off, GpuBuf::BIND_ALIGN)));
        }
        if workgroups.contains(&0) {
            return Ok(());
        }
        if buffers.len() + textures.len() != kernel.bindings.len() {
            return Err(GpuError::Shape(format!(
                "{} takes {} buffers and textures, got {}",
                kernel.entry,
                kernel.bindings.len(),
                buffers.len() + textures.len()
            )));
        }
        let pipeline = self.gpu.pipeline(kernel, constants);
        let uniform = if params.is_empty() {
            None
        } else {
            let (buf, offset) = self.uniform_slot(params);
            Some((buf, offset, (params.len() as u64).div_ceil(16) * 16))
        };
        let key = BindGroupKey {
            pipeline: std::sync::Arc::as_ptr(&pipeline) as usize,
            uniform: uniform.clone(),
            buffers: buffers.iter().map(|b| (b.buf.clone(), b.off, b.len)).collect(),
            textures: textures.iter().map(|t| t.view.clone()).collect(),
        };
        let bind_group = {
            let mut cache = self.gpu.bind_groups.lock().unwrap();
            let epoch = cache.epoch;
            match cache.map.get_mut(&key) {
                Some((bg, used)) => {
                    *used = epoch;
                    bg.clone()
                }
                None => {
                    let layout = pipeline.get_bind_group_layout(0);
                    let mut entries = Vec::with_capacity(buffers.len() + 1);
                    if let Some((buf, offset, size)) = &uniform {
                        entries.push(wgpu::BindGroupEntry {
                            binding: 0,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: buf, offset: *offset, size: NonZeroU64::new(*size) }),
                        });
                    }
                    for (b, &binding) in buffers.iter().zip(kernel.bindings) {
                        entries.push(wgpu::BindGroupEntry {
                            binding,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: &b.buf, offset: b.byte_off(), size: NonZeroU64::new(b.bytes().max(4)) }),
                        });
                    }
                    for (t, &binding) in textures.iter().zip(&kernel.bindings[buffers.len()..]) {
                        entries.push(wgpu::BindGroupEntry { binding, resource: wgpu::BindingResource::TextureView(&t.view) });
                    }
                    let bg = self.gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(kernel.entry), layout: &layout, entries: &entries });
                    self.gpu.counters.lock().unwrap().bind_groups_created += 1;
                    cache.map.insert(key, (bg.clone(), epoch));
                    bg
                }
            }
        };
        if let Some(ops) = &mut self.ops {
            ops.push(Op::Dispatch { pipeline, bind_group, workgroups, entry: kernel.entry });
            *self.dispatches.entry(kernel.entry).or_insert(0) += 1;
            return Ok(());
        }
        if self.pass.is_none() {
            let pass = self
                .encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(self.label), timestamp_writes: None })
                .forget_lifetime();
            self.pass = Some(pass);
        }
        let pass = self.pass.as_mut().unwrap();
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        *self.dispatches.entry(kernel.entry).or_insert(0) += 1;
        Ok(())
    }

    /// Copies `len` elements of `src` from element `start` into `dst` at `dst_start`.
    pub fn copy(&mut self, src: &GpuBuf, start: usize, dst: &GpuBuf, dst_start: usize, len: usize) -> Result<(), GpuError> {
        if start + len > src.len || dst_start + len > dst.len {
            return Err(GpuError::Shape(format!(
                "copy of {len} elements from {start} (of {}) to {dst_start} (of {})",
                src.len, dst.len
            )));
        }
        self.pass = None;
        if len > 0 {
            if let Some(ops) = &mut self.ops {
                ops.push(Op::Copy { src: src.buf.clone(), src_offset: src.byte_off() + start as u64 * 4, dst: dst.buf.clone(), dst_offset: dst.byte_off() + dst_start as u64 * 4, size: len as u64 * 4 });
            } else {
                self.encoder.copy_buffer_to_buffer(&src.buf, src.byte_off() + start as u64 * 4, &dst.buf, dst.byte_off() + dst_start as u64 * 4, len as u64 * 4);
            }
        }
        Ok(())
    }

    /// Copies elements `start .. start + len` of `src` (both multiples of 4) into `tex`, vec4 i to
    /// texel (i % width, i / width). A transfer, not a kernel: on lavapipe a memcpy per row.
    pub fn copy_to_texture(&mut self, src: &GpuBuf, start: usize, len: usize, tex: &GpuTex) -> Result<(), GpuError> {
        let width = tex.width as usize;
        let texels = len / 4;
        if !start.is_multiple_of(4) || !len.is_multiple_of(4) || start + len > src.len || texels.div_ceil(width) > tex.height as usize {
            return Err(GpuError::Shape(format!(
                "copy of {len} elements from {start} (of {}) into a texture of {width} x {} texels",
                src.len, tex.height
            )));
        }
        self.pass = None;
        let base = src.byte_off() + start as u64 * 4;
        let (full, rest) = (texels / width, texels % width);
        // whole rows, then the part of the last one
        for (y, rows, w) in [(0, full, width), (full, usize::from(rest > 0), rest)] {
            if rows == 0 || w == 0 {
                continue;
            }
            let op = Op::ToTexture { src: src.buf.clone(), offset: base + (y * width * 16) as u64, rows: rows as u32, width: w as u32, tex: tex.tex.clone(), y: y as u32 };
            match &mut self.ops {
                Some(ops) => ops.push(op),
                None => record_to_texture(&mut self.encoder, op),
            }
        }
        Ok(())
    }

    /// Zero-fills a whole buffer or view inside the step (e.g. gradients before a backward pass).
    pub fn clear(&mut self, buf: &GpuBuf) {
        self.pass = None;
        let (off, size) = if buf.off == 0 && buf.bytes() == buf.buf.size() { (0, None) } else { (buf.byte_off(), Some(buf.bytes())) };
        if let Some(ops) = &mut self.ops {
            ops.push(Op::Clear(buf.buf.clone(), off, size));
        } else {
            self.encoder.clear_buffer(&buf.buf, off, size);
        }
    }

    /// Records a copy of `len` elements of `src` (from element `start`) into a mappable buffer.
    pub fn read_back(&mut self, src: &GpuBuf, start: usize, len: usize) -> Result<Readback, GpuError> {
        self.read_back_parts(&[(src, start, len)])
    }

    /// Records copies of several ranges `(src, start, len)` into one mappable buffer, one after the
    /// other: one map after submit brings them all back (a step's losses and flags together).
    pub fn read_back_parts(&mut self, parts: &[(&GpuBuf, usize, usize)]) -> Result<Readback, GpuError> {
        for &(src, start, len) in parts {
            if start + len > src.len {
                return Err(GpuError::Shape(format!("read back of {len} elements from {start} of a buffer of {}", src.len)));
            }
        }
        self.pass = None;
        let total: usize = parts.iter().map(|p| p.2).sum();
        let bytes = (total as u64 * 4).max(4);
        let size = bytes.div_ceil(256) * 256;
        let pooled = self.gpu.readback_pool.lock().unwrap().get_mut(&size).and_then(|v| v.pop());
        let staging = pooled.unwrap_or_else(|| {
            self.gpu.counters.lock().unwrap().buffers_created += 1;
            self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        let mut at = 0u64;
        for &(src, start, len) in parts {
            if len > 0 {
                if let Some(ops) = &mut self.ops {
                    ops.push(Op::Copy { src: src.buf.clone(), src_offset: src.byte_off() + start as u64 * 4, dst: staging.clone(), dst_offset: at, size: len as u64 * 4 });
                } else {
                    self.encoder.copy_buffer_to_buffer(&src.buf, src.byte_off() + start as u64 * 4, &staging, at, len as u64 * 4);
                }
            }
            at += len as u64 * 4;
        }
        Ok(Readback { staging, bytes: total as u64 * 4 })
    }

    /// Number of dispatches recorded so far in this step.
    pub fn dispatch_count(&self) -> u64 {
        self.dispatches.values().sum()
    }

    /// Ends the step: uploads its uniforms, submits once, and reports any validation or
    /// out-of-memory error raised while it was recorded.
    pub async fn submit(mut self) -> Result<(), GpuError> {
        self.pass = None;
        for (buf, staged) in &self.uniforms {
            self.gpu.queue.write_buffer(buf, 0, staged);
            self.gpu.counters.lock().unwrap().bytes_written += staged.len() as u64;
        }
        self.gpu.bind_groups.lock().unwrap().end_step();
        let Step { gpu, encoder, uniforms, dispatches, scopes, error, label, ops, .. } = self;
        let mut queue_submits = 0u64;
        match ops {
            None => {
                gpu.queue.submit(Some(encoder.finish()));
                queue_submits += 1;
            }
            Some(ops) => {
                // profiling: one submission per command, each dispatch timed alone
                drop(encoder);
                queue_done(gpu).await;
                for op in ops {
                    let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
                    match op {
                        Op::Dispatch { pipeline, bind_group, workgroups, entry } => {
                            {
                                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(entry), timestamp_writes: None });
                                pass.set_pipeline(&pipeline);
                                pass.set_bind_group(0, &bind_group, &[]);
                                pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
                            }
                            submit_timed(gpu, enc, entry).await;
                            queue_submits += 1;
                        }
                        Op::Copy { src, src_offset, dst, dst_offset, size } => {
                            enc.copy_buffer_to_buffer(&src, src_offset, &dst, dst_offset, size);
                            gpu.queue.submit(Some(enc.finish()));
                            queue_submits += 1;
                        }
                        op @ Op::ToTexture { .. } => {
                            // timed like a dispatch: the subgroup matmul's operand copies are part
                            // of its cost
                            record_to_texture(&mut enc, op);
                            submit_timed(gpu, enc, "copy_to_texture").await;
                            queue_submits += 1;
                        }
                        Op::Clear(b, off, size) => {
                            enc.clear_buffer(&b, off, size);
                            gpu.queue.submit(Some(enc.finish()));
                            queue_submits += 1;
                        }
                    }
                }
            }
        }
        {
            let mut c = gpu.counters.lock().unwrap();
            c.submits += 1;
            *c.queue_submits.entry(label).or_insert(0) += queue_submits;
            for (k, n) in dispatches {
                *c.dispatches.entry(k.to_string()).or_insert(0) += n;
            }
        }
        gpu.uniform_pool.lock().unwrap().extend(uniforms.into_iter().map(|(b, _)| b));
        let mut failed = None;
        if let Some((oom, validation)) = scopes {
            let oom_err = oom.pop().await;
            let val_err = validation.pop().await;
            failed = oom_err.or(val_err).map(|e| GpuError::from_wgpu(e, label));
        }
        let failed = failed.or(error).or_else(|| {
            let escaped = gpu.take_uncaptured_errors();
            (!escaped.is_empty()).then(|| GpuError::Validation(escaped.join("; ")))
        });
        match failed {
            None => match gpu.lost() {
                Some(why) => Err(GpuError::DeviceLost(why)),
                None => Ok(()),
            },
            // on a lost device every buffer is invalid: the loss is the error, not its echoes
            // (natively the device-lost callback runs at the next poll)
            Some(e) => {
                gpu.wait_idle();
                Err(lost_or(gpu, e).await)
            }
        }
    }
}

impl Readback {
    async fn bytes(self, gpu: &Gpu) -> Result<Vec<u8>, GpuError> {
        let (tx, rx) = futures_channel::oneshot::channel();
        let size = self.staging.size();
        self.staging.map_async(wgpu::MapMode::Read, 0..size, move |r| {
            let _ = tx.send(r);
        });
        // Natively the callback fires inside poll; in the browser it fires from the event loop
        // while we are suspended at the await below, so the page never blocks.
        gpu.wait_idle();
        let mapped = match rx.await {
            Ok(m) => m,
            Err(_) => return Err(lost_or(gpu, GpuError::Readback("the map callback was dropped".into())).await),
        };
        if let Err(e) = mapped {
            return Err(lost_or(gpu, GpuError::Readback(e.to_string())).await);
        }
        let out = {
            let view = self.staging.get_mapped_range(0..size).map_err(|e| GpuError::Readback(e.to_string()))?;
            view[..self.bytes as usize].to_vec()
        };
        self.staging.unmap();
        {
            let mut c = gpu.counters.lock().unwrap();
            c.bytes_read_back += self.bytes;
            c.readbacks += 1;
        }
        gpu.readback_pool.lock().unwrap().entry(size).or_default().push(self.staging);
        Ok(out)
    }

    pub async fn f32(self, gpu: &Gpu) -> Result<Vec<f32>, GpuError> {
        Ok(bytemuck::pod_collect_to_vec(&self.bytes(gpu).await?))
    }

    pub async fn u32(self, gpu: &Gpu) -> Result<Vec<u32>, GpuError> {
        Ok(bytemuck::pod_collect_to_vec(&self.bytes(gpu).await?))
    }
}
