//! Data and training: masking, sentence order, dataset messages, and training runs on the shipped
//! samples, natively on wgpu.

use bertlab::gpu::Gpu;
use bertlab::model::{Model, ModelConfig, Heads};
use bertlab::text::dataset;
use bertlab::text::tokenizer::Tokenizer;
use bertlab::train::checks;
use bertlab::train::metrics::majority_baseline;
use bertlab::train::spec::Adopt;
use bertlab::train::trainer::{self, Control, Event, PretrainConfig, TrainConfig};

use crate::common::{gpu, Cli};

fn report(name: &str, r: bertlab::error::Result<String>) {
    match r {
        Ok(s) => println!("{name}: {s}"),
        Err(e) => panic!("{name}: {e}"),
    }
}

#[test]
fn masking_proportions() {
    report("masking", checks::masking_proportions());
}

#[test]
fn whole_word_masking() {
    report("whole-word masking", checks::whole_word_masking());
}

#[test]
fn sentence_order_pairs() {
    report("sentence order", checks::sentence_order_pairs());
}

#[test]
fn dataset_messages() {
    report("dataset", checks::dataset_messages());
}

/// Fine-tunes a small from-scratch BERT on the sentiment sample: at least 20 points above the
/// majority baseline on the held-out split; with shuffled labels, within 10 points of chance.
#[test]
fn small_model_learns_sentiment_and_not_shuffled_labels() {
    let g = gpu();
    let ds = dataset::parse(checks::SENTIMENT.as_bytes(), None);
    let (train, val) = dataset::stratified_split(&ds, 0.2, 3);
    let texts: Vec<String> = train.iter().map(|&i| ds.examples[i].text.clone()).collect();
    let tok = Tokenizer::train_wordpiece(&texts, 600).unwrap();
    let run = |ds: &dataset::Dataset| -> (f64, f64) {
        let cfg = ModelConfig::small(tok.vocab_size, 64, 2, 4);
        let heads = Heads { lm: false, sop: false, num_labels: 2 };
        let (mut model, _) = Model::new(g, cfg, heads, None, 1).unwrap();
        let tc = TrainConfig { adopt: Adopt::Full, lr: 1e-3, epochs: 8, batch_size: 16, max_len: 48, warmup_ratio: 0.1, seed: 5, dropout: true, ..TrainConfig::default() };
        let r = pollster::block_on(trainer::train_classifier(g, &mut model, &tok, ds, &train, &val, &tc, &Control::default(), &mut |_| {})).unwrap();
        let acc = r.epochs.last().unwrap().1.accuracy;
        (acc, r.ms_per_step)
    };
    let (acc, ms) = run(&ds);
    let y = |idx: &[usize]| idx.iter().map(|&i| ds.label_id(&ds.examples[i].label).unwrap()).collect::<Vec<_>>();
    let base = majority_baseline(&y(&train), &y(&val), 2);
    println!("sentiment: held-out accuracy {acc:.3}, majority baseline {base:.3}, {ms:.1} ms/step");
    assert!(acc >= base + 0.20, "accuracy {acc:.3} is not 20 points above the majority baseline {base:.3}");
    // the same run with the training labels shuffled (validation labels left true)
    let mut shuffled = ds.clone();
    let mut labels: Vec<String> = train.iter().map(|&i| ds.examples[i].label.clone()).collect();
    let mut rng = bertlab::rng::Rng::new(77);
    for i in (1..labels.len()).rev() {
        labels.swap(i, rng.below(i as u32 + 1) as usize);
    }
    for (k, &i) in train.iter().enumerate() {
        shuffled.examples[i].label = labels[k].clone();
    }
    let (acc_s, _) = run(&shuffled);
    println!("sentiment with shuffled training labels: held-out accuracy {acc_s:.3} (chance 0.5)");
    assert!((acc_s - 0.5).abs() <= 0.10, "shuffled labels reached {acc_s:.3}, more than 10 points from chance");
}

/// Pretrains a small BERT from scratch on the shipped corpus (MLM + sentence order): the MLM loss
/// falls to at most 60% of its start, and held-out masked-token accuracy beats always guessing the
/// most frequent token.
#[test]
fn pretraining_from_scratch_learns_the_corpus() {
    let g = gpu();
    let lines: Vec<String> = checks::CORPUS.lines().map(str::to_string).collect();
    let (held, train) = lines.split_at(60);
    let tok = Tokenizer::train_wordpiece(train, 800).unwrap();
    let cfg = ModelConfig::small(tok.vocab_size, 64, 2, 4);
    let (mut model, _) = Model::new(g, cfg, Heads { lm: true, sop: true, num_labels: 0 }, None, 2).unwrap();
    let pc = PretrainConfig { steps: 200, batch_size: 16, max_len: 64, lr: 2e-3, warmup: 20, ..PretrainConfig::default() };
    let mut outcomes = 0;
    let r = pollster::block_on(trainer::pretrain(g, &mut model, &tok, train, &pc, &Control::default(), &mut |e| {
        if let Event::Pretrain { batch_outcomes, .. } = e {
            outcomes += batch_outcomes.len();
        }
    }))
    .unwrap();
    let first: f32 = r.lm_losses[..10].iter().sum::<f32>() / 10.0;
    let last: f32 = r.lm_losses[r.lm_losses.len() - 10..].iter().sum::<f32>() / 10.0;
    let sop_last: f32 = r.sop_losses[r.sop_losses.len() - 20..].iter().sum::<f32>() / 20.0;
    let (acc, base) = pollster::block_on(trainer::mlm_accuracy(g, &mut model, &tok, held, train, 64, 9)).unwrap();
    println!("pretraining: MLM loss {first:.3} -> {last:.3} ({:.0}%), SOP loss (last 20) {sop_last:.3}, held-out masked-token accuracy {acc:.3} vs word-frequency baseline {base:.3}, {:.1} ms/step", 100.0 * last / first, r.ms_per_step);
    assert!(outcomes > 0);
    assert!(last <= 0.6 * first, "MLM loss {first} -> {last} is above 60% of its start");
    assert!(acc > base, "masked-token accuracy {acc} does not beat the word-frequency baseline {base}");
}

/// all-MiniLM-L6-v2 trains: a few feature-based steps (no encoder backward dispatched) and a few
/// full fine-tuning steps on short texts; both losses fall.
#[test]
fn minilm_feature_based_and_fine_tuning_steps() {
    use bertlab::io::model_dir;
    use bertlab::kernels::adamw::AdamW;
    use bertlab::train::batches::classification;
    let g = Gpu::new_blocking().unwrap(); // own device: its counters see only this test
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    let files = model_dir::read_dir(&dir).unwrap_or_else(|e| panic!("{e}; run scripts/fetch_model.sh"));
    let texts = ["a wonderful film", "an awful film", "I loved the soup", "the soup was bland", "great service", "terrible service", "what a lovely day", "a dreadful day"];
    let labels: Vec<i32> = vec![1, 0, 1, 0, 1, 0, 1, 0];
    for (mode, lr, steps) in [(Adopt::Feature, 1e-2f32, 6), (Adopt::Full, 1e-4, 4)] {
        let mut lm = model_dir::load(&g, &files, Some(Heads { lm: false, sop: false, num_labels: 2 }), 3).unwrap();
        let layers = lm.model.cfg.num_hidden_layers;
        lm.model.params.set_trainable(&g, |p| mode.trainable(p.part, layers)).unwrap();
        let enc: Vec<_> = texts.iter().map(|t| lm.tokenizer.encode(t, None, 32).unwrap()).collect();
        // the model's tokenizer.json pads to 128; our encoding must not
        assert_eq!(enc[0].ids.len(), 5, "[CLS] a wonderful film [SEP]: {:?}", enc[0].ids);
        assert!(enc.iter().all(|e| e.truncated == 0 && !e.ids.contains(&lm.tokenizer.pad)));
        let hb = classification(&enc.iter().collect::<Vec<_>>(), &labels, lm.tokenizer.pad);
        let opt = AdamW { lr, ..AdamW::default() };
        g.reset_counters();
        let t0 = std::time::Instant::now();
        let mut losses = Vec::new();
        for _ in 0..steps {
            let l = pollster::block_on(trainer::train_step(&g, &mut lm.model, &hb, &opt, lr, 0.01, bertlab::model::Mode::Eval)).unwrap();
            losses.push(l.cls);
        }
        let ms = t0.elapsed().as_secs_f64() * 1e3 / steps as f64;
        let c = g.counters();
        println!("MiniLM {mode:?}: losses {losses:?}, {ms:.0} ms/step, encoder backward dispatches: softmax_backward {}, layernorm_backward_input {}", c.dispatches_of("softmax_backward"), c.dispatches_of("layernorm_backward_input"));
        assert!(losses[steps - 1] < losses[0], "{mode:?}: loss did not fall: {losses:?}");
        if mode == Adopt::Feature {
            assert_eq!(c.dispatches_of("softmax_backward") + c.dispatches_of("layernorm_backward_input") + c.dispatches_of("gelu_backward"), 0, "feature-based training ran an encoder backward");
        } else {
            assert!(c.dispatches_of("softmax_backward") >= 6 * steps as u64);
        }
    }
}

