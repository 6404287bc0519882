// Inverted dropout with a counter-based RNG: element i of a tensor is kept iff
// uniform(seed, i) >= prob, and kept values are scaled by 1 / (1 - prob). The mask is a pure function
// of (seed, i), so the backward recomputes it instead of storing it: forward and backward are the
// same kernel, applied to x and to dy with the same seed. The CPU reference (kernels::cpu::dropout_keep)
// implements the same hash, bit for bit.

struct Params { n: u32, seed_lo: u32, seed_hi: u32, prob: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// murmur3's 32-bit finaliser: a bijection with full avalanche.
fn fmix32(h0: u32) -> u32 {
    var h = h0;
    h ^= h >> 16u;
    h *= 0x85ebca6bu;
    h ^= h >> 13u;
    h *= 0xc2b2ae35u;
    h ^= h >> 16u;
    return h;
}

// 24 random bits of (seed, counter) as a float in [0, 1). Both key words depend on the whole seed,
// so two seeds never give shifted copies of one stream.
fn uniform01(i: u32) -> f32 {
    let k1 = fmix32(p.seed_lo ^ 0x3c6ef372u);
    let k2 = fmix32(p.seed_hi + k1);
    let h = fmix32(fmix32(i + k1) ^ k2);
    return f32(h >> 8u) * (1.0 / 16777216.0);
}

@compute @workgroup_size(256)
fn dropout(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wg.y * nwg.x + wg.x) * 256u + lid.x;
    if (i >= p.n) { return; }
    let keep = uniform01(i) >= p.prob;
    y[i] = select(0.0, x[i] / (1.0 - p.prob), keep);
}
