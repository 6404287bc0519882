//! Kernel benchmarks: matmul GFLOP/s at BERT's shapes and softmax/layernorm GB/s, natively
//! (`bertlab bench`) and in the browser (www/bench.html). Each case runs `reps` dispatches in one
//! step after a warm-up step, and the clock stops when a 4-byte readback of the output arrives.

use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu, GpuBuf, GpuError, Step, View};
use crate::kernels::layernorm::{Affine, Fused, LayerNorm, Stats};
use crate::kernels::matmul::{Kernel, Matmul};
use crate::kernels::softmax::Softmax;
use crate::model::Mode;

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
        let (x, w, y) = (x.at([m, k]), w.at([n, k]), y.at([m, n]));
        let cases: [(String, Matmul, View, View, View); 3] = [
            (format!("matmul Y = X W^T  {m}x{k} -> {n}   [A·Bᵀ]"), Matmul::new(m, n, k).trans_b(), y, x, w),
            (format!("matmul dX = dY W  {m}x{n} -> {k}   [A·B]"), Matmul::new(m, k, n), dx.at([m, k]), y, w),
            (format!("matmul dW = dY^T X  {n}x{k}, K={m} [Aᵀ·B]"), Matmul::new(n, k, m).trans_a(), dw.at([n, k]), y, x),
        ];
        // both kernels, side by side in one run (see crate::kernels::matmul)
        for (name, mm, c, a, b) in cases {
            for kernel in Kernel::available(gpu) {
                let mm = mm.kernel(kernel);
                let ms = time_case(gpu, now, opts.reps, c.buf, &|s| mm.record(s, c, a, b, None)).await?;
                let name = format!("{name} {}", format!("{kernel:?}").to_lowercase());
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
        let ms = time_case(gpu, now, opts.reps, &y, &|s| Softmax::new(1.0).forward(s, y.at([rows, cols]), x.at([rows, cols]), None)).await?;
        push(BenchLine { name: format!("softmax {label}"), rate: bytes / (ms * 1e6), unit: "GB/s", ms_per_call: ms }, &mut lines);
        let g = gpu.zeros("g", cols, DType::F32)?;
        let b = gpu.zeros("b", cols, DType::F32)?;
        let mean = gpu.zeros("mean", rows, DType::F32)?;
        let rstd = gpu.zeros("rstd", rows, DType::F32)?;
        let ms = time_case(gpu, now, opts.reps, &y, &|s| {
            let stats = Stats { mean: &mean, rstd: &rstd };
            LayerNorm::new(1e-12).forward(s, y.at([rows, cols]), stats, x.at([rows, cols]), Affine { gamma: &g, beta: &b }, Fused::None)
        })
        .await?;
        push(BenchLine { name: format!("layernorm {label}"), rate: bytes / (ms * 1e6), unit: "GB/s", ms_per_call: ms }, &mut lines);
    }
    // Decoding's one-row products at GPT-2 small's shapes, both weight layouts and both workgroup
    // shapes: bytes = one read of the weight (they are read once per token)
    use crate::kernels::matvec::{Act, Matvec, Packed, Split};
    for (k, n, trans_w, what) in [(768usize, 2304usize, false, "c_attn (K, N)"), (3072, 768, false, "mlp c_proj (K, N)"), (768, 3072, true, "torch Linear (N, K)"), (768, 30000, true, "tied LM head (N, K)")] {
        let x = gpu.zeros("x", k, DType::F32)?;
        gpu.write(&x, 0, &vec![0.01f32; k])?;
        let w = gpu.zeros("w", n * k, DType::F32)?;
        gpu.write(&w, 0, &vec![0.02f32; n * k])?;
        let y = gpu.zeros("y", n, DType::F32)?;
        let bytes = (n * k) as f64 * 4.0;
        for split in Split::ALL {
            let mv = Matvec::new(1, n, k, trans_w).split(split);
            let ms = time_case(gpu, now, opts.reps, &y, &|s| mv.record(s, y.at([1, n]), x.at([1, k]), w.at(if trans_w { [n, k] } else { [k, n] }), None)).await?;
            push(BenchLine { name: format!("matvec 1x{k} -> {n} {what} {split:?}"), rate: bytes / (ms * 1e6), unit: "GB/s", ms_per_call: ms }, &mut lines);
        }
        // the same product from the weight packed into a texture (CPU adapters' decoding), and the
        // packing itself (bytes: one read of the weight)
        let packed = Packed::new(gpu, "packed", n, k)?;
        let ms = time_case(gpu, now, opts.reps, &y, &|s| packed.pack(s, w.at(if trans_w { [n, k] } else { [k, n] }), trans_w, 0)).await?;
        push(BenchLine { name: format!("pack {n}x{k} {what}"), rate: bytes / (ms * 1e6), unit: "GB/s", ms_per_call: ms }, &mut lines);
        let ms = time_case(gpu, now, opts.reps, &y, &|s| packed.record(s, y.at([1, n]), x.at([1, k]), None, Act::None)).await?;
        push(BenchLine { name: format!("matvec 1x{k} -> {n} {what} packed"), rate: bytes / (ms * 1e6), unit: "GB/s", ms_per_call: ms }, &mut lines);
    }
    Ok(lines)
}

