// The next token, chosen on the GPU from one row of logits (src/kernels/sample.rs), so that only
// its id (and the few candidates a page shows) comes back.
//
// One workgroup. The K most likely tokens are found in K rounds: round i takes the largest logit
// among the tokens ordered after round i-1's pick in (logit descending, id ascending), so ties go
// to the lower id, as a stable sort would. Their probabilities are softmax over the whole row.
// The chosen token is the first candidate when greedy (top_k = 1); otherwise it is drawn among the
// first top_k with weights exp((l_i - l_0) / T), with the uniform number `u` in [0, 1) the host
// draws from its seeded generator (the same seed, the same text).
//
// out: [0] the chosen id (0xffffffff when no logit is a number), [1] candidates found,
//      then (id, probability bits) per candidate.

// Params (v, k, top_k, off, inv_temp, u) is declared in src/shaders/params.rs (`params::sample`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;
var<workgroup> rv: array<f32, WG>;
var<workgroup> ri: array<u32, WG>;
var<workgroup> cv: array<f32, 1024>;
var<workgroup> ci: array<u32, 1024>;

// (a, ai) before (b, bi) in (value descending, id ascending); NONE is after everything
fn first(a: f32, ai: u32, b: f32, bi: u32) -> bool {
    if (ai == NONE) { return false; }
    if (bi == NONE) { return true; }
    return a > b || (a == b && ai < bi);
}

@compute @workgroup_size(WG)
fn sample_top_k(@builtin(local_invocation_index) lid: u32) {
    var prev_v = 0.0;
    var prev_i = NONE;
    var found = 0u;
    // the largest logit
    var m = 0.0;
    for (var round = 0u; round < p.k; round++) {
        // the best token after (prev_v, prev_i)
        var bv = 0.0;
        var bi = NONE;
        for (var j = lid; j < p.v; j += WG) {
            let x = logits[p.off + j];
            let after = prev_i == NONE || first(prev_v, prev_i, x, j);
            // x == x: NaN is never a candidate
            if (x == x && after && first(x, j, bv, bi)) { bv = x; bi = j; }
        }
        rv[lid] = bv;
        ri[lid] = bi;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s = s / 2u) {
            if (lid < s && first(rv[lid + s], ri[lid + s], rv[lid], ri[lid])) {
                rv[lid] = rv[lid + s];
                ri[lid] = ri[lid + s];
            }
            workgroupBarrier();
        }
        // a uniform value (a barrier in it): every thread leaves the loop together
        prev_i = workgroupUniformLoad(&ri[0]);
        prev_v = rv[0];
        workgroupBarrier();
        if (prev_i == NONE) { break; }
        if (round == 0u) { m = prev_v; }
        if (lid == 0u) {
            cv[round] = prev_v;
            ci[round] = prev_i;
        }
        found = round + 1u;
    }
    // softmax's denominator over the whole row, from the largest logit
    var z = 0.0;
    if (found > 0u) {
        for (var j = lid; j < p.v; j += WG) {
            let x = logits[p.off + j];
            if (x == x) { z += exp(x - m); }
        }
    }
    rv[lid] = z;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) { rv[lid] += rv[lid + s]; }
        workgroupBarrier();
    }
    z = rv[0];
    for (var i = lid; i < found; i += WG) {
        out[2u + 2u * i] = ci[i];
        out[3u + 2u * i] = bitcast<u32>(exp(cv[i] - m) / z);
    }
    if (lid == 0u) {
        out[1] = found;
        var chosen = NONE;
        if (found > 0u) {
            chosen = ci[0];
            let n = min(p.top_k, found);
            if (n > 1u) {
                var total = 0.0;
                for (var i = 0u; i < n; i++) { total += exp((cv[i] - m) * p.inv_temp); }
                var t = p.u * total;
                chosen = ci[n - 1u];
                for (var i = 0u; i < n; i++) {
                    let w = exp((cv[i] - m) * p.inv_temp);
                    if (t < w) { chosen = ci[i]; break; }
                    t -= w;
                }
            }
        }
        out[0] = chosen;
    }
}
