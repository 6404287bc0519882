//! Softmax cross-entropy with an ignore label (shaders/cross_entropy.wgsl).

use super::{grid, need, u32_of};
use crate::gpu::{uniform, GpuBuf, GpuError, KernelId, Step};

pub const ROWS: KernelId = KernelId::new("cross_entropy", "ce_rows", &[1, 2, 3]);
pub const REDUCE: KernelId = KernelId::new("cross_entropy", "ce_reduce", &[4, 5]);
pub const BACKWARD: KernelId = KernelId::new("cross_entropy", "ce_backward", &[1, 2, 6, 7]);

/// torch's default ignore_index; any label outside [0, classes) is ignored the same way.
pub const IGNORE: i32 = -100;

uniform! {
    /// shaders/cross_entropy.wgsl's parameters.
    pub(crate) struct Params { rows: u32, classes: u32, weight: f32 }
}

/// Loss of `rows` rows of `classes` logits against i32 `labels`. `row_scratch` holds (rows, 3);
/// `stats` receives [mean loss over counted rows (0 if none), count].
#[allow(clippy::too_many_arguments)]
pub fn forward(
    step: &mut Step,
    stats: &GpuBuf,
    row_scratch: &GpuBuf,
    logits: &GpuBuf,
    labels: &GpuBuf,
    rows: usize,
    classes: usize,
) -> Result<(), GpuError> {
    need("ce_rows", "logits", logits, 0, rows * classes)?;
    need("ce_rows", "labels", labels, 0, rows)?;
    need("ce_rows", "row_scratch", row_scratch, 0, rows * 3)?;
    need("ce_reduce", "stats", stats, 0, 3)?;
    let p = Params { rows: u32_of("ce", rows)?, classes: u32_of("ce", classes)?, weight: 1.0 };
    step.dispatch(ROWS, &[], bytemuck::bytes_of(&p), &[logits, labels, row_scratch], grid(rows, 1))?;
    step.dispatch(REDUCE, &[], bytemuck::bytes_of(&p), &[row_scratch, stats], [1, 1, 1])
}

/// dlogits = weight * d(mean loss)/dlogits, reading the count from `stats`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    step: &mut Step,
    dlogits: &GpuBuf,
    logits: &GpuBuf,
    labels: &GpuBuf,
    stats: &GpuBuf,
    rows: usize,
    classes: usize,
    weight: f32,
) -> Result<(), GpuError> {
    need("ce_backward", "dlogits", dlogits, 0, rows * classes)?;
    need("ce_backward", "logits", logits, 0, rows * classes)?;
    let p = Params { rows: u32_of("ce", rows)?, classes: u32_of("ce", classes)?, weight };
    step.dispatch(BACKWARD, &[], bytemuck::bytes_of(&p), &[logits, labels, stats, dlogits], grid(rows, 1))
}