fn sentiment_setup() -> (dataset::Dataset, Vec<usize>, Vec<usize>, Tokenizer) {
    let ds = dataset::parse(checks::SENTIMENT.as_bytes(), None);
    let (train, val) = dataset::stratified_split(&ds, 0.2, 3);
    let texts: Vec<String> = train.iter().map(|&i| ds.examples[i].text.clone()).collect();
    let tok = Tokenizer::train_wordpiece(&texts, 600).unwrap();
    (ds, train, val, tok)
}

/// Feature-based runs compute the frozen encoder's features once and train the head on them: no
/// encoder kernel runs during the head steps, and the validation metrics reported from the cached
/// features equal a full forward of the trained model, for both poolings.
#[test]
fn feature_based_training_caches_features() {
    use bertlab::model::Pooling;
    let g = Gpu::new_blocking().unwrap();
    let (ds, train, val, tok) = sentiment_setup();
    for pooling in [Pooling::Cls, Pooling::Mean] {
        let cfg = ModelConfig::small(tok.vocab_size, 64, 2, 4);
        let (mut model, _) = Model::new(&g, cfg, Heads { lm: false, sop: false, num_labels: 2 }, None, 1).unwrap();
        let tc = TrainConfig { adopt: Adopt::Feature, lr: 5e-3, epochs: 2, batch_size: 32, max_len: 48, pooling, ..TrainConfig::default() };
        g.reset_counters();
        let mut feature_ms = None;
        let r = pollster::block_on(trainer::train_classifier(&g, &mut model, &tok, &ds, &train, &val, &tc, &Control::default(), &mut |e| {
            if let Event::Features { ms, .. } = e {
                feature_ms = Some(ms);
            }
        }))
        .unwrap();
        let c = g.counters();
        // features: one forward per batch of 32 over train + val; nothing else runs the encoder
        let forwards = train.len().div_ceil(32) + val.len().div_ceil(32);
        let softmax = c.dispatches_of("softmax_forward");
        assert_eq!(softmax, 2 * forwards as u64, "{pooling:?}: {softmax} softmax dispatches for {forwards} feature forwards of a 2-layer model");
        assert_eq!(c.dispatches_of("softmax_backward") + c.dispatches_of("layernorm_backward_input"), 0);
        let (_, m) = r.epochs.last().unwrap();
        let enc: Vec<_> = val.iter().map(|&i| tok.encode(&ds.examples[i].text, None, 48).unwrap()).collect();
        let probs = pollster::block_on(trainer::predict(&g, &mut model, &enc.iter().collect::<Vec<_>>(), tok.pad, 32)).unwrap();
        let truth: Vec<usize> = val.iter().map(|&i| ds.label_id(&ds.examples[i].label).unwrap()).collect();
        let full = bertlab::train::metrics::evaluate(&probs, &truth, 2);
        println!("{pooling:?} feature-based: features in {:.0} ms, {} head steps at {:.1} ms/step; val loss {:.5} (cached) vs {:.5} (full forward), accuracy {:.3}", feature_ms.unwrap(), r.steps, r.ms_per_step, m.loss, full.loss, m.accuracy);
        assert!((m.loss - full.loss).abs() < 1e-4 && m.accuracy == full.accuracy, "cached features disagree with the full forward");
    }
}

/// A run checkpointed and cancelled at step 7, then restored (weights and optimizer state) and
/// continued, ends with the same weights as the run that never stopped.
#[test]
fn checkpoint_and_resume_matches_an_uninterrupted_run() {
    use bertlab::safetensors;
    use bertlab::train::checkpoint;
    let g = gpu();
    let (ds, train, val, tok) = sentiment_setup();
    let cfg = ModelConfig::small(tok.vocab_size, 32, 2, 4);
    let heads = Heads { lm: false, sop: false, num_labels: 2 };
    let tc = TrainConfig { adopt: Adopt::Last(1), lr: 1e-3, epochs: 2, batch_size: 32, max_len: 32, ..TrainConfig::default() };
    let (mut a, _) = Model::new(g, cfg.clone(), heads, None, 1).unwrap();
    pollster::block_on(trainer::train_classifier(g, &mut a, &tok, &ds, &train, &val, &tc, &Control::default(), &mut |_| {})).unwrap();
    let want = pollster::block_on(a.params.read_all(g)).unwrap();

    let (mut b, _) = Model::new(g, cfg.clone(), heads, None, 1).unwrap();
    let control = Control::default();
    let mut saved = None;
    let tc_b = TrainConfig { checkpoint_every: 7, ..tc.clone() };
    let r = pollster::block_on(trainer::train_classifier(g, &mut b, &tok, &ds, &train, &val, &tc_b, &control, &mut |e| {
        if let Event::Checkpoint { step, weights, optimizer } = e {
            if saved.is_none() {
                saved = Some((step, weights, optimizer));
                control.cancel();
            }
        }
    }))
    .unwrap();
    assert_eq!(r.stopped.as_deref(), Some("cancelled"));
    let (step, weights, optimizer) = saved.unwrap();
    assert_eq!(step, 7);
    let st = safetensors::parse(&weights).unwrap();
    let (mut c, _) = Model::new(g, cfg, heads, Some(&st), 99).unwrap();
    let from = checkpoint::restore_optimizer(g, &mut c, &optimizer).unwrap();
    assert_eq!(from, 7);
    let tc_c = TrainConfig { start_step: from, ..tc };
    let r = pollster::block_on(trainer::train_classifier(g, &mut c, &tok, &ds, &train, &val, &tc_c, &Control::default(), &mut |_| {})).unwrap();
    let got = pollster::block_on(c.params.read_all(g)).unwrap();
    let mut worst = 0f32;
    for ((name, _, x), (_, _, y)) in want.iter().zip(&got) {
        let d = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        assert!(d <= 1e-6, "{name}: resumed run differs by {d:e}");
        worst = worst.max(d);
    }
    println!("checkpoint at step 7 of {}, resumed: final weights within {worst:e} of the uninterrupted run", r.steps);
}

/// After warm-up, a training step creates no buffer and no bind group, submits once and reads back
/// once (own device, so that no other test's work lands in its counters).
#[test]
fn steady_state_step_creates_nothing() {
    let g = Gpu::new_blocking().unwrap();
    report("steady state", pollster::block_on(checks::steady_state_step_creates_nothing(&g)));
}

