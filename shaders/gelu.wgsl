// GELU exactly as BERT's `gelu` (erf form, not the tanh approximation), and its backward.
//   y = 0.5 x (1 + erf(x / sqrt 2));  dy/dx = 0.5 (1 + erf(x / sqrt 2)) + x * exp(-x^2 / 2) / sqrt(2 pi)
// Elementwise over n values; the 2-D dispatch index is (wg.y * nwg.x + wg.x) * 256 + lid.

struct Params { n: u32, off_x: u32, off_y: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
// gelu_backward: x (1) is the pre-activation input, then dy and dx
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

// erf_f32 and gelu come from erf.wgsl (prepended by src/shaders.rs).

fn index(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn gelu_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.n) { return; }
    y[p.off_y + i] = gelu(x[p.off_x + i]);
}

@compute @workgroup_size(256)
fn gelu_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.n) { return; }
    let v = x[p.off_x + i];
    let cdf = 0.5 * (1.0 + erf_f32(v * 0.7071067811865476));
    let pdf = 0.3989422804014327 * exp(-0.5 * v * v);
    dx[p.off_y + i] = dy[p.off_y + i] * (cdf + v * pdf);
}
