//! RMSNorm (shaders/rmsnorm.wgsl), the Llama family's norm: forward saving each row's rstd, the
//! input's gradient (written or added) and the weight's (added), as transformers' LlamaRMSNorm
//! computes it in f32.

use super::{grid, u32_of};
use crate::gpu::{need, same_whole, GpuBuf, GpuError, KernelId, Step, View};
use crate::shaders::params::rmsnorm::Params;

pub const FORWARD: KernelId = KernelId::new("rmsnorm", "rmsnorm_forward", &[1, 2, 3, 4]);
pub const BACKWARD_INPUT: KernelId = KernelId::new("rmsnorm", "rmsnorm_backward_input", &[1, 2, 5, 6, 7]);
pub const BACKWARD_PARAMS: KernelId = KernelId::new("rmsnorm", "rmsnorm_backward_params", &[1, 5, 6, 8]);

fn params(rows: usize, cols: usize, eps: f32) -> Result<Params, GpuError> {
    Ok(Params { rows: u32_of("rmsnorm", rows)?, cols: u32_of("rmsnorm", cols)?, eps })
}

/// y (rows, cols) = x / sqrt(mean(x^2) + eps) * w, and each row's rstd.
pub fn forward(step: &mut Step, y: View, rstd: &GpuBuf, x: View, w: &GpuBuf, eps: f32) -> Result<(), GpuError> {
    let (rows, cols) = (x.rows(), x.cols());
    let [xb, yb] = same_whole("rmsnorm_forward", [("x", x), ("y", y)])?;
    need("rmsnorm_forward", "w", w, 0, cols)?;
    need("rmsnorm_forward", "rstd", rstd, 0, rows)?;
    step.dispatch(FORWARD, &[], bytemuck::bytes_of(&params(rows, cols, eps)?), &[xb, w, yb, rstd], grid(rows, 1))
}

/// dx (= or += with `accumulate`) from dy and the forward's x and rstd; dw += the weight's gradient
/// when given.
#[allow(clippy::too_many_arguments)]
pub fn backward(step: &mut Step, dx: View, dy: View, x: View, rstd: &GpuBuf, w: &GpuBuf, dw: Option<&GpuBuf>, accumulate: bool) -> Result<(), GpuError> {
    let (rows, cols) = (x.rows(), x.cols());
    let [xb, dyb, dxb] = same_whole("rmsnorm_backward", [("x", x), ("dy", dy), ("dx", dx)])?;
    need("rmsnorm_backward", "w", w, 0, cols)?;
    need("rmsnorm_backward", "rstd", rstd, 0, rows)?;
    if let Some(dw) = dw {
        need("rmsnorm_backward", "dw", dw, 0, cols)?;
    }
    let p = params(rows, cols, 0.0)?;
    let acc = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    step.dispatch(BACKWARD_INPUT, &acc, bytemuck::bytes_of(&p), &[xb, w, rstd, dyb, dxb], grid(rows, 1))?;
    if let Some(dw) = dw {
        step.dispatch(BACKWARD_PARAMS, &[], bytemuck::bytes_of(&p), &[xb, rstd, dyb, dw], grid(cols, 32))?;
    }
    Ok(())
}