// ---------------------------------------------------------------------------------------------
// Training-step benchmark: one classification fine-tuning step of a named BERT shape.

/// The named shapes of the step benchmark: (name, layers, hidden, heads). Intermediate is 4·hidden,
/// the vocabulary BERT's 30,522 and 512 positions, as in the published checkpoints of these names.
pub const STEP_CONFIGS: &[(&str, usize, usize, usize)] = &[("tiny", 2, 128, 2), ("mini", 4, 256, 4), ("small", 4, 512, 8), ("minilm", 6, 384, 12), ("base", 12, 768, 12)];

/// What one training-step benchmark measured; the same fields as `scripts/bench_step_torch.py`
/// prints, so that two runs on one machine give ratios.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepBench {
    pub engine: &'static str,
    pub device: String,
    pub config: String,
    /// The family's model_type ([`crate::model::family::Family`]).
    pub family: String,
    pub params: usize,
    pub layers: usize,
    pub hidden: usize,
    pub batch: usize,
    pub len: usize,
    /// Median over the timed steps, after warm-up (the clock stops when the step's loss is back).
    pub ms_per_step: f64,
    /// Median of forward passes alone (with the loss), same batch.
    pub ms_per_forward: f64,
    /// Median host time to record one step (batch upload, encoding; not the GPU's work).
    pub host_encode_ms: f64,
    pub dispatches_per_step: f64,
    pub submits_per_step: f64,
    pub bytes_written_per_step: f64,
    pub bytes_read_per_step: f64,
    pub buffers_created_per_step: f64,
    pub bind_groups_created_per_step: f64,
    /// One more step in profiling mode (each dispatch submitted and timed alone, by wall clock):
    /// (kernel, ms over the step, dispatches), slowest first. Absent from the PyTorch script.
    pub kernel_ms: Vec<(String, f64, u64)>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// Times `steps` full fine-tuning steps (dropout on, AdamW, [CLS] classification over 2 labels) of
/// the named shape at batch `b` × length `t`, after 2 warm-up steps, and a forward pass alone.
pub async fn step(gpu: &Gpu, config: &str, b: usize, t: usize, steps: usize) -> Result<StepBench> {
    step_of(gpu, crate::model::family::Family::Bert, config, b, t, steps).await
}

