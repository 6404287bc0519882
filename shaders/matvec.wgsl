// Products with a few rows, for decoding one token at a time (src/kernels/matvec.rs):
//
//   y[y_off + r*N + n] = sum_k x[x_off + r*K + k] * W(k, n) (+ bias[n]),  r < rows
//
// W is stored (K, N) (GPT-2's Conv1D) or, with TRANS_W, (N, K) (torch's Linear; the tied LM head).
// Each weight is read once per row, in vec4s. A workgroup is TX threads over outputs times TY
// threads over k whose partial sums it adds in workgroup memory: TY = 1 on CPU adapters (no
// barrier work), TY > 1 on GPUs, so that neighbouring threads read neighbouring weights and one
// output's reduction is split across them.

override TRANS_W: bool = false;
override HAS_BIAS: bool = false;
override TX: u32 = 64u;
override TY: u32 = 1u;

// MatvecParams (rows, n, k, x_off, y_off, off_w, off_bias) is declared in src/shaders/params.rs (`params::matvec`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> mp: MatvecParams;
@group(0) @binding(1) var<storage, read> mx: array<f32>;
@group(0) @binding(2) var<storage, read> mw: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> mbias: array<f32>;
@group(0) @binding(4) var<storage, read_write> my: array<f32>;

fn x4(i: u32) -> vec4<f32> { return vec4<f32>(mx[i], mx[i + 1u], mx[i + 2u], mx[i + 3u]); }

// partial sums of the TY threads that share outputs (vec4: a Conv1D thread owns 4 columns)
var<workgroup> part: array<vec4<f32>, 256>;

@compute @workgroup_size(TX * TY)
fn matvec(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let group = wg.x + wg.y * nwg.x;
    if (TRANS_W) {
        // output n = one row of W (N, K); the TY threads of an output read consecutive vec4s of
        // it. A lane past the last output reads the last row and writes nothing.
        let tx = lid / TY;
        let ty = lid % TY;
        let n = group * TX + tx;
        let k4 = mp.k / 4u;
        let wb = mp.off_w / 4u + min(n, mp.n - 1u) * k4;
        for (var r = 0u; r < mp.rows; r++) {
            let xb = mp.x_off + r * mp.k;
            var acc = vec4<f32>(0.0);
            var acc2 = vec4<f32>(0.0);
            var q = ty;
            for (; q + TY < k4; q += 2u * TY) {
                acc = fma(mw[wb + q], x4(xb + 4u * q), acc);
                acc2 = fma(mw[wb + q + TY], x4(xb + 4u * (q + TY)), acc2);
            }
            if (q < k4) { acc = fma(mw[wb + q], x4(xb + 4u * q), acc); }
            acc += acc2;
            if (TY > 1u) {
                part[lid] = acc;
                workgroupBarrier();
                if (ty == 0u) {
                    for (var j = 1u; j < TY; j++) { acc += part[lid + j]; }
                }
                workgroupBarrier();
            }
            if (ty == 0u && n < mp.n) {
                var s = acc.x + acc.y + acc.z + acc.w;
                if (HAS_BIAS) { s += mbias[mp.off_bias + n]; }
                my[mp.y_off + r * mp.n + n] = s;
            }
        }
    } else {
        // columns 4c..4c+3 of W (K, N); the TY threads of a column quad take every TY-th k. A lane
        // past the last column reads the last column's weights (no branch around the loop: CPU
        // drivers run it without a divergence mask) and writes nothing.
        let tx = lid % TX;
        let ty = lid / TX;
        let c = group * TX + tx;
        let n4 = mp.n / 4u;
        let cc = min(c, n4 - 1u);
        for (var r = 0u; r < mp.rows; r++) {
            let xb = mp.x_off + r * mp.k;
            let wb = mp.off_w / 4u + cc;
            var acc = vec4<f32>(0.0);
            var acc2 = vec4<f32>(0.0);
            var k = ty;
            for (; k + TY < mp.k; k += 2u * TY) {
                acc = fma(mw[wb + k * n4], vec4<f32>(mx[xb + k]), acc);
                acc2 = fma(mw[wb + (k + TY) * n4], vec4<f32>(mx[xb + k + TY]), acc2);
            }
            if (k < mp.k) { acc = fma(mw[wb + k * n4], vec4<f32>(mx[xb + k]), acc); }
            acc += acc2;
            if (TY > 1u) {
                part[lid] = acc;
                workgroupBarrier();
                if (ty == 0u) {
                    for (var j = 1u; j < TY; j++) { acc += part[lid + j * TX]; }
                }
                workgroupBarrier();
            }
            if (ty == 0u && c < n4) {
                if (HAS_BIAS) {
                    let b = mp.off_bias + 4u * c;
                    acc += vec4<f32>(mbias[b], mbias[b + 1u], mbias[b + 2u], mbias[b + 3u]);
                }
                let y = mp.y_off + r * mp.n + 4u * c;
                my[y] = acc.x;
                my[y + 1u] = acc.y;
                my[y + 2u] = acc.z;
                my[y + 3u] = acc.w;
            }
        }
    }
}
