// Row softmax with scale and an additive mask, and its backward.
//   x: (rows, cols); y[r, j] = softmax_j(scale * x[r, j] + mask[r / rows_per_mask, j]).
// For attention: x = scores (B, H, Tq, Tk) viewed as (B*H*Tq, Tk), rows_per_mask = H*Tq, mask (B, Tk).
// A mask value <= -1e30 (e.g. -inf) removes that column; a row whose columns are all removed gives
// zeros, not NaN. One workgroup per row; rows index the 2-D dispatch as wg.x + wg.y * nwg.x.

// DROPOUT (attention's dropout on the probabilities, rng.wgsl's hash, counter r * cols + j):
//   forward also writes yd = dropout(y); backward reads dy as the gradient at yd and takes it
//   through the dropout first (dy * scale), so dropout costs no dispatch of its own.

// CAUSAL (a decoder's self-attention, Tq = Tk = cols): row r is query r % cols, which sees only
//   the columns j <= r % cols; the others are removed as a masked column is. No mask buffer: the
//   triangle is computed. The backward needs nothing: those probabilities are 0.

override HAS_MASK: bool = false;
override DROPOUT: bool = false;
override CAUSAL: bool = false;
// WINDOW (sliding-window attention, ModernBERT's local layers; square attention as CAUSAL): row r
//   (query r % cols) sees only the columns within WINDOW of it, |j - r % cols| <= WINDOW; 0: all.
override WINDOW: u32 = 0u;
const WG: u32 = 32u;
const NEG_BIG: f32 = -1e30;

// Params (rows, cols, rows_per_mask, scale, and the dropout's seed_lo, seed_hi, prob) is declared
// in src/shaders/params.rs (`params::softmax`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// softmax_backward's own bindings.
@group(0) @binding(4) var<storage, read> probs: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
// DROPOUT forward: the dropped probabilities
@group(0) @binding(7) var<storage, read_write> yd: array<f32>;

// y[out + j] = v, and with DROPOUT yd too; i = row * cols + j
fn put(out: u32, j: u32, i: u32, v: f32) {
    y[out + j] = v;
    if (DROPOUT) { yd[out + j] = v * dropout_scale(p.seed_lo, p.seed_hi, p.prob, i); }
}

// the incoming gradient at element i (= row * cols + j)
fn grad_in(i: u32) -> f32 {
    let g = dy[i];
    if (DROPOUT) { return g * dropout_scale(p.seed_lo, p.seed_hi, p.prob, i); }
    return g;
}

var<workgroup> red: array<f32, WG>;

fn reduce_max(v: f32, lid: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&red[0]); // uniform: callers may branch on it
    workgroupBarrier();
    return r;
}

fn reduce_sum(v: f32, lid: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&red[0]); // uniform: callers may branch on it
    workgroupBarrier();
    return r;
}

// scale*x + mask, or NEG_BIG when the column is masked out.
fn logit(row: u32, j: u32) -> f32 {
    if (CAUSAL && j > row % p.cols) { return NEG_BIG; }
    if (WINDOW > 0u) {
        let q = row % p.cols;
        if (max(j, q) - min(j, q) > WINDOW) { return NEG_BIG; }
    }
    var v = p.scale * x[row * p.cols + j];
    if (HAS_MASK) {
        let m = mask[(row / p.rows_per_mask) * p.cols + j];
        if (m <= NEG_BIG) { return NEG_BIG; }
        v += m;
    }
    return v;
}

@compute @workgroup_size(WG)
fn softmax_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid3: vec3<u32>) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= p.rows) { return; }
    let lid = lid3.x;
    var m = NEG_BIG;
    for (var j = lid; j < p.cols; j += WG) { m = max(m, logit(row, j)); }
    m = reduce_max(m, lid);
    let out = row * p.cols;
    if (m <= NEG_BIG) {
        for (var j = lid; j < p.cols; j += WG) { put(out, j, row * p.cols + j, 0.0); }
        return;
    }
    var s = 0.0;
    for (var j = lid; j < p.cols; j += WG) {
        let l = logit(row, j);
        if (l > NEG_BIG) { s += exp(l - m); }
    }
    s = reduce_sum(s, lid);
    let inv = 1.0 / s;
    for (var j = lid; j < p.cols; j += WG) {
        let l = logit(row, j);
        put(out, j, row * p.cols + j, select(0.0, exp(l - m) * inv, l > NEG_BIG));
    }
}

// dx = scale * y * (dy - sum_j dy_j y_j), with y = probs.
@compute @workgroup_size(WG)
fn softmax_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid3: vec3<u32>) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= p.rows) { return; }
    let lid = lid3.x;
    let base = row * p.cols;
    var d = 0.0;
    for (var j = lid; j < p.cols; j += WG) { d += probs[base + j] * grad_in(base + j); }
    d = reduce_sum(d, lid);
    for (var j = lid; j < p.cols; j += WG) {
        let yy = probs[base + j];
        dx[base + j] = p.scale * yy * (grad_in(base + j) - d);
    }
}

// One row per invocation, with no workgroup memory and no barrier: the variant for CPU adapters
// (lavapipe, SwiftShader), where a barrier is a coroutine switch and the 32-thread reductions above
// cost more than the arithmetic (SwiftShader: 60 ms a dispatch for 1536 rows of 24). Same contract;
// rows are (wg.x + wg.y * nwg.x) * 64 + lid.
@compute @workgroup_size(64)
fn softmax_forward_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = (wg.x + wg.y * nwg.x) * 64u + lid.x;
    if (row >= p.rows) { return; }
    var m = NEG_BIG;
    for (var j = 0u; j < p.cols; j++) { m = max(m, logit(row, j)); }
    let out = row * p.cols;
    if (m <= NEG_BIG) {
        for (var j = 0u; j < p.cols; j++) { put(out, j, row * p.cols + j, 0.0); }
        return;
    }
    var s = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let l = logit(row, j);
        let e = select(0.0, exp(l - m), l > NEG_BIG);
        y[out + j] = e;
        s += e;
    }
    let inv = 1.0 / s;
    for (var j = 0u; j < p.cols; j++) { put(out, j, row * p.cols + j, y[out + j] * inv); }
}

@compute @workgroup_size(64)
fn softmax_backward_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = (wg.x + wg.y * nwg.x) * 64u + lid.x;
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    var d = 0.0;
    for (var j = 0u; j < p.cols; j++) { d += probs[base + j] * grad_in(base + j); }
    for (var j = 0u; j < p.cols; j++) {
        let yy = probs[base + j];
        dx[base + j] = p.scale * yy * (grad_in(base + j) - d);
    }
}
