//! `bertlab`: the native command line on the same library the browser app uses.
//! Run `bertlab --help` or `bertlab SUBCOMMAND --help`.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use clap::Parser;
    // clap prints --help and argument errors itself (exit 0 and 2)
    let cli = cli::Cli::parse();
    std::process::exit(match cli::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    });
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    use clap::{Parser, Subcommand, ValueEnum};
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

    use bertlab::gpu::Gpu;
    use bertlab::io::export::{export_files, ModelCard};
    use bertlab::io::model_dir::{self, LoadedModel};
    use bertlab::model::{Batch, Model, ModelConfig, Heads, Pooling};
    use bertlab::model::config::Body;
    use bertlab::train::checkpoint;
    use bertlab::text::dataset;
    use bertlab::text::tokenizer::Tokenizer;
    use bertlab::train::metrics::{argmax, evaluate};
    use bertlab::train::trainer::{self, Control, Event, Mode, PretrainConfig, TrainConfig};

    /// bertlab: pretrain, fine-tune and probe BERT (and GPT-2) models on the GPU (wgpu)
    #[derive(Parser)]
    #[command(name = "bertlab", version, after_help = "Every command takes --json to print machine-readable results on stdout, and --quiet to hide its progress bars.")]
    pub struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
        /// print machine-readable results (JSON) on stdout
        #[arg(long, global = true)]
        json: bool,
        /// no progress bars
        #[arg(long, global = true)]
        quiet: bool,
    }

    #[derive(Subcommand)]
    enum Cmd {
        /// masked-LM and/or sentence-order pretraining on unlabeled text, or next-word (--objective causal)
        Pretrain(PretrainArgs),
        /// fine-tune a classifier on labeled text (feature-based, last N layers, or all)
        Train(TrainArgs),
        /// accuracy, macro-F1 and confusion matrix of a classifier on labeled text
        Eval(EvalArgs),
        /// class probabilities for texts
        Predict(TextsArgs),
        /// mean-pooled sentence embeddings (the last hidden states over each text's tokens)
        Embed(TextsArgs),
        /// top-k predictions for every [MASK] in a text
        FillMask(FillMaskArgs),
        /// continue a prompt with a causal model (pretrain --objective causal, or a GPT-2), token by token
        Generate(GenerateArgs),
        /// write a model directory in Hugging Face's format (any checkpoint BERT Lab reads: prefixes, legacy names, F16/BF16)
        Export(ExportArgs),
        /// kernel benchmark (GFLOP/s, GB/s), or with --step a training-step benchmark
        Bench(BenchArgs),
    }

    #[derive(Clone, Copy, PartialEq, ValueEnum)]
    enum Objective {
        /// masked words and sentence order (BERT's)
        #[value(name = "mlm+sop", alias = "sop+mlm")]
        MlmSop,
        Mlm,
        Sop,
        /// a decoder that learns the next word, as GPT does; every 10th line is held out, and its
        /// next-token accuracy is reported beside a unigram baseline's
        Causal,
    }

    #[derive(Clone, Copy, PartialEq, ValueEnum)]
    enum BodyArg {
        /// BERT's post-LN layers with causal attention (transformers' BertLMHeadModel)
        Bert,
        /// GPT-2's pre-LN layers, learned positions, gelu_new (exported as GPT2LMHeadModel)
        Gpt2,
    }

    #[derive(clap::Args)]
    #[command(allow_negative_numbers = true)]
    struct PretrainArgs {
        /// unlabeled text, one document per line (several sentences each for sentence order)
        #[arg(long, value_name = "FILE")]
        corpus: String,
        /// where the model is written (Hugging Face's layout)
        #[arg(long, value_name = "DIR")]
        out: String,
        /// continue from a checkpoint (an MLM head is added if it has none); default: from scratch
        #[arg(long, value_name = "DIR")]
        model: Option<String>,
        /// WordPiece vocabulary to train for a from-scratch model
        #[arg(long, default_value_t = 2000)]
        vocab: usize,
        /// from-scratch hidden size
        #[arg(long, default_value_t = 128)]
        hidden: usize,
        /// from-scratch layers
        #[arg(long, default_value_t = 2)]
        layers: usize,
        /// from-scratch attention heads
        #[arg(long, default_value_t = 4)]
        heads: usize,
        #[arg(long, default_value_t = 300)]
        steps: usize,
        #[arg(long, default_value_t = 16)]
        batch: usize,
        #[arg(long, default_value_t = 1e-3)]
        lr: f32,
        #[arg(long = "max-len", default_value_t = 64)]
        max_len: usize,
        /// warm-up steps (default: 10% of the steps)
        #[arg(long)]
        warmup: Option<usize>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, value_enum, default_value = "mlm+sop")]
        objective: Objective,
        /// the from-scratch decoder's body (with --objective causal)
        #[arg(long, value_enum)]
        body: Option<BodyArg>,
        /// turn off masked-LM
        #[arg(long = "no-mlm")]
        no_mlm: bool,
        /// turn off sentence order
        #[arg(long = "no-sop")]
        no_sop: bool,
        /// print the top predictions at TEXT's [MASK]s every --probe-every steps
        #[arg(long, value_name = "TEXT")]
        probe: Option<String>,
        #[arg(long = "probe-every", default_value_t = 50)]
        probe_every: usize,
    }

    #[derive(clap::Args)]
    #[command(allow_negative_numbers = true)]
    struct TrainArgs {
        /// labeled text: TSV/CSV (label, text[, text_b]), or JSON lines {"text", "label"}
        #[arg(long, value_name = "FILE")]
        data: String,
        /// a BERT in Hugging Face's layout (e.g. models/all-MiniLM-L6-v2); not with --resume
        #[arg(long, value_name = "DIR", required_unless_present = "resume")]
        model: Option<String>,
        #[arg(long, value_name = "DIR")]
        out: String,
        /// feature (frozen encoder, head only) | last:N (the last N layers) | full [default: full]
        #[arg(long, value_name = "MODE")]
        mode: Option<String>,
        /// [default: 3]
        #[arg(long)]
        epochs: Option<usize>,
        /// [default: 16]
        #[arg(long)]
        batch: Option<usize>,
        /// [default: 5e-5; 1e-3 for feature]
        #[arg(long)]
        lr: Option<f32>,
        /// [default: 128]
        #[arg(long = "max-len")]
        max_len: Option<usize>,
        /// the validation fraction [default: 0.2]
        #[arg(long)]
        val: Option<f64>,
        /// [default: 42]
        #[arg(long)]
        seed: Option<u64>,
        /// early stopping after N epochs without a better validation loss [default: off]
        #[arg(long, value_name = "N")]
        patience: Option<usize>,
        /// cls (HF's pooler; exported as BertForSequenceClassification) | mean (masked mean of the last hidden states; exported as BertModel + classifier_head.safetensors) | last (a causal model's last token: GPT2ForSequenceClassification, or for a GPT-style BERT BertModel + classifier_head.safetensors) [default: cls, last for a causal model]
        #[arg(long, value_name = "P")]
        pooling: Option<String>,
        /// write OUT/checkpoint (weights, optimizer state, step) every N steps
        #[arg(long = "checkpoint-every", value_name = "N", default_value_t = 0)]
        checkpoint_every: usize,
        /// continue the run checkpointed in DIR (same data and options; the model comes from DIR)
        #[arg(long, value_name = "DIR")]
        resume: Option<String>,
        /// dropout off (deterministic steps, to compare a run with another implementation's)
        #[arg(long = "no-dropout")]
        no_dropout: bool,
    }

    #[derive(clap::Args)]
    struct EvalArgs {
        #[arg(long, value_name = "FILE")]
        data: String,
        #[arg(long, value_name = "DIR")]
        model: String,
        #[arg(long = "max-len", default_value_t = 128)]
        max_len: usize,
    }

    #[derive(clap::Args)]
    struct TextsArgs {
        #[arg(long, value_name = "DIR")]
        model: String,
        /// one text
        #[arg(long, required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// one text per line
        #[arg(long, value_name = "FILE")]
        file: Option<String>,
        #[arg(long = "max-len", default_value_t = 128)]
        max_len: usize,
    }

    #[derive(clap::Args)]
    struct FillMaskArgs {
        #[arg(long, value_name = "DIR")]
        model: String,
        /// e.g. "The curious kitten deftly [MASK] the bookshelf"
        #[arg(long)]
        text: String,
        #[arg(long = "top-k", default_value_t = 5)]
        top_k: usize,
    }

    #[derive(clap::Args)]
    #[command(allow_negative_numbers = true)]
    struct GenerateArgs {
        /// a causal model (`bertlab pretrain --objective causal` makes one), or a GPT-2
        #[arg(long, value_name = "DIR")]
        model: String,
        /// the text to continue
        #[arg(long)]
        prompt: String,
        /// tokens to add at most (stops early at the end of a text)
        #[arg(long = "max-new", default_value_t = 20)]
        max_new: usize,
        /// 1: greedy, always the most likely token; K > 1: sample among the K most likely
        #[arg(long = "top-k", default_value_t = 1)]
        top_k: usize,
        /// sharpen (< 1) or flatten (> 1) the distribution when sampling
        #[arg(long, default_value_t = 1.0)]
        temperature: f32,
        /// the sampling seed: the same seed gives the same text
        #[arg(long, default_value_t = 42)]
        seed: u64,
    }

    #[derive(clap::Args)]
    struct ExportArgs {
        #[arg(long, value_name = "DIR")]
        model: String,
        #[arg(long, value_name = "DIR")]
        out: String,
    }

    #[derive(clap::Args)]
    #[command(after_help = "--step runs one full fine-tuning step (dropout, AdamW, [CLS] head over 2 labels) on random ids, median after 2 warm-up steps; scripts/bench_step_torch.py prints the same JSON for PyTorch eager on the same machine. --generate runs greedy generation on a random GPT-2 of that shape; scripts/bench_generate_torch.py prints the same JSON for transformers")]
    struct BenchArgs {
        /// rows of the kernel benchmark's matrices
        #[arg(long, default_value_t = 4096)]
        m: usize,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// a training-step benchmark of this configuration (tiny, mini, small, base)
        #[arg(long, value_name = "CONFIG")]
        step: Option<String>,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value_t = 128)]
        len: usize,
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// a generation benchmark of this GPT-2 shape (gpt2-tiny, gpt2-4x256, gpt2-small): tokens/s
        /// at each --new count, prefill apart, with the counters per token
        #[arg(long, value_name = "CONFIG")]
        generate: Option<String>,
        /// the generation benchmark's vocabulary
        #[arg(long, default_value_t = 30000)]
        vocab: usize,
        /// new tokens per generation run (comma-separated)
        #[arg(long, value_delimiter = ',', default_value = "64,200")]
        new: Vec<usize>,
    }

    /// How results are shown: JSON on stdout, and progress bars on stderr unless quiet.
    #[derive(Clone, Copy)]
    struct Out {
        json: bool,
        quiet: bool,
    }

    impl Out {
        /// A progress bar of `len` units (hidden when quiet, or when stderr is not a terminal).
        fn bar(&self, len: u64, what: &str) -> ProgressBar {
            let target = if self.quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
            let bar = ProgressBar::with_draw_target(Some(len), target);
            let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (ETA {eta})").unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("#>.");
            bar.set_style(style);
            bar.set_prefix(what.to_string());
            bar
        }

        /// A spinner for work of unknown length (loading a model).
        fn spinner(&self, what: &str) -> ProgressBar {
            let target = if self.quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
            let s = ProgressBar::with_draw_target(None, target);
            s.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            s.set_message(what.to_string());
            s.enable_steady_tick(std::time::Duration::from_millis(120));
            s
        }
    }

    /// One bar per pass over many texts (features, evaluation, prediction), made when its task
    /// starts and finished when it is done.
    struct TextBars {
        out: Out,
        /// Where the bars go when another bar is on screen (a run's steps).
        multi: Option<MultiProgress>,
        current: Option<(String, ProgressBar)>,
    }

    impl TextBars {
        fn new(out: Out, multi: Option<MultiProgress>) -> TextBars {
            TextBars { out, multi, current: None }
        }
        fn update(&mut self, task: &str, done: usize, total: usize) {
            if self.current.as_ref().map(|c| c.0 != task).unwrap_or(true) {
                if let Some((_, b)) = self.current.take() {
                    b.finish();
                }
                let bar = self.out.bar(total as u64, task);
                let bar = match &self.multi {
                    Some(m) => m.add(bar),
                    None => bar,
                };
                self.current = Some((task.to_string(), bar));
            }
            if let Some((_, b)) = &self.current {
                b.set_position(done as u64);
                if done >= total {
                    b.finish();
                }
            }
        }
    }

    /// Event handler for a pass over many texts (evaluation, prediction): its progress bar.
    fn text_progress(o: Out) -> impl FnMut(Event) {
        let mut bars = TextBars::new(o, None);
        move |e| {
            if let Event::Progress { task, done, total, .. } = e {
                bars.update(task, done, total);
            }
        }
    }

    fn gpu() -> Result<Gpu, String> {
        let g = Gpu::new_blocking().map_err(|e| e.to_string())?;
        eprintln!("GPU: {}", g.info.summary());
        Ok(g)
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        pollster::block_on(f)
    }

    fn load_model(g: &Gpu, o: Out, dir: &str, heads: Option<Heads>) -> Result<LoadedModel, String> {
        let spin = o.spinner(&format!("loading {dir}"));
        let files = model_dir::read_dir(Path::new(dir))?;
        let lm = model_dir::load(g, &files, heads, 42);
        spin.finish_and_clear();
        Ok(lm?)
    }

    fn texts_arg(a: &TextsArgs) -> Result<Vec<String>, String> {
        if let Some(t) = &a.text {
            return Ok(vec![t.to_string()]);
        }
        if let Some(f) = &a.file {
            let s = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
            return Ok(s.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect());
        }
        Err("give --text TEXT or --file FILE (one text per line)".into())
    }

    /// OUT is a directory (made if missing), checked before any work so that a run is not lost at
    /// its end.
    fn check_out(out: &str) -> Result<(), String> {
        let p = Path::new(out);
        if p.exists() && !p.is_dir() {
            return Err(format!("--out {out} is a file; OUT must be a directory (it receives config.json, model.safetensors and the tokenizer files), new or existing"));
        }
        Ok(())
    }

    fn write_export(out: &str, files: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        check_out(out)?;
        std::fs::create_dir_all(out).map_err(|e| format!("{out}: {e}"))?;
        // each file appears whole or not at all: written beside its name, then renamed over it
        for (name, bytes) in files {
            let p = PathBuf::from(out).join(&name);
            let tmp = PathBuf::from(out).join(format!(".{name}.partial"));
            std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, &p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(())
    }


    pub fn run(cli: Cli) -> Result<(), String> {
        let o = Out { json: cli.json, quiet: cli.quiet };
        match &cli.cmd {
            Cmd::Pretrain(a) => pretrain(a, o),
            Cmd::Train(a) => train(a, o),
            Cmd::Eval(a) => eval(a, o),
            Cmd::Predict(a) => predict(a, o),
            Cmd::Embed(a) => embed(a, o),
            Cmd::FillMask(a) => fill_mask(a, o),
            Cmd::Generate(a) => generate(a, o),
            Cmd::Export(a) => export(a, o),
            Cmd::Bench(a) => bench(a, o),
        }
    }

    fn pretrain(a: &PretrainArgs, o: Out) -> Result<(), String> {
        let corpus = std::fs::read_to_string(&a.corpus).map_err(|e| format!("{}: {e}", a.corpus))?;
        let texts: Vec<String> = corpus.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
        let out = a.out.as_str();
        check_out(out)?;
        let (mut mlm, mut sop) = (!a.no_mlm, !a.no_sop);
        let causal = match a.objective {
            Objective::MlmSop => false,
            Objective::Mlm => {
                sop = false;
                false
            }
            Objective::Sop => {
                mlm = false;
                false
            }
            Objective::Causal => {
                (mlm, sop) = (true, false);
                true
            }
        };
        let body = if a.body == Some(BodyArg::Gpt2) { Body::Gpt2 } else { Body::Bert };
        if body == Body::Gpt2 && !causal {
            return Err("--body gpt2 is a decoder, which learns the next word: use it with --objective causal".into());
        }
        if a.body.is_some() && a.model.is_some() {
            return Err("--body shapes a from-scratch model; a checkpoint (--model) brings its own body: leave one of them out".into());
        }
        // a causal model is judged on lines it never saw
        let (texts, held_out): (Vec<String>, Vec<String>) = if causal && texts.len() >= 20 {
            let (h, t): (Vec<_>, Vec<_>) = texts.into_iter().enumerate().partition(|(i, _)| i % 10 == 9);
            (t.into_iter().map(|x| x.1).collect(), h.into_iter().map(|x| x.1).collect())
        } else {
            (texts, Vec::new())
        };
        let heads = Heads { lm: true, sop: !causal, num_labels: 0 };
        let g = gpu()?;
        let (mut model, tok, tok_files, base) = match a.model.as_deref() {
            Some(dir) => {
                let lm = load_model(&g, o, dir, Some(heads))?;
                if lm.model.cfg.is_decoder != causal {
                    return Err(if causal {
                        format!("{dir} is a masked (bidirectional) model; causal pretraining needs a decoder (is_decoder): start from scratch (leave out --model) or from a BertLMHeadModel checkpoint")
                    } else {
                        format!("{dir} is a causal model (is_decoder); masked-LM and sentence-order pretraining need a bidirectional BERT: use --objective causal, or another model")
                    });
                }
                if !lm.report.initialised.is_empty() {
                    eprintln!("initialised fresh: {}", lm.report.initialised.join(", "));
                }
                (lm.model, lm.tokenizer, lm.tokenizer_files, dir.to_string())
            }
            None => {
                let tok = Tokenizer::train_wordpiece(&texts, a.vocab)?;
                let size = (tok.vocab_size, a.hidden, a.layers, a.heads);
                let mut cfg = if body == Body::Gpt2 { ModelConfig::small_gpt2(size.0, size.1, size.2, size.3) } else { ModelConfig::small(size.0, size.1, size.2, size.3) };
                cfg.is_decoder = causal;
                cfg.pad_token_id = tok.pad as usize;
                let (m, _) = Model::new(&g, cfg, heads, None, a.seed)?;
                let tf = tok.files()?;
                (m, tok, tf, String::new())
            }
        };
        let steps = a.steps;
        let pc = PretrainConfig {
            mlm,
            sop,
            steps,
            batch_size: a.batch,
            lr: a.lr,
            max_len: a.max_len,
            warmup: a.warmup.unwrap_or(steps / 10),
            seed: a.seed,
            probe: a.probe.clone(),
            probe_every: a.probe_every,
            ..PretrainConfig::default()
        };
        let bar = o.bar(steps as u64, "pretrain");
        let r = block(trainer::pretrain(&g, &mut model, &tok, &texts, &pc, &Control::default(), &mut |e| match e {
            Event::Pretrain { step, mlm_loss, sop_loss, .. } => {
                bar.set_position(step as u64);
                bar.set_message(format!("loss {:.4}", mlm_loss + sop_loss));
            }
            Event::Probe { step, predictions } => {
                let rows: Vec<String> = predictions.iter().map(|top| top.iter().map(|(t, p)| format!("{t} {p:.2}")).collect::<Vec<_>>().join(", ")).collect();
                bar.println(format!("probe at step {step}: [MASK] -> {}", rows.join(" | ")));
            }
            _ => {}
        }));
        bar.finish();
        let r = r?;
        for m in &r.messages {
            eprintln!("note: {m}");
        }
        let tensors = block(model.params.read_all(&g)).map_err(|e| e.to_string())?;
        let loss_name = if causal { "next-token loss" } else { "MLM loss" };
        let mut metrics = vec![(format!("final {loss_name}"), format!("{:.4}", r.mlm_losses.last().unwrap_or(&0.0)))];
        let mut held = serde_json::Value::Null;
        if causal && !held_out.is_empty() {
            let (acc, unigram) = block(trainer::next_token_accuracy(&g, &mut model, &tok, &held_out, &texts, pc.max_len))?;
            metrics.push(("held-out next-token accuracy".into(), format!("{acc:.4} (unigram baseline {unigram:.4}, {} lines)", held_out.len())));
            held = serde_json::json!({"texts": held_out.len(), "next_token_accuracy": acc, "unigram_baseline": unigram});
        }
        let card = ModelCard { base_model: base, data_summary: format!("{} unlabeled texts", texts.len()), seed: pc.seed, metrics: metrics.clone(), ..Default::default() };
        write_export(out, export_files(&model.cfg, model.heads, tensors, &[], &tok_files, &card))?;
        let n = r.mlm_losses.len();
        let summary = serde_json::json!({"steps": n, "objective": if causal { "causal" } else { "masked" }, "mlm_loss_first": r.mlm_losses.first(), "mlm_loss_last": r.mlm_losses.last(), "sop_loss_last": r.sop_losses.last(), "ms_per_step": r.ms_per_step, "out": out, "messages": r.messages, "held_out": held});
        if o.json {
            println!("{}", serde_json::json!({"summary": summary, "mlm_losses": r.mlm_losses, "sop_losses": r.sop_losses}));
        } else {
            println!("pretrained {n} steps: {loss_name} {:.4} -> {:.4}, {:.1} ms/step; saved to {out}", r.mlm_losses.first().unwrap_or(&0.0), r.mlm_losses.last().unwrap_or(&0.0), r.ms_per_step);
            for (k, v) in metrics.iter().skip(1) {
                println!("{k}: {v}");
            }
        }
        Ok(())
    }

    fn parse_mode(s: &str) -> Result<Mode, String> {
        match s {
            "feature" | "feature-based" => Ok(Mode::FeatureBased),
            "full" | "all" => Ok(Mode::Full),
            s => s.strip_prefix("last:").and_then(|n| n.parse().ok()).map(Mode::LastLayers).ok_or_else(|| format!("--mode {s}: use feature, last:N or full")),
        }
    }

    fn read_dataset(path: &str) -> Result<dataset::Dataset, String> {
        let size = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?.len();
        dataset::check_size(size).map_err(|e| format!("{path}: {e}"))?;
        let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let ds = dataset::parse(&bytes, None);
        let verdict = ds.why_untrainable();
        // the message that refuses the data is said once, as the error
        for m in ds.messages.iter().filter(|m| verdict.as_ref() != Some(&m.text)) {
            eprintln!("{path}: {m}");
        }
        if let Some(v) = verdict {
            return Err(v);
        }
        Ok(ds)
    }

    fn train(a: &TrainArgs, o: Out) -> Result<(), String> {
        let ds = read_dataset(&a.data)?;
        let out = a.out.as_str();
        check_out(out)?;
        let resolved = a.resume.as_deref().map(|d| checkpoint::resolve(Path::new(d)));
        if let Some((_, Some(note))) = &resolved {
            eprintln!("{note}");
        }
        let resolved_dir = resolved.as_ref().map(|(p, _)| p.to_string_lossy().to_string());
        let resume = resolved_dir.as_deref();
        // a resumed run takes its options from the checkpoint; flags given now must not contradict it
        let state: serde_json::Value = match resume {
            Some(dir) => {
                let p = Path::new(dir).join(checkpoint::STATE_FILE);
                serde_json::from_slice(&std::fs::read(&p).map_err(|e| format!("{}: {e} (is {dir} a checkpoint written by --checkpoint-every?)", p.display()))?).map_err(|e| format!("{}: {e}", p.display()))?
            }
            None => serde_json::Value::Null,
        };
        // an option not given now is the checkpoint's, else its default
        let st_str = |k: &str| state.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let st_num = |k: &str| state.get(k).and_then(|v| v.as_f64());
        let mode_s = a.mode.clone().or_else(|| st_str("mode")).unwrap_or_else(|| "full".into());
        let pooling_s = a.pooling.clone().or_else(|| st_str("pooling")).unwrap_or_else(|| "cls".into());
        let mode = parse_mode(&mode_s)?;
        let asked = Pooling::parse(&pooling_s).ok_or_else(|| format!("--pooling {pooling_s}: use cls or mean (BERT), last (a causal model's default)"))?;
        let g = gpu()?;
        let heads = Heads { lm: false, sop: false, num_labels: ds.labels.len() };
        let model_path = match resume {
            Some(dir) => dir.to_string(),
            None => a.model.clone().ok_or("--model is required (or --resume)")?,
        };
        let base_model = state.get("base_model").and_then(|v| v.as_str()).map(str::to_string).unwrap_or(model_path.clone());
        let mut lm = load_model(&g, o, &model_path, Some(heads))?;
        // a causal model (GPT-2, GPT-style BERT) reads each text's last token, not its [CLS]
        let pooling = Pooling::for_model(asked, &lm.model.cfg)?;
        if !lm.report.replaced.is_empty() {
            eprintln!("the model's classifier was for other labels; a fresh head for the {} labels of the data was built and the encoder kept ({})", ds.labels.len(), lm.report.replaced.join("; "));
        }
        // counts are whole numbers (clap parses them); their ranges are checked by TrainConfig::validate
        let count = |given: Option<usize>, k: &str, d: usize| given.or_else(|| st_num(k).map(|v| v as usize)).unwrap_or(d);
        let seed = a.seed.or_else(|| st_num("seed").map(|v| v as u64)).unwrap_or(42);
        let val = a.val.or_else(|| st_num("val")).unwrap_or(0.2);
        if !(val.is_finite() && (0.0..1.0).contains(&val)) {
            return Err(format!("--val must be a fraction in [0, 1); got {val}"));
        }
        let (tr, va) = dataset::stratified_split(&ds, val, seed);
        let default_lr = if mode == Mode::FeatureBased { 1e-3 } else { 5e-5 };
        let mut tc = TrainConfig {
            mode,
            pooling,
            lr: a.lr.or_else(|| st_num("lr").map(|v| v as f32)).unwrap_or(default_lr as f32),
            epochs: count(a.epochs, "epochs", 3),
            batch_size: count(a.batch, "batch", 16),
            max_len: count(a.max_len, "max-len", 128),
            seed,
            patience: count(a.patience, "patience", 0),
            checkpoint_every: a.checkpoint_every,
            dropout: !a.no_dropout,
            ..TrainConfig::default()
        };
        if let Some(dir) = resume {
            let p = Path::new(dir).join(checkpoint::OPTIMIZER_FILE);
            let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            tc.start_step = checkpoint::restore_optimizer(&g, &mut lm.model, &bytes)?;
            eprintln!("resuming {dir} at step {}", tc.start_step);
        }
        let tok_files = if lm.tokenizer_files.is_empty() { lm.tokenizer.files()? } else { lm.tokenizer_files.clone() };
        let ckpt_dir = PathBuf::from(out).join("checkpoint");
        let ckpt_config = bertlab::io::export::config_json(&lm.model.cfg, heads, &ds.labels);
        let ckpt_state = |step: usize| {
            serde_json::json!({"step": step, "mode": mode_s, "pooling": pooling.name(),
                "lr": tc.lr, "epochs": tc.epochs, "batch": tc.batch_size, "max-len": tc.max_len, "seed": seed, "val": val,
                "patience": tc.patience, "base_model": base_model, "data": a.data})
        };
        let mut ckpt_err = None;
        let mut epochs_json = Vec::new();
        let mut step_losses = Vec::new();
        // a bar for the steps, and one for each pass over the texts (frozen features, validation)
        let multi = MultiProgress::with_draw_target(if o.quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() });
        let steps_bar = multi.add(o.bar(0, "train"));
        let mut text_bars = TextBars::new(o, Some(multi.clone()));
        let say = |bar: &ProgressBar, line: String| if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) };
        let r = block(trainer::train_classifier(&g, &mut lm.model, &lm.tokenizer, &ds, &tr, &va, &tc, &Control::default(), &mut |e| match e {
            Event::Plan { total_steps, train_examples, val_examples, truncated } => {
                steps_bar.set_length(total_steps as u64);
                say(&steps_bar, format!("{train_examples} training and {val_examples} validation examples, {total_steps} steps, {truncated} texts truncated to {} tokens", tc.max_len));
            }
            Event::Features { examples, ms } => say(&steps_bar, format!("features of the frozen encoder computed once for {examples} examples in {:.1} s", ms / 1e3)),
            Event::Progress { task, done, total, .. } => text_bars.update(task, done, total),
            Event::Step { step, loss, .. } => {
                step_losses.push(loss);
                steps_bar.set_position(step as u64);
                steps_bar.set_message(format!("loss {loss:.4}"));
            }
            Event::Epoch { epoch, train_loss, val } => {
                // with --val 0 there is nothing to score: say so, not zeros
                let scored = if va.is_empty() { "no validation set (--val 0)".to_string() } else { format!("validation loss {:.4}, accuracy {:.4}, macro-F1 {:.4}", val.loss, val.accuracy, val.macro_f1) };
                say(&steps_bar, format!("epoch {epoch}: train loss {train_loss:.4}, {scored}"));
                epochs_json.push(serde_json::json!({"epoch": epoch, "train_loss": train_loss, "val_loss": val.loss, "val_accuracy": val.accuracy, "val_macro_f1": val.macro_f1, "confusion": val.confusion}));
            }
            Event::NonFinite { step } => say(&steps_bar, bertlab::error::Error::non_finite(step).to_string()),
            Event::Checkpoint { step, weights, optimizer } => {
                let mut files = vec![("config.json".to_string(), ckpt_config.clone().into_bytes()), ("model.safetensors".to_string(), weights), (checkpoint::OPTIMIZER_FILE.to_string(), optimizer)];
                files.push((checkpoint::STATE_FILE.to_string(), serde_json::to_vec_pretty(&ckpt_state(step)).unwrap_or_default()));
                files.extend(tok_files.iter().cloned());
                // a kill at any moment leaves a complete checkpoint (this one or the previous)
                if let Err(e) = checkpoint::write_dir_atomically(&ckpt_dir, &files) {
                    ckpt_err = Some(e);
                }
            }
            _ => {}
        }));
        steps_bar.finish();
        let r = r?;
        if let Some(e) = ckpt_err {
            return Err(format!("writing the checkpoint: {e}"));
        }
        let last = r.epochs.last().map(|e| e.1.clone()).unwrap_or_default();
        let card = ModelCard {
            pooling,
            base_model,
            data_summary: format!("{} examples ({} train / {} validation), labels {}", ds.examples.len(), tr.len(), va.len(), ds.labels.join(", ")),
            metrics: if va.is_empty() { Vec::new() } else { vec![("validation accuracy".into(), format!("{:.4}", last.accuracy)), ("validation macro-F1".into(), format!("{:.4}", last.macro_f1))] },
            seed,
            notes: format!("mode: {mode:?}, pooling: {pooling:?}, {} epochs, lr {}", r.epochs.len(), tc.lr),
            run: Some(bertlab::io::export::RunSettings::of(&tc, &ds.labels)),
        };
        let tensors = block(lm.model.params.read_all(&g)).map_err(|e| e.to_string())?;
        write_export(out, export_files(&lm.model.cfg, lm.model.heads, tensors, &ds.labels, &tok_files, &card))?;
        let labels_y: Vec<usize> = va.iter().map(|&i| ds.label_id(&ds.examples[i].label).unwrap_or(0)).collect();
        let tr_y: Vec<usize> = tr.iter().map(|&i| ds.label_id(&ds.examples[i].label).unwrap_or(0)).collect();
        let baseline = bertlab::train::metrics::majority_baseline(&tr_y, &labels_y, ds.labels.len());
        if o.json {
            println!("{}", serde_json::json!({"epochs": epochs_json, "step_losses": step_losses, "labels": ds.labels, "majority_baseline": baseline, "ms_per_step": r.ms_per_step, "steps": r.steps, "stopped": r.stopped, "out": out}));
        } else if va.is_empty() {
            let train_loss = r.epochs.last().map(|e| e.0).unwrap_or(f32::NAN);
            println!("trained {} epochs, last train loss {train_loss:.4}; no validation set (--val 0), so no accuracy; {:.1} ms/step; saved to {out}", r.epochs.len(), r.ms_per_step);
        } else {
            println!("validation accuracy {:.4} (majority baseline {baseline:.4}), macro-F1 {:.4}, {:.1} ms/step; saved to {out}", last.accuracy, last.macro_f1, r.ms_per_step);
        }
        Ok(())
    }

    fn eval(a: &EvalArgs, o: Out) -> Result<(), String> {
        let ds = read_dataset(&a.data)?;
        let g = gpu()?;
        let mut lm = load_model(&g, o, &a.model, None)?;
        if lm.model.heads.num_labels == 0 {
            return Err("this model has no classification head; train one with `bertlab train`".into());
        }
        let enc: Vec<_> = ds.examples.iter().map(|e| lm.tokenizer.encode(&e.text, e.text_b.as_deref(), a.max_len)).collect::<Result<_, _>>()?;
        let probs = block(trainer::predict_with_progress(&g, &mut lm.model, &enc.iter().collect::<Vec<_>>(), lm.tokenizer.pad, 16, &mut text_progress(o)))?;
        let truth: Vec<usize> = ds.examples.iter().map(|e| lm.labels.iter().position(|l| l == &e.label).ok_or_else(|| format!("label '{}' (line {}) is not one of the model's labels {:?}", e.label, e.line, lm.labels))).collect::<Result<_, _>>()?;
        let m = evaluate(&probs, &truth, lm.labels.len());
        if o.json {
            println!("{}", serde_json::json!({"accuracy": m.accuracy, "macro_f1": m.macro_f1, "loss": m.loss, "confusion": m.confusion, "labels": lm.labels}));
        } else {
            println!("accuracy {:.4}, macro-F1 {:.4}, loss {:.4} on {} examples\nconfusion (rows true, columns predicted; {}):", m.accuracy, m.macro_f1, m.loss, truth.len(), lm.labels.join(", "));
            for row in &m.confusion {
                println!("  {row:?}");
            }
        }
        Ok(())
    }

    fn predict(a: &TextsArgs, o: Out) -> Result<(), String> {
        let texts = texts_arg(a)?;
        let g = gpu()?;
        let mut lm = load_model(&g, o, &a.model, None)?;
        if lm.model.heads.num_labels == 0 {
            return Err("this model has no classification head; train one with `bertlab train`".into());
        }
        let enc: Vec<_> = texts.iter().map(|t| lm.tokenizer.encode(t, None, a.max_len)).collect::<Result<_, _>>()?;
        let probs = block(trainer::predict_with_progress(&g, &mut lm.model, &enc.iter().collect::<Vec<_>>(), lm.tokenizer.pad, 16, &mut text_progress(o)))?;
        let rows: Vec<_> = texts
            .iter()
            .zip(&probs)
            .map(|(t, p)| {
                let probs: BTreeMap<&str, f32> = lm.labels.iter().map(|l| l.as_str()).zip(p.iter().cloned()).collect();
                serde_json::json!({"text": t, "label": lm.labels[argmax(p)], "probabilities": probs})
            })
            .collect();
        if o.json {
            println!("{}", serde_json::Value::Array(rows));
        } else {
            for (t, p) in texts.iter().zip(&probs) {
                let parts: Vec<String> = lm.labels.iter().zip(p).map(|(l, x)| format!("{l} {x:.3}")).collect();
                println!("{}\t{}\t{t}", lm.labels[argmax(p)], parts.join("  "));
            }
        }
        Ok(())
    }

    fn embed(a: &TextsArgs, o: Out) -> Result<(), String> {
        let texts = texts_arg(a)?;
        let g = gpu()?;
        let mut lm = load_model(&g, o, &a.model, Some(Heads { lm: false, sop: false, num_labels: 0 }))?;
        let c = lm.model.cfg.hidden_size;
        let mut out = Vec::new();
        for t in &texts {
            let e = lm.tokenizer.encode(t, None, a.max_len)?;
            let n = e.ids.len();
            let batch = Batch::new(&g, &lm.model.cfg, 1, n, &e.ids, &e.type_ids, &vec![1; n], None, None, None)?;
            let h = block(async {
                let mut step = g.begin_step("embed");
                lm.model.forward(&g, &mut step, &batch, bertlab::model::Mode::Eval)?;
                step.submit().await.map_err(|e| e.to_string())?;
                g.read_f32(lm.model.last_hidden().unwrap()).await.map_err(|e| e.to_string())
            })?;
            let mean: Vec<f32> = (0..c).map(|j| (0..n).map(|i| h[i * c + j]).sum::<f32>() / n as f32).collect();
            out.push(mean);
        }
        if o.json {
            println!("{}", serde_json::json!({"dim": c, "embeddings": out}));
        } else {
            for (t, e) in texts.iter().zip(&out) {
                println!("{t}\t[{:.4}, {:.4}, {:.4}, ... ] ({c} dims)", e[0], e[1], e[2]);
            }
        }
        Ok(())
    }

    fn generate(a: &GenerateArgs, o: Out) -> Result<(), String> {
        use bertlab::train::generate::{self as gen, GenerateConfig};
        let prompt = a.prompt.as_str();
        let cfg = GenerateConfig { max_new: a.max_new, top_k: a.top_k, temperature: a.temperature, seed: a.seed };
        cfg.validate()?;
        let g = gpu()?;
        let mut lm = load_model(&g, o, &a.model, None)?;
        let json = o.json;
        let mut shown = Vec::new();
        let tok = &lm.tokenizer;
        let (ids, stop) = block(gen::generate(&g, &mut lm.model, tok, prompt, &cfg, &mut |id, t| {
            if shown.is_empty() && !json {
                print!("{prompt}");
            }
            shown.push(t.to_string());
            if !json {
                print!("{}", tok.continuation(id));
                let _ = std::io::stdout().flush();
            }
        }))?;
        let text = lm.tokenizer.decode(&ids)?;
        let why = stop.describe();
        if json {
            println!("{}", serde_json::json!({"prompt": prompt, "tokens": shown, "ids": ids, "text": text, "stopped_at": why, "top_k": cfg.top_k, "temperature": cfg.temperature, "seed": cfg.seed}));
        } else {
            if shown.is_empty() {
                print!("{prompt}");
            }
            println!();
            eprintln!("({} tokens; stopped at {why})", ids.len());
        }
        Ok(())
    }

    fn fill_mask(a: &FillMaskArgs, o: Out) -> Result<(), String> {
        let text = a.text.as_str();
        let g = gpu()?;
        let mut lm = load_model(&g, o, &a.model, None)?;
        if lm.model.cfg.is_decoder {
            return Err("this is a causal model (is_decoder): it predicts the next word from the words before, so it cannot fill a [MASK] from both sides; continue a text with `bertlab generate --model DIR --prompt TEXT`".into());
        }
        if !lm.model.heads.lm {
            return Err("this model has no masked-LM head (cls.predictions.*); pretrain one with `bertlab pretrain --model DIR`".into());
        }
        let e = lm.tokenizer.encode(text, None, 512)?;
        let positions: Vec<usize> = (0..e.ids.len()).filter(|&i| e.ids[i] == lm.tokenizer.mask).collect();
        if positions.is_empty() {
            return Err("the text has no [MASK] token".into());
        }
        let preds = block(lm.model.fill_mask(&g, &e.ids, &e.type_ids, &positions, a.top_k))?;
        let rows: Vec<_> = positions
            .iter()
            .zip(&preds)
            .map(|(p, top)| serde_json::json!({"position": p, "predictions": top.iter().map(|(id, pr)| serde_json::json!({"token": lm.tokenizer.id_to_token(*id), "id": id, "probability": pr})).collect::<Vec<_>>()}))
            .collect();
        if o.json {
            println!("{}", serde_json::Value::Array(rows));
        } else {
            for (p, top) in positions.iter().zip(&preds) {
                let s: Vec<String> = top.iter().map(|(id, pr)| format!("{} {pr:.3}", lm.tokenizer.id_to_token(*id))).collect();
                println!("[MASK] at {p}: {}", s.join(", "));
            }
        }
        Ok(())
    }

    fn export(a: &ExportArgs, o: Out) -> Result<(), String> {
        let g = gpu()?;
        let lm = load_model(&g, o, &a.model, None)?;
        let out = a.out.as_str();
        check_out(out)?;
        let tensors = block(lm.model.params.read_all(&g)).map_err(|e| e.to_string())?;
        let files = export_files(&lm.model.cfg, lm.model.heads, tensors, &lm.labels, &lm.tokenizer_files, &ModelCard { base_model: a.model.clone(), ..Default::default() });
        let names: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
        write_export(out, files)?;
        if o.json {
            println!("{}", serde_json::json!({"out": out, "files": names}));
        } else {
            println!("wrote {} to {out}", names.join(", "));
        }
        Ok(())
    }

    fn bench(a: &BenchArgs, o: Out) -> Result<(), String> {
        let g = gpu()?;
        if let Some(config) = &a.generate {
            let r = block(bertlab::bench::generate(&g, config, a.vocab, &a.new))?;
            if o.json {
                println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            } else {
                println!("{r}");
            }
            return Ok(());
        }
        if let Some(config) = &a.step {
            let r = block(bertlab::bench::step(&g, config, a.batch, a.len, a.steps))?;
            if o.json {
                println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            } else {
                println!("{r}");
            }
            return Ok(());
        }
        let opts = bertlab::bench::BenchOptions { m: a.m, reps: a.reps };
        let t0 = std::time::Instant::now();
        let now = move || t0.elapsed().as_secs_f64() * 1e3;
        let json = o.json;
        let lines = block(bertlab::bench::run(&g, &opts, &now, &mut |l| {
            if !json {
                println!("{l}");
            }
        }))
        .map_err(|e| e.to_string())?;
        if json {
            let rows: Vec<_> = lines.iter().map(|l| serde_json::json!({"name": l.name, "rate": l.rate, "unit": l.unit, "ms": l.ms_per_call})).collect();
            println!("{}", serde_json::json!({"adapter": g.info.summary(), "results": rows}));
        }
        Ok(())
    }
}
