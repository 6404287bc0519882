// Rotary position embeddings in place, in transformers' rotate_half layout: in each rotated head of
// a row (rows = B*T, each `ld` wide: a fused q|k|v projection), the pairs (x[j], x[j + d/2]) turn by
// the angle pos * inv_freq[j]:
//   x[j]       <- x[j] cos - x[j + d/2] sin
//   x[j + d/2] <- x[j + d/2] cos + x[j] sin
// The query heads start at column q_off, the key heads at k_off (grouped-query attention has fewer
// key heads); the value is not rotated. pos = pos_base + row % t. cos and sin are (positions, d/2)
// tables computed on the host as transformers computes them. With sign -1 the rotation is the
// transpose (the backward: gradients turn back by the same angle).
// One thread per (row, head, pair); the 2-D dispatch index is (wg.y * nwg.x + wg.x) * 256 + lid.

// Params is declared in src/shaders/params.rs (`params::rotary`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> cos_t: array<f32>;
@group(0) @binding(3) var<storage, read> sin_t: array<f32>;

@compute @workgroup_size(256)
fn rotary(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wg.y * nwg.x + wg.x) * 256u + lid.x;
    let half = p.d / 2u;
    let heads = p.q_heads + p.k_heads;
    if (i >= p.rows * heads * half) { return; }
    let j = i % half;
    let hh = (i / half) % heads;
    let r = i / (half * heads);
    var col = p.q_off + hh * p.d;
    if (hh >= p.q_heads) { col = p.k_off + (hh - p.q_heads) * p.d; }
    let base = r * p.ld + col;
    let pos = p.pos_base + r % p.t;
    let c = cos_t[pos * half + j];
    let s = p.sign * sin_t[pos * half + j];
    let x1 = x[base + j];
    let x2 = x[base + j + half];
    x[base + j] = x1 * c - x2 * s;
    x[base + j + half] = x2 * c + x1 * s;
}