/// [`step`] for a model of `family` of the named shape ([`ModelConfig::small_of`]: the family's
/// vocabulary, positions, token types, embeddings and shared layers).
///
/// [`ModelConfig::small_of`]: crate::model::ModelConfig::small_of
pub async fn step_of(gpu: &Gpu, family: crate::model::family::Family, config: &str, b: usize, t: usize, steps: usize) -> Result<StepBench> {
    use crate::model::{Model, ModelConfig, Heads};
    let &(name, layers, hidden, heads) = STEP_CONFIGS
        .iter()
        .find(|c| c.0 == config)
        .ok_or_else(|| Error::Usage(format!("unknown config '{config}'; one of {}", STEP_CONFIGS.iter().map(|c| c.0).collect::<Vec<_>>().join(", "))))?;
    if b == 0 || t == 0 || t > 512 || steps == 0 {
        return Err(Error::Limit(format!("batch ({b}), steps ({steps}) and length ({t}, at most 512) must be positive")));
    }
    let cfg = ModelConfig::small_of(family, hidden, layers, heads);
    if family.is_gpt2() {
        return Err(Error::Usage("the step benchmark fine-tunes an encoder; GPT-2's speed is --generate's".into()));
    }
    let (model, _) = Model::new(gpu, cfg, Heads { lm: false, sop: false, num_labels: 2 }, None, 1)?;
    step_model(gpu, model, name, b, t, steps).await
}

/// A model directory's model for a benchmark (config.json and its weights, one file or shards; no
/// tokenizer needed): with a 2-label classifier (`classify`) or its LM head, and LoRA of rank `r`
/// on the family's default targets where given.
pub fn model_of_files(gpu: &Gpu, files: &std::collections::BTreeMap<String, Vec<u8>>, classify: bool, lora: Option<usize>) -> Result<crate::model::Model> {
    use crate::model::{Heads, Model, ModelConfig};
    let text = files.get("config.json").and_then(|b| std::str::from_utf8(b).ok()).ok_or_else(|| Error::Data { line: 0, message: "the model directory has no config.json".into() })?;
    let mut cfg = ModelConfig::from_json(text)?;
    if let Some(r) = lora {
        cfg.lora = Some(crate::model::config::LoraSpec::new(r, cfg.family));
        cfg.validate()?;
    }
    let names: Vec<&str> = files.keys().map(|k| k.as_str()).collect();
    let st = crate::io::model_dir::weights_of(files, crate::io::export::pick_weights_file(&names)?)?;
    let heads = if classify { Heads { lm: false, sop: false, num_labels: 2 } } else { Heads { lm: true, sop: false, num_labels: 0 } };
    Ok(Model::new(gpu, cfg, heads, Some(&st), 1)?.0)
}

