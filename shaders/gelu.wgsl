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

// erf to f32 accuracy: Taylor series below 1, Abramowitz-Stegun 7.1.26 above (abs error < 1.5e-7).
// (Kept identical to matmul.wgsl's; each shader file must validate on its own.)
fn erf_f32(x: f32) -> f32 {
    let ax = abs(x);
    if (ax < 1.0) {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)); truncation error < 1.1e-9 here.
        let z = x * x;
        var s = 1.0 / 76204800.0;
        s = -1.0 / 6894720.0 + z * s;
        s = 1.0 / 685440.0 + z * s;
        s = -1.0 / 75600.0 + z * s;
        s = 1.0 / 9360.0 + z * s;
        s = -1.0 / 1320.0 + z * s;
        s = 1.0 / 216.0 + z * s;
        s = -1.0 / 42.0 + z * s;
        s = 1.0 / 10.0 + z * s;
        s = -1.0 / 3.0 + z * s;
        s = 1.0 + z * s;
        return 1.1283791670955126 * x * s;
    }
    let t = 1.0 / (1.0 + 0.3275911 * ax);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let r = 1.0 - poly * exp(-ax * ax);
    return select(-r, r, x >= 0.0);
}

fn gelu(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_f32(x * 0.7071067811865476));
}

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
