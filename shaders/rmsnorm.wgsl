// RMSNorm over the last dimension, as the Llama family's (transformers' LlamaRMSNorm, in f32):
//   forward:  y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps), saving rstd per row;
//   backward: dx = rstd * (g - xhat * mean(g * xhat)), g = dy * w, xhat = x * rstd (ACCUMULATE: dx +=);
//             dw += sum_rows dy * xhat (rmsnorm_backward_params, one thread per column).
// x, y, dy, dx: (rows, cols); w: (cols); rstd: (rows). One workgroup of WG threads per row.
// A row may be one of `per_row` heads inside a wider row (Qwen3's norm on each query and key head of
// a fused q|k|v): row r starts at (r / per_row) * ld + off + (r % per_row) * cols.

override ACCUMULATE: bool = false;
const WG: u32 = 32u;

// Params (rows, cols, eps, per_row, ld, off) is declared in src/shaders/params.rs (`params::rmsnorm`), whose WGSL text
// src/shaders/mod.rs puts in front of this file.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;
// rmsnorm_backward_input / rmsnorm_backward_params
@group(0) @binding(5) var<storage, read> brstd: array<f32>;
@group(0) @binding(6) var<storage, read> dy: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> dw: array<f32>;

var<workgroup> red: array<f32, WG>;

fn row_base(row: u32) -> u32 {
    return (row / p.per_row) * p.ld + p.off + (row % p.per_row) * p.cols;
}

fn reduce_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&red[0]);
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(WG)
fn rmsnorm_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid3: vec3<u32>) {
    let row = wg.x + wg.y * nwg.x;
    let lid = lid3.x;
    if (row >= p.rows) { return; }
    let base = row_base(row);
    var ss = 0.0;
    for (var j = lid; j < p.cols; j += WG) { let v = x[base + j]; ss += v * v; }
    let r = inverseSqrt(reduce_sum(lid, ss) / f32(p.cols) + p.eps);
    for (var j = lid; j < p.cols; j += WG) { y[base + j] = x[base + j] * r * w[j]; }
    if (lid == 0u) { rstd[row] = r; }
}

@compute @workgroup_size(WG)
fn rmsnorm_backward_input(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_id) lid3: vec3<u32>) {
    let row = wg.x + wg.y * nwg.x;
    let lid = lid3.x;
    if (row >= p.rows) { return; }
    let base = row_base(row);
    let r = brstd[row];
    var s = 0.0;
    for (var j = lid; j < p.cols; j += WG) { s += dy[base + j] * w[j] * x[base + j] * r; }
    let m = reduce_sum(lid, s) / f32(p.cols);
    for (var j = lid; j < p.cols; j += WG) {
        let xhat = x[base + j] * r;
        let v = r * (dy[base + j] * w[j] - xhat * m);
        if (ACCUMULATE) { dx[base + j] += v; } else { dx[base + j] = v; }
    }
}

@compute @workgroup_size(WG)
fn rmsnorm_backward_params(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= p.cols) { return; }
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) { let b = row_base(r); s += dy[b + j] * x[b + j] * brstd[r]; }
    dw[j] += s;
}
