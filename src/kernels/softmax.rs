//! Row softmax with scale and additive mask, and its backward (shaders/softmax.wgsl).

use super::dropout::Dropout;
use super::{grid, need, u32_of};
use crate::gpu::{same_whole, GpuBuf, GpuError, KernelId, Step, View};
use crate::shaders::params::softmax::Params;

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

/// An additive mask of (rows / rows_per_mask, cols): row r of the input gets row r / rows_per_mask.
/// For attention scores (B, H, Tq, Tk) viewed as (B*H*Tq, Tk): a (B, Tk) mask, rows_per_mask = H*Tq.
#[derive(Clone, Copy, Debug)]
pub struct Mask<'a> {
    pub mask: &'a GpuBuf,
    pub rows_per_mask: usize,
}

/// `y[r] = softmax(scale * x[r] + mask[r / rows_per_mask])` over the input's last dimension, row by
/// row. With `causal`, row r (query r % cols of a square attention) also loses every column after
/// the query's own: a decoder's self-attention, computed in the kernel with no (T, T) mask buffer.
#[derive(Clone, Copy, Debug)]
pub struct Softmax<'a> {
    pub scale: f32,
    pub mask: Option<Mask<'a>>,
    pub causal: bool,
    /// Sliding-window attention: each query sees the keys within this distance (0: all).
    pub window: usize,
    pub kernel: RowKernel,
}

/// The uniform words of an optional fused dropout.
fn dropout_words(d: Option<Dropout>) -> Result<Params, GpuError> {
    let d = d.unwrap_or_default();
    d.check()?;
    Ok(Params { seed_lo: d.seed as u32, seed_hi: (d.seed >> 32) as u32, prob: d.prob, ..Params::default() })
}

impl<'a> Softmax<'a> {
    /// No mask, not causal, the row kernel for the adapter.
    pub fn new(scale: f32) -> Softmax<'a> {
        Softmax { scale, mask: None, causal: false, window: 0, kernel: RowKernel::Auto }
    }
    pub fn mask(self, mask: Option<Mask<'a>>) -> Softmax<'a> {
        Softmax { mask, ..self }
    }
    pub fn causal(self, causal: bool) -> Softmax<'a> {
        Softmax { causal, ..self }
    }
    /// Each query (row r % cols of a square attention) sees only the keys within `window` of it.
    pub fn window(self, window: usize) -> Softmax<'a> {
        Softmax { window, ..self }
    }
    pub fn kernel(self, kernel: RowKernel) -> Softmax<'a> {
        Softmax { kernel, ..self }
    }

    /// y = softmax(x) (one shape), and with `dropped` also `yd = dropout(y)` (attention's dropout)
    /// in the same dispatch.
    pub fn forward(&self, step: &mut Step, y: View, x: View, dropped: Option<(View, Dropout)>) -> Result<(), GpuError> {
        const K: &str = "softmax_forward";
        let (rows, cols) = (x.rows(), x.cols());
        if (self.causal || self.window > 0) && (cols == 0 || rows % cols != 0) {
            return Err(GpuError::Shape(format!("{K}: a causal mask needs square attention; {rows} rows are not a multiple of {cols} keys")));
        }
        let [xb, yb] = same_whole(K, [("x", x), ("y", y)])?;
        let rows_per_mask = match self.mask {
            Some(Mask { mask, rows_per_mask: rpm }) => {
                if rpm == 0 || rows % rpm != 0 {
                    return Err(GpuError::Shape(format!("{K}: {rows} rows are not a multiple of rows_per_mask {rpm}")));
                }
                need(K, "mask", mask, 0, rows / rpm * cols)?;
                rpm
            }
            None => 1,
        };
        let p = Params {
            rows: u32_of("softmax", rows)?,
            cols: u32_of("softmax", cols)?,
            rows_per_mask: rows_per_mask as u32,
            scale: self.scale,
            ..dropout_words(dropped.map(|d| d.1))?
        };
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let consts = [("HAS_MASK", flag(self.mask.is_some())), ("DROPOUT", flag(dropped.is_some())), ("CAUSAL", flag(self.causal)), ("WINDOW", self.window as f64)];
        let m = self.mask.map(|m| m.mask).unwrap_or(xb);
        let dummy = step.gpu().dummy_rw();
        let ydb = match dropped {
            Some((yd, _)) => same_whole(K, [("x", x), ("yd", yd)])?[1],
            None => &dummy,
        };
        if self.kernel.per_thread(step) {
            step.dispatch(FORWARD_ROWS, &consts, bytemuck::bytes_of(&p), &[xb, m, yb, ydb], grid(rows, 64))
        } else {
            step.dispatch(FORWARD, &consts, bytemuck::bytes_of(&p), &[xb, m, yb, ydb], grid(rows, 1))
        }
    }

    /// `dx = scale * y * (dy - sum(dy * y))` row by row, from the saved probabilities `y`; with
    /// `drop` (the forward's), dy is the gradient at `dropout(y)` and is taken through it first.
    pub fn backward(&self, step: &mut Step, dx: View, y: View, dy: View, drop: Option<Dropout>) -> Result<(), GpuError> {
        const K: &str = "softmax_backward";
        let rows = y.rows();
        let [yb, dxb, dyb] = same_whole(K, [("y", y), ("dx", dx), ("dy", dy)])?;
        let p = Params {
            rows: u32_of("softmax", rows)?,
            cols: u32_of("softmax", y.cols())?,
            rows_per_mask: 1,
            scale: self.scale,
            ..dropout_words(drop)?
        };
        let consts = [("DROPOUT", if drop.is_some() { 1.0 } else { 0.0 })];
        if self.kernel.per_thread(step) {
            step.dispatch(BACKWARD_ROWS, &consts, bytemuck::bytes_of(&p), &[yb, dyb, dxb], grid(rows, 64))
        } else {
            step.dispatch(BACKWARD, &consts, bytemuck::bytes_of(&p), &[yb, dyb, dxb], grid(rows, 1))
        }
    }
}
