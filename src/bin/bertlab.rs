//! `bertlab`: the native command line on the same library the browser app uses.
//! Run `bertlab --help` or `bertlab SUBCOMMAND --help`.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(match cli::run(std::env::args().skip(1).collect()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    });
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::collections::{BTreeMap, HashMap};
    use std::io::Write;
    use std::path::{Path, PathBuf};

    use bertlab::gpu::Gpu;
    use bertlab::io::export::{export_files, ModelCard};
    use bertlab::io::model_dir::{self, LoadedModel};
    use bertlab::model::{Batch, Bert, BertConfig, Heads, Pooling};
    use bertlab::model::config::Body;
    use bertlab::train::checkpoint;
    use bertlab::text::dataset;
    use bertlab::text::tokenizer::BertTokenizer;
    use bertlab::train::metrics::{argmax, evaluate};
    use bertlab::train::trainer::{self, Control, Event, Mode, PretrainConfig, TrainConfig};

    const HELP: &str = "bertlab: pretrain, fine-tune and probe BERT models on the GPU (wgpu)

usage: bertlab <command> [options]     (bertlab <command> --help for its options)

commands:
  pretrain   masked-LM and/or sentence-order pretraining on unlabeled text
  train      fine-tune a classifier on labeled text (feature-based, last N layers, or all)
  eval       accuracy, macro-F1 and confusion matrix of a classifier on labeled text
  predict    class probabilities for texts
  embed      mean-pooled sentence embeddings
  fill-mask  top-k predictions for every [MASK] in a text
  generate   continue a prompt with a causal model (pretrain --objective causal), token by token
  export     write a model directory in Hugging Face's format
  bench      kernel benchmark (GFLOP/s, GB/s), or with --step a training-step benchmark

