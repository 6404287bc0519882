// Batched matmul for CPU-backed adapters (lavapipe, SwiftShader), same contract as matmul.wgsl:
// C[b] = alpha * op(A[b]) * op(B[b]) (+ bias) (then GELU) (+ C[b] when ACCUMULATE).
//
// Why a second kernel: on a CPU driver the invocations of a workgroup run as SIMD lanes, workgroup
// memory is ordinary memory, barriers are coroutine switches, and a scalar load costs a loop over the
// lanes. What pays there is the number of load instructions per multiply-add, not data reuse through
// workgroup memory. So this kernel uses no workgroup memory and no barrier; every load is a vec4
// and each thread keeps a 4x8 block of C in registers: per 4 steps of k it issues 4 + 8 vec4 loads
// for 128 multiply-adds (the tiled kernel issues 8 scalar loads from workgroup memory for 16).
// Measured at M=512 on 2 cores: lavapipe (Mesa 25) 6.8-7.9 GFLOP/s against 1.4-1.9 for matmul.wgsl
// (where lavapipe offers subgroups, matmul_subgroup.wgsl does better still);
// Chromium's SwiftShader 1.1-2.5 GFLOP/s against 0.16-0.22 (TF.js 4.22's WebGPU backend: 0.17-0.41).
//
// Contract (checked by the Rust side, which otherwise uses matmul.wgsl): every offset, stride and
// row pitch (ld) is a multiple of 4 elements, K % 4 == 0, N % 4 == 0, and M % 4 == 0 when A is stored transposed; so each
// vec4 below is 4 consecutive floats of one row of the stored matrix. M and N need not be multiples of
// the 32x64 workgroup tile: rows and columns past the edge are clamped on load and skipped on store.

// The overrides, Params and p come from matmul_common.wgsl (prepended by src/shaders/mod.rs).

// The bindings a, b, bias, c (vec4s), gelu4 and store4 come from matmul_vec4_io.wgsl.

// The 4x4 transpose that turns 4 rows loaded along k into 4 values of k (on a CPU driver each vec4
// component is its own register, so this costs nothing).
fn col_x(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>) -> vec4<f32> { return vec4<f32>(v0.x, v1.x, v2.x, v3.x); }
fn col_y(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>) -> vec4<f32> { return vec4<f32>(v0.y, v1.y, v2.y, v3.y); }
fn col_z(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>) -> vec4<f32> { return vec4<f32>(v0.z, v1.z, v2.z, v3.z); }
fn col_w(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>) -> vec4<f32> { return vec4<f32>(v0.w, v1.w, v2.w, v3.w); }

