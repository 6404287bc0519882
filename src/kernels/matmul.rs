//! Batched matmul with transposed-operand variants, fused bias/GELU and accumulation: three kernels
//! with one contract. `shaders/matmul.wgsl` tiles through workgroup memory (what a real GPU wants);
//! `shaders/matmul_vec4.wgsl` keeps a 4x8 block per thread in registers and loads only vec4s, with no
//! workgroup memory or barrier (what CPU drivers want: lavapipe, SwiftShader);
//! `shaders/matmul_subgroup.wgsl` is the vec4 kernel for a CPU driver with subgroups of 8 (lavapipe),
//! whose lanes share the loads of A through subgroup shuffles, reading its operands from the
//! buffers or (`Kernel::SubgroupTex`) from textures they are first copied into. `Kernel::Auto` takes
//! the subgroup kernel where the device has it (from textures on a software adapter), else the vec4
//! kernel on a software adapter, when the shapes allow it; the tiled one otherwise.

use super::u32_of;
use crate::gpu::{expect_shape, GpuBuf, GpuError, KernelId, Shape, Step, View};
use crate::shaders::params::matmul::Params;

pub const MATMUL: KernelId = KernelId::new("matmul", "matmul", &[1, 2, 3, 4]);
pub const MATMUL_VEC4: KernelId = KernelId::new("matmul_vec4", "matmul_vec4", &[1, 2, 3, 4]);
pub const MATMUL_SUBGROUP: KernelId = KernelId::new("matmul_subgroup", "matmul_subgroup", &[1, 2, 3, 4]);
/// Bindings: bias, C, then the textures of A and B.
pub const MATMUL_SUBGROUP_TEX: KernelId = KernelId::new("matmul_subgroup_tex", "matmul_subgroup_tex", &[3, 4, 5, 6]);

/// Which matmul shader records a [`Matmul`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// When [`Matmul::vec4_fits`]: `Subgroup` where the device has subgroups of 8, else `Vec4` on a
    /// software adapter. Otherwise `Tiled`.
    Auto,
    /// shaders/matmul.wgsl: any shape and offset.
    Tiled,
    /// shaders/matmul_vec4.wgsl: needs [`Matmul::vec4_fits`]; recording it otherwise is an error.
    Vec4,
    /// shaders/matmul_subgroup.wgsl: needs [`Matmul::vec4_fits`] and a device with subgroups of 8
    /// ([`crate::gpu::GpuInfo::subgroup8`]).
    Subgroup,
    /// `Subgroup` reading A and B from textures (`matmul_subgroup_tex`): each product first copies
    /// the parts of A and B it reads into the device's two scratch textures ([`Step::copy_to_texture`],
    /// a transfer), where a lane's vec4 is one 16-byte load. Its tiles are
    /// [`crate::shaders::SUBGROUP_TEX_TILES`].
    SubgroupTex,
}

impl Kernel {
    /// The shader of a concrete kernel and the (rows, columns) of C one workgroup computes, which
    /// for `SubgroupTex` depend on whether B is stored (N, K); `Auto` has none until
    /// [`Matmul::record`] resolves it.
    pub fn shader(self, trans_b: bool) -> Option<(KernelId, usize, usize)> {
        use crate::shaders::{SUBGROUP_TEX_TILES, SUBGROUP_TILE};
        // one workgroup is one subgroup
        let tex = if trans_b { SUBGROUP_TEX_TILES.0 } else { SUBGROUP_TEX_TILES.1 };
        match self {
            Kernel::Auto => None,
            Kernel::Tiled => Some((MATMUL, 64, 64)),
            Kernel::Vec4 => Some((MATMUL_VEC4, 32, 64)),
            Kernel::Subgroup => Some((MATMUL_SUBGROUP, SUBGROUP_TILE.shape().0, SUBGROUP_TILE.shape().1)),
            Kernel::SubgroupTex => Some((MATMUL_SUBGROUP_TEX, tex.shape().0, tex.shape().1)),
        }
    }

    /// The kernels `gpu` can run, each of which the kernel checks and the benchmark try.
    pub fn available(gpu: &crate::gpu::Gpu) -> Vec<Kernel> {
        let mut v = vec![Kernel::Tiled, Kernel::Vec4];
        if gpu.info.subgroup8 {
            v.push(Kernel::Subgroup);
            v.push(Kernel::SubgroupTex);
        }
        v
    }
}

