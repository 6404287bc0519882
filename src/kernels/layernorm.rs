//! LayerNorm forward (saving mean and rstd) and backward (shaders/layernorm.wgsl).

use super::dropout::Dropout;
use super::softmax::RowKernel;
use super::{grid, need, u32_of};
use crate::gpu::{same_whole, GpuBuf, GpuError, KernelId, Step, View};
use crate::shaders::params::layernorm::Params;

pub const FORWARD: KernelId = KernelId::new("layernorm", "layernorm_forward", &[1, 2, 3, 4, 5, 6, 15, 16]);
pub const BACKWARD_INPUT: KernelId = KernelId::new("layernorm", "layernorm_backward_input", &[7, 8, 9, 10, 11, 12, 17]);
/// One row per invocation, no barrier: what CPU adapters run (see the shader).
pub const FORWARD_ROWS: KernelId = KernelId::new("layernorm", "layernorm_forward_rows", &[1, 2, 3, 4, 5, 6, 15, 16]);
pub const BACKWARD_INPUT_ROWS: KernelId = KernelId::new("layernorm", "layernorm_backward_input_rows", &[7, 8, 9, 10, 11, 12, 17]);
pub const BACKWARD_PARAMS: KernelId = KernelId::new("layernorm", "layernorm_backward_params", &[7, 9, 10, 11, 13, 14]);

/// A LayerNorm over the last dimension: its eps, and which row kernel runs (`Auto`: one invocation
/// per row on a software adapter, one workgroup per row otherwise).
#[derive(Clone, Copy, Debug)]
pub struct LayerNorm {
    pub eps: f32,
    pub kernel: RowKernel,
}

/// The statistics the forward saves for the backward: mean and rstd, one per row.
#[derive(Clone, Copy, Debug)]
pub struct Stats<'a> {
    pub mean: &'a GpuBuf,
    pub rstd: &'a GpuBuf,
}

/// gamma and beta, one per column.
#[derive(Clone, Copy, Debug)]
pub struct Affine<'a> {
    pub gamma: &'a GpuBuf,
    pub beta: &'a GpuBuf,
}

/// What the backward reads of gamma and adds its gradients to (`+=`, one per column each).
#[derive(Clone, Copy, Debug)]
pub struct AffineGrad<'a> {
    pub gamma: &'a GpuBuf,
    /// Where gamma's and beta's gradients accumulate; None for a frozen one (both None: no
    /// parameter gradient is computed at all).
    pub dgamma: Option<&'a GpuBuf>,
    pub dbeta: Option<&'a GpuBuf>,
}

/// What the backward reads of its forward: the normalised input (the residual sum after
/// [`Fused::Residual`]) and its statistics.
#[derive(Clone, Copy, Debug)]
pub struct Saved<'a> {
    pub x: View<'a>,
    pub stats: Stats<'a>,
}

/// What the forward does besides normalising, in the same dispatch.
#[derive(Clone, Copy, Debug, Default)]
pub enum Fused<'a> {
    #[default]
    None,
    /// The residual connection and its dropout before the norm: `res = x + dropout(branch)` is
    /// written (the backward's input) and normalised, `x` being the skip input.
    Residual { res: View<'a>, branch: View<'a>, drop: Dropout },
    /// `y = dropout(layernorm(x))` (BERT's embeddings); its backward takes [`FusedBack::DropDy`].
    DropOutput(Dropout),
}

/// What the backward does besides dx, dgamma and dbeta, in the same dispatches.
#[derive(Clone, Copy, Debug, Default)]
pub enum FusedBack<'a> {
    #[default]
    None,
    /// Also writes `dropout(dx)` here: the gradient of a residual branch that went through the
    /// forward's dropout (with its seed).
    DropDx(View<'a>, Dropout),
    /// dy is the gradient at the output of [`Fused::DropOutput`] and is taken through it first.
    DropDy(Dropout),
}

/// How the backward writes dx: `=`, or `+=` with `accumulate`; and what else it does.
#[derive(Clone, Copy, Debug, Default)]
pub struct BackwardOpts<'a> {
    pub accumulate: bool,
    pub fused: FusedBack<'a>,
}

impl BackwardOpts<'static> {
    /// dx `+=`, nothing fused.
    pub const ACCUMULATE: BackwardOpts<'static> = BackwardOpts { accumulate: true, fused: FusedBack::None };
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

impl LayerNorm {
    pub fn new(eps: f32) -> LayerNorm {
        LayerNorm { eps, kernel: RowKernel::Auto }
    }
    pub fn kernel(self, kernel: RowKernel) -> LayerNorm {
        LayerNorm { kernel, ..self }
    }