Every command takes --json to print machine-readable results on stdout.";

    struct Args {
        flags: HashMap<String, String>,
        switches: Vec<String>,
    }

    impl Args {
        fn parse(v: &[String], known_switches: &[&str]) -> Result<Args, String> {
            let mut flags = HashMap::new();
            let mut switches = Vec::new();
            let mut i = 0;
            while i < v.len() {
                let a = &v[i];
                let Some(name) = a.strip_prefix("--") else { return Err(format!("unexpected argument '{a}'")) };
                if known_switches.contains(&name) || name == "help" || name == "json" {
                    switches.push(name.to_string());
                    i += 1;
                } else {
                    let val = v.get(i + 1).ok_or_else(|| format!("--{name} needs a value"))?;
                    flags.insert(name.to_string(), val.clone());
                    i += 2;
                }
            }
            Ok(Args { flags, switches })
        }
        fn has(&self, s: &str) -> bool {
            self.switches.iter().any(|x| x == s)
        }
        fn get(&self, k: &str) -> Option<&str> {
            self.flags.get(k).map(|s| s.as_str())
        }
        fn req(&self, k: &str) -> Result<&str, String> {
            self.get(k).ok_or_else(|| format!("--{k} is required"))
        }
        fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, String> {
            match self.get(k) {
                Some(v) => v.parse().map_err(|_| format!("--{k}: '{v}' is not a valid value (a number, whole and not negative where it counts something)")),
                None => Ok(default),
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

    fn load_model(g: &Gpu, dir: &str, heads: Option<Heads>) -> Result<LoadedModel, String> {
        let files = model_dir::read_dir(Path::new(dir))?;
        model_dir::load(g, &files, heads, 42)
    }

    fn texts_arg(a: &Args) -> Result<Vec<String>, String> {
        if let Some(t) = a.get("text") {
            return Ok(vec![t.to_string()]);
        }
        if let Some(f) = a.get("file") {
            let s = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
            return Ok(s.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect());
        }
        Err("give --text TEXT or --file FILE (one text per line)".into())
    }

    fn progress(label: &str, step: usize, total: usize, loss: f32, eta: f64) {
        let w = 30;
        let done = if total > 0 { step * w / total } else { 0 };
        eprint!("\r{label} [{}{}] {step}/{total} loss {loss:.4} ETA {eta:.0}s   ", "#".repeat(done), ".".repeat(w - done));
        let _ = std::io::stderr().flush();
    }

    /// A pass over many texts (features, evaluation, prediction): count, rate and time left.
    fn progress_texts(task: &str, done: usize, total: usize, per_s: f64, eta_s: f64) {
        let w = 30;
        let filled = if total > 0 { done * w / total } else { w };
        eprint!("\r{task} [{}{}] {done}/{total} texts, {per_s:.1} texts/s, ETA {eta_s:.0}s   ", "#".repeat(filled), ".".repeat(w - filled));
        if done == total {
            eprintln!();
        }
        let _ = std::io::stderr().flush();
    }

    /// Event handler for a prediction pass: its progress line.
    fn on_progress(e: Event) {
        if let Event::Progress { task, done, total, per_s, eta_s } = e {
            progress_texts(task, done, total, per_s, eta_s);
        }
    }

    fn write_export(out: &str, files: Vec<(String, Vec<u8>)>) -> Result<(), String> {
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

    fn tokenizer_files(tok: &BertTokenizer) -> Result<Vec<(String, Vec<u8>)>, String> {
        Ok(vec![
            ("tokenizer.json".into(), tok.to_json()?.into_bytes()),
            ("vocab.txt".into(), tok.vocab_txt().into_bytes()),
            ("tokenizer_config.json".into(), br#"{"do_lower_case": true, "tokenizer_class": "BertTokenizer", "model_max_length": 512}"#.to_vec()),
            ("special_tokens_map.json".into(), br#"{"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]", "unk_token": "[UNK]"}"#.to_vec()),
        ])
    }

    pub fn run(argv: Vec<String>) -> Result<(), String> {
        let Some(cmd) = argv.first() else {
            println!("{HELP}");
            return Ok(());
        };
        let rest = &argv[1..];
        match cmd.as_str() {
            "--help" | "-h" | "help" => {
                println!("{HELP}");
                Ok(())
            }
            "pretrain" => pretrain(rest),
            "train" => train(rest),
            "eval" => eval(rest),
            "predict" => predict(rest),
            "embed" => embed(rest),
            "fill-mask" => fill_mask(rest),
            "generate" => generate(rest),
            "export" => export(rest),
            "bench" => bench(rest),
            other => Err(format!("unknown command '{other}'\n\n{HELP}")),
        }
    }

    const PRETRAIN_HELP: &str = "bertlab pretrain --corpus FILE --out DIR [options]
  --corpus FILE     unlabeled text, one document per line (several sentences each for sentence order)
  --model DIR       continue from a checkpoint (an MLM head is added if it has none); default: from scratch
  --vocab N         WordPiece vocabulary to train for a from-scratch model (default 2000)
  --hidden N --layers N --heads N   from-scratch size (default 128, 2, 4)
  --steps N (300) --batch N (16) --lr X (1e-3) --max-len N (64) --warmup N (10% of steps) --seed N (42)
  --objective O     mlm+sop (default), mlm, sop, or causal: a decoder (BERT's body with causal
                    attention, transformers' BertLMHeadModel) that learns the next word, as GPT does;
                    every 10th line is held out, and its next-token accuracy is reported beside a
                    unigram baseline's
  --body B          the from-scratch decoder's body (with --objective causal): bert (default; BERT's
                    post-LN layers, BertLMHeadModel) or gpt2 (GPT-2's pre-LN layers, learned
                    positions, gelu_new; exported as GPT2LMHeadModel)
  --no-mlm / --no-sop   turn off a task
  --probe TEXT      print the top predictions at TEXT's [MASK]s every --probe-every N (50) steps
  --json            print the loss curve as JSON";

    fn pretrain(v: &[String]) -> Result<(), String> {
        let a = Args::parse(v, &["no-mlm", "no-sop"])?;
        if a.has("help") {
            println!("{PRETRAIN_HELP}");
            return Ok(());
        }
        let corpus = std::fs::read_to_string(a.req("corpus")?).map_err(|e| format!("{}: {e}", a.req("corpus").unwrap_or("")))?;
        let texts: Vec<String> = corpus.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
        let out = a.req("out")?;
        let (mut mlm, mut sop) = (!a.has("no-mlm"), !a.has("no-sop"));
        let causal = match a.get("objective").unwrap_or("mlm+sop") {
            "mlm+sop" | "sop+mlm" => false,
            "mlm" => {
                sop = false;
                false
            }
            "sop" => {
                mlm = false;
                false
            }
            "causal" => {
                (mlm, sop) = (true, false);
                true
            }
            o => return Err(format!("--objective {o}: use mlm+sop, mlm, sop or causal")),
        };
        let body = match a.get("body").unwrap_or("bert") {
            "bert" => Body::Bert,
            "gpt2" => Body::Gpt2,
            o => return Err(format!("--body {o}: use bert or gpt2")),
        };
        if body == Body::Gpt2 && !causal {
            return Err("--body gpt2 is a decoder, which learns the next word: use it with --objective causal".into());
        }
        if a.get("body").is_some() && a.get("model").is_some() {
            return Err("--body shapes a from-scratch model; a checkpoint (--model) brings its own body: leave one of them out".into());
        }
        // a causal model is judged on lines it never saw
        let (texts, held_out): (Vec<String>, Vec<String>) = if causal && texts.len() >= 20 {
            let (h, t): (Vec<_>, Vec<_>) = texts.into_iter().enumerate().partition(|(i, _)| i % 10 == 9);
            (t.into_iter().map(|x| x.1).collect(), h.into_iter().map(|x| x.1).collect())
        } else {
            (texts, Vec::new())
        };
        let heads = Heads { mlm: true, sop: !causal, num_labels: 0 };
        let g = gpu()?;
        let (mut model, tok, tok_files, base) = match a.get("model") {
            Some(dir) => {
                let lm = load_model(&g, dir, Some(heads))?;
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
                let tok = BertTokenizer::train_wordpiece(&texts, a.num("vocab", 2000)?)?;
                let size = (tok.vocab_size, a.num("hidden", 128)?, a.num("layers", 2)?, a.num("heads", 4)?);
                let mut cfg = if body == Body::Gpt2 { BertConfig::small_gpt2(size.0, size.1, size.2, size.3) } else { BertConfig::small(size.0, size.1, size.2, size.3) };
                cfg.is_decoder = causal;
                let (m, _) = Bert::new(&g, cfg, heads, None, a.num("seed", 42)?)?;
                let tf = tokenizer_files(&tok)?;
                (m, tok, tf, String::new())
            }
        };
        let steps = a.num("steps", 300)?;
        let pc = PretrainConfig {
            mlm,
            sop,
            steps,
            batch_size: a.num("batch", 16)?,
            lr: a.num("lr", 1e-3)?,
            max_len: a.num("max-len", 64)?,
            warmup: a.num("warmup", steps / 10)?,
            seed: a.num("seed", 42)?,
            probe: a.get("probe").map(str::to_string),
            probe_every: a.num("probe-every", 50)?,
            ..PretrainConfig::default()
        };
        let r = block(trainer::pretrain(&g, &mut model, &tok, &texts, &pc, &Control::default(), &mut |e| match e {
            Event::Pretrain { step, total_steps, mlm_loss, sop_loss, eta_s, .. } => progress("pretrain", step, total_steps, mlm_loss + sop_loss, eta_s),
            Event::Probe { step, predictions } => {
                let rows: Vec<String> = predictions.iter().map(|top| top.iter().map(|(t, p)| format!("{t} {p:.2}")).collect::<Vec<_>>().join(", ")).collect();
                eprintln!("\nprobe at step {step}: [MASK] -> {}", rows.join(" | "));
            }
            _ => {}
        }))?;
        eprintln!();
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
        if a.has("json") {
            println!("{}", serde_json::json!({"summary": summary, "mlm_losses": r.mlm_losses, "sop_losses": r.sop_losses}));
        } else {
            println!("pretrained {n} steps: {loss_name} {:.4} -> {:.4}, {:.1} ms/step; saved to {out}", r.mlm_losses.first().unwrap_or(&0.0), r.mlm_losses.last().unwrap_or(&0.0), r.ms_per_step);
            for (k, v) in metrics.iter().skip(1) {
                println!("{k}: {v}");
            }
        }
        Ok(())
    }

    const TRAIN_HELP: &str = "bertlab train --data FILE --model DIR --out DIR [options]
  --data FILE       labeled text: TSV/CSV (label, text[, text_b]), or JSON lines {\"text\", \"label\"}
  --model DIR       a BERT in Hugging Face's layout (e.g. models/all-MiniLM-L6-v2)
  --mode M          feature (frozen encoder, head only) | last:N (last N layers) | full (default)
  --epochs N (3) --batch N (16) --lr X (5e-5; 1e-3 for feature) --max-len N (128) --val F (0.2) --seed N (42)
  --patience N      early stopping after N epochs without a better validation loss (default off)
  --pooling P       cls (HF's pooler; exported as BertForSequenceClassification, the default) | mean (masked mean
                    of the last hidden states; exported as BertModel + classifier_head.safetensors, see its README)
  --checkpoint-every N   write OUT/checkpoint (weights, optimizer state, step) every N steps
  --resume DIR      continue the run checkpointed in DIR (same data and options; the model comes from DIR)
  --json            print per-epoch metrics as JSON";

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
        for m in &ds.messages {
            eprintln!("{path}: {m}");
        }
        ds.trainable()?;
        Ok(ds)
    }

    fn train(v: &[String]) -> Result<(), String> {
        let a = Args::parse(v, &[])?;
        if a.has("help") {
            println!("{TRAIN_HELP}");
            return Ok(());
        }
        let ds = read_dataset(a.req("data")?)?;
        let out = a.req("out")?;
        let resolved = a.get("resume").map(|d| checkpoint::resolve(Path::new(d)));
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
        let opt = |k: &str, d: &str| -> String { a.get(k).map(str::to_string).or_else(|| state.get(k).and_then(|v| v.as_str()).map(str::to_string)).unwrap_or_else(|| d.to_string()) };
        let mode = parse_mode(&opt("mode", "full"))?;
        let pooling = match opt("pooling", "cls").as_str() {
            "cls" => Pooling::Cls,
            "mean" => Pooling::Mean,
            p => return Err(format!("--pooling {p}: use cls or mean")),
        };
        let g = gpu()?;
        let heads = Heads { mlm: false, sop: false, num_labels: ds.labels.len() };
        let model_path = match resume {
            Some(dir) => dir.to_string(),
            None => a.req("model")?.to_string(),
        };
        let base_model = state.get("base_model").and_then(|v| v.as_str()).map(str::to_string).unwrap_or(model_path.clone());
        let mut lm = load_model(&g, &model_path, Some(heads))?;
        if !lm.report.replaced.is_empty() {
            eprintln!("the model's classifier was for other labels; a fresh head for the {} labels of the data was built and the encoder kept ({})", ds.labels.len(), lm.report.replaced.join("; "));
        }
        let num = |k: &str, d: f64| -> Result<f64, String> {
            match (a.get(k), state.get(k).and_then(|v| v.as_f64())) {
                (Some(_), _) => a.num(k, d),
                (None, Some(v)) => Ok(v),
                (None, None) => Ok(d),
            }
        };
        // counts must be whole numbers; their ranges are checked by TrainConfig::validate
        let whole = |k: &str, d: f64| -> Result<usize, String> {
            let v = num(k, d)?;
            if !(v >= 0.0 && v.fract() == 0.0 && v <= 1e15) {
                return Err(format!("--{k} must be a whole number of at least 0; got {v}"));
            }
            Ok(v as usize)
        };
        let seed = whole("seed", 42.0)? as u64;
        let val = num("val", 0.2)?;
        if !(val.is_finite() && (0.0..1.0).contains(&val)) {
            return Err(format!("--val must be a fraction in [0, 1); got {val}"));
        }
        let (tr, va) = dataset::stratified_split(&ds, val, seed);
        let default_lr = if mode == Mode::FeatureBased { 1e-3 } else { 5e-5 };
        let mut tc = TrainConfig {
            mode,
            pooling,
            lr: num("lr", default_lr)? as f32,
            epochs: whole("epochs", 3.0)?,
            batch_size: whole("batch", 16.0)?,
            max_len: whole("max-len", 128.0)?,
            seed,
            patience: whole("patience", 0.0)?,
            checkpoint_every: a.num("checkpoint-every", 0)?,
            ..TrainConfig::default()
        };
        if let Some(dir) = resume {
            let p = Path::new(dir).join(checkpoint::OPTIMIZER_FILE);
            let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            tc.start_step = checkpoint::restore_optimizer(&g, &mut lm.model, &bytes)?;
            eprintln!("resuming {dir} at step {}", tc.start_step);
        }
        let tok_files = if lm.tokenizer_files.is_empty() { tokenizer_files(&lm.tokenizer)? } else { lm.tokenizer_files.clone() };
        let ckpt_dir = PathBuf::from(out).join("checkpoint");
        let ckpt_config = bertlab::io::export::config_json(&lm.model.cfg, heads, &ds.labels);
        let ckpt_state = |step: usize| {
            serde_json::json!({"step": step, "mode": a.get("mode").or(state.get("mode").and_then(|v| v.as_str())).unwrap_or("full"), "pooling": opt("pooling", "cls"),
                "lr": tc.lr, "epochs": tc.epochs, "batch": tc.batch_size, "max-len": tc.max_len, "seed": seed, "val": num("val", 0.2).unwrap_or(0.2),
                "patience": tc.patience, "base_model": base_model, "data": a.get("data")})
        };
        let mut ckpt_err = None;
        let mut epochs_json = Vec::new();
        let r = block(trainer::train_classifier(&g, &mut lm.model, &lm.tokenizer, &ds, &tr, &va, &tc, &Control::default(), &mut |e| match e {
            Event::Plan { total_steps, train_examples, val_examples, truncated } => eprintln!("{train_examples} training and {val_examples} validation examples, {total_steps} steps, {truncated} texts truncated to {} tokens", tc.max_len),
            Event::Features { examples, ms } => eprintln!("features of the frozen encoder computed once for {examples} examples in {:.1} s", ms / 1e3),
            Event::Progress { task, done, total, per_s, eta_s } => progress_texts(task, done, total, per_s, eta_s),
            Event::Step { step, total_steps, loss, eta_s, .. } => progress("train", step, total_steps, loss, eta_s),
            Event::Epoch { epoch, train_loss, val } => {
                eprintln!("\nepoch {epoch}: train loss {train_loss:.4}, validation loss {:.4}, accuracy {:.4}, macro-F1 {:.4}", val.loss, val.accuracy, val.macro_f1);
                epochs_json.push(serde_json::json!({"epoch": epoch, "train_loss": train_loss, "val_loss": val.loss, "val_accuracy": val.accuracy, "val_macro_f1": val.macro_f1, "confusion": val.confusion}));
            }
            Event::NonFinite { step } => eprintln!("\n{}", bertlab::error::Error::non_finite(step)),
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
        }))?;
        if let Some(e) = ckpt_err {
            return Err(format!("writing the checkpoint: {e}"));
        }
        let last = r.epochs.last().map(|e| e.1.clone()).unwrap_or_default();
        let card = ModelCard {
            pooling,
            base_model,
            data_summary: format!("{} examples ({} train / {} validation), labels {}", ds.examples.len(), tr.len(), va.len(), ds.labels.join(", ")),
            metrics: vec![("validation accuracy".into(), format!("{:.4}", last.accuracy)), ("validation macro-F1".into(), format!("{:.4}", last.macro_f1))],
            seed,
            notes: format!("mode: {mode:?}, pooling: {pooling:?}, {} epochs, lr {}", r.epochs.len(), tc.lr),
        };
        let tensors = block(lm.model.params.read_all(&g)).map_err(|e| e.to_string())?;
        write_export(out, export_files(&lm.model.cfg, lm.model.heads, tensors, &ds.labels, &tok_files, &card))?;
        let labels_y: Vec<usize> = va.iter().map(|&i| ds.label_id(&ds.examples[i].label).unwrap_or(0)).collect();
        let tr_y: Vec<usize> = tr.iter().map(|&i| ds.label_id(&ds.examples[i].label).unwrap_or(0)).collect();
        let baseline = bertlab::train::metrics::majority_baseline(&tr_y, &labels_y, ds.labels.len());
        if a.has("json") {
            println!("{}", serde_json::json!({"epochs": epochs_json, "labels": ds.labels, "majority_baseline": baseline, "ms_per_step": r.ms_per_step, "steps": r.steps, "stopped": r.stopped, "out": out}));
        } else {
            println!("validation accuracy {:.4} (majority baseline {baseline:.4}), macro-F1 {:.4}, {:.1} ms/step; saved to {out}", last.accuracy, last.macro_f1, r.ms_per_step);
        }
        Ok(())
    }

    fn eval(v: &[String]) -> Result<(), String> {
        let a = Args::parse(v, &[])?;
        if a.has("help") {
            println!("bertlab eval --data FILE --model DIR [--max-len N] [--json]");
            return Ok(());
        }
        let ds = read_dataset(a.req("data")?)?;
        let g = gpu()?;
        let mut lm = load_model(&g, a.req("model")?, None)?;
        if lm.model.heads.num_labels == 0 {
            return Err("this model has no classification head; train one with `bertlab train`".into());
        }
        let max_len = a.num("max-len", 128)?;
        let enc: Vec<_> = ds.examples.iter().map(|e| lm.tokenizer.encode(&e.text, e.text_b.as_deref(), max_len)).collect::<Result<_, _>>()?;
        let probs = block(trainer::predict_with_progress(&g, &mut lm.model, &enc.iter().collect::<Vec<_>>(), lm.tokenizer.pad, 16, &mut on_progress))?;
        let truth: Vec<usize> = ds.examples.iter().map(|e| lm.labels.iter().position(|l| l == &e.label).ok_or_else(|| format!("label '{}' (line {}) is not one of the model's labels {:?}", e.label, e.line, lm.labels))).collect::<Result<_, _>>()?;
        let m = evaluate(&probs, &truth, lm.labels.len());
        if a.has("json") {
            println!("{}", serde_json::json!({"accuracy": m.accuracy, "macro_f1": m.macro_f1, "loss": m.loss, "confusion": m.confusion, "labels": lm.labels}));
        } else {
            println!("accuracy {:.4}, macro-F1 {:.4}, loss {:.4} on {} examples\nconfusion (rows true, columns predicted; {}):", m.accuracy, m.macro_f1, m.loss, truth.len(), lm.labels.join(", "));
            for row in &m.confusion {
                println!("  {row:?}");
            }
        }
        Ok(())
    }

    fn predict(v: &[String]) -> Result<(), String> {
        let a = Args::parse(v, &[])?;
        if a.has("help") {
            println!("bertlab predict --model DIR (--text TEXT | --file FILE) [--max-len N] [--json]");
            return Ok(());
        }
        let texts = texts_arg(&a)?;
        let g = gpu()?;
        let mut lm = load_model(&g, a.req("model")?, None)?;
        if lm.model.heads.num_labels == 0 {
            return Err("this model has no classification head; train one with `bertlab train`".into());
        }
        let enc: Vec<_> = texts.iter().map(|t| lm.tokenizer.encode(t, None, a.num("max-len", 128).unwrap_or(128))).collect::<Result<_, _>>()?;
        let probs = block(trainer::predict_with_progress(&g, &mut lm.model, &enc.iter().collect::<Vec<_>>(), lm.tokenizer.pad, 16, &mut on_progress))?;
        let rows: Vec<_> = texts
            .iter()
            .zip(&probs)
            .map(|(t, p)| {
                let probs: BTreeMap<&str, f32> = lm.labels.iter().map(|l| l.as_str()).zip(p.iter().cloned()).collect();
                serde_json::json!({"text": t, "label": lm.labels[argmax(p)], "probabilities": probs})
            })
            .collect();
        if a.has("json") {
            println!("{}", serde_json::Value::Array(rows));
        } else {
            for (t, p) in texts.iter().zip(&probs) {
                let parts: Vec<String> = lm.labels.iter().zip(p).map(|(l, x)| format!("{l} {x:.3}")).collect();
                println!("{}\t{}\t{t}", lm.labels[argmax(p)], parts.join("  "));
            }
        }
        Ok(())
    }

    fn embed(v: &[String]) -> Result<(), String> {
        let a = Args::parse(v, &[])?;
        if a.has("help") {
            println!("bertlab embed --model DIR (--text TEXT | --file FILE) [--max-len N] [--json]\n  mean-pooled last hidden states over each text's tokens");
            return Ok(());
        }
        let texts = texts_arg(&a)?;
        let g = gpu()?;
        let mut lm = load_model(&g, a.req("model")?, Some(Heads { mlm: false, sop: false, num_labels: 0 }))?;
        let c = lm.model.cfg.hidden_size;
        let mut out = Vec::new();
        for t in &texts {
            let e = lm.tokenizer.encode(t, None, a.num("max-len", 128)?)?;
            let n = e.ids.len();
            let batch = Batch::new(&g, &lm.model.cfg, 1, n, &e.ids, &e.type_ids, &vec![1; n], None, None, None)?;
            let h = block(async {
                let mut step = g.begin_step("embed");
                lm.model.forward(&g, &mut step, &batch, 0)?;
                step.submit().await.map_err(|e| e.to_string())?;
                g.read_f32(lm.model.last_hidden().unwrap()).await.map_err(|e| e.to_string())
            })?;
            let mean: Vec<f32> = (0..c).map(|j| (0..n).map(|i| h[i * c + j]).sum::<f32>() / n as f32).collect();
            out.push(mean);
        }
        if a.has("json") {
            println!("{}", serde_json::json!({"dim": c, "embeddings": out}));
        } else {
            for (t, e) in texts.iter().zip(&out) {
                println!("{t}\t[{:.4}, {:.4}, {:.4}, ... ] ({c} dims)", e[0], e[1], e[2]);
            }
        }
        Ok(())
    }

    const GENERATE_HELP: &str = "bertlab generate --model DIR --prompt TEXT [options]
  --model DIR         a causal model (is_decoder; `bertlab pretrain --objective causal` makes one)
  --prompt TEXT       the text to continue
  --max-new N         tokens to add at most (default 20; stops early at the end of a text)
  --top-k K           1 (default): greedy, always the most likely token; K > 1: sample among the K most likely
  --temperature T     sharpen (< 1) or flatten (> 1) the distribution when sampling (default 1)
  --seed S            the sampling seed (default 42): the same seed gives the same text
  --json              print the prompt, the new tokens and the text as JSON";

    fn generate(v: &[String]) -> Result<(), String> {
        use bertlab::train::generate::{self as gen, GenerateConfig};
        let a = Args::parse(v, &[])?;
        if a.has("help") {
            println!("{GENERATE_HELP}");
            return Ok(());
        }
        let prompt = a.req("prompt")?;
        let cfg = GenerateConfig { max_new: a.num("max-new", 20)?, top_k: a.num("top-k", 1)?, temperature: a.num("temperature", 1.0)?, seed: a.num("seed", 42)? };
        cfg.validate()?;
        let g = gpu()?;
        let mut lm = load_model(&g, a.req("model")?, None)?;
        let json = a.has("json");
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

    fn fill_mask(v: &[String]) -> Result<(), String> {
        let a = Args::parse(v, &[])?;
        if a.has("help") {
            println!("bertlab fill-mask --model DIR --text \"The curious kitten deftly [MASK] the bookshelf\" [--top-k 5] [--json]");
            return Ok(());
        }
        let text = a.req("text")?;
        let g = gpu()?;
        let mut lm = load_model(&g, a.req("model")?, None)?;
        if lm.model.cfg.is_decoder {
            return Err("this is a causal model (is_decoder): it predicts the next word from the words before, so it cannot fill a [MASK] from both sides; continue a text with `bertlab generate --model DIR --prompt TEXT`".into());
        }
        if !lm.model.heads.mlm {
            return Err("this model has no masked-LM head (cls.predictions.*); pretrain one with `bertlab pretrain --model DIR`".into());
        }
        let e = lm.tokenizer.encode(text, None, 512)?;
        let positions: Vec<usize> = (0..e.ids.len()).filter(|&i| e.ids[i] == lm.tokenizer.mask).collect();
        if positions.is_empty() {
            return Err("the text has no [MASK] token".into());
        }
        let preds = block(lm.model.fill_mask(&g, &e.ids, &e.type_ids, &positions, a.num("top-k", 5)?))?;
        let rows: Vec<_> = positions
            .iter()
            .zip(&preds)
            .map(|(p, top)| serde_json::json!({"position": p, "predictions": top.iter().map(|(id, pr)| serde_json::json!({"token": lm.tokenizer.id_to_token(*id), "id": id, "probability": pr})).collect::<Vec<_>>()}))
            .collect();
        if a.has("json") {
            println!("{}", serde_json::Value::Array(rows));
        } else {
            for (p, top) in positions.iter().zip(&preds) {
                let s: Vec<String> = top.iter().map(|(id, pr)| format!("{} {pr:.3}", lm.tokenizer.id_to_token(*id))).collect();
                println!("[MASK] at {p}: {}", s.join(", "));
            }
        }
        Ok(())
    }

    fn export(v: &[String]) -> Result<(), String> {
        let a = Args::parse(v, &[])?;
        if a.has("help") {
            println!("bertlab export --model DIR --out DIR\n  loads any BERT checkpoint BERT Lab reads (prefixes, legacy names, F16/BF16) and writes it in Hugging Face's format");
            return Ok(());
        }
        let g = gpu()?;
        let lm = load_model(&g, a.req("model")?, None)?;
        let out = a.req("out")?;
        let tensors = block(lm.model.params.read_all(&g)).map_err(|e| e.to_string())?;
        let files = export_files(&lm.model.cfg, lm.model.heads, tensors, &lm.labels, &lm.tokenizer_files, &ModelCard { base_model: a.req("model")?.to_string(), ..Default::default() });
        let names: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
        write_export(out, files)?;
        if a.has("json") {
            println!("{}", serde_json::json!({"out": out, "files": names}));
        } else {
            println!("wrote {} to {out}", names.join(", "));
        }
        Ok(())
    }

    fn bench(v: &[String]) -> Result<(), String> {
        let a = Args::parse(v, &[])?;
        if a.has("help") {
            println!("bertlab bench [--m ROWS (4096)] [--reps N (3)] [--json]");
            println!("bertlab bench --step CONFIG [--batch B (32)] [--len T (128)] [--steps N (5)] [--json]");
            println!("  CONFIG: {} (layers x hidden: {})", bertlab::bench::STEP_CONFIGS.iter().map(|c| c.0).collect::<Vec<_>>().join(", "),
                bertlab::bench::STEP_CONFIGS.iter().map(|c| format!("{}x{}", c.1, c.2)).collect::<Vec<_>>().join(", "));
            println!("  one full fine-tuning step (dropout, AdamW, [CLS] head over 2 labels) on random ids, median after 2 warm-up steps;");
            println!("  scripts/bench_step_torch.py prints the same JSON for PyTorch eager on the same machine");
            return Ok(());
        }
        let g = gpu()?;
        if let Some(config) = a.get("step") {
            let r = block(bertlab::bench::step(&g, config, a.num("batch", 32)?, a.num("len", 128)?, a.num("steps", 5)?))?;
            if a.has("json") {
                println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            } else {
                println!("{r}");
            }
            return Ok(());
        }
        let opts = bertlab::bench::BenchOptions { m: a.num("m", 4096)?, reps: a.num("reps", 3)? };
        let t0 = std::time::Instant::now();
        let now = move || t0.elapsed().as_secs_f64() * 1e3;
        let json = a.has("json");
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