/// The training step of `model` (a classifier) on random batches of (b, t): everything trains, or
/// with LoRA the adapters and the classifier (what `--mode lora:R` trains).
pub async fn step_model(gpu: &Gpu, mut model: crate::model::Model, name: &str, b: usize, t: usize, steps: usize) -> Result<StepBench> {
    use crate::kernels::adamw::AdamW;
    use crate::model::params::Part;
    use crate::model::Model;
    use crate::train::batches::HostBatch;
    use crate::train::trainer::train_step_timed;
    if b == 0 || t == 0 || t > model.cfg.max_tokens() || steps == 0 {
        return Err(Error::Limit(format!("batch ({b}), steps ({steps}) and length ({t}, at most {}) must be positive", model.cfg.max_tokens())));
    }
    let (family, layers, hidden) = (model.cfg.family, model.cfg.num_hidden_layers, model.cfg.hidden_size);
    let lora = model.cfg.lora.is_some();
    let params = model.params.total_params();
    model.params.set_trainable(gpu, |p| !lora || matches!(p.part, Part::Lora | Part::Classifier))?;
    let vocab = model.cfg.vocab_size as u32;
    let mut rng = crate::rng::Rng::new(7);
    let mut batch = || HostBatch {
        b,
        t,
        ids: (0..b * t).map(|_| 1000.min(vocab / 2) + rng.below(vocab.min(30_000) - 1000.min(vocab / 2))).collect(),
        types: vec![0; b * t],
        mask: vec![1; b * t],
        cls_labels: Some((0..b).map(|i| (i % 2) as i32).collect()),
        ..Default::default()
    };
    let opt = AdamW { lr: 1e-4, ..AdamW::default() };
    for k in 0..2 {
        train_step_timed(gpu, &mut model, &batch(), &opt, 1e-4, 0.01, Mode::Train { seed: k }).await?;
    }
    gpu.reset_counters();
    let (mut ms, mut host) = (Vec::new(), Vec::new());
    for k in 0..steps {
        let hb = batch();
        let t0 = crate::gpu::now_ms();
        let (_, encode_ms) = train_step_timed(gpu, &mut model, &hb, &opt, 1e-4, 0.01, Mode::Train { seed: 2 + k as u64 }).await?;
        ms.push(crate::gpu::now_ms() - t0);
        host.push(encode_ms);
    }
    let c = gpu.counters();
    let per = |x: u64| x as f64 / steps as f64;
    gpu.take_kernel_times();
    gpu.set_profiling(true);
    let profiled = train_step_timed(gpu, &mut model, &batch(), &opt, 1e-4, 0.01, Mode::Train { seed: 2 + steps as u64 }).await;
    gpu.set_profiling(false);
    profiled?;
    let kernel_ms = gpu.take_kernel_times();
    let hb = batch();
    let mut fwd = Vec::new();
    for _ in 0..steps.min(3) {
        let t0 = crate::gpu::now_ms();
        let batch = hb.to_gpu(gpu, &model.cfg)?;
        let mut step = gpu.begin_step("bench-forward");
        model.forward(gpu, &mut step, &batch, Mode::Eval)?;
        let rb = model.record_loss_readback(&mut step)?;
        step.submit().await?;
        Model::read_losses(gpu, rb).await?;
        fwd.push(crate::gpu::now_ms() - t0);
    }
    Ok(StepBench {
        engine: "bertlab",
        device: gpu.info.summary(),
        config: if lora { format!("{name}, LoRA r {}", model.cfg.lora.as_ref().map(|l| l.r).unwrap_or(0)) } else { name.to_string() },
        family: family.model_type().to_string(),
        params,
        layers,
        hidden,
        batch: b,
        len: t,
        ms_per_step: median(ms),
        ms_per_forward: median(fwd),
        host_encode_ms: median(host),
        dispatches_per_step: per(c.total_dispatches()),
        submits_per_step: per(c.submits),
        bytes_written_per_step: per(c.bytes_written),
        bytes_read_per_step: per(c.bytes_read_back),
        buffers_created_per_step: per(c.buffers_created),
        bind_groups_created_per_step: per(c.bind_groups_created),
        kernel_ms,
    })
}

impl std::fmt::Display for StepBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({}x{}, {:.1} M parameters) B={} T={}: {:.1} ms/step, {:.1} ms/forward, host encode {:.2} ms; per step {} dispatches, {} submits, {:.0} bytes written, {:.0} read, {} buffers and {} bind groups created",
            self.family, self.config, self.layers, self.hidden, self.params as f64 / 1e6, self.batch, self.len, self.ms_per_step, self.ms_per_forward, self.host_encode_ms, self.dispatches_per_step, self.submits_per_step, self.bytes_written_per_step, self.bytes_read_per_step, self.buffers_created_per_step, self.bind_groups_created_per_step
        )?;
        write!(f, "\n  one step kernel by kernel (each dispatch alone):")?;
        for (k, ms, n) in &self.kernel_ms {
            write!(f, "\n    {k:<32} {ms:>9.1} ms  {n:>4} dispatches")?;
        }
        Ok(())
    }
}

/// Named GPT-2 shapes for the generation benchmark: (name, layers, hidden, heads).
pub const GENERATE_CONFIGS: &[(&str, usize, usize, usize)] = &[("gpt2-tiny", 2, 64, 4), ("gpt2-4x256", 4, 256, 4), ("gpt2-small", 12, 768, 12)];