/// Where one operand's matrices are (see shaders/matmul_common.wgsl): matrix z of the batch starts
/// at `off + (z / inner) * outer + (z % inner) * inner_stride`, and its stored rows are `ld` apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operand {
    pub ld: usize,
    pub outer: usize,
    pub inner_stride: usize,
}

/// One specialisation of the matmul shaders (their override constants): which operands are stored
/// transposed, and what the epilogue adds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Variant {
    pub trans_a: bool,
    pub trans_b: bool,
    pub bias: bool,
    pub gelu: bool,
    pub accumulate: bool,
}

impl Variant {
    pub(crate) fn constants(self) -> Vec<(&'static str, f64)> {
        let f = |b: bool| if b { 1.0 } else { 0.0 };
        vec![("TRANS_A", f(self.trans_a)), ("TRANS_B", f(self.trans_b)), ("HAS_BIAS", f(self.bias)), ("GELU", f(self.gelu)), ("ACCUMULATE", f(self.accumulate))]
    }
}

/// `c[b] = alpha * op(a[b]) @ op(b[b]) (+ bias) (-> gelu) (+ c[b] if accumulate)`, for `batch` matrices
/// laid out one after another, or as [`Matmul::strided`] says. op(a) is (m, k), op(b) is (k, n), c is (m, n), all row-major.
/// The operands are views ([`Matmul::record`]), which say where in their buffers they are.
#[derive(Clone, Copy, Debug)]
pub struct Matmul {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch: usize,
    /// a is stored (k, m) instead of (m, k).
    pub trans_a: bool,
    /// b is stored (n, k) instead of (k, n): `x @ W^T` with torch's (out, in) weights.
    pub trans_b: bool,
    pub alpha: f32,
    pub gelu: bool,
    pub accumulate: bool,
    /// Where A, B and C begin inside their views: with a [`Matmul::strided`] layout that reads a block
    /// of a wider matrix (a head's columns of the fused qkv, one shard's columns of the logits); 0
    /// otherwise.
    pub starts: [usize; 3],
    pub kernel: Kernel,
    /// Two-level batches: (inner count, layouts of A, B, C). None: each operand's matrices packed
    /// one after another.
    pub strided: Option<(usize, [Operand; 3])>,
}

impl Matmul {
    pub fn new(m: usize, n: usize, k: usize) -> Matmul {
        Matmul {
            m,
            n,
            k,
            batch: 1,
            trans_a: false,
            trans_b: false,
            alpha: 1.0,
            gelu: false,
            accumulate: false,
            starts: [0; 3],
            kernel: Kernel::Auto,
            strided: None,
        }
    }
    /// The batch's matrices at the given layouts, `inner` consecutive matrices forming one outer
    /// step (e.g. the H heads of one sequence).
    pub fn strided(mut self, inner: usize, a: Operand, b: Operand, c: Operand) -> Self {
        self.strided = Some((inner, [a, b, c]));
        self
    }
    /// Where A, B and C begin inside their views (see [`Matmul::starts`]).
    pub fn starts(mut self, a: usize, b: usize, c: usize) -> Self {
        self.starts = [a, b, c];
        self
    }

    /// (inner count, [A, B, C]) with the packed defaults filled in.
    fn layouts(&self) -> (usize, [Operand; 3]) {
        if let Some(s) = self.strided {
            return s;
        }
        let (m, n, k) = (self.m, self.n, self.k);
        let a = Operand { ld: if self.trans_a { m } else { k }, outer: m * k, inner_stride: 0 };
        let b = Operand { ld: if self.trans_b { k } else { n }, outer: k * n, inner_stride: 0 };
        let c = Operand { ld: n, outer: m * n, inner_stride: 0 };
        (1, [a, b, c])
    }

