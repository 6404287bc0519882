use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::counters::Counters;
use super::error::GpuError;
use super::pipeline::PipelineCache;

/// What to tell a person whose machine gave us no adapter.
pub const NO_ADAPTER_HELP: &str = "\
Natively, BERT Lab needs a Vulkan, Metal or DX12 driver. On Debian/Ubuntu without a GPU, install the \
CPU Vulkan driver lavapipe: `apt-get install mesa-vulkan-drivers` (and check that VK_ICD_FILENAMES / \
VK_DRIVER_FILES, if set, point at an existing ICD json). In the browser, use Chrome/Chromium 113+ with \
WebGPU enabled; headless or GPU-less, start it with `--enable-unsafe-webgpu --enable-features=Vulkan \
--use-vulkan=swiftshader --use-angle=swiftshader` (see webdriver.json).";

/// The adapter we got, in words, plus the limits that matter for our kernels.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuInfo {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    /// A CPU implementation (lavapipe, SwiftShader): correct but slow; the UI warns about it.
    pub is_software: bool,
    /// The device has subgroups of exactly 8 lanes, so shaders/matmul_subgroup.wgsl runs on it.
    pub subgroup8: bool,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub min_uniform_buffer_offset_alignment: u32,
    /// Texels along either side of a 2-D texture (`crate::gpu::GpuTex`).
    pub max_texture_dimension_2d: u32,
    /// The memory the device may give BERT Lab, where it is known: natively the environment's
    /// BERTLAB_GPU_MEMORY_MB, in the browser the machine's memory as `navigator.deviceMemory` gives
    /// it (Chrome rounds it and caps it at 8 GiB). WebGPU itself does not say how much a device has;
    /// without a budget, only the per-buffer limit and the allocation itself refuse a model.
    pub memory_budget: Option<u64>,
}

impl GpuInfo {
    pub fn summary(&self) -> String {
        format!(
            "{} ({}, {}{}{}), max storage binding {} MiB, max buffer {} MiB",
            self.name,
            self.backend,
            self.device_type,
            if self.is_software { ", software" } else { "" },
            if self.subgroup8 { ", subgroups of 8" } else { "" },
            self.max_storage_buffer_binding_size >> 20,
            self.max_buffer_size >> 20
        )
    }
}

/// One device and everything cached on it. Kernels take `&Gpu`.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: GpuInfo,
    pub(crate) pipelines: PipelineCache,
    pub(crate) counters: Mutex<Counters>,
    /// Errors that escaped every error scope (wgpu would otherwise panic on them natively).
    pub(crate) uncaptured: Arc<Mutex<Vec<String>>>,
    /// Set by the device-lost callback: why the device is gone.
    pub(crate) lost: Arc<Mutex<Option<String>>>,
    /// Bound where a kernel's optional input is absent (e.g. matmul without bias).
    pub(crate) dummy: wgpu::Buffer,
    /// A second placeholder, for an unused writable binding in a dispatch that binds `dummy` read-only.
    pub(crate) dummy_rw: wgpu::Buffer,
    /// Uniform chunks recycled between steps, so a step allocates no uniform buffers once warm.
    pub(crate) uniform_pool: Mutex<std::collections::VecDeque<wgpu::Buffer>>,
    /// Storage buffers given back by batches, for the next batch of the same shape.
    pub(crate) recycler: super::buffer::Recycler,
    /// Bind groups by (pipeline, uniform slot, buffers), so that a step that repeats the last one
    /// creates none; entries unused for a while are dropped (see `step.rs`).
    pub(crate) bind_groups: Mutex<super::bind_groups::BindGroupCache>,
    pub(crate) readback_pool: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    /// Profiling mode (see [`Gpu::set_profiling`]) and the time per kernel it measured.
    pub(crate) profiling: std::sync::atomic::AtomicBool,
    pub(crate) kernel_times: Mutex<std::collections::BTreeMap<String, (f64, u64)>>,
    /// The scratch textures and their views (see `Gpu::scratch_texture`).
    pub(crate) scratch_textures: Mutex<Vec<Option<(wgpu::Texture, wgpu::TextureView)>>>,
}

