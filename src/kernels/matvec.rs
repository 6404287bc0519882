//! Decoding one token at a time: products with a few rows (shaders/matvec.wgsl), which read each
//! weight once per row instead of tiling for many rows, and attention of one new query over a
//! key-value cache (shaders/attention_cached.wgsl).

use super::{grid, need, u32_of};
use crate::gpu::{expect_shape, GpuBuf, GpuError, KernelId, Step, View};
use crate::shaders::params::matvec::{MatvecParams, AttnParams};

pub const MATVEC: KernelId = KernelId::new("matvec", "matvec", &[1, 2, 3, 4]);
pub const ATTEND_CACHED: KernelId = KernelId::new("attention_cached", "attend_cached", &[1, 2, 3]);

/// How a workgroup of the matvec kernel is shaped: TX threads over outputs times TY threads over
/// the reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// `Threads` on a software adapter, `Workgroup` otherwise.
    Auto,
    /// One thread per output (Conv1D: per 4 outputs), its whole reduction alone: no barrier work,
    /// which is what CPU drivers (lavapipe, SwiftShader) want. Each lane's loads of W are a gather
    /// on such a driver (its SIMD lanes are the invocations), which bounds this kernel there at
    /// about 1.5 G weights/s on two cores: the shape of the loop matters less than that.
    Threads,
    /// 16 threads share each output's reduction and add their sums in workgroup memory, so that
    /// neighbouring threads read neighbouring weights (what a real GPU wants).
    Workgroup,
}

impl Split {
    /// (TX, TY) of the workgroup.
    fn shape(self, step: &Step) -> (u32, u32) {
        match self {
            Split::Auto if step.gpu().info.is_software => Split::Threads.shape(step),
            Split::Auto => Split::Workgroup.shape(step),
            // 32 outputs a workgroup: 5.0-7.5 GB/s on lavapipe at GPT-2 small's shapes, where 8, 16,
            // 64 and 128 measured no better and 8 threads over k (with the reduction) 1.4-3.5
            Split::Threads => (32, 1),
            Split::Workgroup => (16, 16),
        }
    }

    pub const ALL: [Split; 2] = [Split::Threads, Split::Workgroup];
}

/// y[y_off + r*N + n] = x[x_off + r*K ..] · W(:, n) (+ bias), for `rows` rows. `trans_w`: W stored
/// (N, K) as torch's Linear (else (K, N) as GPT-2's Conv1D). W's offset must be a multiple of 4,
/// and K (with `trans_w`) or N (without) too: [`Matvec::fits`].
#[derive(Clone, Copy, Debug)]
pub struct Matvec {
    pub rows: usize,
    pub n: usize,
    pub k: usize,
    pub trans_w: bool,
    pub x_off: usize,
    pub y_off: usize,
    pub off_w: usize,
    pub off_bias: usize,
    pub split: Split,
}

impl Matvec {
    pub fn new(rows: usize, n: usize, k: usize, trans_w: bool) -> Matvec {
        Matvec { rows, n, k, trans_w, x_off: 0, y_off: 0, off_w: 0, off_bias: 0, split: Split::Auto }
    }

    /// Whether the kernel's vec4 loads of W fit this shape: whole vec4s along each stored row.
    pub fn fits(&self) -> bool {
        let along = if self.trans_w { self.k } else { self.n };
        along % 4 == 0 && self.off_w % 4 == 0 && self.n > 0 && self.k > 0
    }

