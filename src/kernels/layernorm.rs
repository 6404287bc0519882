//! LayerNorm forward (saving mean and rstd) and backward (shaders/layernorm.wgsl).

use super::dropout::Dropout;
use super::softmax::RowKernel;
use super::{grid, need, u32_of};
use crate::gpu::{uniform, GpuBuf, GpuError, KernelId, Step};

pub const FORWARD: KernelId = KernelId::new("layernorm", "layernorm_forward", &[1, 2, 3, 4, 5, 6, 15, 16]);
pub const BACKWARD_INPUT: KernelId = KernelId::new("layernorm", "layernorm_backward_input", &[7, 8, 9, 10, 11, 12, 17]);
/// One row per invocation, no barrier: what CPU adapters run (see the shader).
pub const FORWARD_ROWS: KernelId = KernelId::new("layernorm", "layernorm_forward_rows", &[1, 2, 3, 4, 5, 6, 15, 16]);
pub const BACKWARD_INPUT_ROWS: KernelId = KernelId::new("layernorm", "layernorm_backward_input_rows", &[7, 8, 9, 10, 11, 12, 17]);
pub const BACKWARD_PARAMS: KernelId = KernelId::new("layernorm", "layernorm_backward_params", &[7, 9, 10, 11, 13, 14]);

uniform! {
    /// shaders/layernorm.wgsl's parameters: the shape, eps, and the fused dropout's seed and probability.
    pub(crate) struct Params { rows: u32, cols: u32, eps: f32, seed_lo: u32, seed_hi: u32, prob: f32 }
}

/// Which row kernel runs (`Auto`: one invocation per row on a software adapter, one workgroup per
/// row otherwise).
#[derive(Clone, Copy, Debug, Default)]
pub struct LnParams {
    pub kernel: RowKernel,
}

fn params(rows: usize, cols: usize, eps: f32, drop: Dropout) -> Result<Params, GpuError> {
    drop.check()?;
    Ok(Params {
        seed_lo: drop.seed as u32,
        seed_hi: (drop.seed >> 32) as u32,
        prob: drop.prob,
        rows: u32_of("layernorm", rows)?,
        cols: u32_of("layernorm", cols)?,
        eps,
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
    record_forward(step, y, mean, rstd, x, None, None, gamma, beta, w, rows, cols, eps)
}

/// y = dropout(layernorm(x)) in one dispatch (BERT's embeddings); the backward is
/// [`backward_dropped`] with `dy_drop`.
#[allow(clippy::too_many_arguments)]
pub fn forward_dropped(
    step: &mut Step,
    y: &GpuBuf,
    mean: &GpuBuf,
    rstd: &GpuBuf,
    x: &GpuBuf,
    drop: Dropout,
    gamma: &GpuBuf,
    beta: &GpuBuf,
    w: LnParams,
    rows: usize,
    cols: usize,
    eps: f32,
) -> Result<(), GpuError> {
    record_forward(step, y, mean, rstd, x, None, Some(drop), gamma, beta, w, rows, cols, eps)
}

/// The residual connection, its dropout and the layernorm after it, in one dispatch:
/// `res = skip + dropout(branch)` is written (the backward's input) and `y = layernorm(res)`.
#[allow(clippy::too_many_arguments)]
pub fn forward_residual(
    step: &mut Step,
    y: &GpuBuf,
    mean: &GpuBuf,
    rstd: &GpuBuf,
    res: &GpuBuf,
    skip: &GpuBuf,
    branch: &GpuBuf,
    drop: Dropout,
    gamma: &GpuBuf,
    beta: &GpuBuf,
    w: LnParams,
    rows: usize,
    cols: usize,
    eps: f32,
) -> Result<(), GpuError> {
    record_forward(step, y, mean, rstd, skip, Some((res, branch, drop)), None, gamma, beta, w, rows, cols, eps)
}

#[allow(clippy::too_many_arguments)]
fn record_forward(
    step: &mut Step,
    y: &GpuBuf,
    mean: &GpuBuf,
    rstd: &GpuBuf,
    x: &GpuBuf,
    residual: Option<(&GpuBuf, &GpuBuf, Dropout)>,
    out_drop: Option<Dropout>,
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
    need("layernorm_forward", "gamma", gamma, 0, cols)?;
    need("layernorm_forward", "beta", beta, 0, cols)?;
    if residual.is_some() && out_drop.is_some() {
        return Err(GpuError::Shape("layernorm_forward: one dropout per dispatch (residual or output)".into()));
    }
    let drop = residual.map(|r| r.2).or(out_drop).unwrap_or_default();
    let p = params(rows, cols, eps, drop)?;
    let dummy = step.gpu().dummy_rw();
    let (res, branch) = match residual {
        Some((res, branch, _)) => {
            need("layernorm_forward", "res", res, 0, rows * cols)?;
            need("layernorm_forward", "branch", branch, 0, rows * cols)?;
            (res, branch)
        }
        None => (&dummy, x),
    };
    let consts = [("RESIDUAL", if residual.is_some() { 1.0 } else { 0.0 }), ("DROP_Y", if out_drop.is_some() { 1.0 } else { 0.0 })];
    let (kernel, wg) = if w.kernel.per_thread(step) { (FORWARD_ROWS, grid(rows, 64)) } else { (FORWARD, grid(rows, 1)) };
    step.dispatch(kernel, &consts, bytemuck::bytes_of(&p), &[x, gamma, beta, y, mean, rstd, branch, res], wg)
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
    backward_dropped(step, dx, None, None, dgamma, dbeta, dy, x, mean, rstd, gamma, w, rows, cols, accumulate)
}

/// [`backward`] that also writes `dropout(dx)` into `dxd` (the gradient of a residual branch that
/// went through dropout, `drop` being the forward's), in the same dispatch; or, with `dy_drop`, the
/// backward of [`forward_dropped`] (dy taken through its dropout first). At most one of the two.
#[allow(clippy::too_many_arguments)]
pub fn backward_dropped(
    step: &mut Step,
    dx: &GpuBuf,
    dxd: Option<(&GpuBuf, Dropout)>,
    dy_drop: Option<Dropout>,
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
    need("layernorm_backward", "gamma", gamma, 0, cols)?;
    need("layernorm_backward", "dgamma", dgamma, 0, cols)?;
    need("layernorm_backward", "dbeta", dbeta, 0, cols)?;
    if dxd.is_some() && dy_drop.is_some() {
        return Err(GpuError::Shape("layernorm_backward: one dropout per dispatch (dx or dy)".into()));
    }
    let p = params(rows, cols, 0.0, dxd.map(|d| d.1).or(dy_drop).unwrap_or_default())?;
    let dummy = step.gpu().dummy_rw();
    let dxd_buf = match dxd {
        Some((b, _)) => {
            need("layernorm_backward", "dxd", b, 0, rows * cols)?;
            b
        }
        None => &dummy,
    };
    let dd = ("DROP_DY", if dy_drop.is_some() { 1.0 } else { 0.0 });
    let consts = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 }), ("DROP_DX", if dxd.is_some() { 1.0 } else { 0.0 }), dd];
    let (kernel, wg) = if w.kernel.per_thread(step) { (BACKWARD_INPUT_ROWS, grid(rows, 64)) } else { (BACKWARD_INPUT, grid(rows, 1)) };
    step.dispatch(kernel, &consts, bytemuck::bytes_of(&p), &[x, gamma, mean, rstd, dy, dx, dxd_buf], wg)?;
    step.dispatch(BACKWARD_PARAMS, &[dd], bytemuck::bytes_of(&p), &[x, mean, rstd, dy, dgamma, dbeta], grid(cols, 32))
}