impl Gpu {
    /// Finds an adapter (never a GL one), requests a device with the adapter's real limits, and
    /// names what it got. Fails with [`NO_ADAPTER_HELP`] when there is none.
    pub async fn new() -> Result<Gpu, GpuError> {
        #[cfg(target_arch = "wasm32")]
        let backends = wgpu::Backends::BROWSER_WEBGPU;
        #[cfg(not(target_arch = "wasm32"))]
        let backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;

        #[cfg(target_arch = "wasm32")]
        if !webgpu_exposed() {
            return Err(GpuError::NoAdapter(format!(
                "this browser does not expose WebGPU (navigator.gpu is missing). {NO_ADAPTER_HELP}"
            )));
        }

        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(format!("{e}. {NO_ADAPTER_HELP}")))?;
        let ai = adapter.get_info();
        if ai.backend == wgpu::Backend::Gl || ai.backend == wgpu::Backend::Noop {
            return Err(GpuError::NoAdapter(format!(
                "only a {:?} adapter ({}) was found; BERT Lab refuses to fall back to it. {NO_ADAPTER_HELP}",
                ai.backend, ai.name
            )));
        }
        // Ask for what the adapter really offers (bigger bindings on real GPUs); kernels still check
        // every binding against `device.limits()`.
        let limits = adapter.limits();
        // Subgroups only where shaders/matmul_subgroup.wgsl fits them: exactly 8 lanes (lavapipe's
        // AVX2 vectors). wgpu offers the feature natively only.
        let subgroup8 = adapter.features().contains(wgpu::Features::SUBGROUP) && ai.subgroup_min_size == 8 && ai.subgroup_max_size == 8;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("bertlab"),
                required_features: if subgroup8 { wgpu::Features::SUBGROUP } else { wgpu::Features::empty() },
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::DeviceRequest(e.to_string()))?;

        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));

        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = lost_sink.lock() {
                *l = Some(format!("{reason:?}: {message}"));
            }
        });

        let l = device.limits();
        let is_software = ai.device_type == wgpu::DeviceType::Cpu
            || ["swiftshader", "llvmpipe", "lavapipe", "warp"]
                .iter()
                .any(|s| ai.name.to_lowercase().contains(s));
        #[cfg(target_arch = "wasm32")]
        let name = if ai.name.is_empty() { browser_adapter_name().await } else { ai.name.clone() };
        #[cfg(not(target_arch = "wasm32"))]
        let name = ai.name.clone();
        let info = GpuInfo {
            name,
            backend: format!("{:?}", ai.backend),
            device_type: format!("{:?}", ai.device_type),
            driver: format!("{} {}", ai.driver, ai.driver_info).trim().to_string(),
            is_software,
            subgroup8,
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size as u64,
            max_buffer_size: l.max_buffer_size,
            max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
            max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            min_uniform_buffer_offset_alignment: l.min_uniform_buffer_offset_alignment,
            max_texture_dimension_2d: l.max_texture_dimension_2d,
            memory_budget: memory_budget(),
        };
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dummy"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let dummy_rw = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dummy_rw"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(Gpu {
            dummy_rw,
            device,
            queue,
            info,
            pipelines: PipelineCache::default(),
            counters: Mutex::new(Counters::default()),
            uncaptured,
            lost,
            dummy,
            uniform_pool: Mutex::new(std::collections::VecDeque::new()),
            recycler: Default::default(),
            bind_groups: Mutex::new(Default::default()),
            readback_pool: Mutex::new(HashMap::new()),
            profiling: std::sync::atomic::AtomicBool::new(false),
            kernel_times: Mutex::new(std::collections::BTreeMap::new()),
            scratch_textures: Mutex::new(Vec::new()),
        })
    }

    /// Blocking constructor for native code (CLI, tests, benchmarks).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Gpu, GpuError> {
        pollster::block_on(Gpu::new())
    }

    pub fn counters(&self) -> Counters {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn reset_counters(&self) {
        if let Ok(mut c) = self.counters.lock() {
            *c = Counters::default();
        }
    }

    /// Errors that no scope caught since the last call (normally none).
    /// Why the device was lost, once it has been.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    pub fn take_uncaptured_errors(&self) -> Vec<String> {
        self.uncaptured.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }

    /// Waits for all submitted work natively; on the web the browser schedules it and this is a no-op.
    /// In profiling mode every step replays its work one command at a time, waiting for each
    /// dispatch to finish, and adds the wall time of each to [`Gpu::take_kernel_times`]. This is for
    /// timing kernels (it is much slower than the normal single submission); results are identical.
    pub fn set_profiling(&self, on: bool) {
        self.profiling.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// (kernel entry point, total ms, dispatches) measured in profiling mode since the last call,
    /// slowest first.
    pub fn take_kernel_times(&self) -> Vec<(String, f64, u64)> {
        let m = std::mem::take(&mut *self.kernel_times.lock().unwrap());
        let mut v: Vec<(String, f64, u64)> = m.into_iter().map(|(k, (ms, n))| (k, ms, n)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }

    pub fn wait_idle(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        }
    }
}

/// "vendor / architecture" from `GPUAdapter.info` (wgpu reports only the often-empty description).
#[cfg(target_arch = "wasm32")]
async fn browser_adapter_name() -> String {
    use wasm_bindgen::JsCast;
    async fn get() -> Option<String> {
        let get = |o: &wasm_bindgen::JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).ok();
        let nav = get(&js_sys::global(), "navigator")?;
        let gpu = get(&nav, "gpu")?;
        let request = get(&gpu, "requestAdapter")?.dyn_into::<js_sys::Function>().ok()?;
        let promise = request.call0(&gpu).ok()?.dyn_into::<js_sys::Promise>().ok()?;
        let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
        let info = get(&adapter, "info")?;
        let field = |k: &str| get(&info, k).and_then(|v| v.as_string()).unwrap_or_default();
        let parts: Vec<String> = [field("vendor"), field("architecture"), field("description")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" / "))
    }
    get().await.unwrap_or_else(|| "WebGPU adapter".to_string())
}

#[cfg(target_arch = "wasm32")]
fn webgpu_exposed() -> bool {
    let global = js_sys::global();
    let nav = js_sys::Reflect::get(&global, &"navigator".into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
    if nav.is_undefined() {
        return false;
    }
    js_sys::Reflect::get(&nav, &"gpu".into()).map(|g| !g.is_undefined() && !g.is_null()).unwrap_or(false)
}

/// [`GpuInfo::memory_budget`] natively: BERTLAB_GPU_MEMORY_MB, when set.
#[cfg(not(target_arch = "wasm32"))]
fn memory_budget() -> Option<u64> {
    std::env::var("BERTLAB_GPU_MEMORY_MB").ok().and_then(|v| v.trim().parse::<u64>().ok()).map(|mb| mb * 1_000_000)
}

/// [`GpuInfo::memory_budget`] in the browser: `navigator.deviceMemory` (GiB), where it exists.
#[cfg(target_arch = "wasm32")]
fn memory_budget() -> Option<u64> {
    let nav = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let gib = js_sys::Reflect::get(&nav, &"deviceMemory".into()).ok()?.as_f64()?;
    (gib > 0.0).then(|| (gib * (1u64 << 30) as f64) as u64)
}