    /// Stored (rows, columns) of A, B and C.
    fn stored(&self) -> [(usize, usize); 3] {
        let (m, n, k) = (self.m, self.n, self.k);
        [if self.trans_a { (k, m) } else { (m, k) }, if self.trans_b { (n, k) } else { (k, n) }, (m, n)]
    }
    pub fn kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// Whether matmul_vec4.wgsl's contract holds with A, B, C and the bias (when there is one) at
    /// elements `offsets` of their buffers: every stored row is whole vec4s (K, N, and M when A is
    /// stored transposed, multiples of 4; B stored (N, K) needs only K) and every offset is a multiple of 4.
    pub fn vec4_fits(&self, offsets: [usize; 3], bias: Option<usize>) -> bool {
        let m4 = self.m % 4 == 0 || !self.trans_a;
        let offs = offsets.iter().all(|o| o % 4 == 0) && bias.is_none_or(|o| o % 4 == 0);
        let (_, ops) = self.layouts();
        let pitches = ops.iter().all(|o| o.ld % 4 == 0 && o.outer % 4 == 0 && o.inner_stride % 4 == 0);
        self.k % 4 == 0 && self.n % 4 == 0 && m4 && offs && pitches && self.m > 0 && self.n > 0
    }
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }
    pub fn trans_a(mut self) -> Self {
        self.trans_a = true;
        self
    }
    pub fn trans_b(mut self) -> Self {
        self.trans_b = true;
        self
    }
    pub fn alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }
    pub fn gelu(mut self) -> Self {
        self.gelu = true;
        self
    }
    pub fn accumulate(mut self) -> Self {
        self.accumulate = true;
        self
    }

    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64 * self.batch as f64
    }

    /// Records the product into `c` from `a`, `b` and the bias (n), each a view: packed (no
    /// [`Matmul::strided`] layout), of its stored shape, `[rows, cols]` for a batch of one or
    /// `[batch, rows, cols]`; strided, the wider matrix whose rows are the layout's (`ld` its last
    /// dimension), read from [`Matmul::starts`] on and not past its end. The buffers' offsets are
    /// the views'.
    pub fn record(&self, step: &mut Step, c: View, a: View, b: View, bias: Option<View>) -> Result<(), GpuError> {
        const K: &str = "matmul";
        let (m, n, k, bt) = (self.m, self.n, self.k, self.batch);
        let (inner, ops) = self.layouts();
        if inner == 0 || bt % inner != 0 {
            return Err(GpuError::Shape(format!("{K}: a batch of {bt} is not whole groups of {inner}")));
        }
        let stored = self.stored();
        let mut offs = [0; 3];
        let mut extents = [0; 3];
        for (i, v) in [a, b, c].into_iter().enumerate() {
            let (o, (rows, cols), start) = (ops[i], stored[i], self.starts[i]);
            let name = ["a", "b", "c"][i];
            if o.ld < cols {
                return Err(GpuError::Shape(format!("{K}: {name}'s rows are {} apart but {cols} long", o.ld)));
            }
            if self.strided.is_none() {
                let want: Shape = if bt == 1 { [rows, cols].into() } else { [bt, rows, cols].into() };
                expect_shape(K, name, &v, want)?;
            } else if v.cols() != o.ld {
                return Err(GpuError::Shape(format!("{K}: {name}'s rows are {} apart but its view {} has rows of {}", o.ld, v.shape, v.cols())));
            }
            // the last element of the last matrix, plus one
            let extent = if rows == 0 || cols == 0 || bt == 0 { 0 } else { (bt / inner - 1) * o.outer + (inner - 1) * o.inner_stride + (rows - 1) * o.ld + cols };
            if start + extent > v.numel() {
                return Err(GpuError::Shape(format!("{K}: {name} reads {extent} elements from element {start} of its view {}, which holds {}", v.shape, v.numel())));
            }
            offs[i] = v.check(K, name)?.off + start;
            extents[i] = extent;
        }
        if let Some(bias) = &bias {
            expect_shape(K, "bias", bias, [n])?;
            bias.check(K, "bias")?;
        }
        let off_bias = bias.map(|b| b.off);
        let mut p = Params {
            m: u32_of("matmul", m)?,
            n: u32_of("matmul", n)?,
            k: u32_of("matmul", k)?,
            batch: u32_of("matmul", bt)?,
            stride_a: u32_of("matmul", ops[0].outer)?,
            stride_b: u32_of("matmul", ops[1].outer)?,
            stride_c: u32_of("matmul", ops[2].outer)?,
            alpha: self.alpha,
            off_a: u32_of("matmul", offs[0])?,
            off_b: u32_of("matmul", offs[1])?,
            off_c: u32_of("matmul", offs[2])?,
            off_bias: u32_of("matmul", off_bias.unwrap_or(0))?,
            lda: u32_of("matmul", ops[0].ld)?,
            ldb: u32_of("matmul", ops[1].ld)?,
            ldc: u32_of("matmul", ops[2].ld)?,
            inner: u32_of("matmul", inner)?,
            stride_a2: u32_of("matmul", ops[0].inner_stride)?,
            stride_b2: u32_of("matmul", ops[1].inner_stride)?,
            stride_c2: u32_of("matmul", ops[2].inner_stride)?,
        };
        let dummy = GpuBuf { buf: step.gpu().dummy.clone(), off: 0, len: 4, dtype: crate::gpu::DType::F32 };
        let consts = Variant { trans_a: self.trans_a, trans_b: self.trans_b, bias: bias.is_some(), gelu: self.gelu, accumulate: self.accumulate }.constants();
        let fits = self.vec4_fits(offs, off_bias);
        let info = &step.gpu().info;
        let kernel = match self.kernel {
            Kernel::Auto if fits && info.subgroup8 && info.is_software && extents[..2].iter().all(|&e| texture_rows(e) <= info.max_texture_dimension_2d as usize) => Kernel::SubgroupTex,
            Kernel::Auto if fits && info.subgroup8 => Kernel::Subgroup,
            Kernel::Auto if fits && info.is_software => Kernel::Vec4,
            Kernel::Auto => Kernel::Tiled,
            Kernel::Subgroup | Kernel::SubgroupTex if !info.subgroup8 => {
                return Err(GpuError::Shape(format!("matmul_subgroup needs a device with subgroups of 8 lanes; {} has none", info.name)))
            }
            Kernel::Vec4 | Kernel::Subgroup | Kernel::SubgroupTex if !fits => {
                return Err(GpuError::Shape(format!(
                    "matmul_{} needs K, N (and M when A is transposed) and every offset to be multiples of 4; got m={m} n={n} k={k} trans_a={} offsets {}/{}/{}/{}",
                    if self.kernel == Kernel::Vec4 { "vec4" } else { "subgroup" },
                    self.trans_a, offs[0], offs[1], offs[2], off_bias.unwrap_or(0)
                )))
            }
            k => k,
        };
        let (id, rows, cols) = kernel.shader(self.trans_b).expect("Auto is resolved above");
        let groups = [n.div_ceil(cols) as u32, m.div_ceil(rows) as u32, bt as u32];
        if kernel == Kernel::SubgroupTex {
            let ta = copy_to_texture(step, 0, a.buf, offs[0], extents[0])?;
            let tb = copy_to_texture(step, 1, b.buf, offs[1], extents[1])?;
            (p.off_a, p.off_b) = (0, 0);
            return step.dispatch_with_textures(id, &consts, bytemuck::bytes_of(&p), &[bias.map_or(&dummy, |b| b.buf), c.buf], &[&ta, &tb], groups);
        }
        let buffers = [a.buf, b.buf, bias.map_or(&dummy, |b| b.buf), c.buf];
        step.dispatch(id, &consts, bytemuck::bytes_of(&p), &buffers, groups)
    }
}

/// Rows of TEX_WIDTH texels that `len` elements take (at least one).
fn texture_rows(len: usize) -> usize {
    len.div_ceil(4).div_ceil(crate::shaders::TEX_WIDTH).max(1)
}

/// Copies elements `off .. off + len` of `src` (both multiples of 4) into the device's scratch
/// texture `slot`, vec4 i to texel (i % TEX_WIDTH, i / TEX_WIDTH), and returns the texture.
fn copy_to_texture(step: &mut Step, slot: usize, src: &GpuBuf, off: usize, len: usize) -> Result<crate::gpu::GpuTex, GpuError> {
    let tex = step.gpu().scratch_texture(slot, crate::shaders::TEX_WIDTH, texture_rows(len))?;
    step.copy_to_texture(src, off, len, &tex)?;
    Ok(tex)
}
