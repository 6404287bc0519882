// Dropout's counter-based RNG, shared by dropout.wgsl and the kernels that fuse dropout into their
// output (layernorm.wgsl's residual forward and dropped dx, softmax.wgsl's dropped probabilities).
// Element i of a tensor is kept iff uniform(seed, i) >= prob, and kept values are scaled by
// 1 / (1 - prob). The mask is a pure function of (seed, i), so a backward recomputes it instead of
// storing it. The CPU reference (kernels::cpu::dropout_keep) implements the same hash, bit for bit.
// src/shaders/mod.rs puts this file in front of the shaders that use it.

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
fn uniform01(seed_lo: u32, seed_hi: u32, i: u32) -> f32 {
    let k1 = fmix32(seed_lo ^ 0x3c6ef372u);
    let k2 = fmix32(seed_hi + k1);
    let h = fmix32(fmix32(i + k1) ^ k2);
    return f32(h >> 8u) * (1.0 / 16777216.0);
}

// What element i is multiplied by: 0 if dropped, 1 / (1 - prob) if kept (1 when prob is 0).
fn dropout_scale(seed_lo: u32, seed_hi: u32, prob: f32, i: u32) -> f32 {
    if (prob <= 0.0) { return 1.0; }
    return select(0.0, 1.0 / (1.0 - prob), uniform01(seed_lo, seed_hi, i) >= prob);
}
