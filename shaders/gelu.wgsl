// GELU exactly as BERT's `gelu` (erf form), and its backward:
//   y = 0.5 x (1 + erf(x / sqrt 2));  dy/dx = 0.5 (1 + erf(x / sqrt 2)) + x * exp(-x^2 / 2) / sqrt(2 pi)
// With TANH, GPT-2's `gelu_new` (transformers' NewGELUActivation, the tanh approximation):
//   y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
//   dy/dx = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// Elementwise over n values; the 2-D dispatch index is (wg.y * nwg.x + wg.x) * 256 + lid.

// Params (n) is declared in src/shaders/params.rs (`params::gelu`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
// gelu_backward: x (1) is the pre-activation input, then dy and dx
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

// erf_f32 and gelu come from erf.wgsl (prepended by src/shaders/mod.rs).

override TANH: bool = false;

// tanh_safe and gelu_tanh_u come from erf.wgsl too.

fn index(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn gelu_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.n) { return; }
    let v = x[i];
    if (TANH) {
        y[i] = gelu_tanh(v);
    } else {
        y[i] = gelu(v);
    }
}

@compute @workgroup_size(256)
fn gelu_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.n) { return; }
    let v = x[i];
    if (TANH) {
        let t = tanh_safe(gelu_tanh_u(v));
        let du = 0.7978845608028654 * (1.0 + 0.134145 * v * v);
        dx[i] = dy[i] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du);
    } else {
        let cdf = 0.5 * (1.0 + erf_f32(v * 0.7071067811865476));
        let pdf = 0.3989422804014327 * exp(-0.5 * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}