/// The CLI as a new user meets it: out-of-range settings are refused, naming the range, before any
/// step runs and without writing an output; and a classifier for other labels gets a fresh head.
#[test]
fn cli_refuses_out_of_range_settings_and_retargets_a_classifier() {
    let exe = env!("CARGO_BIN_EXE_bertlab");
    let root = env!("CARGO_MANIFEST_DIR");
    let tmp = std::env::temp_dir().join(format!("bertlab-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let run = |args: &[&str]| {
        let o = std::process::Command::new(exe).args(args).current_dir(root).output().expect("run bertlab");
        (o.status.success(), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
    };
    let out = |name: &str| tmp.join(name).to_string_lossy().to_string();
    let base = ["pretrain", "--corpus", "www/samples/corpus.txt", "--hidden", "16", "--layers", "2", "--heads", "2", "--vocab", "300"];
    for (extra, want) in [
        (vec!["--lr", "nan"], "learning rate must be a number in (0, 1]; got NaN"),
        (vec!["--steps", "0"], "steps must be from 1 to 1000000; got 0"),
        (vec!["--batch", "0"], "batch size must be from 1 to 1024; got 0"),
        (vec!["--max-len", "100000"], "maximum length must be from 8 to 512"),
        (vec!["--steps", "-3"], "invalid value '-3' for '--steps <STEPS>'"),
    ] {
        let o = out("refused");
        let mut args: Vec<&str> = base.to_vec();
        args.extend(["--out", &o]);
        args.extend(extra.iter().copied());
        let (ok, text) = run(&args);
        assert!(!ok && text.contains(want), "pretrain {extra:?}: exit ok={ok}, output {text:?} should contain {want:?}");
        assert!(!tmp.join("refused").exists(), "pretrain {extra:?} wrote an output");
    }
    // a 2-step model, then a 3-label classifier on it, then that classifier retargeted to 2 labels
    let m = out("m");
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--out", &m, "--steps", "2", "--batch", "4"]);
    let (ok, text) = run(&args);
    assert!(ok, "pretrain: {text}");
    for (extra, want) in [
        (vec!["--lr", "nan"], "learning rate must be a number in (0, 1]; got NaN"),
        (vec!["--lr", "1e9"], "got 1000000000"),
        (vec!["--epochs", "-3"], "invalid value '-3' for '--epochs <EPOCHS>'"),
        (vec!["--epochs", "0"], "epochs must be from 1 to 1000; got 0"),
        (vec!["--batch", "0"], "batch size must be from 1 to 1024; got 0"),
        (vec!["--max-len", "100000"], "maximum length must be from 8 to 512; got 100000"),
        (vec!["--mode", "last:99"], "layers to train must be from 1 to 2; got 99 (the model has 2 layers)"),
    ] {
        let o = out("refused");
        let mut args = vec!["train", "--data", "www/samples/topics.tsv", "--model", &m, "--out", &o];
        args.extend(extra.iter().copied());
        let (ok, text) = run(&args);
        assert!(!ok && text.contains(want), "train {extra:?}: exit ok={ok}, output {text:?} should contain {want:?}");
        assert!(!tmp.join("refused").exists(), "train {extra:?} wrote an output");
    }
    let c3 = out("c3");
    let (ok, text) = run(&["train", "--data", "www/samples/topics.tsv", "--model", &m, "--out", &c3, "--epochs", "1", "--batch", "8", "--mode", "feature"]);
    assert!(ok, "train on topics: {text}");
    let c2 = out("c2");
    let (ok, text) = run(&["train", "--data", "www/samples/sentiment.tsv", "--model", &c3, "--out", &c2, "--epochs", "1", "--batch", "8", "--mode", "feature"]);
    assert!(ok && text.contains("a fresh head for the 2 labels of the data was built and the encoder kept"), "retarget: {text}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A step whose gradients are not finite (here: a NaN planted in a weight, as a diverging run would
/// make one) stops the run with the non-finite message at that step, and leaves every weight as it
/// was: AdamW's GPU-side flag skipped the update.
#[test]
fn a_non_finite_step_stops_the_run_and_changes_no_weight() {
    let g = gpu();
    let ds = dataset::parse(checks::SENTIMENT.as_bytes(), None);
    let (train, val) = dataset::stratified_split(&ds, 0.2, 3);
    let texts: Vec<String> = train.iter().map(|&i| ds.examples[i].text.clone()).collect();
    let tok = Tokenizer::train_wordpiece(&texts, 300).unwrap();
    let cfg = ModelConfig::small(tok.vocab_size, 16, 1, 2);
    let (mut model, _) = Model::new(g, cfg, Heads { lm: false, sop: false, num_labels: 2 }, None, 1).unwrap();
    let p = model.params.get("encoder.layer.0.output.dense.weight").unwrap();
    let mut w = pollster::block_on(g.read_f32(&p.value)).unwrap();
    w[3] = f32::NAN;
    g.write(&p.value, 0, &w).unwrap();
    let bits = |t: Vec<(String, Vec<usize>, Vec<f32>)>| t.into_iter().map(|(n, _, v)| (n, v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())).collect::<Vec<_>>();
    let before = bits(pollster::block_on(model.params.read_all(g)).unwrap());
    let tc = TrainConfig { adopt: Adopt::Full, lr: 1e-3, epochs: 1, batch_size: 16, max_len: 32, ..TrainConfig::default() };
    let mut non_finite = Vec::new();
    let r = pollster::block_on(trainer::train_classifier(g, &mut model, &tok, &ds, &train, &val, &tc, &Control::default(), &mut |e| {
        if let Event::NonFinite { step } = e {
            non_finite.push(step);
        }
    }))
    .unwrap();
    assert_eq!(non_finite, vec![0], "the first step is the non-finite one");
    assert_eq!(r.stopped, Some(bertlab::error::Error::non_finite(0).to_string()));
    let after = bits(pollster::block_on(model.params.read_all(g)).unwrap());
    assert!(before == after, "a skipped step changed weights");
}

/// `bertlab train --checkpoint-every 1` killed with SIGKILL at eight moments never leaves a
/// checkpoint that cannot be read: each time, the checkpoint (or, between the directory swap's two
/// renames, the previous one) parses, and the last one resumes to the end of the run.
#[test]
fn a_killed_training_run_always_leaves_a_readable_checkpoint() {
    use bertlab::safetensors;
    use bertlab::train::checkpoint;
    let exe = env!("CARGO_BIN_EXE_bertlab");
    let root = env!("CARGO_MANIFEST_DIR");
    let tmp = std::env::temp_dir().join(format!("bertlab-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let m = tmp.join("m").to_string_lossy().to_string();
    let o = tmp.join("o").to_string_lossy().to_string();
    let pre = std::process::Command::new(exe)
        // big enough (2.4 MB of weights, 4.8 MB of moments) that writing a checkpoint takes a good
        // share of each step, so the kills land inside writes
        .args(["pretrain", "--corpus", "www/samples/corpus.txt", "--hidden", "128", "--layers", "2", "--heads", "2", "--vocab", "2000", "--steps", "1", "--batch", "2", "--out", &m])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(pre.status.success(), "{}", String::from_utf8_lossy(&pre.stderr));
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--data", "www/samples/sentiment.tsv", "--out", &o, "--epochs", "2", "--batch", "8", "--max-len", "32", "--checkpoint-every", "1"];
        args.extend_from_slice(extra);
        std::process::Command::new(exe).args(&args).current_dir(root).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap()
    };
    let ckpt = tmp.join("o").join("checkpoint");
    // the step of the checkpoint on disk now (None: none yet, or one being swapped in)
    let on_disk = || {
        let (dir, _) = checkpoint::resolve(&ckpt);
        let state: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(checkpoint::STATE_FILE)).ok()?).ok()?;
        state["step"].as_u64()
    };
    let (mut readable, mut advanced, mut last_step) = (0, 0, 0u64);
    // each run is killed a little after it has written a checkpoint of its own, at a different
    // moment of the next step and its checkpoint write each time: when a run starts, the machine's
    // load and the device's start-up decide, not a clock
    for (i, delay_ms) in [0u64, 40, 80, 120, 160, 200, 240, 280].into_iter().enumerate() {
        let resume = ckpt.exists() || tmp.join("o").join("checkpoint.old").exists();
        let ck = ckpt.to_string_lossy().to_string();
        let seen = on_disk();
        let mut child = if resume { train(&["--resume", &ck]) } else { train(&["--model", &m]) };
        let t0 = std::time::Instant::now();
        while on_disk() == seen && t0.elapsed() < std::time::Duration::from_secs(120) && child.try_wait().unwrap().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let (dir, _) = checkpoint::resolve(&ckpt);
        if !dir.exists() {
            assert_eq!(readable, 0, "kill {i}: a checkpoint existed before and none does now");
            continue;
        }
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("kill {i}: {f}: {e}"));
        safetensors::parse(&read("model.safetensors")).unwrap_or_else(|e| panic!("kill {i}: model.safetensors: {e}"));
        safetensors::parse(&read(checkpoint::OPTIMIZER_FILE)).unwrap_or_else(|e| panic!("kill {i}: optimizer: {e}"));
        let state: serde_json::Value = serde_json::from_slice(&read(checkpoint::STATE_FILE)).unwrap_or_else(|e| panic!("kill {i}: state: {e}"));
        let step = state["step"].as_u64().unwrap_or_else(|| panic!("kill {i}: no step in {state}"));
        assert!(step >= last_step, "kill {i}: the checkpoint went back from step {last_step} to {step}");
        if step > last_step {
            advanced += 1;
        }
        last_step = step;
        readable += 1;
    }
    assert_eq!(readable, 8, "only {readable} of 8 kills came after a checkpoint of their run");
    assert!(advanced >= 7, "the resumed runs moved the checkpoint on only {advanced} times (step {last_step})");
    let ck = ckpt.to_string_lossy().to_string();
    let done = train(&["--resume", &ck]).wait().unwrap();
    assert!(done.success(), "resuming from the last checkpoint failed");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// GPT's half of the course unit on the same engine: a causal model ("same body": BERT with causal
/// attention, next-token objective) pretrained from scratch on the sample corpus beats a unigram
/// baseline on held-out lines; generation is reproducible by seed; and the wrong kind of model or
/// prompt gets a message, not a panic.
#[test]
fn cli_causal_model_learns_next_words_and_generates() {
    let cli = Cli::new("causal");
    let (run, dir, tmp) = (|a: &[&str]| cli.run(a), |n: &str| cli.dir(n), &cli.tmp);
    let (causal, masked) = (dir("causal"), dir("masked"));
    let (ok, out, err) = run(&["pretrain", "--corpus", "www/samples/corpus.txt", "--objective", "causal", "--hidden", "64", "--layers", "2", "--heads", "4", "--vocab", "1000", "--steps", "150", "--max-len", "48", "--json", "--out", &causal]);
    assert!(ok, "causal pretraining failed: {err}");
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or("")).expect("JSON summary");
    let held = &v["summary"]["held_out"];
    let (acc, unigram) = (held["next_token_accuracy"].as_f64().unwrap(), held["unigram_baseline"].as_f64().unwrap());
    println!("causal model, 150 steps: held-out next-token accuracy {acc:.4}, unigram baseline {unigram:.4} ({} lines)", held["texts"]);
    assert!(acc > unigram + 0.15, "held-out next-token accuracy {acc:.3} is not 15 points above the unigram baseline {unigram:.3}");
    let config = std::fs::read_to_string(tmp.join("causal/config.json")).unwrap();
    assert!(config.contains("BertLMHeadModel") && config.contains("\"is_decoder\": true"), "{config}");
    // greedy is deterministic; sampling is a function of the seed
    let gen = |extra: &[&str]| {
        let mut args = vec!["generate", "--model", &causal, "--prompt", "the curious kitten", "--max-new", "12", "--json"];
        args.extend(extra);
        let (ok, out, err) = run(&args);
        assert!(ok, "generate {extra:?}: {err}");
        serde_json::from_str::<serde_json::Value>(out.trim()).expect("generate --json")
    };
    let greedy = gen(&[]);
    assert!(!greedy["tokens"].as_array().unwrap().is_empty(), "{greedy}");
    assert_eq!(gen(&[]), greedy);
    let s7 = gen(&["--top-k", "8", "--temperature", "1.5", "--seed", "7"]);
    assert_eq!(gen(&["--top-k", "8", "--temperature", "1.5", "--seed", "7"])["ids"], s7["ids"]);
    println!("greedy: {} | sampled (seed 7): {}", greedy["text"], s7["text"]);
    // the wrong kind of model, the wrong objective, a prompt too long
    let (ok, _, err) = run(&["pretrain", "--corpus", "www/samples/corpus.txt", "--hidden", "16", "--layers", "1", "--heads", "2", "--vocab", "300", "--steps", "1", "--batch", "2", "--out", &masked]);
    assert!(ok, "{err}");
    let long = "word ".repeat(600);
    cli.refuses(&[
        (vec!["generate", "--model", &masked, "--prompt", "the kitten"], "masked (bidirectional) model"),
        (vec!["fill-mask", "--model", &causal, "--text", "the [MASK] sat"], "causal model"),
        (vec!["generate", "--model", &causal, "--prompt", &long], "the model reads at most 512"),
        (vec!["generate", "--model", &causal, "--prompt", "x", "--temperature", "0"], "temperature must be a number in (0, 100]"),
        (vec!["pretrain", "--corpus", "www/samples/corpus.txt", "--objective", "causal", "--model", &masked, "--steps", "1", "--out", &dir("x")], "causal pretraining needs a decoder"),
        (vec!["pretrain", "--corpus", "www/samples/corpus.txt", "--model", &causal, "--steps", "1", "--out", &dir("x")], "is a causal model"),
    ]);
}

/// GPT-2's body: a GPT-2 checkpoint (the fixture: GPT2LMHeadModel's files and a byte-level BPE
/// tokenizer.json) continues a prompt exactly as transformers' greedy `generate` does, through the
/// tokenizer; a GPT-2 pretrained from scratch beats the unigram baseline on held-out lines and is
/// exported as GPT2LMHeadModel; and a GPT-2 where a BERT is needed (and the reverse) gets a message.
#[test]
fn cli_gpt2_generates_like_transformers_learns_and_refuses_what_it_cannot_do() {
    use bertlab::safetensors;
    let cli = Cli::new("gpt2");
    let (run, dir, tmp, root) = (|a: &[&str]| cli.run(a), |n: &str| cli.dir(n), &cli.tmp, env!("CARGO_MANIFEST_DIR"));
    let fixture = "tests/fixtures/tiny_gpt2";
    let reference = std::fs::read(format!("{root}/tests/fixtures/tiny_gpt2_ref.safetensors")).unwrap();
    let r = safetensors::parse(&reference).unwrap();
    let want: Vec<i64> = r.tensors["gen.greedy"].to_i64();
    let prompt: Vec<i64> = r.tensors["gen.prompt"].to_i64();
    let (ok, out, err) = run(&["generate", "--model", fixture, "--prompt", "the curious kitten", "--max-new", "12", "--json"]);
    assert!(ok, "generate on the GPT-2 fixture: {err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("generate --json");
    let got: Vec<i64> = v["ids"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    // BERT Lab stops at <|endoftext|> (transformers was told not to): the ids agree up to there
    assert!(!got.is_empty() && got[..] == want[..got.len()], "GPT-2 fixture, prompt {prompt:?}: BERT Lab {got:?}, transformers {want:?}");
    assert!(got.len() == want.len() || want[got.len()] == prompt[0], "stopped early at {} without <|endoftext|>", got.len());
    println!("GPT-2 checkpoint + byte-level tokenizer: greedy ids {got:?} as transformers', text {:?}", v["text"]);

    let gpt = dir("gpt");
    let (ok, out, err) = run(&["pretrain", "--corpus", "www/samples/corpus.txt", "--objective", "causal", "--body", "gpt2", "--hidden", "64", "--layers", "2", "--heads", "4", "--vocab", "1000", "--steps", "150", "--max-len", "48", "--json", "--out", &gpt]);
    assert!(ok, "GPT-2 pretraining failed: {err}");
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or("")).expect("JSON summary");
    let held = &v["summary"]["held_out"];
    let (acc, unigram) = (held["next_token_accuracy"].as_f64().unwrap(), held["unigram_baseline"].as_f64().unwrap());
    println!("GPT-2 body, 150 steps: held-out next-token accuracy {acc:.4}, unigram baseline {unigram:.4} ({} lines)", held["texts"]);
    assert!(acc > unigram + 0.15, "held-out next-token accuracy {acc:.3} is not 15 points above the unigram baseline {unigram:.3}");
    let config = std::fs::read_to_string(tmp.join("gpt/config.json")).unwrap();
    assert!(config.contains("GPT2LMHeadModel") && config.contains("\"n_layer\": 2"), "{config}");
    let sampled = |seed: &str| run(&["generate", "--model", &gpt, "--prompt", "the curious kitten", "--top-k", "8", "--seed", seed, "--json"]).1;
    assert_eq!(sampled("3"), sampled("3"));

    let masked = dir("masked");
    let (ok, _, err) = run(&["pretrain", "--corpus", "www/samples/corpus.txt", "--hidden", "16", "--layers", "1", "--heads", "2", "--vocab", "300", "--steps", "1", "--batch", "2", "--out", &masked]);
    assert!(ok, "{err}");
    let long = "word ".repeat(40);
    cli.refuses(&[
        (vec!["train", "--data", "www/samples/sentiment.tsv", "--model", fixture, "--max-len", "32", "--pooling", "mean", "--out", &dir("x")], "GPT-2's classifier reads the last token's hidden state (GPT2ForSequenceClassification); mean pooling is for BERT models"),
        (vec!["fill-mask", "--model", fixture, "--text", "the [MASK] sat"], "causal model"),
        (vec!["generate", "--model", &masked, "--prompt", "the kitten"], "masked (bidirectional) model"),
        (vec!["generate", "--model", fixture, "--prompt", &long], "<|endoftext|>; the model reads at most 32"),
        (vec!["pretrain", "--corpus", "www/samples/corpus.txt", "--model", fixture, "--steps", "1", "--out", &dir("x")], "is a causal model (is_decoder); masked-LM and sentence-order pretraining need a bidirectional BERT: use --objective causal"),
        (vec!["pretrain", "--corpus", "www/samples/corpus.txt", "--body", "gpt2", "--steps", "1", "--out", &dir("x")], "use it with --objective causal"),
        (vec!["pretrain", "--corpus", "www/samples/corpus.txt", "--objective", "causal", "--body", "gpt2", "--model", fixture, "--steps", "1", "--out", &dir("x")], "brings its own body"),
        (vec!["pretrain", "--corpus", "www/samples/corpus.txt", "--objective", "causal", "--body", "gpt3", "--steps", "1", "--out", &dir("x")], "[possible values: bert, gpt2, llama]"),
    ]);
}

/// The command line is clap's (its help, its argument errors), and long actions draw progress bars
/// with an ETA on a terminal (run under `script`, which gives the process one): feature extraction
/// and the training steps; `--quiet` hides them.
#[test]
fn cli_help_is_claps_and_long_actions_draw_progress_bars() {
    let cli = Cli::new("bars");
    let (exe, root, tmp) = (cli.exe(), env!("CARGO_MANIFEST_DIR"), &cli.tmp);
    let run = |args: &[&str]| {
        let o = std::process::Command::new(exe).args(args).current_dir(root).output().expect("run bertlab");
        (o.status.code(), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
    };
    let (code, help) = run(&["--help"]);
    assert!(code == Some(0) && help.contains("Usage: bertlab [OPTIONS] <COMMAND>") && help.contains("fill-mask"), "{help}");
    for sub in ["pretrain", "train", "eval", "predict", "embed", "fill-mask", "generate", "export", "bench"] {
        let (code, h) = run(&[sub, "--help"]);
        assert!(code == Some(0) && h.contains(&format!("Usage: bertlab {sub}")), "bertlab {sub} --help: {h}");
    }
    let (code, e) = run(&["train", "--data", "x.tsv"]);
    assert!(code == Some(2) && e.contains("required"), "a missing --out: {e}");
    let m = tmp.join("m").to_string_lossy().to_string();
    let (code, e) = run(&["pretrain", "--corpus", "www/samples/corpus.txt", "--hidden", "16", "--layers", "1", "--heads", "2", "--vocab", "300", "--steps", "2", "--batch", "4", "--out", &m]);
    assert_eq!(code, Some(0), "{e}");
    let on_terminal = |extra: &str| {
        let cmd = format!("{exe} train --data www/samples/sentiment.tsv --model {m} --mode feature --epochs 1 --out {}/cls {extra}", tmp.display());
        let o = std::process::Command::new("script").args(["-qec", &cmd, "/dev/null"]).current_dir(root).output().expect("run script (util-linux)");
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stdout).replace('\r', "\n")
    };
    let shown = on_terminal("");
    assert!(shown.contains("features [") && shown.contains("train [") && shown.contains("ETA"), "no progress bars on a terminal: {shown}");
    let quiet = on_terminal("--quiet");
    assert!(!quiet.contains("train [") && quiet.contains("validation accuracy"), "--quiet drew bars: {quiet}");
}

/// GPT's step 2 through the CLI: `bertlab train` fine-tunes the fixture GPT-2 (the last layer and
/// ln_f, then feature-based) and exports transformers' GPT2ForSequenceClassification: its config
/// names the architecture, the labels and the pad id whose rightmost absence marks the token the
/// head reads; `score.weight` has no bias; the LM head (the word embeddings) stays, so the model
/// still continues a text. Read back, the export gives the same probabilities through a second
/// export; the files and BERT Lab's probabilities go to target/hf-export-check/gpt2-cls for
/// `python3 tests/fixtures/check_export.py` (transformers, run by a developer).
#[test]
fn a_gpt2_fine_tunes_with_the_cli_and_exports_gpt2_for_sequence_classification() {
    use bertlab::io::{export, model_dir};
    use bertlab::safetensors;
    use bertlab::model::Pooling;
    use bertlab::train::batches::classification;
    use std::collections::BTreeMap;
    let g = gpu();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cli = Cli::new("gptcls");
    for mode in ["last:1", "feature"] {
        let out = cli.dir(&mode.replace(':', ""));
        let (ok, stdout, stderr) = cli.run(&["train", "--data", "www/samples/sentiment.tsv", "--model", "tests/fixtures/tiny_gpt2", "--out", &out, "--epochs", "1", "--batch", "16", "--max-len", "32", "--mode", mode]);
        assert!(ok && stdout.contains("validation accuracy"), "train --mode {mode} on a GPT-2: {stdout}{stderr}");
        let out = std::path::PathBuf::from(out);
        let files = model_dir::read_dir(&out).unwrap();
        let config: serde_json::Value = serde_json::from_slice(&files["config.json"]).unwrap();
        let tok = model_dir::tokenizer_of(&files).unwrap();
        assert_eq!(config["architectures"][0], "GPT2ForSequenceClassification", "{config}");
        assert_eq!(config["pad_token_id"], tok.pad, "{config}");
        assert_eq!(config["id2label"]["0"], "negative", "{config}");
        let st = safetensors::parse(&files["model.safetensors"]).unwrap();
        assert_eq!(st.tensors.get("score.weight").map(|t| t.shape.clone()), Some(vec![2, 32]));
        assert!(!st.tensors.contains_key("score.bias") && st.tensors.contains_key("transformer.h.1.mlp.c_fc.weight"));
        assert!(files.contains_key(export::TRAIN_HF) || out.join(export::TRAIN_HF).exists());
        // read back: a GPT-2 that classifies on the last token and still has its LM head
        let mut lm = model_dir::load(g, &files, None, 0).unwrap();
        assert_eq!((lm.model.heads.num_labels, lm.model.heads.lm, lm.model.pooling), (2, true, Pooling::Last));
        let texts = ["the bakery was lovely", "a dreadful waste of money, not worth it at all", "fine"];
        let enc: Vec<_> = texts.iter().map(|t| lm.tokenizer.encode(t, None, 32).unwrap()).collect();
        let refs: Vec<_> = enc.iter().collect();
        let probs = pollster::block_on(trainer::predict(g, &mut lm.model, &refs, lm.tokenizer.pad, 8)).unwrap();
        let tensors = pollster::block_on(lm.model.params.read_all(g)).unwrap();
        let card = export::ModelCard { pooling: lm.model.pooling, ..Default::default() };
        let again: BTreeMap<String, Vec<u8>> = export::export_files(&lm.model.cfg, lm.model.heads, tensors, &lm.labels, &lm.tokenizer_files, &card).into_iter().collect();
        let mut lm2 = model_dir::load(g, &again, None, 1).unwrap();
        let probs2 = pollster::block_on(trainer::predict(g, &mut lm2.model, &refs, lm2.tokenizer.pad, 8)).unwrap();
        assert_eq!(probs, probs2, "a second export read back gives other probabilities");
        let cont = pollster::block_on(bertlab::train::generate::generate_ids(g, &mut lm.model, &enc[0].ids[..enc[0].ids.len() - 1], None, &bertlab::train::generate::GenerateConfig { max_new: 3, top_k: 1, temperature: 1.0, seed: 0 }, &mut |_| {})).unwrap().0;
        assert_eq!(cont.len(), 3, "the fine-tuned GPT-2 no longer continues a text");
        if mode == "last:1" {
            let check = root.join("target/hf-export-check/gpt2-cls");
            let _ = std::fs::remove_dir_all(&check);
            std::fs::create_dir_all(&check).unwrap();
            for (name, bytes) in &files {
                std::fs::write(check.join(name), bytes).unwrap();
            }
            let hb = classification(&refs, &[0, 0, 0], lm.tokenizer.pad);
            let probe = serde_json::json!({"input_ids": hb.ids, "attention_mask": hb.mask, "batch": hb.b, "bertlab": probs.concat()});
            std::fs::write(check.join("bertlab_outputs.json"), probe.to_string()).unwrap();
        }
        println!("GPT-2, --mode {mode}: exported as GPT2ForSequenceClassification, read back with pooling {:?}; probabilities {probs:?}", lm.model.pooling);
    }
}

/// The CLI says what is wrong in words: OUT naming a file (before any work), and a run without a
/// validation set reports no accuracy instead of zeros.
#[test]
fn cli_names_a_file_given_as_out_and_a_run_without_validation() {
    let cli = Cli::new("out");
    let file = cli.dir("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    let train = |out: &str, extra: &[&str]| {
        let mut args = vec!["train", "--data", "www/samples/sentiment.tsv", "--model", "tests/fixtures/tiny_gpt2", "--max-len", "32", "--epochs", "1", "--out", out];
        args.extend_from_slice(extra);
        let (ok, out, err) = cli.run(&args);
        (ok, out + &err)
    };
    let (ok, text) = train(&file, &[]);
    assert!(!ok && text.contains("is a file; OUT must be a directory") && !text.contains("epoch 1"), "{text}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    let (ok, text) = train(&cli.dir("noval"), &["--val", "0"]);
    assert!(ok && text.contains("no validation set (--val 0)") && !text.contains("accuracy 0.0000"), "{text}");
}

/// A device lost in the middle of a feature-mode run's head steps, or of a generation, reaches the
/// caller as `Error::DeviceLost` (the page then says to reload and restore the last snapshot), not
/// as a plain message; and the session still holds its model afterwards.
#[test]
fn a_lost_device_stays_device_lost_in_head_steps_and_in_generation() {
    use bertlab::model::config::Body;
    use bertlab::session::{Loaded, NoStore, Scratch, Session};
    use bertlab::train::generate::GenerateConfig;
    use std::rc::Rc;
    let fresh = || Rc::new(Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}")));
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/www/samples/sentiment.tsv")).unwrap();
    // a feature-mode run: the device goes after the second head step
    let g = fresh();
    let s = Session::new(g.clone());
    s.set_data("sentiment.tsv".into(), bytes.clone()).unwrap();
    let texts = s.pretrain_texts().unwrap();
    let shape = |body, causal| Scratch { vocab: 400, hidden: 32, layers: 1, heads: 2, body, causal, seed: 3 };
    s.install(Loaded::scratch(&g, &shape(Body::Bert, false), &texts).unwrap()).unwrap();
    let mut steps = 0;
    let spec = TrainConfig { adopt: Adopt::Feature, epochs: 2, batch_size: 16, max_len: 32, lr: 1e-3, ..TrainConfig::default() };
    let r = pollster::block_on(s.train(spec, &NoStore, &mut |e| {
        if let Event::Step { .. } = e {
            steps += 1;
            if steps == 2 {
                g.device.destroy();
            }
        }
    }));
    let e = r.err().expect("a run whose device was destroyed must fail");
    assert!(e.is_device_lost(), "a feature-mode head step on a lost device: {e:?}");
    assert!(s.peek(|_| ()).is_some(), "the model is back in the session after the failed run");
    // a generation: the device goes after the second token
    let g = fresh();
    let s = Session::new(g.clone());
    s.install(Loaded::scratch(&g, &shape(Body::Gpt2, true), &texts).unwrap()).unwrap();
    let mut tokens = 0;
    let r = pollster::block_on(s.generate("the film was", &GenerateConfig { max_new: 12, top_k: 1, temperature: 1.0, seed: 1 }, &mut |_, _, _| {
        tokens += 1;
        if tokens == 2 {
            g.device.destroy();
        }
    }));
    let e = r.err().expect("a generation whose device was destroyed must fail");
    assert!(e.is_device_lost(), "generation on a lost device: {e:?}");
    assert!(s.peek(|_| ()).is_some(), "the model is back in the session after the failed generation");
}

/// LoRA on the command line, end to end: `train --mode lora:4` writes PEFT's adapter files (the
/// config peft reads, and only the adapters and the head under PEFT's names); the adapter reads back
/// to the probabilities the merged model (`export --merge`) gives; an adapter saved by peft itself
/// (tests/fixtures/minilm_peft_adapter, on all-MiniLM-L6-v2) gives transformers' probabilities within
/// 1e-4; and bad LoRA settings and adapters get messages.
#[test]
fn lora_adapters_train_save_in_peft_format_and_read_back() {
    let cli = Cli::new("lora");
    let (run, dir) = (|a: &[&str]| cli.run(a), |n: &str| cli.dir(n));
    let (base, out, merged) = (dir("base"), dir("lora"), dir("merged"));
    let (ok, _, err) = run(&["pretrain", "--corpus", "www/samples/corpus.txt", "--hidden", "32", "--layers", "2", "--heads", "2", "--vocab", "400", "--steps", "2", "--batch", "4", "--out", &base]);
    assert!(ok, "pretrain: {err}");
    let (ok, _, err) = run(&["train", "--data", "www/samples/sentiment.tsv", "--model", &base, "--out", &out, "--mode", "lora:4", "--lora-alpha", "16", "--epochs", "1", "--batch", "16", "--max-len", "32"]);
    assert!(ok, "train --mode lora:4: {err}");
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{out}/adapter_config.json")).unwrap()).unwrap();
    assert_eq!((cfg["peft_type"].as_str(), cfg["task_type"].as_str(), cfg["r"].as_u64(), cfg["lora_alpha"].as_f64()), (Some("LORA"), Some("SEQ_CLS"), Some(4), Some(16.0)), "{cfg}");
    assert_eq!((cfg["target_modules"].clone(), cfg["base_model_name_or_path"].as_str()), (serde_json::json!(["query", "value"]), Some(base.as_str())), "{cfg}");
    let bytes = std::fs::read(format!("{out}/adapter_model.safetensors")).unwrap();
    let st = bertlab::safetensors::parse(&bytes).unwrap();
    let names: Vec<&String> = st.tensors.keys().collect();
    assert_eq!(names.len(), 2 * 2 * 2 + 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("base_model.model.") && (n.contains(".lora_A.") || n.contains(".lora_B.") || n.contains("classifier."))), "{names:?}");
    assert!(names.iter().any(|n| *n == "base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight"), "{names:?}");
    // the adapter read back, and the model with it folded in, give the same probabilities
    let probs = |model: &str| -> Vec<f64> {
        let (ok, o, err) = run(&["predict", "--model", model, "--text", "a wonderful, moving film", "--json"]);
        assert!(ok, "predict --model {model}: {err}");
        let v: serde_json::Value = serde_json::from_str(o.lines().last().unwrap()).unwrap();
        ["negative", "positive"].iter().map(|l| v[0]["probabilities"][l].as_f64().unwrap()).collect()
    };
    let (ok, _, err) = run(&["export", "--model", &out, "--merge", "--out", &merged]);
    assert!(ok && !std::path::Path::new(&format!("{merged}/adapter_config.json")).exists(), "export --merge: {err}");
    let (a, m) = (probs(&out), probs(&merged));
    assert!(a.iter().zip(&m).all(|(x, y)| (x - y).abs() < 1e-5), "adapter {a:?} vs merged {m:?}");
    // an adapter peft saved (LoRA r 8, alpha 16, dropout 0.1 on query and value, with its head)
    let fx = "tests/fixtures/minilm_peft_adapter";
    let want: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{fx}/expected.json")).unwrap()).unwrap();
    let texts = dir("texts.txt");
    std::fs::write(&texts, want["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect::<Vec<_>>().join("\n")).unwrap();
    let (ok, o, err) = run(&["predict", "--model", fx, "--file", &texts, "--json"]);
    assert!(ok, "predict with peft's adapter: {err}");
    let got: serde_json::Value = serde_json::from_str(o.lines().last().unwrap()).unwrap();
    let mut worst = 0.0f64;
    for (i, row) in want["probabilities"].as_array().unwrap().iter().enumerate() {
        for (j, p) in row.as_array().unwrap().iter().enumerate() {
            worst = worst.max((got[i]["probabilities"][format!("LABEL_{j}")].as_f64().unwrap() - p.as_f64().unwrap()).abs());
        }
    }
    println!("peft's adapter on all-MiniLM-L6-v2: max |BERT Lab - transformers + peft| = {worst:.2e}");
    assert!(worst < 1e-4, "peft's adapter: {worst} off transformers' probabilities ({o})");
    // a GPT-2 with adapters still continues a text: from a copy with them merged, as the merged
    // export does
    let (gl, glm) = (dir("gpt2-lora"), dir("gpt2-lora-merged"));
    let (ok, _, err) = run(&["train", "--data", "www/samples/sentiment.tsv", "--model", "tests/fixtures/tiny_gpt2", "--out", &gl, "--mode", "lora:4", "--epochs", "1", "--batch", "16", "--max-len", "32"]);
    assert!(ok, "GPT-2 lora:4: {err}");
    let (ok, _, err) = run(&["export", "--model", &gl, "--merge", "--out", &glm]);
    assert!(ok, "GPT-2 export --merge: {err}");
    let ids = |model: &str| -> serde_json::Value {
        let (ok, o, err) = run(&["generate", "--model", model, "--prompt", "the film was", "--max-new", "6", "--json"]);
        assert!(ok, "generate --model {model}: {err}");
        serde_json::from_str::<serde_json::Value>(o.lines().last().unwrap()).unwrap()["ids"].clone()
    };
    let (adapted, merged_ids) = (ids(&gl), ids(&glm));
    assert!(adapted == merged_ids && adapted.as_array().map(|a| a.len()).unwrap_or(0) > 0, "the adapter generates {adapted}, the merged model {merged_ids}");
    // LoRA pretraining: adapters and BERT's pretraining heads (PEFT's modules_to_save "cls") on
    // the base; next-word adapters on a GPT-2 (its head is its word embeddings, frozen)
    let (plora, glp) = (dir("pretrain-lora"), dir("gpt2-pretrain-lora"));
    let (ok, _, err) = run(&["pretrain", "--corpus", "www/samples/corpus.txt", "--model", &base, "--mode", "lora:4", "--steps", "3", "--batch", "4", "--max-len", "32", "--out", &plora]);
    assert!(ok, "pretrain --mode lora:4: {err}");
    let pc: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{plora}/adapter_config.json")).unwrap()).unwrap();
    assert!(pc["task_type"].is_null() && pc["modules_to_save"] == serde_json::json!(["cls"]), "{pc}");
    let (ok, o, err) = run(&["fill-mask", "--model", &plora, "--text", "the [MASK] was good", "--json"]);
    assert!(ok && o.contains("probability"), "fill-mask on the pretrained adapter: {err}");
    let (ok, _, err) = run(&["pretrain", "--corpus", "www/samples/corpus.txt", "--objective", "causal", "--model", "tests/fixtures/tiny_gpt2", "--mode", "lora:4", "--steps", "3", "--batch", "4", "--max-len", "32", "--out", &glp]);
    assert!(ok, "GPT-2 pretrain --mode lora:4: {err}");
    let gc: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{glp}/adapter_config.json")).unwrap()).unwrap();
    assert_eq!((gc["task_type"].as_str(), gc["target_modules"].clone()), (Some("CAUSAL_LM"), serde_json::json!(["c_attn"])), "{gc}");
    assert!(!ids(&glp).as_array().unwrap().is_empty(), "the GPT-2 adapter continues a text");
    // a decoder's untied lm_head stays frozen under adapters (peft's causal-LM LoRA): it is the
    // base's, and the adapter file does not carry a copy of it
    let qlp = dir("qwen2-pretrain-lora");
    let (ok, _, err) = run(&["pretrain", "--corpus", "www/samples/corpus.txt", "--objective", "causal", "--model", "tests/fixtures/tiny_qwen2", "--mode", "lora:4", "--steps", "3", "--batch", "4", "--max-len", "32", "--out", &qlp]);
    assert!(ok, "Qwen2 pretrain --mode lora:4: {err}");
    let bytes = std::fs::read(format!("{qlp}/adapter_model.safetensors")).unwrap();
    let names: Vec<String> = bertlab::safetensors::parse(&bytes).unwrap().tensors.keys().cloned().collect();
    assert!(!names.is_empty() && names.iter().all(|n| n.contains(".lora_")), "the Qwen2 adapter holds only LoRA tensors: {names:?}");
    let qc: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{qlp}/adapter_config.json")).unwrap()).unwrap();
    assert!(qc["modules_to_save"].is_null(), "the Qwen2 adapter saves no module: {qc}");
    // an encoder other than BERT's body names its own pretraining head (ModernBERT: head, decoder)
    let mlp = dir("modernbert-pretrain-lora");
    let (ok, _, err) = run(&["pretrain", "--corpus", "www/samples/corpus.txt", "--model", "tests/fixtures/tiny_modernbert", "--mode", "lora:4", "--steps", "2", "--batch", "4", "--max-len", "32", "--out", &mlp]);
    assert!(ok, "ModernBERT pretrain --mode lora:4: {err}");
    let mc: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{mlp}/adapter_config.json")).unwrap()).unwrap();
    assert_eq!(mc["modules_to_save"], serde_json::json!(["head", "decoder"]), "{mc}");
    assert!(!ids(&qlp).as_array().unwrap().is_empty(), "the Qwen2 adapter continues a text");
    // bad settings and adapters
    let wrong_type = dir("prefix");
    std::fs::create_dir_all(&wrong_type).unwrap();
    std::fs::write(format!("{wrong_type}/adapter_config.json"), r#"{"peft_type": "PREFIX_TUNING", "base_model_name_or_path": "models/all-MiniLM-L6-v2"}"#).unwrap();
    let x = dir("x");
    let train = |extra: &[&'static str]| -> Vec<&str> { [&["train", "--data", "www/samples/sentiment.tsv", "--model", base.as_str(), "--out", x.as_str(), "--epochs", "1", "--max-len", "32"][..], extra].concat() };
    cli.refuses(&[
        (train(&["--mode", "lora:0"]), "the LoRA rank must be from 1 to 32"),
        (train(&["--mode", "lora:64"]), "the LoRA rank must be from 1 to 32"),
        (train(&["--mode", "lora:4", "--lora-targets", "query,dense_h"]), "the LoRA target \"dense_h\" names no layer of this model; its layers' projections are: attention.output.dense, attention.self.key"),
        (vec!["predict", "--model", out.as_str(), "--base", "models/all-MiniLM-L6-v2", "--text", "x"], "the adapter was made for another base model"),
        (vec!["predict", "--model", wrong_type.as_str(), "--text", "x"], "a PREFIX_TUNING adapter; BERT Lab reads LoRA adapters"),
    ]);
}

/// The page's file picker with a LoRA adapter's folder: the adapter goes onto the model in use
/// (`Session::adapt`). peft's adapter on all-MiniLM-L6-v2 gives transformers' probabilities; a
/// second adapter on an adapted model, and an adapter whose shapes do not fit the model in use, are
/// refused with what to do, and the model in use stays.
#[test]
fn an_adapter_goes_onto_the_model_in_use_as_the_page_picker_does() {
    use bertlab::session::Session;
    use std::collections::BTreeMap;
    use std::rc::Rc;
    let read_dir = |dir: &str, only: &[&str]| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read(&p).unwrap()))
            .filter(|(n, _)| only.is_empty() || only.contains(&n.as_str()))
            .collect()
    };
    let g = Rc::new(Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}")));
    let s = Session::new(g.clone());
    let fx = "tests/fixtures/minilm_peft_adapter";
    let adapter = read_dir(fx, &["adapter_config.json", "adapter_model.safetensors"]);
    s.load(&read_dir("models/all-MiniLM-L6-v2", &[]), None, "all-MiniLM-L6-v2".into()).unwrap();
    pollster::block_on(s.adapt(&adapter, "peft's adapter".into())).unwrap();
    let want: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{fx}/expected.json")).unwrap()).unwrap();
    let texts: Vec<(String, Option<String>)> = want["texts"].as_array().unwrap().iter().map(|t| (t.as_str().unwrap().to_string(), None)).collect();
    let got = pollster::block_on(s.predict(&texts, 128, &mut |_| {})).unwrap();
    let mut worst = 0.0f64;
    for (row, p) in want["probabilities"].as_array().unwrap().iter().zip(&got) {
        for (w, g) in row.as_array().unwrap().iter().zip(p) {
            worst = worst.max((w.as_f64().unwrap() - *g as f64).abs());
        }
    }
    assert!(worst < 1e-4, "peft's adapter on the model in use: {worst} off transformers' probabilities");
    let e = pollster::block_on(s.adapt(&adapter, "again".into())).unwrap_err().to_string();
    assert!(e.contains("already carries LoRA adapters") && e.contains("load the adapter's base model first"), "{e}");
    // a base of another shape: refused by tensor, and that model stays in use
    s.set_data("sentiment.tsv".into(), std::fs::read("www/samples/sentiment.tsv").unwrap()).unwrap();
    // input that is no data at all is refused by name, and the data in use stays
    let noise: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    for (name, bytes, why) in [("random.bin", noise, "the file is not text"), ("empty.tsv", Vec::new(), "the file is empty")] {
        let e = s.set_data(name.into(), bytes).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(why) && e.contains("sentiment.tsv stays in use"), "{e}");
        assert_eq!(s.data(|d| d.map(|d| (d.name.clone(), d.ds.examples.len()))), Some(("sentiment.tsv".to_string(), 400)));
    }
    let shape = bertlab::session::Scratch { vocab: 400, hidden: 32, layers: 1, heads: 2, body: bertlab::model::config::Body::Bert, causal: false, seed: 3 };
    s.install(bertlab::session::Loaded::scratch(&g, &shape, &s.pretrain_texts().unwrap()).unwrap()).unwrap();
    let before = s.peek(|l| l.source.clone());
    let e = pollster::block_on(s.adapt(&adapter, "mismatch".into())).unwrap_err().to_string();
    assert!(e.contains("lora_A") || e.contains("shape"), "{e}");
    assert_eq!(s.peek(|l| l.source.clone()), before, "the model in use after a refused adapter");
    println!("peft's adapter onto the model in use: max |BERT Lab - transformers + peft| = {worst:.2e}; refused: {e}");
}

/// A session (as the page and the CLI run it) whose own pretraining run goes non-finite after
/// good steps (a NaN planted in a weight between steps 3 and 4, as a diverging run would make
/// one) is rolled back to the weights it started from, with a fresh optimizer: the good run that
/// follows gives the weights that run gives on a fresh session, not the ones its stale moments
/// (and a bias correction of a first step over them) would.
#[test]
fn a_rolled_back_pretraining_run_leaves_the_weights_and_a_fresh_optimizer() {
    use bertlab::session::{Loaded, NoStore, Scratch, Session};
    use std::rc::Rc;
    let texts: Vec<String> = std::fs::read_to_string("www/samples/corpus.txt").unwrap().lines().filter(|l| !l.trim().is_empty()).take(120).map(str::to_string).collect();
    let shape = Scratch { vocab: 300, hidden: 32, layers: 1, heads: 2, body: bertlab::model::config::Body::Bert, causal: false, seed: 5 };
    let g = Rc::new(Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}")));
    let session = || {
        let s = Session::new(g.clone());
        s.install(Loaded::scratch(&g, &shape, &texts).unwrap()).unwrap();
        s
    };
    let weights = |s: &Session| pollster::block_on(s.with_model("reading", async |g, l| Ok(l.model.params.read_all(g).await?))).unwrap();
    let spec = |steps| PretrainConfig { steps, batch_size: 8, max_len: 32, lr: 1e-3, warmup: 0, ..PretrainConfig::default() };
    let s = session();
    let start = weights(&s);
    let planted = s.peek(|l| l.model.params.get("encoder.layer.0.output.dense.weight").unwrap().value.clone()).unwrap();
    let mut non_finite = Vec::new();
    let ran = pollster::block_on(s.pretrain(spec(8), &texts, &NoStore, &mut |e| match e {
        Event::Pretrain { step: 3, .. } => g.write(&planted, 0, &[f32::NAN]).unwrap(),
        Event::NonFinite { step } => non_finite.push(step),
        _ => {}
    }))
    .unwrap();
    assert_eq!((ran.rolled_back, non_finite), (Some(3), vec![3]), "the planted NaN makes step 3 non-finite, after 3 good steps");
    assert!(start == weights(&s), "the rollback did not restore the weights the run started from");
    pollster::block_on(s.pretrain(spec(4), &texts, &NoStore, &mut |_| {})).unwrap();
    let fresh = session();
    pollster::block_on(fresh.pretrain(spec(4), &texts, &NoStore, &mut |_| {})).unwrap();
    let (a, b) = (weights(&s), weights(&fresh));
    let mut worst = (0.0f32, String::new());
    for ((name, _, x), (_, _, y)) in a.iter().zip(&b) {
        let d = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        if d > worst.0 {
            worst = (d, name.clone());
        }
    }
    assert!(worst.0 <= 1e-6, "after a rollback, a run's weights are {} off a fresh session's ({}): the rolled-back steps' moments were kept", worst.0, worst.1);
    assert!(a.iter().zip(&start).any(|(x, y)| x.2 != y.2), "the run after the rollback changed no weight");
}

/// The tensors a run adds are drawn from the run's seed: a fresh classification head and LoRA's A
/// matrices differ between two seeds and are the same for one seed twice (each run stopped
/// before its first step, so that what is compared is the fresh draw).
#[test]
fn two_seeds_draw_two_fresh_heads_and_two_lora_a_matrices() {
    use bertlab::session::{Loaded, NoStore, Scratch, Session};
    use std::rc::Rc;
    let g = Rc::new(Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}")));
    let data = std::fs::read("www/samples/sentiment.tsv").unwrap();
    let drawn = |seed: u64, adopt: Adopt| {
        let s = Session::new(g.clone());
        s.set_data("sentiment.tsv".into(), data.clone()).unwrap();
        let shape = Scratch { vocab: 300, hidden: 32, layers: 1, heads: 2, body: bertlab::model::config::Body::Bert, causal: false, seed: 5 };
        s.install(Loaded::scratch(&g, &shape, &s.pretrain_texts().unwrap()).unwrap()).unwrap();
        let tc = TrainConfig { adopt, seed, epochs: 1, batch_size: 16, max_len: 32, ..TrainConfig::default() };
        let trained = pollster::block_on(s.train(tc, &NoStore, &mut |e| {
            if let Event::Plan { .. } = e {
                s.control().cancel();
            }
        }))
        .unwrap();
        assert_eq!((trained.ran.report.steps, trained.ran.report.stopped.as_deref()), (0, Some("cancelled")));
        let tensors = pollster::block_on(s.with_model("reading", async |g, l| Ok(l.model.params.read_all(g).await?))).unwrap();
        let pick = |part: &str| tensors.iter().filter(|(n, _, _)| n.contains(part)).flat_map(|(_, _, v)| v.clone()).collect::<Vec<f32>>();
        (pick("classifier.weight"), pick("lora_A"))
    };
    let (head1, _) = drawn(1, Adopt::Full);
    let (head2, _) = drawn(2, Adopt::Full);
    let (head1_again, _) = drawn(1, Adopt::Full);
    assert!(!head1.is_empty() && head1 != head2, "seeds 1 and 2 drew the same fresh classifier");
    assert_eq!(head1, head1_again, "seed 1 twice drew two classifiers");
    let (_, a1) = drawn(1, Adopt::Lora(4));
    let (_, a2) = drawn(2, Adopt::Lora(4));
    assert!(!a1.is_empty() && a1 != a2, "seeds 1 and 2 drew the same LoRA A matrices");
}
