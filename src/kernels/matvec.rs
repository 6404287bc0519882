//! Decoding one token at a time: products with a few rows (shaders/matvec.wgsl), which read each
//! weight once per row instead of tiling for many rows, and attention of one new query over a
//! key-value cache (shaders/attention_cached.wgsl).

use super::{grid, u32_of};
use crate::gpu::{expect_shape, Gpu, GpuError, GpuTex, KernelId, Step, View};
use crate::shaders::params::matvec::{AttnParams, MatvecParams, PackedParams};

pub const MATVEC: KernelId = KernelId::new("matvec", "matvec", &[1, 2, 3, 4]);
pub const ATTEND_CACHED: KernelId = KernelId::new("attention_cached", "attend_cached", &[1, 2, 3]);
pub const PACK: KernelId = KernelId::new("matvec_packed", "pack", &[1, 2]);
pub const MATVEC_PACKED: KernelId = KernelId::new("matvec_packed", "matvec_packed", &[3, 4, 5, 6]);

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

/// y (rows, N) = x (rows, K) · W (+ bias (N)), each a view starting anywhere in its buffer.
/// `trans_w`: W stored (N, K) as torch's Linear (else (K, N) as GPT-2's Conv1D). W's offset must be
/// a multiple of 4, and K (with `trans_w`) or N (without) too: [`Matvec::fits`].
#[derive(Clone, Copy, Debug)]
pub struct Matvec {
    pub rows: usize,
    pub n: usize,
    pub k: usize,
    pub trans_w: bool,
    pub split: Split,
}

impl Matvec {
    pub fn new(rows: usize, n: usize, k: usize, trans_w: bool) -> Matvec {
        Matvec { rows, n, k, trans_w, split: Split::Auto }
    }

    /// Whether the kernel's vec4 loads of W fit this shape with W at element `off_w` of its buffer:
    /// whole vec4s along each stored row.
    pub fn fits(&self, off_w: usize) -> bool {
        let along = if self.trans_w { self.k } else { self.n };
        along % 4 == 0 && off_w % 4 == 0 && self.n > 0 && self.k > 0
    }

