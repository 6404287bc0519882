// What both matmul kernels (matmul.wgsl, matmul_vec4.wgsl) share: their specialisation constants
// and their uniform parameters, which src/kernels/matmul.rs writes as one struct for either kernel.
// src/shaders.rs puts this file (after erf.wgsl) in front of each of them.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override GELU: bool = false;
override ACCUMULATE: bool = false;

// Matrix z of a batch is (zo, zi) = (z / inner, z % inner); operand X's starts at
// off_x + zo * stride_x + zi * stride_x2 and its stored rows are ld_x elements apart. Contiguous
// batches have inner = 1; the heads of a (B*T, C) token matrix have inner = H, stride = T*C,
// stride2 = D, ld = C, so attention reads Q, K, V and writes its context in place, with no split or
// merge of heads.
struct Params {
    m: u32, n: u32, k: u32, batch: u32,
    stride_a: u32, stride_b: u32, stride_c: u32, alpha: f32,
    off_a: u32, off_b: u32, off_c: u32, off_bias: u32,
    lda: u32, ldb: u32, ldc: u32, inner: u32,
    stride_a2: u32, stride_b2: u32, stride_c2: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

fn batch_base(z: u32, off: u32, outer: u32, inner: u32) -> u32 {
    return off + (z / p.inner) * outer + (z % p.inner) * inner;
}
