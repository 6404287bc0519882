//! Softmax cross-entropy with an ignore label (shaders/cross_entropy.wgsl).

use super::{grid, need, u32_of};
use crate::gpu::{same_whole, GpuBuf, GpuError, KernelId, Step, View};
use crate::shaders::params::cross_entropy::Params;

pub const ROWS: KernelId = KernelId::new("cross_entropy", "ce_rows", &[1, 2, 3]);
pub const REDUCE: KernelId = KernelId::new("cross_entropy", "ce_reduce", &[4, 5]);
pub const BACKWARD: KernelId = KernelId::new("cross_entropy", "ce_backward", &[1, 2, 6, 7]);

/// torch's default ignore_index; any label outside [0, classes) is ignored the same way.
pub const IGNORE: i32 = -100;

/// Loss of each row of `logits` (rows, classes) against the i32 `labels` (rows). `row_scratch` holds
/// (rows, 3); `stats` receives [mean loss over counted rows (0 if none), count].
pub fn forward(step: &mut Step, stats: &GpuBuf, row_scratch: &GpuBuf, logits: View, labels: &GpuBuf) -> Result<(), GpuError> {
    let (rows, classes) = (logits.rows(), logits.cols());
    let lb = logits.whole("ce_rows", "logits")?;
    need("ce_rows", "labels", labels, 0, rows)?;
    need("ce_rows", "row_scratch", row_scratch, 0, rows * 3)?;
    need("ce_reduce", "stats", stats, 0, 3)?;
    let p = Params { rows: u32_of("ce", rows)?, classes: u32_of("ce", classes)?, weight: 1.0 };
    step.dispatch(ROWS, &[], bytemuck::bytes_of(&p), &[lb, labels, row_scratch], grid(rows, 1))?;
    step.dispatch(REDUCE, &[], bytemuck::bytes_of(&p), &[row_scratch, stats], [1, 1, 1])
}

/// dlogits = weight * d(mean loss)/dlogits (of the logits' shape), reading the count from `stats`.
pub fn backward(step: &mut Step, dlogits: View, logits: View, labels: &GpuBuf, stats: &GpuBuf, weight: f32) -> Result<(), GpuError> {
    let (rows, classes) = (logits.rows(), logits.cols());
    let [lb, db] = same_whole("ce_backward", [("logits", logits), ("dlogits", dlogits)])?;
    let p = Params { rows: u32_of("ce", rows)?, classes: u32_of("ce", classes)?, weight };
    step.dispatch(BACKWARD, &[], bytemuck::bytes_of(&p), &[lb, labels, stats, db], grid(rows, 1))
}