    pub fn split(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    pub fn record(&self, step: &mut Step, y: &GpuBuf, x: &GpuBuf, w: &GpuBuf, bias: Option<&GpuBuf>) -> Result<(), GpuError> {
        if !self.fits() {
            return Err(GpuError::Shape(format!(
                "matvec: W ({}) needs whole vec4s along its rows and a 4-aligned offset (n {}, k {}, offset {})",
                if self.trans_w { "N, K" } else { "K, N" },
                self.n,
                self.k,
                self.off_w
            )));
        }
        need("matvec", "x", x, self.x_off, self.rows * self.k)?;
        need("matvec", "y", y, self.y_off, self.rows * self.n)?;
        need("matvec", "W", w, self.off_w, self.n * self.k)?;
        if let Some(b) = bias {
            need("matvec", "bias", b, self.off_bias, self.n)?;
        }
        let (tx, ty) = self.split.shape(step);
        let per_group = if self.trans_w { tx as usize } else { 4 * tx as usize };
        let u = |v: usize| u32_of("matvec", v);
        let p = MatvecParams { rows: u(self.rows)?, n: u(self.n)?, k: u(self.k)?, x_off: u(self.x_off)?, y_off: u(self.y_off)?, off_w: u(self.off_w)?, off_bias: u(self.off_bias)? };
        let f = |b: bool| if b { 1.0 } else { 0.0 };
        let consts = [("TRANS_W", f(self.trans_w)), ("HAS_BIAS", f(bias.is_some())), ("TX", tx as f64), ("TY", ty as f64)];
        // without a bias the weight stands in for the unused binding
        step.dispatch(MATVEC, &consts, bytemuck::bytes_of(&p), &[x, w, bias.unwrap_or(w), y], grid(self.n, per_group))
    }
}

/// y (1, n) = x (1, k) · W (+ b (n)), W stored (n, k) when `trans_w`, else (k, n), each view starting
/// anywhere in its buffer: the one-row kernel when its vec4 loads fit the weight, else the matmul (any
/// shape), as `Kernel::Auto` picks among the matmuls.
pub fn one_row(step: &mut Step, y: View, x: View, w: View, b: Option<View>, trans_w: bool) -> Result<(), GpuError> {
    const K: &str = "matvec";
    let (n, k) = (y.cols(), x.cols());
    expect_shape(K, "y", &y, [1, n])?;
    expect_shape(K, "x", &x, [1, k])?;
    expect_shape(K, "W", &w, if trans_w { [n, k] } else { [k, n] })?;
    if let Some(b) = &b {
        expect_shape(K, "bias", b, [n])?;
    }
    let mv = Matvec { x_off: x.off, y_off: y.off, off_w: w.off, off_bias: b.map_or(0, |b| b.off), ..Matvec::new(1, n, k, trans_w) };
    if mv.fits() {
        return mv.record(step, y.buf, x.buf, w.buf, b.map(|b| b.buf));
    }
    let mut mm = super::matmul::Matmul::new(1, n, k).offsets(x.off, w.off, y.off);
    mm.trans_b = trans_w;
    mm.off_bias = mv.off_bias;
    mm.record(step, y.buf, x.buf, w.buf, b.map(|b| b.buf))
}

/// One query over the `n` positions of `cache` (n, 3C): rows of q|k|v per position, the query being
/// row `n - 1`'s q; `scores` is (heads, cap) scratch with cap >= n; ctx is (C), heads of C / heads.
pub fn attend_cached(step: &mut Step, ctx: View, scores: View, cache: View) -> Result<(), GpuError> {
    const K: &str = "attend_cached";
    let (heads, cap, n, c) = (scores.rows(), scores.cols(), cache.rows(), ctx.numel());
    if n == 0 || n > cap {
        return Err(GpuError::Shape(format!("{K}: {n} positions in a cache of {cap}")));
    }
    if heads == 0 || c % heads != 0 {
        return Err(GpuError::Shape(format!("{K}: ctx {} is not {heads} heads of one size", ctx.shape)));
    }
    expect_shape(K, "cache", &cache, [n, 3 * c])?;
    let (ctxb, sb, cb) = (ctx.whole(K, "ctx")?, scores.whole(K, "scores")?, cache.whole(K, "cache")?);
    let d = c / heads;
    let u = |v: usize| u32_of(K, v);
    let p = AttnParams { n: u(n)?, heads: u(heads)?, d: u(d)?, ld: u(3 * c)?, q_off: u((n - 1) * 3 * c)?, cap: u(cap)?, scale: 1.0 / (d as f32).sqrt() };
    step.dispatch(ATTEND_CACHED, &[], bytemuck::bytes_of(&p), &[cb, sb, ctxb], [u(heads)?, 1, 1])
}

/// Every (TRANS_W, HAS_BIAS, TX, TY) the engine dispatches, for the pipeline checks.
pub fn pipelines() -> Vec<(KernelId, Vec<(&'static str, f64)>)> {
    let mut v = Vec::new();
    for (tx, ty) in [(32.0, 1.0), (16.0, 16.0)] {
        for tw in [0.0, 1.0] {
            for bias in [0.0, 1.0] {
                v.push((MATVEC, vec![("TRANS_W", tw), ("HAS_BIAS", bias), ("TX", tx), ("TY", ty)]));
            }
        }
    }
    v.push((ATTEND_CACHED, vec![]));
    v
}
