// LayerNorm over the last dimension, as torch.nn.LayerNorm (biased variance, eps inside the sqrt).
//   forward:  y = (x - mean) * rstd * gamma + beta, saving mean and rstd per row for backward.
//   backward: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma   (ACCUMULATE: dx +=)
//             dgamma += sum_rows dy * xhat, dbeta += sum_rows dy                 (always accumulates)
// x, y, dy, dx: (rows, cols); gamma, beta: (cols); mean, rstd: (rows).
// Fused around a transformer sublayer (dropout's hash from rng.wgsl, prepended by src/shaders/mod.rs):
//   RESIDUAL (forward): res = x + dropout(branch) is written and normalised: y = layernorm(res);
//   DROP_DX (backward input): dxd = dropout(dx) is written beside dx, with the same seed.
//   DROP_Y (forward): y = dropout(layernorm(x)); DROP_DY (backward input and params): the incoming
//   dy is the gradient at dropout's output and is taken through it first (BERT's embeddings).
// Element (r, j)'s dropout counter is r * cols + j, as dropout.wgsl's over the whole tensor.

override ACCUMULATE: bool = false;
override RESIDUAL: bool = false;
override DROP_DX: bool = false;
override DROP_Y: bool = false;
override DROP_DY: bool = false;
// 32 threads per row: one warp on GPUs, and far fewer barrier round-trips on CPU Vulkan (lavapipe)
const WG: u32 = 32u;

// Params (rows, cols, eps, and the dropout's seed_lo, seed_hi, prob) is declared in
// src/shaders/params.rs (`params::layernorm`), whose WGSL text src/shaders/mod.rs puts in front of this file.
@group(0) @binding(0) var<uniform> p: Params;
// layernorm_forward
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;
// layernorm_backward_input / layernorm_backward_params
@group(0) @binding(7) var<storage, read> bx: array<f32>;
@group(0) @binding(8) var<storage, read> bgamma: array<f32>;
@group(0) @binding(9) var<storage, read> bmean: array<f32>;
@group(0) @binding(10) var<storage, read> brstd: array<f32>;
@group(0) @binding(11) var<storage, read> dy: array<f32>;
@group(0) @binding(12) var<storage, read_write> dx: array<f32>;
// layernorm_backward_params writes these two (bindings 7, 9, 10, 11 shared with the above)
@group(0) @binding(13) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(14) var<storage, read_write> dbeta: array<f32>;
// RESIDUAL: the sublayer's output and the sum written (x is then the skip input)
@group(0) @binding(15) var<storage, read> branch: array<f32>;
@group(0) @binding(16) var<storage, read_write> res: array<f32>;
// DROP_DX: dropout(dx)
@group(0) @binding(17) var<storage, read_write> dxd: array<f32>;

fn drop_scale(i: u32) -> f32 {
    return dropout_scale(p.seed_lo, p.seed_hi, p.prob, i);
}

// The incoming gradient at element i (r * cols + j).
fn dyv(i: u32) -> f32 {
    if (DROP_DY) { return dy[i] * drop_scale(i); }
    return dy[i];
}

// The forward's output at element (row, j): with DROP_Y through the dropout.
fn yv(row: u32, j: u32, v: f32) -> f32 {
    if (DROP_Y) { return v * drop_scale(row * p.cols + j); }
    return v;
}

// The forward's input element: x, or with RESIDUAL the sum written by residual_row.
fn xv(i: u32) -> f32 {
    if (RESIDUAL) { return res[i]; }
    return x[i];
}

// res = x + dropout(branch) over one row's columns lid, lid + step, ...
fn residual_row(row: u32, base: u32, lid: u32, stride: u32) {
    for (var j = lid; j < p.cols; j += stride) {
        res[base + j] = x[base + j] + branch[base + j] * drop_scale(row * p.cols + j);
    }
}

var<workgroup> red: array<f32, WG>;
var<workgroup> red2: array<f32, WG>;

fn reduce2(a: f32, b: f32, lid: u32) -> vec2<f32> {
    red[lid] = a;
    red2[lid] = b;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
            red2[lid] = red2[lid] + red2[lid + s];
        }
        workgroupBarrier();
    }
    let r = vec2<f32>(red[0], red2[0]);
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(WG)
fn layernorm_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_id) lid3: vec3<u32>) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= p.rows) { return; }
    let lid = lid3.x;
    let base = row * p.cols;
    let n = f32(p.cols);
    if (RESIDUAL) { residual_row(row, base, lid, WG); }
    var s = 0.0;
    for (var j = lid; j < p.cols; j += WG) { s += xv(base + j); }
    let mu = reduce2(s, 0.0, lid).x / n;
    // Second pass for the variance: exact for constant rows, no cancellation.
    var v = 0.0;
    for (var j = lid; j < p.cols; j += WG) { let d = xv(base + j) - mu; v += d * d; }
    let var_ = reduce2(v, 0.0, lid).x / n;
    let rs = inverseSqrt(var_ + p.eps);
    let out = row * p.cols;
    for (var j = lid; j < p.cols; j += WG) {
        y[out + j] = yv(row, j, (xv(base + j) - mu) * rs * gamma[j] + beta[j]);
    }
    if (lid == 0u) { mean[row] = mu; rstd[row] = rs; }
}

