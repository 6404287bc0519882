use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::device::Gpu;

/// A kernel: an entry point in one of the files under `shaders/`. The entry-point name is what the
/// counters count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelId {
    /// File stem under `shaders/` (see `crate::shaders::SHADERS`).
    pub shader: &'static str,
    pub entry: &'static str,
    /// Binding numbers of the storage buffers this entry point uses, in the order a dispatch passes
    /// them; the uniform params are binding 0. Entry points that share a file declare their own
    /// buffers at their own binding numbers.
    pub bindings: &'static [u32],
}

impl KernelId {
    pub const fn new(shader: &'static str, entry: &'static str, bindings: &'static [u32]) -> KernelId {
        KernelId { shader, entry, bindings }
    }
}

/// Compute pipelines, built once per (shader, entry point, override constants) and kept.
#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
}

fn cache_key(k: KernelId, constants: &[(&str, f64)]) -> String {
    let mut key = format!("{}:{}", k.shader, k.entry);
    for (name, v) in constants {
        key.push_str(&format!(":{name}={v}"));
    }
    key
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
    pub async fn check_pipeline(&self, k: KernelId, constants: &[(&str, f64)]) -> Result<(), super::GpuError> {
        let v = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.compile_module(k.shader);
        let _ = self.build_pipeline(&module, k, constants);
        if let Some(e) = v.pop().await {
            return Err(super::GpuError::from_wgpu(e, &format!("building pipeline {}::{}", k.shader, k.entry)));
        }
        Ok(())
    }
}
