// erf to f32 accuracy, BERT's erf-form GELU and GPT-2's tanh form, shared by gelu.wgsl,
// matvec_packed.wgsl, matmul.wgsl, matmul_vec4.wgsl and matmul_subgroup.wgsl: src/shaders/mod.rs puts this file in front of each of them (WGSL has no include),
// and the composed source is what naga and the browser validate.

// erf to f32 accuracy: Taylor series below 1, Abramowitz-Stegun 7.1.26 above (abs error < 1.5e-7).
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

// tanh(u) without overflow: WGSL's tanh may be exp-based, and exp(2u) overflows for |u| > 44
fn tanh_safe(u: f32) -> f32 {
    let e = exp(-2.0 * abs(u));
    let t = (1.0 - e) / (1.0 + e);
    return select(-t, t, u >= 0.0);
}

fn gelu_tanh_u(v: f32) -> f32 {
    return 0.7978845608028654 * (v + 0.044715 * v * v * v);
}

// GPT-2's gelu_new: 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3)))
fn gelu_tanh(v: f32) -> f32 {
    return 0.5 * v * (1.0 + tanh_safe(gelu_tanh_u(v)));
}
