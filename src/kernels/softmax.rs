//! Row softmax with scale and additive mask, and its backward (shaders/softmax.wgsl).

use super::dropout::Dropout;
use super::{grid, need, u32_of};
use crate::gpu::{uniform, GpuBuf, GpuError, KernelId, Step};

pub const FORWARD: KernelId = KernelId::new("softmax", "softmax_forward", &[1, 2, 3, 7]);
pub const BACKWARD: KernelId = KernelId::new("softmax", "softmax_backward", &[4, 5, 6]);
/// One row per invocation, no barrier: the variants CPU adapters run (see the shader).
pub const FORWARD_ROWS: KernelId = KernelId::new("softmax", "softmax_forward_rows", &[1, 2, 3, 7]);
pub const BACKWARD_ROWS: KernelId = KernelId::new("softmax", "softmax_backward_rows", &[4, 5, 6]);

/// How a row kernel (softmax, layernorm) spreads a row over invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RowKernel {
    /// `Thread` on a software adapter, `Workgroup` otherwise.
    #[default]
    Auto,
    /// One 32-invocation workgroup per row, reductions in workgroup memory (real GPUs).
    Workgroup,
    /// One invocation per row, no barrier (CPU adapters).
    Thread,
}

impl RowKernel {
    pub(crate) fn per_thread(self, step: &Step) -> bool {
        match self {
            RowKernel::Auto => step.gpu().info.is_software,
            RowKernel::Workgroup => false,
            RowKernel::Thread => true,
        }
    }
}

/// A mask value at or below this removes its column (use `f32::NEG_INFINITY` or `MASKED`).
pub const MASKED: f32 = -1e30;

uniform! {
    /// shaders/softmax.wgsl's parameters: the shape, the mask's rows, the scale, and the fused
    /// dropout's seed and probability.
    pub(crate) struct Params { rows: u32, cols: u32, rows_per_mask: u32, scale: f32, seed_lo: u32, seed_hi: u32, prob: f32 }
}

/// `y[r] = softmax(scale * x[r] + mask[r / rows_per_mask])` over `cols`; `mask` is
/// (rows / rows_per_mask, cols). For attention scores (B, H, Tq, Tk): rows = B*H*Tq, rows_per_mask = H*Tq.
pub fn forward(step: &mut Step, y: &GpuBuf, x: &GpuBuf, mask: Option<(&GpuBuf, usize)>, rows: usize, cols: usize, scale: f32) -> Result<(), GpuError> {
    forward_as(RowKernel::Auto, step, y, x, mask, rows, cols, scale)
}

/// [`forward`] that also writes `yd = dropout(y)` (attention's dropout) in the same dispatch.
#[allow(clippy::too_many_arguments)]
pub fn forward_dropped(step: &mut Step, y: &GpuBuf, yd: &GpuBuf, drop: Dropout, x: &GpuBuf, mask: Option<(&GpuBuf, usize)>, rows: usize, cols: usize, scale: f32) -> Result<(), GpuError> {
    record_forward(RowKernel::Auto, step, y, Some((yd, drop)), x, mask, false, rows, cols, scale)
}

/// [`forward`] with the row kernel chosen by the caller (the checks run both).
#[allow(clippy::too_many_arguments)]
pub fn forward_as(
    kernel: RowKernel,
    step: &mut Step,
    y: &GpuBuf,
    x: &GpuBuf,
    mask: Option<(&GpuBuf, usize)>,
    rows: usize,
    cols: usize,
    scale: f32,
) -> Result<(), GpuError> {
    record_forward(kernel, step, y, None, x, mask, false, rows, cols, scale)
}

