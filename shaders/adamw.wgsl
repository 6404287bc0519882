// Global gradient-norm clipping and AdamW with torch.optim.AdamW's semantics, skipping any step whose
// gradients are not finite. Per step, with every gradient buffer g_1..g_n:
//   sumsq_partial (once per gradient buffer): partials[slot + w] = sum of g^2 over a 4096-element chunk
//   grad_norm_finalize (one workgroup):       norm = sqrt(sum partials); if norm is NaN/Inf, flag the step
//                                             skipped; else step += 1 and clip = min(1, max_norm/(norm+1e-6))
//   adamw_update (once per parameter buffer): unless skipped, with g = clip * grad,
//       p *= 1 - lr*wd;  m = m + (1-b1)(g - m);  v = b2 v + (1-b2) g^2
//       p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// state (f32): [0] step t, [1] clip factor, [2] norm, [3] 1 if this step was skipped, [4] skipped steps.
// The step counter lives on the GPU so a skipped step does not advance the bias correction.
// Non-finite is tested on the bits, since WGSL lets compilers assume NaN and Inf never occur.

const WG: u32 = 256u;
const ITEMS: u32 = 16u;           // elements per thread in sumsq_partial: a chunk is 4096 elements

// Params (n, off, slot, n_slots, lr, beta1, beta2, eps, weight_decay, max_norm, ln_beta1, ln_beta2)
// is declared in src/shaders/params.rs (`params::adamw`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> p: Params;
// sumsq_partial
@group(0) @binding(1) var<storage, read> g_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
// grad_norm_finalize
@group(0) @binding(3) var<storage, read> partials_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
// adamw_update
@group(0) @binding(5) var<storage, read_write> param: array<f32>;
@group(0) @binding(6) var<storage, read> grad: array<f32>;
@group(0) @binding(7) var<storage, read_write> m1: array<f32>;
@group(0) @binding(8) var<storage, read_write> m2: array<f32>;
@group(0) @binding(9) var<storage, read> state_in: array<f32>;

var<workgroup> red: array<f32, WG>;

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
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

@compute @workgroup_size(WG)
fn sumsq_partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid3: vec3<u32>) {
    let w = wg.x + wg.y * nwg.x;
    let lid = lid3.x;
    let start = w * WG * ITEMS;
    var s = 0.0;
    for (var k = 0u; k < ITEMS; k++) {
        let i = start + k * WG + lid;
        if (i < p.n) { let v = g_in[p.off + i]; s += v * v; }
    }
    s = reduce_sum(s, lid);
    if (lid == 0u) { partials[p.slot + w] = s; }
}

@compute @workgroup_size(WG)
fn grad_norm_finalize(@builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    var s = 0.0;
    for (var i = lid; i < p.n_slots; i += WG) { s += partials_in[i]; }
    s = reduce_sum(s, lid);
    if (lid == 0u) {
        let norm = sqrt(s);
        state[2] = norm;
        if (!is_finite(s)) {
            state[1] = 0.0;
            state[3] = 1.0;
            state[4] = state[4] + 1.0;
        } else {
            state[0] = state[0] + 1.0;
            state[3] = 0.0;
            var clip = 1.0;
            if (p.max_norm > 0.0) { clip = min(1.0, p.max_norm / (norm + 1e-6)); }
            state[1] = clip;
        }
    }
}

// 1 - exp(y) for y <= 0 without cancellation near 0 (WGSL has no expm1).
fn one_minus_exp(y: f32) -> f32 {
    if (abs(y) < 0.25) {
        // -(y + y^2/2 + ... + y^7/5040): truncation < 1e-9 relative for |y| < 0.25
        return -y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * (1.0 / 24.0 + y * (1.0 / 120.0 + y * (1.0 / 720.0 + y / 5040.0))))));
    }
    return 1.0 - exp(y);
}

@compute @workgroup_size(WG)
fn adamw_update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid3: vec3<u32>) {
    let i = (wg.x + wg.y * nwg.x) * WG + lid3.x;
    if (i >= p.n || state_in[3] != 0.0) { return; }
    let t = state_in[0];
    let g = grad[p.off + i] * state_in[1];
    let j = p.off + i;
    var w = param[j] * (1.0 - p.lr * p.weight_decay);
    let m = m1[j] + (1.0 - p.beta1) * (g - m1[j]);
    let v = p.beta2 * m2[j] + (1.0 - p.beta2) * g * g;
    m1[j] = m;
    m2[j] = v;
    let bc1 = one_minus_exp(t * p.ln_beta1);
    let bc2 = one_minus_exp(t * p.ln_beta2);
    let denom = sqrt(v) / sqrt(bc2) + p.eps;
    w = w - (p.lr / bc1) * m / denom;
    param[j] = w;
}
