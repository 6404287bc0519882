// Gated linear units, the feed-forward of ModernBERT (GeGLU) and of Llama-shaped models (SwiGLU):
//   u (rows, 2 * width) holds [a | b] side by side (one projection's two halves, as transformers'
//   `Wi(x).chunk(2)` or gate_proj beside up_proj); y (rows, width) = act(a) * b.
//   backward: da = dy * b * act'(a), db = dy * act(a), into du (rows, 2 * width) in the same layout.
// ACT: 0 = GELU (erf, BERT's "gelu"), 1 = GELU (tanh, "gelu_pytorch_tanh"), 2 = SiLU (x sigmoid(x)).
// One thread per output element; the 2-D dispatch index is (wg.y * nwg.x + wg.x) * 256 + lid.

// Params (rows, width) is declared in src/shaders/params.rs (`params::glu`), whose WGSL text src/shaders/mod.rs puts in front of this file.

override ACT: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
// glu_backward: u (1), then dy and du
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> du: array<f32>;

// erf_f32, gelu, tanh_safe, gelu_tanh_u and gelu_tanh come from erf.wgsl (prepended by src/shaders/mod.rs).

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-clamp(x, -80.0, 80.0)));
}

fn act(x: f32) -> f32 {
    if (ACT == 1u) { return gelu_tanh(x); }
    if (ACT == 2u) { return x * sigmoid(x); }
    return gelu(x);
}

fn act_grad(x: f32) -> f32 {
    if (ACT == 1u) {
        let t = tanh_safe(gelu_tanh_u(x));
        let du = 0.7978845608028654 * (1.0 + 0.134145 * x * x);
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
    }
    if (ACT == 2u) {
        let s = sigmoid(x);
        return s * (1.0 + x * (1.0 - s));
    }
    let cdf = 0.5 * (1.0 + erf_f32(x * 0.7071067811865476));
    let pdf = 0.3989422804014327 * exp(-0.5 * x * x);
    return cdf + x * pdf;
}

fn index(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn glu_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.rows * p.width) { return; }
    let r = i / p.width;
    let j = i % p.width;
    let a = u[r * 2u * p.width + j];
    let b = u[r * 2u * p.width + p.width + j];
    y[i] = act(a) * b;
}

@compute @workgroup_size(256)
fn glu_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.rows * p.width) { return; }
    let r = i / p.width;
    let j = i % p.width;
    let at = r * 2u * p.width + j;
    let a = u[at];
    let b = u[at + p.width];
    let g = dy[i];
    du[at] = g * b * act_grad(a);
    du[at + p.width] = g * act(a);
}