/// One generation run of the benchmark: `new` tokens after the prompt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenerateRun {
    pub new_tokens: usize,
    /// The prompt's one pass (its cache filled and the first token drawn).
    pub prefill_ms: f64,
    /// Every token after the first, one position each.
    pub decode_ms: f64,
    /// `new_tokens` over prefill and decoding together, as a person waiting for them sees it.
    pub tokens_per_s: f64,
    /// New tokens over decoding alone (the first token comes with the prefill).
    pub decode_tokens_per_s: f64,
    pub dispatches_per_token: f64,
    pub submits_per_token: f64,
    pub bytes_read_per_token: f64,
    pub buffers_created_per_token: f64,
    pub bind_groups_created_per_token: f64,
    /// The greedy ids, to compare with transformers' (`scripts/bench_generate_torch.py --model`).
    pub ids: Vec<u32>,
}

/// What the generation benchmark measured; `scripts/bench_generate_torch.py` prints the same
/// fields for transformers on the same machine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenerateBench {
    pub engine: &'static str,
    pub device: String,
    pub config: String,
    pub layers: usize,
    pub hidden: usize,
    pub vocab: usize,
    pub prompt_tokens: usize,
    pub runs: Vec<GenerateRun>,
    /// The last token of the longest run once more, in profiling mode (each dispatch submitted and
    /// timed alone, by wall clock): (kernel, ms over the token, dispatches), slowest first. Absent
    /// from the PyTorch script.
    pub kernel_ms: Vec<(String, f64, u64)>,
}

/// Greedy generation on a randomly initialised GPT-2 of a named shape (positions 1024): for each
/// count in `new`, a 5-token prompt continued by that many tokens (no end token), after one warm-up
/// run. Counters are per decoded token, over the run's decoding after its first 4 tokens.
pub async fn generate(gpu: &Gpu, config: &str, vocab: usize, new: &[usize]) -> Result<GenerateBench> {
    use crate::model::{Model, ModelConfig, Heads};
    let &(name, layers, hidden, heads) = GENERATE_CONFIGS
        .iter()
        .find(|c| c.0 == config)
        .ok_or_else(|| Error::Usage(format!("unknown generation config '{config}'; one of {}", GENERATE_CONFIGS.iter().map(|c| c.0).collect::<Vec<_>>().join(", "))))?;
    let mut cfg = ModelConfig::small_gpt2(vocab, hidden, layers, heads);
    cfg.max_position_embeddings = 1024;
    let (model, _) = Model::new(gpu, cfg, Heads { lm: true, sop: false, num_labels: 0 }, None, 1)?;
    generate_model(gpu, model, name, new).await
}

/// [`generate`] on a given model (a model directory's: [`model_of_files`]), named `name`.
pub async fn generate_model(gpu: &Gpu, mut model: crate::model::Model, name: &str, new: &[usize]) -> Result<GenerateBench> {
    let (layers, hidden, vocab) = (model.cfg.num_hidden_layers, model.cfg.hidden_size, model.cfg.vocab_size);
    let prompt: Vec<u32> = vec![11, 318, 257, 1332, 286].into_iter().map(|i| i % vocab as u32).collect();
    let positions = model.cfg.max_position_embeddings.min(4096);
    if new.iter().any(|&n| n == 0 || n + prompt.len() > positions) {
        return Err(Error::Limit(format!("new tokens must be 1 to {}", positions - prompt.len())));
    }
    // warm-up: pipelines built, buffers made for the largest cache
    let largest = new.iter().copied().max().unwrap_or(1);
    generate_run(gpu, &mut model, &prompt, largest.min(8)).await?;
    let mut runs = Vec::new();
    for &n in new {
        runs.push(generate_run(gpu, &mut model, &prompt, n).await?);
    }
    let greedy = crate::kernels::sample::Draw { k: 1, top_k: 1, temperature: 1.0, u: 0.0 };
    // the profiled token is the last of the longest run: attention then reads the whole cache
    let longest = new.iter().copied().max().unwrap_or(1);
    model.decode_start(gpu, &prompt, prompt.len() + longest, greedy).await?.read(gpu).await?;
    for _ in 1..longest.saturating_sub(1) {
        model.decode_next(gpu, greedy).await?.read(gpu).await?;
    }
    gpu.take_kernel_times();
    gpu.set_profiling(true);
    let profiled = model.decode_next(gpu, greedy).await;
    gpu.set_profiling(false);
    profiled?.read(gpu).await?;
    let kernel_ms = gpu.take_kernel_times();
    Ok(GenerateBench { engine: "bertlab", device: gpu.info.summary(), config: name.to_string(), layers, hidden, vocab, prompt_tokens: prompt.len(), runs, kernel_ms })
}