@compute @workgroup_size(WG)
fn layernorm_backward_input(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_id) lid3: vec3<u32>) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= p.rows) { return; }
    let lid = lid3.x;
    let base_x = row * p.cols;
    let base_d = row * p.cols;
    let mu = bmean[row];
    let rs = brstd[row];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = lid; j < p.cols; j += WG) {
        let g = dyv(base_d + j) * bgamma[j];
        s1 += g;
        s2 += g * (bx[base_x + j] - mu) * rs;
    }
    let s = reduce2(s1, s2, lid) / f32(p.cols);
    for (var j = lid; j < p.cols; j += WG) { write_dx(base_x, base_d, j, mu, rs, s); }
}

// dx[j] of one row (= or += with ACCUMULATE), given s = (mean(g), mean(g * xhat)) of that row.
fn write_dx(base_x: u32, base_d: u32, j: u32, mu: f32, rs: f32, s: vec2<f32>) {
    let g = dyv(base_d + j) * bgamma[j];
    let xhat = (bx[base_x + j] - mu) * rs;
    var v = rs * (g - s.x - xhat * s.y);
    if (ACCUMULATE) { v += dx[base_d + j]; }
    dx[base_d + j] = v;
    if (DROP_DX) { dxd[base_d + j] = v * drop_scale(base_d + j); }
}

// One thread per column walks every row: deterministic, no atomics.
@compute @workgroup_size(WG)
fn layernorm_backward_params(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= p.cols) { return; }
    var g = 0.0;
    var b = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        let d = dyv(r * p.cols + j);
        g += d * (bx[r * p.cols + j] - bmean[r]) * brstd[r];
        b += d;
    }
    dgamma[j] += g;
    dbeta[j] += b;
}

// One row per invocation, no workgroup memory or barrier: the variants for CPU adapters (lavapipe,
// SwiftShader), where the 32-invocation reductions above cost more than the row itself. Same
// contract and the same two-pass variance; rows are (wg.x + wg.y * nwg.x) * 64 + lid.
// Sums run in 8 interleaved partials added as a tree, as accurate as the 32-way reduction above
// (one running sum over 768 columns was not: it missed the forward check's bound).

// sum of x[base + j] (c == 0) or of (x[base + j] - c)^2 (squares), j < cols
fn row_sum8(base: u32, c: f32, squares: bool) -> f32 {
    var lo = vec4<f32>(0.0);
    var hi = vec4<f32>(0.0);
    var j = 0u;
    for (; j + 8u <= p.cols; j += 8u) {
        var a = vec4<f32>(xv(base + j), xv(base + j + 1u), xv(base + j + 2u), xv(base + j + 3u)) - c;
        var b = vec4<f32>(xv(base + j + 4u), xv(base + j + 5u), xv(base + j + 6u), xv(base + j + 7u)) - c;
        if (squares) { a = a * a; b = b * b; }
        lo += a;
        hi += b;
    }
    var tail = 0.0;
    for (; j < p.cols; j++) {
        let d = xv(base + j) - c;
        tail += select(d, d * d, squares);
    }
    let q = lo + hi;
    return ((q.x + q.y) + (q.z + q.w)) + tail;
}

@compute @workgroup_size(64)
fn layernorm_forward_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = (wg.x + wg.y * nwg.x) * 64u + lid.x;
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    let n = f32(p.cols);
    if (RESIDUAL) { residual_row(row, base, 0u, 1u); }
    let mu = row_sum8(base, 0.0, false) / n;
    let rs = inverseSqrt(row_sum8(base, mu, true) / n + p.eps);
    let out = row * p.cols;
    for (var j = 0u; j < p.cols; j++) {
        y[out + j] = yv(row, j, (xv(base + j) - mu) * rs * gamma[j] + beta[j]);
    }
    mean[row] = mu;
    rstd[row] = rs;
}

@compute @workgroup_size(64)
fn layernorm_backward_input_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = (wg.x + wg.y * nwg.x) * 64u + lid.x;
    if (row >= p.rows) { return; }
    let base_x = row * p.cols;
    let base_d = row * p.cols;
    let mu = bmean[row];
    let rs = brstd[row];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let g = dyv(base_d + j) * bgamma[j];
        s1 += g;
        s2 += g * (bx[base_x + j] - mu) * rs;
    }
    let s = vec2<f32>(s1, s2) / f32(p.cols);
    for (var j = 0u; j < p.cols; j++) { write_dx(base_x, base_d, j, mu, rs, s); }
}