/// The forward dispatch. With `causal`, row r (query r % cols of a square attention) also loses
/// every column after the query's own: a decoder's self-attention, computed in the kernel with no
/// (T, T) mask buffer.
#[allow(clippy::too_many_arguments)]
pub fn record_forward(
    kernel: RowKernel,
    step: &mut Step,
    y: &GpuBuf,
    yd: Option<(&GpuBuf, Dropout)>,
    x: &GpuBuf,
    mask: Option<(&GpuBuf, usize)>,
    causal: bool,
    rows: usize,
    cols: usize,
    scale: f32,
) -> Result<(), GpuError> {
    if causal && (cols == 0 || rows % cols != 0) {
        return Err(GpuError::Shape(format!("softmax_forward: a causal mask needs square attention; {rows} rows are not a multiple of {cols} keys")));
    }
    need("softmax_forward", "x", x, 0, rows * cols)?;
    need("softmax_forward", "y", y, 0, rows * cols)?;
    let rows_per_mask = match mask {
        Some((m, rpm)) => {
            if rpm == 0 || rows % rpm != 0 {
                return Err(GpuError::Shape(format!("softmax_forward: {rows} rows are not a multiple of rows_per_mask {rpm}")));
            }
            need("softmax_forward", "mask", m, 0, rows / rpm * cols)?;
            rpm
        }
        None => 1,
    };
    let p = Params {
        rows: u32_of("softmax", rows)?,
        cols: u32_of("softmax", cols)?,
        rows_per_mask: rows_per_mask as u32,
        scale,
        ..dropout_words(yd.map(|d| d.1))?
    };
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let consts = [("HAS_MASK", flag(mask.is_some())), ("DROPOUT", flag(yd.is_some())), ("CAUSAL", flag(causal))];
    let m = mask.map(|(m, _)| m).unwrap_or(x);
    let dummy = step.gpu().dummy_rw();
    let ydb = match yd {
        Some((b, _)) => {
            need("softmax_forward", "yd", b, 0, rows * cols)?;
            b
        }
        None => &dummy,
    };
    if kernel.per_thread(step) {
        step.dispatch(FORWARD_ROWS, &consts, bytemuck::bytes_of(&p), &[x, m, y, ydb], grid(rows, 64))
    } else {
        step.dispatch(FORWARD, &consts, bytemuck::bytes_of(&p), &[x, m, y, ydb], grid(rows, 1))
    }
}

/// `dx = scale * y * (dy - sum(dy * y))` row by row, from the saved probabilities `y`.
pub fn backward(step: &mut Step, dx: &GpuBuf, y: &GpuBuf, dy: &GpuBuf, rows: usize, cols: usize, scale: f32) -> Result<(), GpuError> {
    backward_as(RowKernel::Auto, step, dx, y, dy, rows, cols, scale)
}

/// The backward of [`forward_dropped`] from the gradient at `yd`: dropout(dy) first, then as [`backward`].
#[allow(clippy::too_many_arguments)]
pub fn backward_dropped(step: &mut Step, dx: &GpuBuf, y: &GpuBuf, dyd: &GpuBuf, drop: Dropout, rows: usize, cols: usize, scale: f32) -> Result<(), GpuError> {
    record_backward(RowKernel::Auto, step, dx, y, dyd, Some(drop), rows, cols, scale)
}

/// The uniform words of an optional fused dropout.
fn dropout_words(d: Option<Dropout>) -> Result<Params, GpuError> {
    let d = d.unwrap_or_default();
    d.check()?;
    Ok(Params { seed_lo: d.seed as u32, seed_hi: (d.seed >> 32) as u32, prob: d.prob, ..Params::default() })
}

/// [`backward`] with the row kernel chosen by the caller.
#[allow(clippy::too_many_arguments)]
pub fn backward_as(kernel: RowKernel, step: &mut Step, dx: &GpuBuf, y: &GpuBuf, dy: &GpuBuf, rows: usize, cols: usize, scale: f32) -> Result<(), GpuError> {
    record_backward(kernel, step, dx, y, dy, None, rows, cols, scale)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn record_backward(kernel: RowKernel, step: &mut Step, dx: &GpuBuf, y: &GpuBuf, dy: &GpuBuf, drop: Option<Dropout>, rows: usize, cols: usize, scale: f32) -> Result<(), GpuError> {
    for (what, b) in [("dx", dx), ("y", y), ("dy", dy)] {
        need("softmax_backward", what, b, 0, rows * cols)?;
    }
    let p = Params {
        rows: u32_of("softmax", rows)?,
        cols: u32_of("softmax", cols)?,
        rows_per_mask: 1,
        scale,
        ..dropout_words(drop)?
    };
    let consts = [("DROPOUT", if drop.is_some() { 1.0 } else { 0.0 })];
    if kernel.per_thread(step) {
        step.dispatch(BACKWARD_ROWS, &consts, bytemuck::bytes_of(&p), &[y, dy, dx], grid(rows, 64))
    } else {
        step.dispatch(BACKWARD, &consts, bytemuck::bytes_of(&p), &[y, dy, dx], grid(rows, 1))
    }
}
