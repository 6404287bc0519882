// Decoding's one-row products on CPU adapters, from a copy of the weight packed into a texture
// (src/kernels/matvec.rs, `Packed`):
//
//   y[y_off + n] = act(sum_k x[x_off + k] * W[n, k] + bias[off_bias + n])   (act: none, GELU, GPT-2's tanh GELU)
//
// Why a texture: on CPU drivers (lavapipe) an invocation is a SIMD lane, and a storage buffer's
// vec4 that differs per lane is loaded as four bounds-checked scalars, lane by lane; a storage
// texture's texel is one 16-byte load per lane. Layout: a lane owns a band of 16 outputs and walks
// k four at a time; the 16 texels it needs for one k-quad sit side by side, so its reads are one
// stream. K/4 quads are cut into `chunks` of `qc` quads so that a texture row fits the device:
//
//   texel (16 q + j, band * chunks + s) = W[16 band + j, 4 (s qc + q) .. + 3]   (zero past N or K)
//
// `pack` writes it from W stored (N, K) (torch's Linear, the tied LM head; TRANS_W) or (K, N)
// (GPT-2's Conv1D), for rows n0 .. n0 + rows of it (the tied head packs shard by shard).

override TRANS_W: bool = false;
override HAS_BIAS: bool = false;
// 0: none, 1: GELU (erf), 2: GELU (tanh)
override ACT: u32 = 0u;

// PackedParams (n, k, qc, chunks, s, x_off, y_off, off_w, off_bias, n0, rows) is declared in src/shaders/params.rs (`params::matvec`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> pp: PackedParams;
// pack
@group(0) @binding(1) var<storage, read> src_w: array<f32>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;
// matvec_packed
@group(0) @binding(3) var<storage, read> px: array<f32>;
@group(0) @binding(4) var<storage, read> pbias: array<f32>;
@group(0) @binding(5) var<storage, read_write> py: array<f32>;
@group(0) @binding(6) var pw: texture_storage_2d<rgba32float, read>;

// one texel per thread: x over the 16 qc texels of a row, y over the bands of rows n0 .. n0 + rows,
// z over the chunks
@compute @workgroup_size(8, 8)
fn pack(@builtin(global_invocation_id) g: vec3<u32>) {
    let band = pp.n0 / 16u + g.y;
    let s = g.z;
    let q = g.x / 16u;
    let n = 16u * band + g.x % 16u;
    if (g.x >= 16u * pp.qc || n < pp.n0 || n >= pp.n0 + pp.rows) { return; }
    let k0 = 4u * (s * pp.qc + q);
    // W's element (n, k): at (n - n0) K + k stored (N, K), at k N + n stored (K, N)
    var at = pp.off_w + (n - pp.n0) * pp.k + k0;
    var stride = 1u;
    if (!TRANS_W) {
        at = pp.off_w + k0 * pp.n + n;
        stride = pp.n;
    }
    var v = vec4<f32>(0.0);
    if (k0 + 3u < pp.k) {
        v = vec4<f32>(src_w[at], src_w[at + stride], src_w[at + 2u * stride], src_w[at + 3u * stride]);
    } else {
        // the last quad of a K that is not a multiple of 4
        if (k0 < pp.k) { v.x = src_w[at]; }
        if (k0 + 1u < pp.k) { v.y = src_w[at + stride]; }
        if (k0 + 2u < pp.k) { v.z = src_w[at + 2u * stride]; }
    }
    textureStore(dst, vec2<u32>(g.x, band * pp.chunks + s), v);
}

var<workgroup> xs: array<vec4<f32>, 1024>;

fn put(band: u32, j: u32, acc: vec4<f32>) {
    let n = 16u * band + j;
    if (n >= pp.n) { return; }
    var v = acc.x + acc.y + acc.z + acc.w;
    if (pp.s > 0u) {
        v += py[pp.y_off + n];
    } else if (HAS_BIAS) {
        v += pbias[pp.off_bias + n];
    }
    if (pp.s + 1u == pp.chunks) {
        if (ACT == 1u) { v = gelu(v); }
        if (ACT == 2u) { v = gelu_tanh(v); }
    }
    py[pp.y_off + n] = v;
}

// 8 lanes a workgroup (one SIMD vector on lavapipe), a band of 16 outputs each, over chunk s of
// K (one dispatch per chunk: the first adds the bias, the later ones what y holds, the last
// applies the activation; a loop over chunks here costs lavapipe 40% of the rate). The workgroup
// stages the chunk's x quads in workgroup memory. A lane past the last band reads the last band
// and writes nothing.
@compute @workgroup_size(8)
fn matvec_packed(@builtin(global_invocation_id) g: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let bands = (pp.n + 15u) / 16u;
    let band = min(g.x, bands - 1u);
    for (var q = lid; q < pp.qc; q += 8u) {
        let k = 4u * (pp.s * pp.qc + q);
        var v = vec4<f32>(0.0);
        for (var c = 0u; c < 4u; c++) {
            if (k + c < pp.k) { v[c] = px[pp.x_off + k + c]; }
        }
        xs[q] = v;
    }
    workgroupBarrier();
    let tr = band * pp.chunks + pp.s;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0);
    var a9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0);
    var a13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0);
    var a15 = vec4<f32>(0.0);
    for (var q = 0u; q < pp.qc; q++) {
        let xv = xs[q];
        let t = 16u * q;
        a0 = fma(textureLoad(pw, vec2<u32>(t + 0u, tr)), xv, a0);
        a1 = fma(textureLoad(pw, vec2<u32>(t + 1u, tr)), xv, a1);
        a2 = fma(textureLoad(pw, vec2<u32>(t + 2u, tr)), xv, a2);
        a3 = fma(textureLoad(pw, vec2<u32>(t + 3u, tr)), xv, a3);
        a4 = fma(textureLoad(pw, vec2<u32>(t + 4u, tr)), xv, a4);
        a5 = fma(textureLoad(pw, vec2<u32>(t + 5u, tr)), xv, a5);
        a6 = fma(textureLoad(pw, vec2<u32>(t + 6u, tr)), xv, a6);
        a7 = fma(textureLoad(pw, vec2<u32>(t + 7u, tr)), xv, a7);
        a8 = fma(textureLoad(pw, vec2<u32>(t + 8u, tr)), xv, a8);
        a9 = fma(textureLoad(pw, vec2<u32>(t + 9u, tr)), xv, a9);
        a10 = fma(textureLoad(pw, vec2<u32>(t + 10u, tr)), xv, a10);
        a11 = fma(textureLoad(pw, vec2<u32>(t + 11u, tr)), xv, a11);
        a12 = fma(textureLoad(pw, vec2<u32>(t + 12u, tr)), xv, a12);
        a13 = fma(textureLoad(pw, vec2<u32>(t + 13u, tr)), xv, a13);
        a14 = fma(textureLoad(pw, vec2<u32>(t + 14u, tr)), xv, a14);
        a15 = fma(textureLoad(pw, vec2<u32>(t + 15u, tr)), xv, a15);
    }
    if (g.x < bands) {
        put(band, 0u, a0);
        put(band, 1u, a1);
        put(band, 2u, a2);
        put(band, 3u, a3);
        put(band, 4u, a4);
        put(band, 5u, a5);
        put(band, 6u, a6);
        put(band, 7u, a7);
        put(band, 8u, a8);
        put(band, 9u, a9);
        put(band, 10u, a10);
        put(band, 11u, a11);
        put(band, 12u, a12);
        put(band, 13u, a13);
        put(band, 14u, a14);
        put(band, 15u, a15);
    }
}
