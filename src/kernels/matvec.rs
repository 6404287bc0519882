//! Decoding one token at a time: products with a few rows (shaders/matvec.wgsl), which read each
//! weight once per row instead of tiling for many rows, and attention of one new query over a
//! key-value cache (shaders/attention_cached.wgsl).

use super::{grid, need, u32_of};
use crate::gpu::{uniform, GpuBuf, GpuError, KernelId, Step};

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

uniform! {
    /// shaders/matvec.wgsl's parameters.
    pub(crate) struct MatvecParams { rows: u32, n: u32, k: u32, x_off: u32, y_off: u32, off_w: u32, off_bias: u32 }
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

/// y[y_off ..] (1, n) = x (1, k) · W (+ b), W stored (n, k) when `trans_w`, else (k, n): the one-row
/// kernel when its vec4 loads fit the weight, else the matmul (any shape), as `Kernel::Auto` picks
/// among the matmuls.
#[allow(clippy::too_many_arguments)]
pub fn one_row(step: &mut Step, y: &GpuBuf, y_off: usize, x: &GpuBuf, w: &GpuBuf, b: Option<&GpuBuf>, n: usize, k: usize, trans_w: bool) -> Result<(), GpuError> {
    let mv = Matvec { y_off, ..Matvec::new(1, n, k, trans_w) };
    if mv.fits() {
        return mv.record(step, y, x, w, b);
    }
    let mut mm = super::matmul::Matmul::new(1, n, k);
    mm.trans_b = trans_w;
    mm.off_c = y_off;
    mm.record(step, y, x, w, b)
}

uniform! {
    /// shaders/attention_cached.wgsl's parameters.
    pub(crate) struct AttnParams { n: u32, heads: u32, d: u32, ld: u32, q_off: u32, cap: u32, scale: f32 }
}

/// One query over `n` cached positions: `cache` holds rows of (3C) = q|k|v per position (row stride
/// 3C), the query is row `n - 1`'s q; `scores` is (heads, cap) scratch with cap >= n; ctx (C).
#[allow(clippy::too_many_arguments)]
pub fn attend_cached(step: &mut Step, ctx: &GpuBuf, scores: &GpuBuf, cache: &GpuBuf, n: usize, heads: usize, d: usize, cap: usize) -> Result<(), GpuError> {
    let c = heads * d;
    if n == 0 || n > cap {
        return Err(GpuError::Shape(format!("attend_cached: {n} positions in a cache of {cap}")));
    }
    need("attend_cached", "cache", cache, 0, n * 3 * c)?;
    need("attend_cached", "scores", scores, 0, heads * cap)?;
    need("attend_cached", "ctx", ctx, 0, c)?;
    let u = |v: usize| u32_of("attend_cached", v);
    let p = AttnParams { n: u(n)?, heads: u(heads)?, d: u(d)?, ld: u(3 * c)?, q_off: u((n - 1) * 3 * c)?, cap: u(cap)?, scale: 1.0 / (d as f32).sqrt() };
    step.dispatch(ATTEND_CACHED, &[], bytemuck::bytes_of(&p), &[cache, scores, ctx], [u(heads)?, 1, 1])
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
