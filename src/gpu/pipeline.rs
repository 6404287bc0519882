use std::collections::HashMap;
use std::sync::{Arc, Mutex};


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
    pub(super) modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pub(super) pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
}

pub(super) fn cache_key(k: KernelId, constants: &[(&str, f64)]) -> String {
    let mut key = format!("{}:{}", k.shader, k.entry);
    for (name, v) in constants {
        key.push_str(&format!(":{name}={v}"));
    }
    key
}