    pub fn split(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// Records y (rows, N) = x (rows, K) · W (+ bias (N)), the views of those shapes (W (N, K) with
    /// `trans_w`, else (K, N)).
    pub fn record(&self, step: &mut Step, y: View, x: View, w: View, bias: Option<View>) -> Result<(), GpuError> {
        const K: &str = "matvec";
        let (rows, n, k) = (self.rows, self.n, self.k);
        expect_shape(K, "y", &y, [rows, n])?;
        expect_shape(K, "x", &x, [rows, k])?;
        expect_shape(K, "W", &w, if self.trans_w { [n, k] } else { [k, n] })?;
        if let Some(b) = &bias {
            expect_shape(K, "bias", b, [n])?;
        }
        if !self.fits(w.off) {
            return Err(GpuError::Shape(format!(
                "{K}: W ({}) needs whole vec4s along its rows and a 4-aligned offset (n {n}, k {k}, offset {})",
                if self.trans_w { "N, K" } else { "K, N" },
                w.off
            )));
        }
        let (y, x, w) = (y.check(K, "y")?, x.check(K, "x")?, w.check(K, "W")?);
        let bias = bias.map(|b| b.check(K, "bias")).transpose()?;
        let (tx, ty) = self.split.shape(step);
        let per_group = if self.trans_w { tx as usize } else { 4 * tx as usize };
        let u = |v: usize| u32_of(K, v);
        let p = MatvecParams { rows: u(rows)?, n: u(n)?, k: u(k)?, x_off: u(x.off)?, y_off: u(y.off)?, off_w: u(w.off)?, off_bias: u(bias.map_or(0, |b| b.off))? };
        let f = |b: bool| if b { 1.0 } else { 0.0 };
        let consts = [("TRANS_W", f(self.trans_w)), ("HAS_BIAS", f(bias.is_some())), ("TX", tx as f64), ("TY", ty as f64)];
        // without a bias the weight stands in for the unused binding
        step.dispatch(MATVEC, &consts, bytemuck::bytes_of(&p), &[x.buf, w.buf, bias.map_or(w.buf, |b| b.buf), y.buf], grid(n, per_group))
    }
}

/// y (1, n) = x (1, k) · W (+ b (n)), W stored (n, k) when `trans_w`, else (k, n), each view starting
/// anywhere in its buffer: the one-row kernel when its vec4 loads fit the weight, else the matmul (any
/// shape), as `Kernel::Auto` picks among the matmuls.
pub fn one_row(step: &mut Step, y: View, x: View, w: View, b: Option<View>, trans_w: bool) -> Result<(), GpuError> {
    let mv = Matvec::new(1, y.cols(), x.cols(), trans_w);
    if mv.fits(w.off) {
        return mv.record(step, y, x, w, b);
    }
    let mut mm = super::matmul::Matmul::new(1, mv.n, mv.k);
    mm.trans_b = trans_w;
    mm.record(step, y, x, w, b)
}

/// One query over the `n` positions of `cache` (n, 3C): rows of q|k|v per position, the query being
/// row `n - 1`'s q; `scores` is (heads, cap) scratch with cap >= n; ctx is (C), heads of C / heads.
pub fn attend_cached(step: &mut Step, ctx: View, scores: View, cache: View) -> Result<(), GpuError> {
    let heads = scores.rows();
    attend_cached_grouped(step, ctx, scores, cache, heads)
}

/// [`attend_cached`] with grouped-query attention: the cache's rows are (H + 2KV) D wide (q of H
/// heads, then k and v of `kv_heads`), ctx (H D).
pub fn attend_cached_grouped(step: &mut Step, ctx: View, scores: View, cache: View, kv_heads: usize) -> Result<(), GpuError> {
    let threads = if step.gpu().info.is_software { 8 } else { 64 };
    attend_cached_with(step, ctx, scores, cache, kv_heads, threads)
}

/// [`attend_cached_grouped`] with `threads` (8 or 64) a workgroup: 8 on CPU adapters (one SIMD
/// vector of lavapipe: its barriers switch nothing; the 12 heads' attention at 205 positions of
/// GPT-2 small took the token 2.9x the 64 tokens' time where 64 threads took it 3.65x), 64 elsewhere.
pub fn attend_cached_with(step: &mut Step, ctx: View, scores: View, cache: View, kv_heads: usize, threads: usize) -> Result<(), GpuError> {
    const K: &str = "attend_cached";
    let (heads, cap, n, c) = (scores.rows(), scores.cols(), cache.rows(), ctx.numel());
    if n == 0 || n > cap {
        return Err(GpuError::Shape(format!("{K}: {n} positions in a cache of {cap}")));
    }
    if heads == 0 || c % heads != 0 || kv_heads == 0 || heads % kv_heads != 0 {
        return Err(GpuError::Shape(format!("{K}: ctx {} is not {heads} heads of one size over {kv_heads} key/value heads", ctx.shape)));
    }
    let d = c / heads;
    let w = c + 2 * kv_heads * d;
    expect_shape(K, "cache", &cache, [n, w])?;
    let (ctxb, sb, cb) = (ctx.whole(K, "ctx")?, scores.whole(K, "scores")?, cache.whole(K, "cache")?);
    let u = |v: usize| u32_of(K, v);
    let p = AttnParams {
        n: u(n)?,
        heads: u(heads)?,
        d: u(d)?,
        ld: u(w)?,
        q_off: u((n - 1) * w)?,
        cap: u(cap)?,
        scale: 1.0 / (d as f32).sqrt(),
        k_off: u(c)?,
        v_off: u(c + kv_heads * d)?,
        group: u(heads / kv_heads)?,
    };
    if threads != 8 && threads != 64 {
        return Err(GpuError::Shape(format!("{K}: {threads} threads a workgroup, not 8 or 64")));
    }
    step.dispatch(ATTEND_CACHED, &[("AWG", threads as f64)], bytemuck::bytes_of(&p), &[cb, sb, ctxb], [u(heads)?, 1, 1])
}

/// What follows a packed product: nothing, or GELU in BERT's erf form or GPT-2's tanh form
/// (decoding fuses the feed-forward's activation into its first product).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    None,
    Gelu,
    GeluTanh,
}

impl Act {
    fn code(self) -> f64 {
        match self {
            Act::None => 0.0,
            Act::Gelu => 1.0,
            Act::GeluTanh => 2.0,
        }
    }
}

/// Outputs per lane of shaders/matvec_packed.wgsl, and the x quads a workgroup stages there.
const BAND: usize = 16;
const MAX_QC: usize = 1024;

/// A weight W (n outputs, k inputs) packed into a texture for the one-row products of decoding on
/// CPU adapters (shaders/matvec_packed.wgsl says why and how): 2.5-3.5x the buffer kernel's rate
/// on lavapipe at GPT-2 small's shapes (`bertlab bench`). The copy is the weight's size again;
/// [`Packed::pack`] fills it from the weight, and must run again after the weight changes.
pub struct Packed {
    pub tex: GpuTex,
    pub n: usize,
    pub k: usize,
    /// x quads per texture row, and texture rows per band of 16 outputs.
    qc: usize,
    chunks: usize,
}