    /// y = layernorm(x) over x's last dimension (x and y of one shape), with what `fused` adds;
    /// mean and rstd (one per row) are saved for the backward.
    pub fn forward(&self, step: &mut Step, y: View, stats: Stats, x: View, w: Affine, fused: Fused) -> Result<(), GpuError> {
        const K: &str = "layernorm_forward";
        let (rows, cols) = (x.rows(), x.cols());
        let [xb, yb] = same_whole(K, [("x", x), ("y", y)])?;
        need(K, "mean", stats.mean, 0, rows)?;
        need(K, "rstd", stats.rstd, 0, rows)?;
        need(K, "gamma", w.gamma, 0, cols)?;
        need(K, "beta", w.beta, 0, cols)?;
        let dummy = step.gpu().dummy_rw();
        let (res, branch, drop) = match fused {
            Fused::Residual { res, branch, drop } => {
                let [_, res, branch] = same_whole(K, [("x", x), ("res", res), ("branch", branch)])?;
                (res, branch, drop)
            }
            Fused::DropOutput(drop) => (&dummy, xb, drop),
            Fused::None => (&dummy, xb, Dropout::default()),
        };
        let p = params(rows, cols, self.eps, drop)?;
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let consts = [("RESIDUAL", flag(matches!(fused, Fused::Residual { .. }))), ("DROP_Y", flag(matches!(fused, Fused::DropOutput(_))))];
        let (kernel, wg) = if self.kernel.per_thread(step) { (FORWARD_ROWS, grid(rows, 64)) } else { (FORWARD, grid(rows, 1)) };
        step.dispatch(kernel, &consts, bytemuck::bytes_of(&p), &[xb, w.gamma, w.beta, yb, stats.mean, stats.rstd, branch, res], wg)
    }

    /// dx (= or +=, per `opts`) and dgamma, dbeta (+=) from dy and the forward's saved values, with
    /// what `opts.fused` adds.
    pub fn backward(&self, step: &mut Step, dx: View, dy: View, saved: Saved, w: AffineGrad, opts: BackwardOpts) -> Result<(), GpuError> {
        const K: &str = "layernorm_backward";
        let (x, stats) = (saved.x, saved.stats);
        let (rows, cols) = (x.rows(), x.cols());
        let [xb, dxb, dyb] = same_whole(K, [("x", x), ("dx", dx), ("dy", dy)])?;
        need(K, "mean", stats.mean, 0, rows)?;
        need(K, "rstd", stats.rstd, 0, rows)?;
        need(K, "gamma", w.gamma, 0, cols)?;
        for (what, g) in [("dgamma", w.dgamma), ("dbeta", w.dbeta)] {
            if let Some(g) = g {
                need(K, what, g, 0, cols)?;
            }
        }
        let dummy = step.gpu().dummy_rw();
        let (dxd, drop) = match opts.fused {
            FusedBack::DropDx(dxd, drop) => {
                let [_, dxd] = same_whole(K, [("x", x), ("dxd", dxd)])?;
                (dxd, drop)
            }
            FusedBack::DropDy(drop) => (&dummy, drop),
            FusedBack::None => (&dummy, Dropout::default()),
        };
        let p = params(rows, cols, 0.0, drop)?;
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let dd = ("DROP_DY", flag(matches!(opts.fused, FusedBack::DropDy(_))));
        let consts = [("ACCUMULATE", flag(opts.accumulate)), ("DROP_DX", flag(matches!(opts.fused, FusedBack::DropDx(..)))), dd];
        let (kernel, wg) = if self.kernel.per_thread(step) { (BACKWARD_INPUT_ROWS, grid(rows, 64)) } else { (BACKWARD_INPUT, grid(rows, 1)) };
        step.dispatch(kernel, &consts, bytemuck::bytes_of(&p), &[xb, w.gamma, stats.mean, stats.rstd, dyb, dxb, dxd], wg)?;
        // a frozen pair (a LoRA or head-only run's LayerNorms) gets no parameter pass
        let (dgamma, dbeta) = match (w.dgamma, w.dbeta) {
            (Some(g), Some(b)) => (g, b),
            (None, None) => return Ok(()),
            _ => return Err(GpuError::Shape(format!("{K}: gamma and beta train together or not at all"))),
        };
        step.dispatch(BACKWARD_PARAMS, &[dd], bytemuck::bytes_of(&p), &[xb, stats.mean, stats.rstd, dyb, dgamma, dbeta], grid(cols, 32))
    }
}
