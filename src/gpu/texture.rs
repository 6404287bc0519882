//! Read-only 2-D textures of vec4 texels (rgba32float) that kernels fill through a write-only
//! storage binding (or a copy) and read through a read-only one. On CPU adapters a lane's texel
//! load is one 16-byte read and a storage buffer's vec4 four bounds-checked ones, so there the
//! one-row products of decoding keep packed copies of their weights in them
//! (kernels::matvec::Packed), and the subgroup matmul copies its operands into the device's two
//! scratch textures (kernels::matmul, `Kernel::SubgroupTex`).

use super::{Gpu, GpuError};

/// A `width` × `height` rgba32float texture and its view.
#[derive(Clone, Debug)]
pub struct GpuTex {
    pub tex: wgpu::Texture,
    pub view: wgpu::TextureView,
    pub width: u32,
    pub height: u32,
}

impl GpuTex {
    pub fn bytes(&self) -> u64 {
        self.width as u64 * self.height as u64 * 16
    }
}

impl Gpu {
    /// A zero-filled `width` × `height` texture of vec4 texels, checked against the device's limit
    /// on either side.
    pub fn texture_vec4(&self, label: &str, width: usize, height: usize) -> Result<GpuTex, GpuError> {
        let max = self.info.max_texture_dimension_2d as usize;
        if width == 0 || height == 0 || width > max || height > max {
            return Err(GpuError::Limits(format!("texture '{label}' of {width} x {height} texels: this device allows 1 to {max} along each side")));
        }
        let tex = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d { width: width as u32, height: height as u32, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let view = tex.create_view(&wgpu::TextureViewDescriptor::default());
        let t = GpuTex { tex, view, width: width as u32, height: height as u32 };
        let mut c = self.counters.lock().unwrap();
        c.buffers_created += 1;
        c.storage_bytes += t.bytes();
        Ok(t)
    }

    /// Scratch texture `slot` with at least `rows` rows of `width` texels: the one made before when
    /// it is big enough, else a new one (kept for the next call). Contents are whatever the last
    /// user wrote.
    pub fn scratch_texture(&self, slot: usize, width: usize, rows: usize) -> Result<GpuTex, GpuError> {
        let mut scratch = self.scratch_textures.lock().unwrap();
        if scratch.len() <= slot {
            scratch.resize(slot + 1, None);
        }
        if let Some((tex, view)) = &scratch[slot] {
            if tex.width() as usize == width && tex.height() as usize >= rows {
                return Ok(GpuTex { tex: tex.clone(), view: view.clone(), width: tex.width(), height: tex.height() });
            }
        }
        let t = self.texture_vec4("scratch", width, rows)?;
        scratch[slot] = Some((t.tex.clone(), t.view.clone()));
        Ok(t)
    }
}