impl Packed {
    pub fn new(gpu: &Gpu, label: &str, n: usize, k: usize) -> Result<Packed, GpuError> {
        Self::with_width(gpu, label, n, k, gpu.info.max_texture_dimension_2d as usize)
    }

    /// With texture rows of at most `max_width` texels (the device's limit; less in the checks,
    /// which so cut K into several chunks).
    pub fn with_width(gpu: &Gpu, label: &str, n: usize, k: usize, max_width: usize) -> Result<Packed, GpuError> {
        let per_row = (max_width / BAND).min(MAX_QC);
        if n == 0 || k == 0 || per_row == 0 {
            return Err(GpuError::Shape(format!("packed matvec '{label}': W ({n}, {k}) in rows of {max_width} texels")));
        }
        let k4 = k.div_ceil(4);
        let chunks = k4.div_ceil(per_row);
        let qc = k4.div_ceil(chunks);
        let tex = gpu.texture_vec4(label, BAND * qc, n.div_ceil(BAND) * chunks)?;
        Ok(Packed { tex, n, k, qc, chunks })
    }

    fn params(&self, n0: usize, rows: usize) -> Result<PackedParams, GpuError> {
        let u = |v: usize| u32_of("matvec_packed", v);
        Ok(PackedParams { n: u(self.n)?, k: u(self.k)?, qc: u(self.qc)?, chunks: u(self.chunks)?, n0: u(n0)?, rows: u(rows)?, ..Default::default() })
    }

    /// Packs rows `n0 ..` of W from `w`: stored (rows, k) with `trans_w` (torch's Linear; the tied
    /// LM head, one shard of rows at a time), else (k, n) (GPT-2's Conv1D; all rows, n0 = 0).
    pub fn pack(&self, step: &mut Step, w: View, trans_w: bool, n0: usize) -> Result<(), GpuError> {
        const K: &str = "pack";
        let rows = if trans_w { w.rows() } else { self.n };
        expect_shape(K, "W", &w, if trans_w { [rows, self.k] } else { [self.k, self.n] })?;
        if n0 + rows > self.n || (!trans_w && n0 != 0) {
            return Err(GpuError::Shape(format!("{K}: rows {n0}..{} of a W with {}", n0 + rows, self.n)));
        }
        let p = PackedParams { off_w: u32_of(K, w.off)?, ..self.params(n0, rows)? };
        let bands = (n0 + rows).div_ceil(BAND) - n0 / BAND;
        let groups = [(BAND * self.qc).div_ceil(8), bands.div_ceil(8), self.chunks].map(|g| g as u32);
        let consts = [("TRANS_W", if trans_w { 1.0 } else { 0.0 })];
        step.dispatch_with_textures(PACK, &consts, bytemuck::bytes_of(&p), &[w.buf], &[&self.tex], groups)
    }

    /// y (1, n) = act(x (1, k) · Wᵀ + b), from the packed W.
    pub fn record(&self, step: &mut Step, y: View, x: View, b: Option<View>, act: Act) -> Result<(), GpuError> {
        const K: &str = "matvec_packed";
        expect_shape(K, "y", &y, [1, self.n])?;
        expect_shape(K, "x", &x, [1, self.k])?;
        if let Some(b) = &b {
            expect_shape(K, "bias", b, [self.n])?;
        }
        let u = |v: usize| u32_of(K, v);
        let consts = [("HAS_BIAS", if b.is_some() { 1.0 } else { 0.0 }), ("ACT", act.code())];
        let groups = [u(self.n.div_ceil(BAND).div_ceil(8))?, 1, 1];
        // one dispatch per chunk of K, each adding to what the one before wrote
        for s in 0..self.chunks {
            let p = PackedParams { s: u(s)?, x_off: u(x.off)?, y_off: u(y.off)?, off_bias: u(b.map_or(0, |b| b.off))?, ..self.params(0, self.n)? };
            // without a bias, x stands in for the unused binding
            step.dispatch_with_textures(MATVEC_PACKED, &consts, bytemuck::bytes_of(&p), &[x.buf, b.map_or(x.buf, |b| b.buf), y.buf], &[&self.tex], groups)?;
        }
        Ok(())
    }
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
    for awg in [8.0, 64.0] {
        v.push((ATTEND_CACHED, vec![("AWG", awg)]));
    }
    for tw in [0.0, 1.0] {
        v.push((PACK, vec![("TRANS_W", tw)]));
    }
    for bias in [0.0, 1.0] {
        for act in [Act::None, Act::Gelu, Act::GeluTanh] {
            v.push((MATVEC_PACKED, vec![("HAS_BIAS", bias), ("ACT", act.code())]));
        }
    }
    v
}
