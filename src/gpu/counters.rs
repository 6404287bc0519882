use std::collections::BTreeMap;

/// What the runtime did since the counters were last reset. Tests assert on these: one submit per step,
/// no encoder backward in feature-based training, only small results read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Steps submitted.
    pub submits: u64,
    /// Queue submissions made by the steps of each label: one per step (a step's `submit` makes one),
    /// one per command in profiling mode. Keyed by label so that a test can count its own step's
    /// while other tests share the device.
    pub queue_submits: BTreeMap<&'static str, u64>,
    pub dispatches: BTreeMap<String, u64>,
    pub bytes_read_back: u64,
    pub readbacks: u64,
    pub pipelines_built: u64,
    /// GPU buffers created (storage, uniform chunks, readback staging); 0 per step once warm.
    pub buffers_created: u64,
    /// Buffers taken from the recycling pool instead of created.
    pub buffers_recycled: u64,
    /// Bind groups created; 0 per step once warm (they are cached with their buffers).
    pub bind_groups_created: u64,
    /// Bytes written from the host: uploads, `write` and the steps' uniforms.
    pub bytes_written: u64,
    /// Bytes of the storage buffers created: weights, gradients, optimizer moments, activations
    /// (what a run holds on the GPU, less the small uniform and staging buffers).
    pub storage_bytes: u64,
}

impl Counters {
    /// Dispatches of kernels whose name starts with `prefix` (e.g. "matmul", "layernorm_backward").
    pub fn dispatches_of(&self, prefix: &str) -> u64 {
        self.dispatches.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| *v).sum()
    }

    /// Queue submissions made by steps labelled `label`.
    pub fn queue_submits_of(&self, label: &str) -> u64 {
        self.queue_submits.get(label).copied().unwrap_or(0)
    }

    pub fn total_dispatches(&self) -> u64 {
        self.dispatches.values().sum()
    }
}
