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
#[path = "bertlab/args.rs"]
mod args;

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::rc::Rc;

    pub use super::args::Cli;
    use super::args::*;
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

    use bertlab::error::{Error, Result};
    use bertlab::gpu::Gpu;
    use bertlab::session::metrics::{argmax, evaluate};
    use bertlab::session::store::CheckpointDir;
    use bertlab::session::{checkpoint, dataset, model_dir, Body, Event, Heads, Loaded, ModelCard, NoStore, Pooling, LoraSpec, PretrainConfig, RunSpec, Scratch, Session, Store, TrainConfig};

    /// How results are shown: JSON on stdout, and progress bars on stderr unless quiet.
    #[derive(Clone, Copy)]
    struct Out {
        json: bool,
        quiet: bool,
        /// --base: a LoRA adapter's base model.
        base: Option<&'static str>,
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

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        pollster::block_on(f)
    }

    /// A session on this machine's GPU.
    fn session() -> Result<Session> {
        let g = Gpu::new_blocking()?;
        eprintln!("GPU: {}", g.info.summary());
        Ok(Session::new(Rc::new(g)))
    }

    /// A session with the model in `dir` loaded (`heads` overrides the heads it carries); its
    /// notes (fresh tensors, a replaced classifier) go to stderr.
    fn open(o: Out, dir: &str, heads: Option<Heads>) -> Result<Session> {
        let s = session()?;
        load(&s, o, dir, heads)?;
        Ok(s)
    }

    fn load(s: &Session, o: Out, dir: &str, heads: Option<Heads>) -> Result<()> {
        let spin = o.spinner(&format!("loading {dir}"));
        let notes = model_dir::read_dir(Path::new(dir)).and_then(|files| {
            if !files.contains_key(model_dir::ADAPTER_CONFIG) {
                return s.load(&files, heads, dir.to_string());
            }
            // a PEFT adapter: on the base --base names, or the one its config names (a path from
            // here, or from beside the adapter)
            let (_, named) = model_dir::adapter_spec(&files)?;
            let base = o.base.map(str::to_string).or(named).ok_or_else(|| Error::Usage(format!("{dir} is a LoRA adapter whose {} names no base model: give its directory with --base DIR", model_dir::ADAPTER_CONFIG)))?;
            let beside = Path::new(dir).join("..").join(&base);
            let base_dir = [Path::new(&base).to_path_buf(), beside].into_iter().find(|p| p.join("config.json").exists()).ok_or_else(|| Error::Usage(format!("{dir} is a LoRA adapter on the base model \"{base}\", which is not a directory here: give its directory with --base DIR")))?;
            s.load_adapted(&model_dir::read_dir(&base_dir)?, &files, heads, dir.to_string())
        });
        spin.finish_and_clear();
        for n in notes? {
            eprintln!("{n}");
        }
        Ok(())
    }

    fn texts_arg(a: &TextsArgs) -> Result<Vec<String>> {
        if let Some(t) = &a.text {
            return Ok(vec![t.to_string()]);
        }
        if let Some(f) = &a.file {
            let s = std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?;
            return Ok(s.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect());
        }
        Err(Error::Usage("give --text TEXT or --file FILE (one text per line)".into()))
    }

    pub fn run(cli: Cli) -> Result<()> {
        // the CLI runs one command and exits: --base lives as long as it
        let o = Out { json: cli.json, quiet: cli.quiet, base: cli.base.clone().map(|b| &*Box::leak(b.into_boxed_str())) };
        match &cli.cmd {
            Cmd::Pretrain(a) => pretrain(a, o),
            Cmd::Train(a) => train(a, o),
            Cmd::Eval(a) => eval(a, o),
            Cmd::Predict(a) => predict(a, o),
            Cmd::Embed(a) => embed(a, o),
            Cmd::FillMask(a) => fill_mask(a, o),
            Cmd::Info(a) => info(a, o),
            Cmd::Generate(a) => generate(a, o),
            Cmd::Export(a) => export(a, o),
            Cmd::Bench(a) => bench(a, o),
        }
    }

    fn pretrain(a: &PretrainArgs, o: Out) -> Result<()> {
        let corpus = std::fs::read_to_string(&a.corpus).map_err(|e| Error::io(&a.corpus, e))?;
        let texts: Vec<String> = corpus.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
        let out = a.out.as_str();
        model_dir::check_out(out)?;
        let causal = a.objective == Objective::Causal;
        let (mlm, sop) = match a.objective {
            Objective::MlmSop => (!a.no_mlm, !a.no_sop),
            Objective::Mlm => (!a.no_mlm, false),
            Objective::Sop => (false, !a.no_sop),
            Objective::Causal => (true, false),
        };
        let body = match a.body {
            Some(BodyArg::Gpt2) => Body::Gpt2,
            Some(BodyArg::Llama) => Body::Llama,
            _ => Body::Bert,
        };
        if body != Body::Bert && !causal {
            return Err(Error::Usage(format!("--body {} is a decoder, which learns the next word: use it with --objective causal", if body == Body::Gpt2 { "gpt2" } else { "llama" })));
        }
        if a.body.is_some() && a.model.is_some() {
            return Err(Error::Usage("--body shapes a from-scratch model; a checkpoint (--model) brings its own body: leave one of them out".into()));
        }
        let s = match a.model.as_deref() {
            Some(dir) => {
                // the checkpoint's own heads (a classifier it has is kept, as in the page); the
                // run adds the heads its objectives need, drawn from --seed
                let s = open(o, dir, None)?;
                if s.peek(|l| l.model.cfg.is_decoder) != Some(causal) {
                    return Err(Error::Unsupported(if causal {
                        format!("{dir} is a masked (bidirectional) model; causal pretraining needs a decoder (is_decoder): start from scratch (leave out --model) or from a BertLMHeadModel checkpoint")
                    } else {
                        format!("{dir} is a causal model (is_decoder); masked-LM and sentence-order pretraining need a bidirectional BERT: use --objective causal, or another model")
                    }));
                }
                s
            }
            None => {
                let s = session()?;
                s.install(Loaded::scratch(s.gpu(), &Scratch { vocab: a.vocab, hidden: a.hidden, layers: a.layers, heads: a.heads, body, causal, seed: a.seed }, &texts)?)?;
                s
            }
        };
        // --mode lora:R: adapters on the model given, in PEFT's format
        let lora = match a.mode.as_deref().map(str::parse::<bertlab::session::Adopt>).transpose().map_err(|e| Error::Usage(format!("--mode {e}")))? {
            None | Some(bertlab::session::Adopt::Full) => None,
            Some(bertlab::session::Adopt::Lora(r)) => {
                let family = s.peek(|l| l.model.cfg.family).unwrap_or_default();
                Some(LoraSpec::with(r, family, a.lora.lora_alpha.unwrap_or(LoraSpec::DEFAULT_ALPHA), a.lora.lora_dropout.unwrap_or(0.0), a.lora.lora_targets.as_deref().unwrap_or_default()))
            }
            Some(m) => return Err(Error::Usage(format!("--mode {m}: pretraining takes full or lora:R"))),
        };
        let steps = a.steps;
        let pc = PretrainConfig { mlm, sop, steps, batch_size: a.batch, lr: a.lr, max_len: a.max_len, warmup: a.warmup.unwrap_or(steps / 10), seed: a.seed, probe: a.probe.clone(), probe_every: a.probe_every, lora, ..PretrainConfig::default() };
        let bar = o.bar(steps as u64, "pretrain");
        let r = block(s.pretrain(pc.clone(), &texts, &NoStore, &mut |e| match e {
            Event::Pretrain { step, lm_loss, sop_loss, .. } => {
                bar.set_position(step as u64);
                bar.set_message(format!("loss {:.4}", lm_loss + sop_loss));
            }
            Event::Probe { step, predictions } => {
                let rows: Vec<String> = predictions.iter().map(|top| top.iter().map(|(t, p)| format!("{t} {p:.2}")).collect::<Vec<_>>().join(", ")).collect();
                bar.println(format!("probe at step {step}: [MASK] -> {}", rows.join(" | ")));
            }
            _ => {}
        }));
        bar.finish();
        let r = r?;
        if let Some(step) = r.rolled_back {
            eprintln!("note: the model is not written");
            return Err(Error::non_finite(step));
        }
        let r = r.report;
        for m in &r.messages {
            eprintln!("note: {m}");
        }
        let loss_name = if causal { "next-token loss" } else { "MLM loss" };
        let mut metrics = vec![(format!("final {loss_name}"), format!("{:.4}", r.lm_losses.last().unwrap_or(&0.0)))];
        let mut held = serde_json::Value::Null;
        // a causal model is judged on lines it never saw (the session holds them out)
        if let Some(h) = r.held_out {
            metrics.push(("held-out next-token accuracy".into(), format!("{:.4} (unigram baseline {:.4}, {} lines)", h.accuracy, h.unigram, h.texts)));
            held = serde_json::json!({"texts": h.texts, "next_token_accuracy": h.accuracy, "unigram_baseline": h.unigram});
        }
        let card = ModelCard { base_model: a.model.clone().unwrap_or_default(), data_summary: format!("{} unlabeled texts", texts.len()), seed: pc.seed, metrics: metrics.clone(), ..Default::default() };
        model_dir::write_dir(out, block(s.export(card, false))?)?;
        let n = r.lm_losses.len();
        let summary = serde_json::json!({"steps": n, "objective": if causal { "causal" } else { "masked" }, "lm_loss_first": r.lm_losses.first(), "lm_loss_last": r.lm_losses.last(), "sop_loss_last": r.sop_losses.last(), "ms_per_step": r.ms_per_step, "out": out, "messages": r.messages, "held_out": held});
        if o.json {
            println!("{}", serde_json::json!({"summary": summary, "lm_losses": r.lm_losses, "sop_losses": r.sop_losses}));
        } else {
            println!("pretrained {n} steps: {loss_name} {:.4} -> {:.4}, {:.1} ms/step; saved to {out}", r.lm_losses.first().unwrap_or(&0.0), r.lm_losses.last().unwrap_or(&0.0), r.ms_per_step);
            for (k, v) in metrics.iter().skip(1) {
                println!("{k}: {v}");
            }
        }
        Ok(())
    }

    /// Reads labeled data into the session; its messages go to stderr, and data that cannot train
    /// a classifier is refused (the refusal said once, as the error).
    fn read_dataset(s: &Session, path: &str, trainable: bool) -> Result<()> {
        let size = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
        dataset::check_size(size).map_err(|e| Error::Limit(format!("{path}: {e}")))?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let ds = s.set_data(path.to_string(), bytes)?;
        let verdict = if trainable { ds.why_untrainable() } else { None };
        for m in ds.messages.iter().filter(|m| verdict.as_ref() != Some(&m.text)) {
            eprintln!("{path}: {m}");
        }
        match verdict {
            Some(message) => Err(Error::Data { line: 0, message }),
            None => Ok(()),
        }
    }

    fn train(a: &TrainArgs, o: Out) -> Result<()> {
        let out = a.out.as_str();
        model_dir::check_out(out)?;
        let resume = a.resume.as_deref().map(|d| {
            let (dir, note) = checkpoint::resolve(Path::new(d));
            if let Some(note) = note {
                eprintln!("{note}");
            }
            CheckpointDir(dir)
        });
        // a resumed run takes its settings from the checkpoint; the flags given now override them
        let snap = resume.as_ref().map(CheckpointDir::read).transpose()?;
        let mut tc = match snap.as_ref().map(|s| s.meta.run.clone()) {
            Some(Some(RunSpec::Train(t))) => t,
            Some(Some(RunSpec::Pretrain(_))) => return Err(Error::Usage("--resume: that checkpoint is of a pretraining run, not a fine-tuning one".into())),
            Some(None) => return Err(Error::Usage("--resume: the checkpoint does not say which run it belongs to; start a new run".into())),
            None => TrainConfig::default(),
        };
        let state = snap.as_ref().map(|s| &s.meta);
        if let Some(m) = &a.mode {
            tc.adopt = m.parse().map_err(|e| Error::Usage(format!("--mode {e}")))?;
            if state.is_none() && a.lr.is_none() {
                tc.lr = tc.adopt.default_lr();
            }
        } else if state.is_none() {
            tc.lr = tc.adopt.default_lr();
        }
        if let Some(p) = &a.pooling {
            tc.pooling = Pooling::parse(p).ok_or_else(|| Error::Usage(format!("--pooling {p}: use cls or mean (BERT), last (a causal model's default)")))?;
        }
        tc.lr = a.lr.unwrap_or(tc.lr);
        tc.epochs = a.epochs.unwrap_or(tc.epochs);
        tc.batch_size = a.batch.unwrap_or(tc.batch_size);
        tc.max_len = a.max_len.unwrap_or(tc.max_len);
        tc.seed = a.seed.unwrap_or(tc.seed);
        tc.val = a.val.unwrap_or(tc.val);
        tc.patience = a.patience.unwrap_or(tc.patience);
        tc.checkpoint_every = a.checkpoint_every;
        tc.dropout = !a.no_dropout;
        tc.lora_alpha = a.lora.lora_alpha.unwrap_or(tc.lora_alpha);
        tc.lora_dropout = a.lora.lora_dropout.unwrap_or(tc.lora_dropout);
        tc.lora_targets = a.lora.lora_targets.clone().unwrap_or(tc.lora_targets);
        let base_model = state.map(|m| m.source.clone()).or(a.model.clone()).ok_or_else(|| Error::Usage("--model is required (or --resume)".into()))?;
        // the data first: a file that cannot train a classifier is refused before the model loads
        let s = session()?;
        // a head the checkpoint lacks is drawn from --seed, as the run's batches and dropout are
        s.set_seed(tc.seed);
        read_dataset(&s, &a.data, true)?;
        match &snap {
            Some(snap) => {
                tc.start_step = s.restore(snap)?;
                eprintln!("resuming {} at step {}", resume.as_ref().map(|d| d.0.display().to_string()).unwrap_or_default(), tc.start_step);
            }
            None => {
                let labels = s.data(|d| d.map(|d| d.ds.labels.len())).unwrap_or(0);
                load(&s, o, &base_model, Some(Heads { lm: false, sop: false, num_labels: labels }))?;
            }
        }
        let store: Box<dyn Store> = if tc.checkpoint_every > 0 { Box::new(CheckpointDir(PathBuf::from(out).join("checkpoint"))) } else { Box::new(NoStore) };
        let (mut epochs_json, mut step_losses, val_empty) = (Vec::new(), Vec::new(), tc.val == 0.0);
        // a bar for the steps, and one for each pass over the texts (frozen features, validation)
        let multi = MultiProgress::with_draw_target(if o.quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() });
        let steps_bar = multi.add(o.bar(0, "train"));
        let mut text_bars = TextBars::new(o, Some(multi.clone()));
        let say = |bar: &ProgressBar, line: String| if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) };
        let max_len = tc.max_len;
        let r = block(s.train(tc.clone(), store.as_ref(), &mut |e| match e {
            Event::Plan { total_steps, train_examples, val_examples, truncated } => {
                steps_bar.set_length(total_steps as u64);
                say(&steps_bar, format!("{train_examples} training and {val_examples} validation examples, {total_steps} steps, {truncated} texts truncated to {max_len} tokens"));
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
                let scored = if val_empty { "no validation set (--val 0)".to_string() } else { format!("validation loss {:.4}, accuracy {:.4}, macro-F1 {:.4}", val.loss, val.accuracy, val.macro_f1) };
                say(&steps_bar, format!("epoch {epoch}: train loss {train_loss:.4}, {scored}"));
                epochs_json.push(serde_json::json!({"epoch": epoch, "train_loss": train_loss, "val_loss": val.loss, "val_accuracy": val.accuracy, "val_macro_f1": val.macro_f1, "confusion": val.confusion}));
            }
            Event::NonFinite { step } => say(&steps_bar, format!("{}; the weights are back to where they were before this run", Error::non_finite(step))),
            _ => {}
        }));
        steps_bar.finish();
        // the command line's own way to merge adapters, beside the session's refusal
        let trained = r.map_err(|e| match e {
            Error::Limit(m) if m.starts_with(bertlab::session::ADAPTERS_CARRIED) => Error::Limit(format!("{m} (`bertlab export --merge --model DIR --out MERGED` writes it merged)")),
            e => e,
        })?;
        let (r, tr, va) = (trained.ran.report, trained.train, trained.val);
        let last = r.epochs.last().map(|e| e.1.clone()).unwrap_or_default();
        let (labels, pooling) = s.peek(|l| (l.labels.clone(), l.model.pooling)).unwrap_or_default();
        let data_summary = s.data(|d| d.map(|d| format!("{} examples ({} train / {} validation), labels {}", d.ds.examples.len(), tr.len(), va.len(), labels.join(", ")))).unwrap_or_default();
        let metrics = if va.is_empty() { Vec::new() } else { vec![("validation accuracy".into(), format!("{:.4}", last.accuracy)), ("validation macro-F1".into(), format!("{:.4}", last.macro_f1))] };
        let notes = format!("mode: {}, pooling: {}, {} epochs, lr {}", tc.adopt, pooling.name(), r.epochs.len(), tc.lr);
        model_dir::write_dir(out, block(s.export(ModelCard { base_model, data_summary, metrics, seed: tc.seed, notes, ..Default::default() }, false))?)?;
        let ids = |idx: &[usize]| s.data(|d| d.map(|d| idx.iter().map(|&i| d.ds.label_id(&d.ds.examples[i].label).unwrap_or(0)).collect::<Vec<usize>>())).unwrap_or_default();
        let baseline = bertlab::session::metrics::majority_baseline(&ids(&tr), &ids(&va), labels.len());
        if o.json {
            // what the run trained, and the GPU buffers the process made (weights, gradients,
            // moments, activations)
            let trainable = s.peek(|l| l.model.params.params.iter().filter(|p| p.trainable).map(|p| p.numel()).sum::<usize>()).unwrap_or(0);
            let gpu_bytes = s.gpu().counters().storage_bytes;
            println!("{}", serde_json::json!({"epochs": epochs_json, "step_losses": step_losses, "labels": labels, "majority_baseline": baseline, "ms_per_step": r.ms_per_step, "steps": r.steps, "stopped": r.stopped, "out": out, "mode": tc.adopt.to_string(), "trainable_params": trainable, "gpu_storage_bytes": gpu_bytes}));
        } else if va.is_empty() {
            let train_loss = r.epochs.last().map(|e| e.0).unwrap_or(f32::NAN);
            println!("trained {} epochs, last train loss {train_loss:.4}; no validation set (--val 0), so no accuracy; {:.1} ms/step; saved to {out}", r.epochs.len(), r.ms_per_step);
        } else {
            println!("validation accuracy {:.4} (majority baseline {baseline:.4}), macro-F1 {:.4}, {:.1} ms/step; saved to {out}", last.accuracy, last.macro_f1, r.ms_per_step);
        }
        Ok(())
    }

    fn eval(a: &EvalArgs, o: Out) -> Result<()> {
        let s = open(o, &a.model, None)?;
        read_dataset(&s, &a.data, false)?;
        let labels = s.peek(|l| l.labels.clone()).unwrap_or_default();
        let (texts, truth) = s.data(|d| {
            let ex = d.map(|d| d.ds.examples.as_slice()).unwrap_or_default();
            let truth: Result<Vec<usize>> = ex.iter().map(|e| labels.iter().position(|l| l == &e.label).ok_or_else(|| Error::Data { line: e.line, message: format!("label '{}' is not one of the model's labels {labels:?}", e.label) })).collect();
            (ex.iter().map(|e| (e.text.clone(), e.text_b.clone())).collect::<Vec<_>>(), truth)
        });
        let probs = block(s.predict(&texts, a.max_len, &mut text_progress(o)))?;
        let truth = truth?;
        let m = evaluate(&probs, &truth, labels.len());
        if o.json {
            println!("{}", serde_json::json!({"accuracy": m.accuracy, "macro_f1": m.macro_f1, "loss": m.loss, "confusion": m.confusion, "labels": labels}));
        } else {
            println!("accuracy {:.4}, macro-F1 {:.4}, loss {:.4} on {} examples\nconfusion (rows true, columns predicted; {}):", m.accuracy, m.macro_f1, m.loss, truth.len(), labels.join(", "));
            for row in &m.confusion {
                println!("  {row:?}");
            }
        }
        Ok(())
    }

    fn predict(a: &TextsArgs, o: Out) -> Result<()> {
        let texts = texts_arg(a)?;
        let s = open(o, &a.model, None)?;
        let pairs: Vec<(String, Option<String>)> = texts.iter().map(|t| (t.clone(), None)).collect();
        let probs = block(s.predict(&pairs, a.max_len, &mut text_progress(o)))?;
        let labels = s.peek(|l| l.labels.clone()).unwrap_or_default();
        if o.json {
            let rows: Vec<_> = texts
                .iter()
                .zip(&probs)
                .map(|(t, p)| {
                    let probs: BTreeMap<&str, f32> = labels.iter().map(|l| l.as_str()).zip(p.iter().cloned()).collect();
                    serde_json::json!({"text": t, "label": labels[argmax(p)], "probabilities": probs})
                })
                .collect();
            println!("{}", serde_json::Value::Array(rows));
        } else {
            for (t, p) in texts.iter().zip(&probs) {
                let parts: Vec<String> = labels.iter().zip(p).map(|(l, x)| format!("{l} {x:.3}")).collect();
                println!("{}\t{}\t{t}", labels[argmax(p)], parts.join("  "));
            }
        }
        Ok(())
    }

    fn embed(a: &TextsArgs, o: Out) -> Result<()> {
        let texts = texts_arg(a)?;
        let s = open(o, &a.model, Some(Heads { lm: false, sop: false, num_labels: 0 }))?;
        let out = block(s.embed(&texts, a.max_len))?;
        let c = out.first().map(Vec::len).unwrap_or(0);
        if o.json {
            println!("{}", serde_json::json!({"dim": c, "embeddings": out}));
        } else {
            for (t, e) in texts.iter().zip(&out) {
                // the first three values (fewer where the model is narrower), never an index past the end
                let head: Vec<String> = e.iter().take(3).map(|x| format!("{x:.4}")).collect();
                let more = if e.len() > 3 { ", ..." } else { "" };
                println!("{t}\t[{}{more} ] ({c} dims)", head.join(", "));
            }
        }
        Ok(())
    }

    fn generate(a: &GenerateArgs, o: Out) -> Result<()> {
        use bertlab::session::GenerateConfig;
        let prompt = a.prompt.as_str();
        let cfg = GenerateConfig { max_new: a.max_new, top_k: a.top_k, temperature: a.temperature, seed: a.seed };
        cfg.validate()?;
        let s = open(o, &a.model, None)?;
        let json = o.json;
        let mut shown = Vec::new();
        let g = block(s.generate(prompt, &cfg, &mut |_, t, continuation| {
            if shown.is_empty() && !json {
                print!("{prompt}");
            }
            shown.push(t.to_string());
            if !json {
                print!("{continuation}");
                let _ = std::io::stdout().flush();
            }
        }))?;
        let why = g.stop.describe();
        if json {
            println!("{}", serde_json::json!({"prompt": prompt, "tokens": shown, "ids": g.ids, "text": g.text, "stopped_at": why, "top_k": cfg.top_k, "temperature": cfg.temperature, "seed": cfg.seed}));
        } else {
            if shown.is_empty() {
                print!("{prompt}");
            }
            println!();
            eprintln!("({} tokens; stopped at {why})", g.ids.len());
        }
        Ok(())
    }

    fn info(a: &InfoArgs, o: Out) -> Result<()> {
        let s = open(o, &a.model, None)?;
        let i = s.describe().ok_or_else(|| Error::Usage("no model is loaded".into()))?;
        if o.json {
            println!("{}", serde_json::to_string(&i)?);
            return Ok(());
        }
        println!("{} ({}), as transformers' {}", i.family, i.model_type, i.architecture);
        println!("layers: {} × [{}]", i.layers, i.layer);
        let emb = i.embedding_size.map(|e| format!(", embeddings {e} wide projected to {}", i.hidden)).unwrap_or_default();
        println!("sizes: hidden {}, {} heads, feed-forward {}, vocabulary {}, up to {} tokens{emb}; {} parameters", i.hidden, i.heads, i.intermediate, i.vocab, i.max_tokens, i.params);
        let mut heads = Vec::new();
        if i.lm_head {
            heads.push("language-model".to_string());
        }
        if i.sop_head {
            heads.push("sentence-order".to_string());
        }
        if !i.labels.is_empty() {
            heads.push(format!("classifier ({})", i.labels.join(", ")));
        }
        println!("heads: {}", if heads.is_empty() { "none".to_string() } else { heads.join(", ") });
        println!("attention: {}", i.attention);
        println!("tokenizer: a text reads {}{}{}", i.framing, i.mask_token.as_ref().map(|m| format!("; mask token {m}")).unwrap_or_default(), if i.end_tokens.is_empty() { String::new() } else { format!("; generation ends at {}", i.end_tokens.join(" or ")) });
        println!("GPU memory: {}", i.memory);
        if let Some(l) = &i.lora {
            println!("LoRA adapters: {l}");
        }
        Ok(())
    }

    fn fill_mask(a: &FillMaskArgs, o: Out) -> Result<()> {
        let s = open(o, &a.model, None)?;
        let preds = block(s.fill_mask(&a.text, a.top_k))?;
        if o.json {
            let rows: Vec<_> = preds.iter().map(|(p, top)| serde_json::json!({"position": p, "predictions": top.iter().map(|(id, t, pr)| serde_json::json!({"token": t, "id": id, "probability": pr})).collect::<Vec<_>>()})).collect();
            println!("{}", serde_json::Value::Array(rows));
        } else {
            for (p, top) in &preds {
                let row: Vec<String> = top.iter().map(|(_, t, pr)| format!("{t} {pr:.3}")).collect();
                println!("[MASK] at {p}: {}", row.join(", "));
            }
        }
        Ok(())
    }

    fn export(a: &ExportArgs, o: Out) -> Result<()> {
        let s = open(o, &a.model, None)?;
        let out = a.out.as_str();
        model_dir::check_out(out)?;
        let files = block(s.export(ModelCard { base_model: a.model.clone(), ..Default::default() }, a.merge))?;
        let names: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
        model_dir::write_dir(out, files)?;
        if o.json {
            println!("{}", serde_json::json!({"out": out, "files": names}));
        } else {
            println!("wrote {} to {out}", names.join(", "));
        }
        Ok(())
    }

    /// Prints a benchmark's report, as JSON or as text.
    fn show<R: serde::Serialize + std::fmt::Display>(o: Out, r: R) -> Result<()> {
        if o.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!("{r}");
        }
        Ok(())
    }

    fn bench(a: &BenchArgs, o: Out) -> Result<()> {
        let g = Gpu::new_blocking()?;
        eprintln!("GPU: {}", g.info.summary());
        // a directory: the model in it (its config.json and weights)
        let dir = |p: &str| -> Result<Option<std::collections::BTreeMap<String, Vec<u8>>>> {
            let path = std::path::Path::new(p);
            if path.is_dir() {
                Ok(Some(bertlab::session::model_dir::read_dir(path)?))
            } else {
                Ok(None)
            }
        };
        if let Some(config) = &a.generate {
            if let Some(files) = dir(config)? {
                let model = bertlab::bench::model_of_files(&g, &files, false, None)?;
                return show(o, block(bertlab::bench::generate_model(&g, model, config, &a.new))?);
            }
            return show(o, block(bertlab::bench::generate(&g, config, a.vocab, &a.new))?);
        }
        if let Some(config) = &a.step {
            if let Some(files) = dir(config)? {
                let model = bertlab::bench::model_of_files(&g, &files, true, a.lora)?;
                return show(o, block(bertlab::bench::step_model(&g, model, config, a.batch, a.len, a.steps))?);
            }
            if a.lora.is_some() {
                return Err(Error::Usage("--lora is for --step on a model directory".into()));
            }
            let family = bertlab::session::Family::from_model_type(&a.family).ok_or_else(|| Error::Usage(format!("--family {}: one of {}", a.family, bertlab::session::Family::supported())))?;
            return show(o, block(bertlab::bench::step_of(&g, family, config, a.batch, a.len, a.steps))?);
        }
        let opts = bertlab::bench::BenchOptions { m: a.m, reps: a.reps };
        let t0 = std::time::Instant::now();
        let now = move || t0.elapsed().as_secs_f64() * 1e3;
        let json = o.json;
        let lines = block(bertlab::bench::run(&g, &opts, &now, &mut |l| {
            if !json {
                println!("{l}");
            }
        }))?;
        if json {
            let rows: Vec<_> = lines.iter().map(|l| serde_json::json!({"name": l.name, "rate": l.rate, "unit": l.unit, "ms": l.ms_per_call})).collect();
            println!("{}", serde_json::json!({"adapter": g.info.summary(), "results": rows}));
        }
        Ok(())
    }
}