/// One timed generation of `n` greedy tokens after `prompt`.
async fn generate_run(gpu: &Gpu, model: &mut crate::model::Model, prompt: &[u32], n: usize) -> Result<GenerateRun, crate::error::Error> {
    use crate::kernels::sample::Draw;
    let greedy = Draw { k: 1, top_k: 1, temperature: 1.0, u: 0.0 };
    let t0 = crate::gpu::now_ms();
    let first = model.decode_start(gpu, prompt, prompt.len() + n, greedy).await?.read(gpu).await?.0;
    let t1 = crate::gpu::now_ms();
    let mut ids: Vec<u32> = first.into_iter().collect();
    // counters over the decoding after its first 4 tokens
    let skip = 5.min(n - 1);
    let mut warm = None;
    for i in 1..n {
        if i == skip {
            warm = Some(gpu.counters());
        }
        ids.extend(model.decode_next(gpu, greedy).await?.read(gpu).await?.0);
    }
    let t2 = crate::gpu::now_ms();
    let c = gpu.counters();
    let per = match &warm {
        Some(a) => {
            let k = (n - skip) as f64;
            [(c.total_dispatches() - a.total_dispatches()) as f64 / k, (c.submits - a.submits) as f64 / k, (c.bytes_read_back - a.bytes_read_back) as f64 / k, (c.buffers_created - a.buffers_created) as f64 / k, (c.bind_groups_created - a.bind_groups_created) as f64 / k]
        }
        None => [f64::NAN; 5],
    };
    Ok(GenerateRun {
        new_tokens: n,
        prefill_ms: t1 - t0,
        decode_ms: t2 - t1,
        tokens_per_s: n as f64 / ((t2 - t0) / 1e3),
        decode_tokens_per_s: (n - 1) as f64 / ((t2 - t1) / 1e3),
        dispatches_per_token: per[0],
        submits_per_token: per[1],
        bytes_read_per_token: per[2],
        buffers_created_per_token: per[3],
        bind_groups_created_per_token: per[4],
        ids,
    })
}

impl std::fmt::Display for GenerateBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}x{}, vocabulary {}), greedy from {} tokens, on {}:", self.config, self.layers, self.hidden, self.vocab, self.prompt_tokens, self.device)?;
        for r in &self.runs {
            write!(
                f,
                "\n  {:>4} new tokens: {:.2} tok/s ({:.2} decoding alone); prefill {:.1} ms, decoding {:.1} ms; per token {:.0} dispatches, {} submits, {:.0} bytes read, {} buffers and {} bind groups created",
                r.new_tokens, r.tokens_per_s, r.decode_tokens_per_s, r.prefill_ms, r.decode_ms, r.dispatches_per_token, r.submits_per_token, r.bytes_read_per_token, r.buffers_created_per_token, r.bind_groups_created_per_token
            )?;
        }
        write!(f, "\n  the last token of the longest run, kernel by kernel (each dispatch alone):")?;
        for (k, ms, n) in &self.kernel_ms {
            write!(f, "\n    {k:<32} {ms:>9.2} ms  {n:>4} dispatches")?;
        }
        Ok(())
    }
}