// One workgroup: 32 rows x 64 columns of C. Thread (x, y): rows r0..r0+3, columns c0..c0+7; x walks
// rows so that the 8 SIMD lanes of a CPU driver load 8 different addresses (uniform loads are the slow
// case there).
@compute @workgroup_size(8, 8, 1)
fn matmul_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r0 = (wg.y * 8u + lid.x) * 4u;
    let c0 = (wg.x * 8u + lid.y) * 8u;
    let k4 = p.k / 4u;
    let la4 = p.lda / 4u;
    let lb4 = p.ldb / 4u;
    let base_a = batch_base(wg.z, p.off_a, p.stride_a, p.stride_a2) / 4u;
    let base_b = batch_base(wg.z, p.off_b, p.stride_b, p.stride_b2) / 4u;
    let last_r = p.m - 1u;
    let last_c = p.n - 1u;
    // Where each thread reads, in vec4 units: a row of the stored matrix per output row/column when
    // that matrix is stored along k, else one column block that moves down one row per k.
    let a_row0 = base_a + min(r0, last_r) * la4;
    let a_row1 = base_a + min(r0 + 1u, last_r) * la4;
    let a_row2 = base_a + min(r0 + 2u, last_r) * la4;
    let a_row3 = base_a + min(r0 + 3u, last_r) * la4;
    let a_col = base_a + min(r0, last_r) / 4u;
    let b_row0 = base_b + min(c0, last_c) * lb4;
    let b_row1 = base_b + min(c0 + 1u, last_c) * lb4;
    let b_row2 = base_b + min(c0 + 2u, last_c) * lb4;
    let b_row3 = base_b + min(c0 + 3u, last_c) * lb4;
    let b_row4 = base_b + min(c0 + 4u, last_c) * lb4;
    let b_row5 = base_b + min(c0 + 5u, last_c) * lb4;
    let b_row6 = base_b + min(c0 + 6u, last_c) * lb4;
    let b_row7 = base_b + min(c0 + 7u, last_c) * lb4;
    let b_col_lo = base_b + min(c0, last_c) / 4u;
    let b_col_hi = base_b + min(c0 + 4u, last_c) / 4u;

    // acc_i_lo / acc_i_hi: row r0+i, columns c0..c0+3 / c0+4..c0+7
    var acc0_lo = vec4<f32>(0.0); var acc0_hi = vec4<f32>(0.0);
    var acc1_lo = vec4<f32>(0.0); var acc1_hi = vec4<f32>(0.0);
    var acc2_lo = vec4<f32>(0.0); var acc2_hi = vec4<f32>(0.0);
    var acc3_lo = vec4<f32>(0.0); var acc3_hi = vec4<f32>(0.0);
    for (var q = 0u; q < k4; q++) {
        // x_kk: op(A) at rows r0..r0+3, k = 4q+kk
        var x0: vec4<f32>; var x1: vec4<f32>; var x2: vec4<f32>; var x3: vec4<f32>;
        if (TRANS_A) {
            let o = a_col + 4u * q * la4;
            x0 = a[o]; x1 = a[o + la4]; x2 = a[o + 2u * la4]; x3 = a[o + 3u * la4];
        } else {
            let v0 = a[a_row0 + q]; let v1 = a[a_row1 + q]; let v2 = a[a_row2 + q]; let v3 = a[a_row3 + q];
            x0 = col_x(v0, v1, v2, v3); x1 = col_y(v0, v1, v2, v3);
            x2 = col_z(v0, v1, v2, v3); x3 = col_w(v0, v1, v2, v3);
        }
        // y_kk_lo / y_kk_hi: op(B) at k = 4q+kk, columns c0..c0+3 / c0+4..c0+7
        var y0_lo: vec4<f32>; var y1_lo: vec4<f32>; var y2_lo: vec4<f32>; var y3_lo: vec4<f32>;
        var y0_hi: vec4<f32>; var y1_hi: vec4<f32>; var y2_hi: vec4<f32>; var y3_hi: vec4<f32>;
        if (TRANS_B) {
            let v0 = b[b_row0 + q]; let v1 = b[b_row1 + q]; let v2 = b[b_row2 + q]; let v3 = b[b_row3 + q];
            let v4 = b[b_row4 + q]; let v5 = b[b_row5 + q]; let v6 = b[b_row6 + q]; let v7 = b[b_row7 + q];
            y0_lo = col_x(v0, v1, v2, v3); y1_lo = col_y(v0, v1, v2, v3);
            y2_lo = col_z(v0, v1, v2, v3); y3_lo = col_w(v0, v1, v2, v3);
            y0_hi = col_x(v4, v5, v6, v7); y1_hi = col_y(v4, v5, v6, v7);
            y2_hi = col_z(v4, v5, v6, v7); y3_hi = col_w(v4, v5, v6, v7);
        } else {
            let o = 4u * q * lb4;
            y0_lo = b[b_col_lo + o]; y1_lo = b[b_col_lo + o + lb4];
            y2_lo = b[b_col_lo + o + 2u * lb4]; y3_lo = b[b_col_lo + o + 3u * lb4];
            y0_hi = b[b_col_hi + o]; y1_hi = b[b_col_hi + o + lb4];
            y2_hi = b[b_col_hi + o + 2u * lb4]; y3_hi = b[b_col_hi + o + 3u * lb4];
        }
        acc0_lo = fma(vec4<f32>(x0.x), y0_lo, acc0_lo); acc0_hi = fma(vec4<f32>(x0.x), y0_hi, acc0_hi);
        acc1_lo = fma(vec4<f32>(x0.y), y0_lo, acc1_lo); acc1_hi = fma(vec4<f32>(x0.y), y0_hi, acc1_hi);
        acc2_lo = fma(vec4<f32>(x0.z), y0_lo, acc2_lo); acc2_hi = fma(vec4<f32>(x0.z), y0_hi, acc2_hi);
        acc3_lo = fma(vec4<f32>(x0.w), y0_lo, acc3_lo); acc3_hi = fma(vec4<f32>(x0.w), y0_hi, acc3_hi);
        acc0_lo = fma(vec4<f32>(x1.x), y1_lo, acc0_lo); acc0_hi = fma(vec4<f32>(x1.x), y1_hi, acc0_hi);
        acc1_lo = fma(vec4<f32>(x1.y), y1_lo, acc1_lo); acc1_hi = fma(vec4<f32>(x1.y), y1_hi, acc1_hi);
        acc2_lo = fma(vec4<f32>(x1.z), y1_lo, acc2_lo); acc2_hi = fma(vec4<f32>(x1.z), y1_hi, acc2_hi);
        acc3_lo = fma(vec4<f32>(x1.w), y1_lo, acc3_lo); acc3_hi = fma(vec4<f32>(x1.w), y1_hi, acc3_hi);
        acc0_lo = fma(vec4<f32>(x2.x), y2_lo, acc0_lo); acc0_hi = fma(vec4<f32>(x2.x), y2_hi, acc0_hi);
        acc1_lo = fma(vec4<f32>(x2.y), y2_lo, acc1_lo); acc1_hi = fma(vec4<f32>(x2.y), y2_hi, acc1_hi);
        acc2_lo = fma(vec4<f32>(x2.z), y2_lo, acc2_lo); acc2_hi = fma(vec4<f32>(x2.z), y2_hi, acc2_hi);
        acc3_lo = fma(vec4<f32>(x2.w), y2_lo, acc3_lo); acc3_hi = fma(vec4<f32>(x2.w), y2_hi, acc3_hi);
        acc0_lo = fma(vec4<f32>(x3.x), y3_lo, acc0_lo); acc0_hi = fma(vec4<f32>(x3.x), y3_hi, acc0_hi);
        acc1_lo = fma(vec4<f32>(x3.y), y3_lo, acc1_lo); acc1_hi = fma(vec4<f32>(x3.y), y3_hi, acc1_hi);
        acc2_lo = fma(vec4<f32>(x3.z), y3_lo, acc2_lo); acc2_hi = fma(vec4<f32>(x3.z), y3_hi, acc2_hi);
        acc3_lo = fma(vec4<f32>(x3.w), y3_lo, acc3_lo); acc3_hi = fma(vec4<f32>(x3.w), y3_hi, acc3_hi);
    }
    let base_c = batch_base(wg.z, p.off_c, p.stride_c, p.stride_c2) / 4u;
    store4(base_c, r0, c0, acc0_lo); store4(base_c, r0, c0 + 4u, acc0_hi);
    store4(base_c, r0 + 1u, c0, acc1_lo); store4(base_c, r0 + 1u, c0 + 4u, acc1_hi);
    store4(base_c, r0 + 2u, c0, acc2_lo); store4(base_c, r0 + 2u, c0 + 4u, acc2_hi);
    store4(base_c, r0 + 3u, c0, acc3_lo); store4(base_c, r0 + 3u, c0 + 4u, acc3_hi);
}
