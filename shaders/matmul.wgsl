// Batched matmul: C[b] = alpha * op(A[b]) * op(B[b]) (+ bias) (then GELU) (+ C[b] when ACCUMULATE).
//   op(A) is (M, K): A stored (M, K) row-major, or (K, M) when TRANS_A.
//   op(B) is (K, N): B stored (K, N) row-major, or (N, K) when TRANS_B (x @ W^T with torch's W).
//   Stored rows are lda/ldb/ldc apart, and batches may be two-level (see matmul_common.wgsl).
// Register-tiled: a 16x16 workgroup computes a 64x64 tile of C, each thread a 4x4 block of outputs
// strided by 16 (so stores are coalesced), staging 64x16 slices of A and B in workgroup memory.
// The backward of C = A B is dA = dC B^T (TRANS_B) and dB = A^T dC (TRANS_A): the same kernel.

// The overrides, Params and p come from matmul_common.wgsl (prepended by src/shaders/mod.rs).

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> a_tile: array<array<f32, 64>, 16>; // [k][m]
var<workgroup> b_tile: array<array<f32, 64>, 16>; // [k][n]

// erf_f32 and gelu come from erf.wgsl (prepended by src/shaders/mod.rs).

@compute @workgroup_size(16, 16, 1)
fn matmul(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let bi = wg.z;
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let tx = lid.x;
    let ty = lid.y;
    let flat = ty * 16u + tx;
    let base_a = batch_base(bi, p.off_a, p.stride_a, p.stride_a2);
    let base_b = batch_base(bi, p.off_b, p.stride_b, p.stride_b2);

    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) { for (var j = 0u; j < 4u; j++) { acc[i][j] = 0.0; } }

    let ktiles = (p.k + TK - 1u) / TK;
    for (var kt = 0u; kt < ktiles; kt++) {
        let k0 = kt * TK;
        // 1024 elements of each tile, 4 per thread; the fastest-varying thread index walks the
        // contiguous dimension of the stored matrix so loads coalesce.
        for (var l = 0u; l < 4u; l++) {
            let idx = flat + l * 256u;
            var mm: u32; var kk: u32;
            if (TRANS_A) { kk = idx / TILE; mm = idx % TILE; } else { mm = idx / TK; kk = idx % TK; }
            let gm = row0 + mm;
            let gk = k0 + kk;
            var v = 0.0;
            if (gm < p.m && gk < p.k) {
                if (TRANS_A) { v = a[base_a + gk * p.lda + gm]; } else { v = a[base_a + gm * p.lda + gk]; }
            }
            a_tile[kk][mm] = v;

            var nn: u32; var kb: u32;
            if (TRANS_B) { nn = idx / TK; kb = idx % TK; } else { kb = idx / TILE; nn = idx % TILE; }
            let gn = col0 + nn;
            let gkb = k0 + kb;
            var w = 0.0;
            if (gn < p.n && gkb < p.k) {
                if (TRANS_B) { w = b[base_b + gn * p.ldb + gkb]; } else { w = b[base_b + gkb * p.ldb + gn]; }
            }
            b_tile[kb][nn] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) { ar[i] = a_tile[kk][ty + 16u * i]; }
            for (var j = 0u; j < 4u; j++) { br[j] = b_tile[kk][tx + 16u * j]; }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(ar[i], br[j], acc[i][j]); }
            }
        }
        workgroupBarrier();
    }

    let base_c = batch_base(bi, p.off_c, p.stride_c, p.stride_c2);
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + ty + 16u * i;
        if (r >= p.m) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + tx + 16u * j;
            if (col >= p.n) { continue; }
            var v = p.alpha * acc[i][j];
            if (HAS_BIAS) { v += bias[p.off_bias + col]; }
            if (GELU) { v = gelu(v); }
            let ci = base_c + r * p.ldc + col;
            if (ACCUMULATE) { v += c[ci]; }
            c[ci] = v;
        }
    }
}
