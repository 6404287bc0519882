// What the matmul kernels (matmul.wgsl, matmul_vec4.wgsl, matmul_subgroup.wgsl) share: their
// specialisation constants and the use of their uniform parameters, whose struct src/shaders/params.rs
// (`params::matmul`) declares for all of them. src/shaders/mod.rs puts this file (after that struct and
// erf.wgsl) in front of each of them.

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
// Params: m, n, k, batch, alpha, inner, and per operand off_x, stride_x, stride_x2, ld_x.

@group(0) @binding(0) var<uniform> p: Params;

fn batch_base(z: u32, off: u32, outer: u32, inner: u32) -> u32 {
    return off + (z / p.inner) * outer + (z % p.inner) * inner;
}
