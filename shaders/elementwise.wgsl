// Small elementwise and reduction kernels that the layers glue together with.
//   add:        y = a + b                      (residual connections; y may alias neither)
//   scale:      y = alpha * x                  (in place allowed: x and y are the same binding)
//   bias_grad:  db[c] += sum_r dy[r, c]        (the backward of a broadcast bias; one thread per column)
//   relu_forward / relu_backward: DistilBERT's pre_classifier activation (backward from the output)
//   tanh_forward / tanh_backward: the pooler's activation; tanh is computed from exp with clamping
//   since some drivers return NaN for large arguments.
// Elementwise kernels index the 2-D dispatch as (wg.y * nwg.x + wg.x) * 256 + lid.

// Params (n, cols, alpha) is declared in src/shaders/params.rs (`params::elementwise`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn index(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.n) { return; }
    y[i] = a[i] + b[i];
}

@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.n) { return; }
    y[i] = p.alpha * y[i];
}

fn tanh_safe(x: f32) -> f32 {
    let z = clamp(x, -15.0, 15.0);
    let e = exp(2.0 * z);
    return (e - 1.0) / (e + 1.0);
}

@compute @workgroup_size(256)
fn tanh_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.n) { return; }
    y[i] = tanh_safe(a[i]);
}

// a = tanh output, b = dy, y = dx: dx = dy * (1 - t^2)
@compute @workgroup_size(256)
fn tanh_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.n) { return; }
    let t = a[i];
    y[i] = b[i] * (1.0 - t * t);
}

@compute @workgroup_size(256)
fn relu_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.n) { return; }
    y[i] = max(a[i], 0.0);
}

// a = relu output, b = dy, y = dx: dx = dy where the output is positive, else 0
@compute @workgroup_size(256)
fn relu_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wg, nwg, lid);
    if (i >= p.n) { return; }
    y[i] = select(0.0, b[i], a[i] > 0.0);
}

// a = dy (rows = n / cols, cols), y = db (cols)
@compute @workgroup_size(256)
fn bias_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.cols) { return; }
    let rows = p.n / p.cols;
    var s = 0.0;
    for (var r = 0u; r < rows; r++) { s += a[r * p.cols + c]; }
    y[c] += s;
}
