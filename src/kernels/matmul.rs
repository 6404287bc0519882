//! Batched matmul with transposed-operand variants, fused bias/GELU and accumulation: two kernels
//! with one contract. `shaders/matmul.wgsl` tiles through workgroup memory (what a real GPU wants);
//! `shaders/matmul_vec4.wgsl` keeps a 4x8 block per thread in registers and loads only vec4s, with no
//! workgroup memory or barrier (what CPU drivers want: lavapipe, SwiftShader). `Kernel::Auto` takes
//! the vec4 kernel on a software adapter when the shapes allow it, the tiled one otherwise.

use bytemuck::{Pod, Zeroable};

use super::{need, u32_of};
use crate::gpu::{GpuBuf, GpuError, KernelId, Step};

pub const MATMUL: KernelId = KernelId::new("matmul", "matmul", &[1, 2, 3, 4]);
pub const MATMUL_VEC4: KernelId = KernelId::new("matmul_vec4", "matmul_vec4", &[1, 2, 3, 4]);

/// Which matmul shader records a [`Matmul`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `Vec4` on a software adapter when [`Matmul::vec4_fits`], else `Tiled`.
    Auto,
    /// shaders/matmul.wgsl: any shape and offset.
    Tiled,
    /// shaders/matmul_vec4.wgsl: needs [`Matmul::vec4_fits`]; recording it otherwise is an error.
    Vec4,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    alpha: f32,
    off_a: u32,
    off_b: u32,
    off_c: u32,
    off_bias: u32,
}

pub(crate) fn constants(ta: bool, tb: bool, bias: bool, gelu: bool, acc: bool) -> Vec<(&'static str, f64)> {
    let f = |b: bool| if b { 1.0 } else { 0.0 };
    vec![("TRANS_A", f(ta)), ("TRANS_B", f(tb)), ("HAS_BIAS", f(bias)), ("GELU", f(gelu)), ("ACCUMULATE", f(acc))]
}

/// `c[b] = alpha * op(a[b]) @ op(b[b]) (+ bias) (-> gelu) (+ c[b] if accumulate)`, for `batch` matrices
/// laid out one after another. op(a) is (m, k), op(b) is (k, n), c is (m, n), all row-major.
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
    pub off_a: usize,
    pub off_b: usize,
    pub off_c: usize,
    pub off_bias: usize,
    pub kernel: Kernel,
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
            off_a: 0,
            off_b: 0,
            off_c: 0,
            off_bias: 0,
            kernel: Kernel::Auto,
        }
    }
    pub fn kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// Whether matmul_vec4.wgsl's contract holds: every stored row is whole vec4s (K, N, and M when A
    /// is stored transposed, multiples of 4; B stored (N, K) needs only K) and every offset is a multiple of 4.
    pub fn vec4_fits(&self, bias: bool) -> bool {
        let m4 = self.m % 4 == 0 || !self.trans_a;
        let offs = self.off_a % 4 == 0 && self.off_b % 4 == 0 && self.off_c % 4 == 0 && (!bias || self.off_bias % 4 == 0);
        self.k % 4 == 0 && self.n % 4 == 0 && m4 && offs && self.m > 0 && self.n > 0
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

    pub fn record(&self, step: &mut Step, c: &GpuBuf, a: &GpuBuf, b: &GpuBuf, bias: Option<&GpuBuf>) -> Result<(), GpuError> {
        let (m, n, k, bt) = (self.m, self.n, self.k, self.batch);
        need("matmul", "a", a, self.off_a, bt * m * k)?;
        need("matmul", "b", b, self.off_b, bt * k * n)?;
        need("matmul", "c", c, self.off_c, bt * m * n)?;
        if let Some(bias) = bias {
            need("matmul", "bias", bias, self.off_bias, n)?;
        }
        let p = Params {
            m: u32_of("matmul", m)?,
            n: u32_of("matmul", n)?,
            k: u32_of("matmul", k)?,
            batch: u32_of("matmul", bt)?,
            stride_a: u32_of("matmul", m * k)?,
            stride_b: u32_of("matmul", k * n)?,
            stride_c: u32_of("matmul", m * n)?,
            alpha: self.alpha,
            off_a: u32_of("matmul", self.off_a)?,
            off_b: u32_of("matmul", self.off_b)?,
            off_c: u32_of("matmul", self.off_c)?,
            off_bias: u32_of("matmul", self.off_bias)?,
        };
        let dummy = GpuBuf { buf: step.gpu().dummy.clone(), len: 4, dtype: crate::gpu::DType::F32 };
        let consts = constants(self.trans_a, self.trans_b, bias.is_some(), self.gelu, self.accumulate);
        let fits = self.vec4_fits(bias.is_some());
        let vec4 = match self.kernel {
            Kernel::Auto => fits && step.gpu().info.is_software,
            Kernel::Tiled => false,
            Kernel::Vec4 if fits => true,
            Kernel::Vec4 => {
                return Err(GpuError::Shape(format!(
                    "matmul_vec4 needs K, N (and M when A is transposed) and every offset to be multiples of 4; got m={m} n={n} k={k} trans_a={} offsets {}/{}/{}/{}",
                    self.trans_a, self.off_a, self.off_b, self.off_c, self.off_bias
                )))
            }
        };
        let buffers = [a, b, bias.unwrap_or(&dummy), c];
        if vec4 {
            // one workgroup: 32 rows x 64 columns
            let wg = [n.div_ceil(64) as u32, m.div_ceil(32) as u32, bt as u32];
            step.dispatch(MATMUL_VEC4, &consts, bytemuck::bytes_of(&p), &buffers, wg)
        } else {
            let wg = [n.div_ceil(64) as u32, m.div_ceil(64) as u32, bt as u32];
            step.dispatch(MATMUL, &consts, bytemuck::bytes_of(&p), &buffers, wg)
        }
    }
}
