// What the two vec4 matmul kernels (matmul_vec4.wgsl, matmul_subgroup.wgsl) share: their operands
// read and written as vec4s, and the epilogue of 4 outputs. src/shaders/mod.rs puts this file (after
// erf.wgsl and matmul_common.wgsl) in front of each of them.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;

// gelu comes from erf.wgsl.
fn gelu4(x: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(gelu(x.x), gelu(x.y), gelu(x.z), gelu(x.w));
}

// The epilogue of 4 outputs C[r][col..col+3] (N % 4 == 0, so they are all in or all out).
fn store4(base_c: u32, r: u32, col: u32, acc: vec4<f32>) {
    if (r >= p.m || col >= p.n) { return; }
    var v = p.alpha * acc;
    if (HAS_BIAS) { v += bias[(p.off_bias + col) / 4u]; }
    if (GELU) { v = gelu4(v); }
    let ci = base_c + r * (p.ldc / 4u) + col / 4u;
    if (ACCUMULATE) { v += c[ci]; }
    c[ci] = v;
}
