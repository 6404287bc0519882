//! The dispatch math every kernel file shares (its own file, so that `mod.rs`, which lists every
//! kernel's pipelines, and the kernel files do not import each other).

use crate::gpu::GpuError;

/// Workgroups for `n` items in groups of `per_group`, folded into two dimensions so that more than
/// 65,535 groups still dispatch (shaders index them as `wg.x + wg.y * nwg.x`).
pub(crate) fn grid(n: usize, per_group: usize) -> [u32; 3] {
    let groups = n.div_ceil(per_group) as u32;
    if groups <= 65_535 {
        [groups, 1, 1]
    } else {
        [65_535, groups.div_ceil(65_535), 1]
    }
}

pub(crate) use crate::gpu::need;

pub(crate) fn u32_of(kernel: &str, v: usize) -> Result<u32, GpuError> {
    u32::try_from(v).map_err(|_| GpuError::Limits(format!("{kernel}: {v} does not fit in 32 bits")))
}
