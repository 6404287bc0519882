//! LayerNorm forward (saving mean and rstd) and backward (shaders/layernorm.wgsl).

use bytemuck::{Pod, Zeroable};

use super::softmax::RowKernel;
use super::{grid, need, u32_of};
use crate::gpu::{GpuBuf, GpuError, KernelId, Step};

pub const FORWARD: KernelId = KernelId::new("layernorm", "layernorm_forward", &[1, 2, 3, 4, 5, 6]);
pub const BACKWARD_INPUT: KernelId = KernelId::new("layernorm", "layernorm_backward_input", &[7, 8, 9, 10, 11, 12]);
/// One row per invocation, no barrier: what CPU adapters run (see the shader).
pub const FORWARD_ROWS: KernelId = KernelId::new("layernorm", "layernorm_forward_rows", &[1, 2, 3, 4, 5, 6]);
pub const BACKWARD_INPUT_ROWS: KernelId = KernelId::new("layernorm", "layernorm_backward_input_rows", &[7, 8, 9, 10, 11, 12]);
pub const BACKWARD_PARAMS: KernelId = KernelId::new("layernorm", "layernorm_backward_params", &[7, 9, 10, 11, 13, 14]);

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    _pad: u32,
    off_x: u32,
    off_y: u32,
    off_gamma: u32,
    off_beta: u32,
}

/// Where gamma and beta sit (they may be slices of a larger parameter buffer), and which row kernel
/// runs (`Auto`: one invocation per row on a software adapter, one workgroup per row otherwise).
#[derive(Clone, Copy, Debug, Default)]
pub struct LnParams {
    pub off_gamma: usize,
    pub off_beta: usize,
    pub kernel: RowKernel,
}

fn params(rows: usize, cols: usize, eps: f32, w: LnParams) -> Result<Params, GpuError> {
    Ok(Params {
        rows: u32_of("layernorm", rows)?,
        cols: u32_of("layernorm", cols)?,
        eps,
        _pad: 0,
        off_x: 0,
        off_y: 0,
        off_gamma: u32_of("layernorm", w.off_gamma)?,
        off_beta: u32_of("layernorm", w.off_beta)?,
    })
}

/// y (rows, cols) = layernorm(x); mean and rstd (rows) are saved for the backward.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    step: &mut Step,
    y: &GpuBuf,
    mean: &GpuBuf,
    rstd: &GpuBuf,
    x: &GpuBuf,
    gamma: &GpuBuf,
    beta: &GpuBuf,
    w: LnParams,
    rows: usize,
    cols: usize,
    eps: f32,
) -> Result<(), GpuError> {
    need("layernorm_forward", "x", x, 0, rows * cols)?;
    need("layernorm_forward", "y", y, 0, rows * cols)?;
    need("layernorm_forward", "mean", mean, 0, rows)?;
    need("layernorm_forward", "rstd", rstd, 0, rows)?;
    need("layernorm_forward", "gamma", gamma, w.off_gamma, cols)?;
    need("layernorm_forward", "beta", beta, w.off_beta, cols)?;
    let p = params(rows, cols, eps, w)?;
    let (kernel, wg) = if w.kernel.per_thread(step) { (FORWARD_ROWS, grid(rows, 64)) } else { (FORWARD, grid(rows, 1)) };
    step.dispatch(kernel, &[], bytemuck::bytes_of(&p), &[x, gamma, beta, y, mean, rstd], wg)
}

/// dx (= or +=, per `accumulate`) and dgamma, dbeta (+=) from dy and the saved mean and rstd.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    step: &mut Step,
    dx: &GpuBuf,
    dgamma: &GpuBuf,
    dbeta: &GpuBuf,
    dy: &GpuBuf,
    x: &GpuBuf,
    mean: &GpuBuf,
    rstd: &GpuBuf,
    gamma: &GpuBuf,
    w: LnParams,
    rows: usize,
    cols: usize,
    accumulate: bool,
) -> Result<(), GpuError> {
    for (what, b) in [("dx", dx), ("dy", dy), ("x", x)] {
        need("layernorm_backward", what, b, 0, rows * cols)?;
    }
    need("layernorm_backward", "mean", mean, 0, rows)?;
    need("layernorm_backward", "rstd", rstd, 0, rows)?;
    need("layernorm_backward", "gamma", gamma, w.off_gamma, cols)?;
    need("layernorm_backward", "dgamma", dgamma, w.off_gamma, cols)?;
    need("layernorm_backward", "dbeta", dbeta, w.off_beta, cols)?;
    let p = params(rows, cols, 0.0, w)?;
    let acc = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    let (kernel, wg) = if w.kernel.per_thread(step) { (BACKWARD_INPUT_ROWS, grid(rows, 64)) } else { (BACKWARD_INPUT, grid(rows, 1)) };
    step.dispatch(kernel, &acc, bytemuck::bytes_of(&p), &[x, gamma, mean, rstd, dy, dx], wg)?;
    step.dispatch(BACKWARD_PARAMS, &[], bytemuck::bytes_of(&p), &[x, mean, rstd, dy, dgamma, dbeta], grid(cols, 32))
}
