// Inverted dropout: y = x * dropout_scale(seed, i) (rng.wgsl, prepended by src/shaders/mod.rs). The
// backward is the same kernel applied to dy with the same seed.

// Params (n, seed_lo, seed_hi, prob) is declared in src/shaders/params.rs (`params::dropout`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn dropout(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wg.y * nwg.x + wg.x) * 256u + lid.x;
    if (i >= p.n) { return; }
    y[i] = x[i] * dropout_scale(p.seed_lo, p.seed_hi, p.prob, i);
}
