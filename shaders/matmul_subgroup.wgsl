// Batched matmul for CPU drivers whose subgroups are 8 SIMD lanes (lavapipe), same contract as
// matmul_vec4.wgsl: C[b] = alpha * op(A[b]) * op(B[b]) (+ bias) (then GELU) (+ C[b] when ACCUMULATE).
//
// On lavapipe an invocation is a SIMD lane. One workgroup is one subgroup of 8 lanes that share R
// rows of C and own 4G columns each (G groups of 4): per 4 steps of k the 8 lanes load the R rows'
// values of A once between them (R/8 vec4 loads per lane; 4 when A is stored transposed) and hand
// them round with subgroupShuffle (a register permute), and each lane loads only its own columns
// of B (4G vec4 loads), for 16RG multiply-adds per lane.
//
// Two entry points, which differ in how they load a vec4 (`av`, `bv`; src/shaders/mod.rs writes
// them and the entry point, each tile a function with its rows unrolled, after this file):
// - `matmul_subgroup` reads the storage buffers a and b (SUBGROUP_TILE: 24 x 1). Lavapipe (Mesa
//   25.0, LLVM 15, read from the JIT's code with perf and gdb) loads a storage vec4 that differs
//   per lane lane by lane, each component behind its own bounds check and branch: about 36
//   instructions a lane, so these loads, not the multiply-adds, are most of the kernel's time
//   (a variant without them ran 3-4x faster).
// - `matmul_subgroup_tex` reads textures the product first copied A and B into (a transfer,
//   src/kernels/matmul.rs): a texel is one 16-byte load a lane and a transpose, about 40
//   instructions for all 8 lanes (SUBGROUP_TEX_TILES: 32 x 1 where B is stored (N, K), 16 x 2
//   otherwise). Chosen on CPU adapters.
// Accumulators and loads must stay in registers, which loops over arrays do not on lavapipe, hence
// the unrolled rows; with each row's multiply-adds right after its values, fewer are held at once.
// The overrides, Params and p come from matmul_common.wgsl before this file. It needs the
// `subgroups` feature and a subgroup of exactly 8 (src/gpu/device.rs asks for both) and the vec4
// contract (Matmul::vec4_fits).

// The bindings a, b, bias, c (vec4s), gelu4 and store4 come from matmul_vec4_io.wgsl; the textures
// ta, tb of `matmul_subgroup_tex` from src/shaders/mod.rs.

// Thread lid.x of workgroup (x, y, z), tile R rows x G groups: rows r0 = Ry .. Ry+R-1 (shared),
// columns c0 = 4(8Gx + lid.x) .. c0+3 and the same 32g further for each group g < G (its own),
// matrix z of the batch. Past the edges, loads are clamped and stores skipped.
fn setup(wg: vec3<u32>, lid: u32, rows: u32, groups: u32) -> Setup {
    var s: Setup;
    s.r0 = wg.y * rows;
    s.c0 = (wg.x * 8u * groups + lid) * 4u;
    s.base_a = batch_base(wg.z, p.off_a, p.stride_a, p.stride_a2) / 4u;
    s.base_b = batch_base(wg.z, p.off_b, p.stride_b, p.stride_b2) / 4u;
    s.base_c = batch_base(wg.z, p.off_c, p.stride_c, p.stride_c2) / 4u;
    return s;
}

struct Setup { r0: u32, c0: u32, base_a: u32, base_b: u32, base_c: u32 }

// op(B) at k = 4q..4q+3 (one vec4 per k), columns c0..c0+3: the four y's of one step.
fn load_b(s: Setup, q: u32) -> mat4x4<f32> {
    let lb4 = p.ldb / 4u;
    let last_c = p.n - 1u;
    if (TRANS_B) {
        // B stored (N, K): four rows along k, transposed in registers
        let v0 = bv(s.base_b + min(s.c0, last_c) * lb4 + q);
        let v1 = bv(s.base_b + min(s.c0 + 1u, last_c) * lb4 + q);
        let v2 = bv(s.base_b + min(s.c0 + 2u, last_c) * lb4 + q);
        let v3 = bv(s.base_b + min(s.c0 + 3u, last_c) * lb4 + q);
        return transpose(mat4x4<f32>(v0, v1, v2, v3));
    }
    let o = s.base_b + min(s.c0, last_c) / 4u + 4u * q * lb4;
    return mat4x4<f32>(bv(o), bv(o + lb4), bv(o + 2u * lb4), bv(o + 3u * lb4));
}

// This lane's share of op(A) at k = 4q..4q+3 for the R rows: slot h holds, when A is stored (M, K),
// row r0 + lid + 8h's vec4 along k; when A is stored (K, M), rows r0 + 4*lid .. +3 at k = 4q + h.
fn load_a(s: Setup, q: u32, lid: u32, h: u32) -> vec4<f32> {
    let la4 = p.lda / 4u;
    let last_r = p.m - 1u;
    if (TRANS_A) {
        return av(s.base_a + (4u * q + h) * la4 + min(s.r0 / 4u + lid, last_r / 4u));
    }
    return av(s.base_a + min(s.r0 + lid + 8u * h, last_r) * la4 + q);
}
