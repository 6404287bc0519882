// Head split and merge for multi-head attention.
//   split_heads: src (B*T, src_cols), columns [col_off, col_off + H*D) -> dst (B, H, T, D)
//   merge_heads: src (B, H, T, D) -> dst (B*T, dst_cols) at columns [col_off, col_off + H*D)
// Each is the other's backward. With a fused QKV projection (B*T, 3C), Q, K and V are split from
// column offsets 0, C and 2C, and dQ, dK, dV merge back into the same offsets.
// The rest of attention is matmul (scores = Q K^T, context = P V) and softmax (scale 1/sqrt(D), mask).

struct Params { b: u32, t: u32, h: u32, d: u32, cols: u32, col_off: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn index(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

// i walks (b, h, t, d) in the head-major layout.
fn token_col(i: u32) -> vec2<u32> {
    let dd = i % p.d;
    let tt = (i / p.d) % p.t;
    let hh = (i / (p.d * p.t)) % p.h;
    let bb = i / (p.d * p.t * p.h);
    return vec2<u32>(bb * p.t + tt, p.col_off + hh * p.d + dd);
}

@compute @workgroup_size(256)
fn split_heads(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.b * p.h * p.t * p.d) { return; }
    let tc = token_col(i);
    dst[i] = src[tc.x * p.cols + tc.y];
}

@compute @workgroup_size(256)
fn merge_heads(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.b * p.h * p.t * p.d) { return; }
    let tc = token_col(i);
    dst[tc.x * p.cols + tc.y] = src[i];
}
