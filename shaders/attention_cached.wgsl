// Attention of one new query over a key-value cache, for decoding one token at a time
// (src/kernels/matvec.rs, attend_cached). One workgroup per head h: s_j = scale * q . k_j for the n
// cached rows j (the new token's own row included: causal by construction), p = softmax(s), and
// ctx[h*D + d] = sum_j p_j v_j[d]. The cache holds each position's fused q|k|v row (3C, as the full
// pass's projection writes it), so prefill copies rows as they are and a new token's projection
// writes its row in place. `scores` is (heads, cap) scratch.

// Grouped-query attention: query head h reads key/value head h / group, the keys from column k_off
// of each row and the values from v_off (multi-head: group 1, k_off C, v_off 2C).
// AttnParams (n, heads, d, ld, q_off, cap, scale, k_off, v_off, group) is declared in src/shaders/params.rs (`params::matvec`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> ap: AttnParams;
@group(0) @binding(1) var<storage, read> cache: array<f32>;
@group(0) @binding(2) var<storage, read_write> scores: array<f32>;
@group(0) @binding(3) var<storage, read_write> ctx: array<f32>;

// threads a workgroup (at most 64): 8 on CPU adapters, one SIMD vector of lavapipe, where a
// barrier then costs no switch between the vectors of a workgroup
override AWG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

// max (op 0) or sum (op 1) of `v` over the workgroup; every thread gets the result
fn reduce(lid: u32, v: f32, op: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = AWG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            if (op == 0u) { red[lid] = max(red[lid], red[lid + s]); } else { red[lid] = red[lid] + red[lid + s]; }
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(AWG)
fn attend_cached(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wg.x;
    let kvh = (h / ap.group) * ap.d;
    let q = ap.q_off + h * ap.d;
    let sb = h * ap.cap;
    // scores of the n cached keys (K from column k_off of each row)
    var m = -3.402823e38;
    for (var j = lid; j < ap.n; j += AWG) {
        let kb = j * ap.ld + ap.k_off + kvh;
        var s = 0.0;
        for (var d = 0u; d < ap.d; d++) { s = fma(cache[q + d], cache[kb + d], s); }
        s *= ap.scale;
        scores[sb + j] = s;
        m = max(m, s);
    }
    m = reduce(lid, m, 0u);
    var z = 0.0;
    for (var j = lid; j < ap.n; j += AWG) {
        let e = exp(scores[sb + j] - m);
        scores[sb + j] = e;
        z += e;
    }
    z = reduce(lid, z, 1u);
    storageBarrier();
    workgroupBarrier();
    // ctx = p v (V from column v_off), one thread per component of the head
    for (var d = lid; d < ap.d; d += AWG) {
        var acc = 0.0;
        let vb = ap.v_off + kvh + d;
        for (var j = 0u; j < ap.n; j++) { acc = fma(scores[sb + j], cache[j * ap.ld + vb], acc); }
        ctx[h * ap.d + d] = acc / z;
    }
}
