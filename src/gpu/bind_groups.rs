//! Bind groups kept between steps, keyed by what they bind.

/// What identifies a bind group: the pipeline (its layout), the uniform slot and the buffers and textures bound.
#[derive(PartialEq, Eq, Hash)]
pub(crate) struct BindGroupKey {
    pub(super) pipeline: usize,
    pub(super) uniform: Option<(wgpu::Buffer, u64, u64)>,
    pub(super) buffers: Vec<(wgpu::Buffer, usize, usize)>,
    pub(super) textures: Vec<wgpu::TextureView>,
}

/// Bind groups kept between steps. A cached bind group keeps its buffers alive, so entries that no
/// step has used for [`BindGroupCache::KEEP_STEPS`] steps are dropped (checked every that many steps).
#[derive(Default)]
pub(crate) struct BindGroupCache {
    pub(crate) map: std::collections::HashMap<BindGroupKey, (wgpu::BindGroup, u64)>,
    /// Steps submitted so far.
    pub(crate) epoch: u64,
}

impl BindGroupCache {
    const KEEP_STEPS: u64 = 16;

    pub(super) fn end_step(&mut self) {
        self.epoch += 1;
        if self.epoch % Self::KEEP_STEPS == 0 {
            let oldest = self.epoch.saturating_sub(Self::KEEP_STEPS);
            self.map.retain(|_, (_, used)| *used >= oldest);
        }
    }
}
