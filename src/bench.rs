//! Kernel benchmarks: matmul GFLOP/s at BERT's shapes and softmax/layernorm GB/s, natively
//! (`bertlab-bench`) and in the browser (www/bench.html). Each case runs `reps` dispatches in one
//! step after a warm-up step, and the clock stops when a 4-byte readback of the output arrives.

use crate::gpu::{DType, Gpu, GpuBuf, GpuError, Step};
use crate::kernels::layernorm::{self, LnParams};
use crate::kernels::matmul::{Kernel, Matmul};
use crate::kernels::softmax;

#[derive(Debug, Clone)]
pub struct BenchLine {
    pub name: String,
    /// GFLOP/s for matmul, GB/s for the memory-bound kernels.
    pub rate: f64,
    pub unit: &'static str,
    pub ms_per_call: f64,
}

impl std::fmt::Display for BenchLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<52} {:>9.2} {:<7} {:>10.3} ms/call", self.name, self.rate, self.unit, self.ms_per_call)
    }
}

pub struct BenchOptions {
    /// Rows of the activations (4096 in the full benchmark).
    pub m: usize,
    pub reps: usize,
}

async fn time_case(
    gpu: &Gpu,
    now: &dyn Fn() -> f64,
    reps: usize,
    out: &GpuBuf,
    record: &dyn Fn(&mut Step) -> Result<(), GpuError>,
) -> Result<f64, GpuError> {
    // warm-up: builds pipelines, faults in memory
    let mut step = gpu.begin_step("bench-warmup");
    record(&mut step)?;
    let rb = step.read_back(out, 0, 1)?;
    step.submit().await?;
    rb.f32(gpu).await?;
    let t0 = now();
    let mut step = gpu.begin_step("bench");
    for _ in 0..reps {
        record(&mut step)?;
    }
    let rb = step.read_back(out, 0, 1)?;
    step.submit().await?;
    rb.f32(gpu).await?;
    Ok((now() - t0) / reps as f64)
}

/// `now` returns milliseconds (Instant natively, performance.now() in the browser); `report` gets
/// each line as soon as it is measured.
pub async fn run(gpu: &Gpu, opts: &BenchOptions, now: &dyn Fn() -> f64, report: &mut dyn FnMut(&BenchLine)) -> Result<Vec<BenchLine>, GpuError> {
    let mut lines = Vec::new();
    let m = opts.m;
    let mut push = |l: BenchLine, lines: &mut Vec<BenchLine>| {
        report(&l);
        lines.push(l);
    };
    // (hidden, out) pairs: BERT-tiny's fused QKV, BERT-mini's FFN, MiniLM's FFN, BERT-base's FFN.
    for (k, n) in [(128usize, 384usize), (256, 1024), (384, 1536), (768, 3072)] {
        let filled = |label: &str, len: usize, v: f32| -> Result<GpuBuf, GpuError> {
            let b = gpu.zeros(label, len, DType::F32)?;
            gpu.write(&b, 0, &vec![v; len])?;
            Ok(b)
        };
        let x = filled("x", m * k, 0.01)?; // activations in
        let w = filled("w", n * k, 0.02)?; // torch-layout weight (out, in)
        let y = filled("y", m * n, 0.0)?; // activations out, and dY
        let dx = filled("dx", m * k, 0.0)?;
        let dw = filled("dw", n * k, 0.0)?;
        let cases: [(String, Matmul, &GpuBuf, &GpuBuf, &GpuBuf); 3] = [
            (format!("matmul Y = X W^T  {m}x{k} -> {n}   [A·Bᵀ]"), Matmul::new(m, n, k).trans_b(), &y, &x, &w),
            (format!("matmul dX = dY W  {m}x{n} -> {k}   [A·B]"), Matmul::new(m, k, n), &dx, &y, &w),
            (format!("matmul dW = dY^T X  {n}x{k}, K={m} [Aᵀ·B]"), Matmul::new(n, k, m).trans_a(), &dw, &y, &x),
        ];
        // both kernels, side by side in one run (see crate::kernels::matmul)
        for (name, mm, c, a, b) in cases {
            for kernel in [Kernel::Tiled, Kernel::Vec4] {
                let mm = mm.kernel(kernel);
                let ms = time_case(gpu, now, opts.reps, c, &|s| mm.record(s, c, a, b, None)).await?;
                let name = format!("{name} {}", if kernel == Kernel::Tiled { "tiled" } else { "vec4" });
                push(BenchLine { name, rate: mm.flops() / (ms * 1e6), unit: "GFLOP/s", ms_per_call: ms }, &mut lines);
            }
        }
    }
    // Memory-bound kernels: bytes = one read of the input and one write of the output.
    let shapes = [(format!("{m}x768"), m, 768usize), (format!("attention scores {}x128 (B*H*T x T)", m * 3), m * 3, 128)];
    for (label, rows, cols) in shapes {
        let n = rows * cols;
        let x = gpu.zeros("x", n, DType::F32)?;
        let y = gpu.zeros("y", n, DType::F32)?;
        gpu.write(&x, 0, &vec![0.5f32; n])?;
        let bytes = 2.0 * n as f64 * 4.0;
        let ms = time_case(gpu, now, opts.reps, &y, &|s| softmax::forward(s, &y, &x, None, rows, cols, 1.0)).await?;
        push(BenchLine { name: format!("softmax {label}"), rate: bytes / (ms * 1e6), unit: "GB/s", ms_per_call: ms }, &mut lines);
        let g = gpu.zeros("g", cols, DType::F32)?;
        let b = gpu.zeros("b", cols, DType::F32)?;
        let mean = gpu.zeros("mean", rows, DType::F32)?;
        let rstd = gpu.zeros("rstd", rows, DType::F32)?;
        let ms = time_case(gpu, now, opts.reps, &y, &|s| {
            layernorm::forward(s, &y, &mean, &rstd, &x, &g, &b, LnParams::default(), rows, cols, 1e-12)
        })
        .await?;
        push(BenchLine { name: format!("layernorm {label}"), rate: bytes / (ms * 1e6), unit: "GB/s", ms_per_call: ms }, &mut lines);
    }
    Ok(lines)
}
