// What both matmul kernels (matmul.wgsl, matmul_vec4.wgsl) share: their specialisation constants
// and their uniform parameters, which src/kernels/matmul.rs writes as one struct for either kernel.
// src/shaders.rs puts this file (after erf.wgsl) in front of each of them.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override GELU: bool = false;
override ACCUMULATE: bool = false;

struct Params {
    m: u32, n: u32, k: u32, batch: u32,
    stride_a: u32, stride_b: u32, stride_c: u32, alpha: f32,
    off_a: u32, off_b: u32, off_c: u32, off_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
