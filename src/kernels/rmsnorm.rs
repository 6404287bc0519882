//! RMSNorm (shaders/rmsnorm.wgsl), the Llama family's norm: forward saving each row's rstd, the
//! input's gradient (written or added) and the weight's (added), as transformers' LlamaRMSNorm
//! computes it in f32.

use super::{grid, u32_of};
use crate::gpu::{need, same_whole, GpuBuf, GpuError, KernelId, Step, View};
use crate::shaders::params::rmsnorm::Params;

pub const FORWARD: KernelId = KernelId::new("rmsnorm", "rmsnorm_forward", &[1, 2, 3, 4]);
pub const BACKWARD_INPUT: KernelId = KernelId::new("rmsnorm", "rmsnorm_backward_input", &[1, 2, 5, 6, 7]);
pub const BACKWARD_PARAMS: KernelId = KernelId::new("rmsnorm", "rmsnorm_backward_params", &[1, 5, 6, 8]);

/// Where the normed rows are: `rows` rows of `cols`, each one of `per_row` heads inside rows `ld`
/// wide from column `off` (a plain (rows, cols) matrix: one per row, `ld` = cols, `off` 0).
#[derive(Clone, Copy, Debug)]
pub struct Rows {
    pub rows: usize,
    pub cols: usize,
    pub per_row: usize,
    pub ld: usize,
    pub off: usize,
}

impl Rows {
    /// A (rows, cols) matrix.
    pub fn plain(rows: usize, cols: usize) -> Rows {
        Rows { rows, cols, per_row: 1, ld: cols, off: 0 }
    }
    /// `heads` heads of `d` per row from column `off` of rows `ld` wide, over `rows` rows.
    pub fn heads(rows: usize, heads: usize, d: usize, ld: usize, off: usize) -> Rows {
        Rows { rows: rows * heads, cols: d, per_row: heads, ld, off }
    }
    fn params(&self, eps: f32) -> Result<Params, GpuError> {
        const K: &str = "rmsnorm";
        if self.per_row == 0 || self.ld == 0 || self.off % self.ld + self.per_row * self.cols > self.ld {
            return Err(GpuError::Shape(format!("{K}: {} heads of {} from column {} past rows {} wide", self.per_row, self.cols, self.off, self.ld)));
        }
        Ok(Params { rows: u32_of(K, self.rows)?, cols: u32_of(K, self.cols)?, eps, per_row: u32_of(K, self.per_row)?, ld: u32_of(K, self.ld)?, off: u32_of(K, self.off)? })
    }
    /// Elements a buffer of these rows spans (an offset past the first row starts at a later row:
    /// a key-value cache's row at its position).
    fn span(&self) -> usize {
        (self.off / self.ld.max(1) + self.rows.div_ceil(self.per_row.max(1))) * self.ld
    }
}

/// y (rows, cols) = x / sqrt(mean(x^2) + eps) * w, and each row's rstd.
pub fn forward(step: &mut Step, y: View, rstd: &GpuBuf, x: View, w: &GpuBuf, eps: f32) -> Result<(), GpuError> {
    let r = Rows::plain(x.rows(), x.cols());
    let [xb, yb] = same_whole("rmsnorm_forward", [("x", x), ("y", y)])?;
    forward_rows(step, yb, rstd, xb, w, eps, r)
}

/// The forward on rows laid out as `r` says, in whole buffers x and y (columns of y outside the
/// rows are left as they are).
pub fn forward_rows(step: &mut Step, y: &GpuBuf, rstd: &GpuBuf, x: &GpuBuf, w: &GpuBuf, eps: f32, r: Rows) -> Result<(), GpuError> {
    const K: &str = "rmsnorm_forward";
    let p = r.params(eps)?;
    for (what, b) in [("x", x), ("y", y)] {
        need(K, what, b, 0, r.span())?;
    }
    need(K, "w", w, 0, r.cols)?;
    need(K, "rstd", rstd, 0, r.rows)?;
    step.dispatch(FORWARD, &[], bytemuck::bytes_of(&p), &[x, w, y, rstd], grid(r.rows, 1))
}

/// dx (= or += with `accumulate`) from dy and the forward's x and rstd; dw += the weight's gradient
/// when given.
#[allow(clippy::too_many_arguments)]
pub fn backward(step: &mut Step, dx: View, dy: View, x: View, rstd: &GpuBuf, w: &GpuBuf, dw: Option<&GpuBuf>, accumulate: bool) -> Result<(), GpuError> {
    let r = Rows::plain(x.rows(), x.cols());
    let [xb, dyb, dxb] = same_whole("rmsnorm_backward", [("x", x), ("dy", dy), ("dx", dx)])?;
    backward_rows(step, dxb, dyb, xb, rstd, w, dw, accumulate, r)
}

/// The backward on rows laid out as `r` says, in whole buffers (columns of dx outside the rows are
/// left as they are).
#[allow(clippy::too_many_arguments)]
pub fn backward_rows(step: &mut Step, dx: &GpuBuf, dy: &GpuBuf, x: &GpuBuf, rstd: &GpuBuf, w: &GpuBuf, dw: Option<&GpuBuf>, accumulate: bool, r: Rows) -> Result<(), GpuError> {
    const K: &str = "rmsnorm_backward";
    let p = r.params(0.0)?;
    for (what, b) in [("x", x), ("dy", dy), ("dx", dx)] {
        need(K, what, b, 0, r.span())?;
    }
    need(K, "w", w, 0, r.cols)?;
    need(K, "rstd", rstd, 0, r.rows)?;
    if let Some(dw) = dw {
        need(K, "dw", dw, 0, r.cols)?;
    }
    let acc = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    step.dispatch(BACKWARD_INPUT, &acc, bytemuck::bytes_of(&p), &[x, w, rstd, dy, dx], grid(r.rows, 1))?;
    if let Some(dw) = dw {
        step.dispatch(BACKWARD_PARAMS, &[], bytemuck::bytes_of(&p), &[x, rstd, dy, dw], grid(r.cols, 32))?;
    }
    Ok(())
}
