// Softmax cross-entropy over rows of logits with an ignore label, as torch's
// F.cross_entropy(logits, labels, ignore_index=-100, reduction="mean"), in three kernels:
//   ce_rows:     loss_rows[r] = logsumexp(logits[r]) - logits[r, label[r]], valid[r] = 1, correct[r] =
//                (the label's logit is the row's largest); or 0, 0, 0 when label[r] is outside
//                [0, classes) (ignored)
//   ce_reduce:   out[0] = sum(loss_rows) / count (0 when nothing is to be predicted), out[1] = count,
//                out[2] = accuracy (sum(correct) / count)
//   ce_backward: dlogits[r] = weight * (softmax(logits[r]) - onehot(label[r])) / count; 0 for ignored
// count lives on the GPU (out[1]), so nothing is read back between forward and backward.

const WG: u32 = 32u;

// Params (rows, classes, weight) is declared in src/shaders/params.rs (`params::cross_entropy`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> loss_rows: array<f32>; // (rows, 3): loss, valid, correct
// ce_reduce
@group(0) @binding(4) var<storage, read> rows_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;        // [mean loss, count, accuracy]
// ce_backward (logits 1, labels 2, then)
@group(0) @binding(6) var<storage, read> stats: array<f32>;            // out of ce_reduce
@group(0) @binding(7) var<storage, read_write> dlogits: array<f32>;

var<workgroup> red: array<f32, WG>;
var<workgroup> red2: array<f32, WG>;

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

fn reduce_sum2(a: f32, b: f32, lid: u32) -> vec2<f32> {
    red[lid] = a;
    red2[lid] = b;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] = red[lid] + red[lid + s]; red2[lid] = red2[lid] + red2[lid + s]; }
        workgroupBarrier();
    }
    let r = vec2<f32>(red[0], red2[0]);
    workgroupBarrier();
    return r;
}

fn row_index(wg: vec3<u32>, nwg: vec3<u32>) -> u32 { return wg.x + wg.y * nwg.x; }

fn label_ok(l: i32) -> bool { return l >= 0 && u32(l) < p.classes; }

@compute @workgroup_size(WG)
fn ce_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid3: vec3<u32>) {
    let r = row_index(wg, nwg);
    if (r >= p.rows) { return; }
    let lid = lid3.x;
    let base = r * p.classes;
    var m = -3.0e38;
    for (var j = lid; j < p.classes; j += WG) { m = max(m, logits[base + j]); }
    m = reduce_max(m, lid);
    var s = 0.0;
    for (var j = lid; j < p.classes; j += WG) { s += exp(logits[base + j] - m); }
    s = reduce_sum2(s, 0.0, lid).x;
    if (lid == 0u) {
        let l = labels[r];
        if (label_ok(l)) {
            let x = logits[base + u32(l)];
            loss_rows[3u * r] = m + log(s) - x;
            loss_rows[3u * r + 1u] = 1.0;
            loss_rows[3u * r + 2u] = select(0.0, 1.0, x >= m);
        } else {
            loss_rows[3u * r] = 0.0;
            loss_rows[3u * r + 1u] = 0.0;
            loss_rows[3u * r + 2u] = 0.0;
        }
    }
}

// One workgroup; a fixed summation order, so the loss is deterministic.
@compute @workgroup_size(WG)
fn ce_reduce(@builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    var s = 0.0;
    var c = 0.0;
    var k = 0.0;
    for (var r = lid; r < p.rows; r += WG) { s += rows_in[3u * r]; c += rows_in[3u * r + 1u]; k += rows_in[3u * r + 2u]; }
    let t = reduce_sum2(s, c, lid);
    let a = reduce_sum2(k, 0.0, lid);
    if (lid == 0u) {
        out[0] = select(0.0, t.x / t.y, t.y > 0.0);
        out[1] = t.y;
        out[2] = select(0.0, a.x / t.y, t.y > 0.0);
    }
}

@compute @workgroup_size(WG)
fn ce_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid3: vec3<u32>) {
    let r = row_index(wg, nwg);
    if (r >= p.rows) { return; }
    let lid = lid3.x;
    let base = r * p.classes;
    let l = labels[r];
    let count = stats[1];
    if (!label_ok(l) || count <= 0.0) {
        for (var j = lid; j < p.classes; j += WG) { dlogits[base + j] = 0.0; }
        return;
    }
    var m = -3.0e38;
    for (var j = lid; j < p.classes; j += WG) { m = max(m, logits[base + j]); }
    m = reduce_max(m, lid);
    var s = 0.0;
    for (var j = lid; j < p.classes; j += WG) { s += exp(logits[base + j] - m); }
    s = reduce_sum2(s, 0.0, lid).x;
    let k = p.weight / count;
    for (var j = lid; j < p.classes; j += WG) {
        let prob = exp(logits[base + j] - m) / s;
        dlogits[base + j] = k * (prob - select(0.0, 1.0, j == u32(l)));
    }
}
