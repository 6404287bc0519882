//! The model against PyTorch (tests/fixtures), natively on wgpu. Nothing is skipped.


use crate::common::gpu;

macro_rules! native_tests {
    ($($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let g = gpu();
                match pollster::block_on(bertlab::parity::$name(g)) {
                    Ok(summary) => println!("{} on {}: {summary}", stringify!($name), g.info.name),
                    Err(e) => panic!("{} on {}: {e}", stringify!($name), g.info.summary()),
                }
            }
        )*
    };
}

bertlab::for_each_model_check!(native_tests);
bertlab::for_each_family_check!(native_tests);

/// The real pretrained all-MiniLM-L6-v2 (scripts/fetch_model.sh puts it in models/): loads with
/// its prefix-less BertModel names, its last hidden states match transformers within 1e-3, and one
/// fine-tuning step's per-layer gradient norms match within 1% (tests/fixtures/minilm_ref.safetensors).
#[test]
fn minilm_matches_transformers() {
    use bertlab::safetensors;
    use bertlab::model::{Batch, Model, ModelConfig, Heads};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch_model.sh", dir.join(f).display()));
    let weights = read("model.safetensors");
    let cfg = ModelConfig::from_json(&String::from_utf8(read("config.json")).unwrap()).unwrap();
    let reference = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_ref.safetensors")).unwrap();
    let r = safetensors::parse(&reference).unwrap();
    let mut st = safetensors::parse(&weights).unwrap();
    st.tensors.insert("classifier.weight".into(), r.tensors["cls.weight"].clone());
    st.tensors.insert("classifier.bias".into(), r.tensors["cls.bias"].clone());
    let g = gpu();
    let heads = Heads { lm: false, sop: false, num_labels: 3 };
    let (mut model, report) = Model::new(g, cfg.clone(), heads, Some(&st), 0).unwrap();
    assert!(report.initialised.is_empty(), "initialised instead of loaded: {:?}", report.initialised);
    model.params.set_trainable(g, |_| true).unwrap();
    let shape = r.tensors["input.input_ids"].shape.clone();
    let (b, t) = (shape[0], shape[1]);
    let u = |n: &str| r.tensors[n].to_i64().into_iter().map(|x| x as u32).collect::<Vec<u32>>();
    let labels: Vec<i32> = r.tensors["input.labels"].to_i64().into_iter().map(|x| x as i32).collect();
    let batch = Batch::new(g, &cfg, b, t, &u("input.input_ids"), &u("input.token_type_ids"), &u("input.attention_mask"), None, None, Some(&labels)).unwrap();
    pollster::block_on(async {
        let mut step = g.begin_step("minilm");
        model.zero_grads(&mut step);
        model.forward(g, &mut step, &batch, bertlab::model::Mode::Eval).unwrap();
        model.backward(&mut step, &batch, bertlab::model::Mode::Eval).unwrap();
        let rbs = model.record_loss_readback(&mut step).unwrap();
        step.submit().await.unwrap();
        let losses = Model::read_losses(g, rbs).await.unwrap();
        let hidden = g.read_f32(model.last_hidden().unwrap()).await.unwrap();
        let want = r.tensors["out.last_hidden"].to_f32();
        let d = hidden.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(d <= 1e-3, "last hidden state: max |diff| {d:.2e} > 1e-3");
        let want_loss = r.tensors["out.loss"].to_f32()[0];
        assert!((losses.cls - want_loss).abs() < 1e-4, "loss {} vs {want_loss}", losses.cls);
        let groups: Vec<String> = std::iter::once("embeddings.".to_string())
            .chain((0..6).map(|l| format!("encoder.layer.{l}.")))
            .chain(["pooler.".to_string(), "classifier.".to_string()])
            .collect();
        let want_norms = r.tensors["grad_norms"].to_f32();
        let mut report = Vec::new();
        for (gname, want) in groups.iter().zip(&want_norms) {
            let mut s = 0.0f64;
            for p in model.params.params.iter().filter(|p| p.name.starts_with(gname.as_str())) {
                let v = g.read_f32(p.grad.as_ref().unwrap()).await.unwrap();
                s += v[..p.numel()].iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>();
            }
            let got = s.sqrt() as f32;
            let rel = (got - want).abs() / want;
            assert!(rel < 0.01, "{gname} gradient norm {got} vs transformers {want} ({:.2}% off)", rel * 100.0);
            report.push(format!("{gname} {:.3}%", rel * 100.0));
        }
        println!("MiniLM: hidden max |diff| {d:.2e}, loss {} vs {want_loss}; gradient norms off by {}", losses.cls, report.join(", "));
    });
}

/// Writes two exports of the fixture model (as BertForSequenceClassification and BertForMaskedLM)
/// with BERT Lab's logits beside them to target/hf-export-check/, for the companion check
/// `python3 tests/fixtures/check_export.py` (torch + transformers; run by a developer). Here each
/// export names its architecture and reads back (as `bertlab predict` and the page read it) into a
/// model that gives the same logits.
#[test]
fn write_exports_for_transformers_check() {
    use bertlab::io::export::{export_files, ModelCard};
    use bertlab::io::model_dir;
    use bertlab::safetensors;
    use bertlab::model::{Batch, Model, ModelConfig, Heads};
    let g = gpu();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = ModelConfig::from_json(bertlab::parity::TINY_CONFIG).unwrap();
    let mut st = safetensors::parse(bertlab::parity::TINY_WEIGHTS).unwrap();
    st.tensors.extend(safetensors::parse(bertlab::parity::TINY_CLASSIFIER).unwrap().tensors);
    let ids: Vec<u32> = vec![2, 17, 250, 1999, 3, 44, 45, 46, 5, 0, 0, 0, 2, 9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 11];
    let types: Vec<u32> = vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
    let mask: Vec<u32> = ids.iter().enumerate().map(|(i, _)| if i < 9 || i >= 12 { 1 } else { 0 }).collect();
    let logits_of = |m: &mut Model| -> Vec<f32> {
        pollster::block_on(async {
            if m.heads.num_labels > 0 {
                let batch = Batch::new(g, &cfg, 2, 12, &ids, &types, &mask, None, None, Some(&[0, 1])).unwrap();
                m.classify(g, &batch).await.unwrap().concat()
            } else {
                let labels: Vec<i32> = (0..24).map(|i| if i == 3 || i == 14 { 0 } else { -100 }).collect();
                let batch = Batch::new(g, &cfg, 2, 12, &ids, &types, &mask, Some(&labels), None, None).unwrap();
                let mut step = g.begin_step("mlm");
                m.forward(g, &mut step, &batch, bertlab::model::Mode::Eval).unwrap();
                step.submit().await.unwrap();
                let mut l = g.read_f32(m.lm_logits().unwrap()).await.unwrap();
                l.truncate(2 * cfg.vocab_size);
                l
            }
        })
    };
    for (dir, heads, arch) in [("cls", Heads { lm: false, sop: false, num_labels: 3 }, "BertForSequenceClassification"), ("mlm", Heads { lm: true, sop: false, num_labels: 0 }, "BertForMaskedLM")] {
        let (mut m, _) = Model::new(g, cfg.clone(), heads, Some(&st), 0).unwrap();
        let out = root.join("target/hf-export-check").join(dir);
        std::fs::create_dir_all(&out).unwrap();
        let logits = logits_of(&mut m);
        let tensors = pollster::block_on(m.params.read_all(g)).unwrap();
        let labels = ["negative".to_string(), "neutral".to_string(), "positive".to_string()];
        // a WordPiece vocabulary as long as the model's, so that the export reads back
        let vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].iter().map(|t| t.to_string()).chain((5..cfg.vocab_size).map(|i| format!("w{i}"))).collect();
        let tokenizer = [("vocab.txt".to_string(), (vocab.join("\n") + "\n").into_bytes())];
        let files: std::collections::BTreeMap<String, Vec<u8>> = export_files(&cfg, heads, tensors, &labels, &tokenizer, &ModelCard::default()).into_iter().collect();
        for (name, bytes) in &files {
            std::fs::write(out.join(name), bytes).unwrap();
        }
        let probe = serde_json::json!({"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "rows": [3, 14], "bertlab": logits});
        std::fs::write(out.join("bertlab_outputs.json"), probe.to_string()).unwrap();
        let config: serde_json::Value = serde_json::from_slice(&files["config.json"]).unwrap();
        assert_eq!(config["architectures"][0], arch, "{dir}: the export's config.json");
        let mut back = model_dir::load(g, &files, None, 1).unwrap_or_else(|e| panic!("{dir}: the export does not read back: {e}")).model;
        assert_eq!(back.heads, heads, "{dir}: the heads read back");
        let again = logits_of(&mut back);
        let worst = logits.iter().zip(&again).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(logits.len() == again.len() && logits.iter().all(|x| x.is_finite()) && worst == 0.0, "{dir}: the export read back gives logits {worst} off the model's");
    }
}

/// OpenAI's GPT-2 vocabulary (50,257 tokens, at width 256: 51 MB), built here with random weights
/// in one layer (nothing large is committed): its word embedding is bound in two shards of at most
/// 32 MiB on any device (as GPT-2 small's 154 MB table is over lavapipe's 128 MiB binding; the e2e
/// loads that one in the page), and generation with the key-value cache gives, at the prompt and at
/// each new token, the logits and the greedy token of an f64 forward on the host, for ids on both
/// sides of the shards' edge. Three training steps lower the loss and move the rows of the second
/// shard that the text uses (the sharded lookup's and head's gradients, and AdamW over the arena
/// bound as two views of at most the shard size).
#[test]
fn gpt2_with_openai_vocabulary_generates_and_trains_in_shards() {
    use bertlab::kernels::adamw::AdamW;
    use bertlab::kernels::{cpu, matmul::Matmul};
    use bertlab::kernels::sample::Draw;
    use bertlab::model::{Model, ModelConfig, Heads, Mode};
    use bertlab::train::batches::HostBatch;
    use bertlab::train::trainer::train_step;
    let g = gpu();
    let (v, c, h) = (50257usize, 256usize, 4usize);
    let mut cfg = ModelConfig::small_gpt2(v, c, 1, h);
    cfg.max_position_embeddings = 64;
    cfg.hidden_dropout_prob = 0.0;
    cfg.attention_probs_dropout_prob = 0.0;
    let eps = cfg.layer_norm_eps;
    let i = cfg.intermediate_size;
    let (mut m, _) = Model::new(g, cfg, Heads { lm: true, sop: false, num_labels: 0 }, None, 0).unwrap();
    // shards of at most 32 MiB on any device, even one that binds the whole table: the 51 MB table
    // in two, as lavapipe's 128 MiB binding takes GPT-2 small's 154 MB one (the e2e loads that one)
    m.limit_word_shards(32 << 20);
    let shards = m.word_shards(g);
    assert_eq!(shards.len(), 2, "shards {shards:?}");
    let edge = shards[1].0;
    // weights large enough that the next token is not a near-tie
    let mut rng = bertlab::rng::Rng::new(5);
    let mut w: std::collections::HashMap<String, Vec<f64>> = Default::default();
    for p in &m.params.params {
        let n: usize = p.shape.iter().product();
        let vals: Vec<f32> = if p.name.contains("ln_") && p.name.ends_with(".weight") {
            rng.normals(n, 0.1).into_iter().map(|x| 1.0 + x).collect()
        } else if p.name.ends_with("bias") {
            rng.normals(n, 0.1)
        } else {
            rng.normals(n, if p.name == "wte.weight" { 0.1 } else { 0.05 })
        };
        g.write(&p.value, 0, &vals).unwrap();
        w.insert(p.name.clone(), vals.iter().map(|&x| x as f64).collect());
    }
    let ww = |n: &str| w.get(n).unwrap_or_else(|| panic!("no {n}")).as_slice();
    // the f64 forward: next-token logits after `ids`
    let reference = |ids: &[u32]| -> Vec<f64> {
        let t = ids.len();
        let mut x = vec![0.0; t * c];
        for (r, &id) in ids.iter().enumerate() {
            for j in 0..c {
                x[r * c + j] = ww("wte.weight")[id as usize * c + j] + ww("wpe.weight")[r * c + j];
            }
        }
        let h1 = cpu::layernorm(&x, ww("h.0.ln_1.weight"), ww("h.0.ln_1.bias"), t, c, eps).0;
        let qkv = cpu::matmul(&h1, ww("h.0.attn.c_attn.weight"), Some(ww("h.0.attn.c_attn.bias")), &Matmul::new(t, 3 * c, c));
        let d = c / h;
        let mut ctx = vec![0.0; t * c];
        for hh in 0..h {
            for r in 0..t {
                let s: Vec<f64> = (0..=r).map(|j| (0..d).map(|k| qkv[r * 3 * c + hh * d + k] * qkv[j * 3 * c + c + hh * d + k]).sum::<f64>() / (d as f64).sqrt()).collect();
                let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|x| (x - mx).exp()).sum();
                for k in 0..d {
                    ctx[r * c + hh * d + k] = (0..=r).map(|j| (s[j] - mx).exp() / z * qkv[j * 3 * c + 2 * c + hh * d + k]).sum();
                }
            }
        }
        let a = cpu::matmul(&ctx, ww("h.0.attn.c_proj.weight"), Some(ww("h.0.attn.c_proj.bias")), &Matmul::new(t, c, c));
        let res: Vec<f64> = x.iter().zip(&a).map(|(p, q)| p + q).collect();
        let h2 = cpu::layernorm(&res, ww("h.0.ln_2.weight"), ww("h.0.ln_2.bias"), t, c, eps).0;
        let f: Vec<f64> = cpu::matmul(&h2, ww("h.0.mlp.c_fc.weight"), Some(ww("h.0.mlp.c_fc.bias")), &Matmul::new(t, i, c)).into_iter().map(cpu::gelu_tanh).collect();
        let f = cpu::matmul(&f, ww("h.0.mlp.c_proj.weight"), Some(ww("h.0.mlp.c_proj.bias")), &Matmul::new(t, c, i));
        let out: Vec<f64> = res.iter().zip(&f).map(|(p, q)| p + q).collect();
        let y = cpu::layernorm(&out[(t - 1) * c..], ww("ln_f.weight"), ww("ln_f.bias"), 1, c, eps).0;
        cpu::matmul(&y, ww("wte.weight"), None, &Matmul::new(1, v, c).trans_b())
    };
    let mut ids: Vec<u32> = vec![50256, 17, edge as u32 - 1, edge as u32, 44000, 31000];
    let greedy = Draw { k: 1, top_k: 1, temperature: 1.0, u: 0.0 };
    let mut next = Some(pollster::block_on(m.decode_start(g, &ids, ids.len() + 4, greedy)).unwrap());
    for step in 0..4 {
        let id = pollster::block_on(next.take().unwrap().read(g)).unwrap().0.unwrap();
        let got = pollster::block_on(g.read_f32(m.decode_logits().unwrap())).unwrap();
        let want = reference(&ids);
        let scale = want.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        let d = got.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
        // 1.4e-6 of the largest on lavapipe
        assert!(d <= 1e-5 * scale, "after {} tokens: logits max |diff| {d:.3e} (largest logit {scale:.3})", ids.len());
        let best = (0..v).max_by(|&a, &b| want[a].total_cmp(&want[b])).unwrap() as u32;
        assert_eq!(id, best, "after {} tokens the cached path chose {id}, the f64 forward {best}", ids.len());
        println!("step {step}: {} tokens, logits within {:.1e} of f64 ({scale:.2} largest), token {id}", ids.len(), d / scale);
        ids.push(id);
        if step < 3 {
            next = Some(pollster::block_on(m.decode_next(g, greedy)).unwrap());
        }
    }
    // training: the next token at every position
    m.params.set_trainable(g, |_| true).unwrap();
    let t = ids.len();
    let labels: Vec<i32> = (0..t).map(|r| if r + 1 < t { ids[r + 1] as i32 } else { -100 }).collect();
    let hb = HostBatch { b: 1, t, ids: ids.clone(), types: vec![0; t], mask: vec![1; t], lm_labels: Some(labels), ..Default::default() };
    let wte = m.params.params.iter().find(|p| p.name == "wte.weight").unwrap().value.clone();
    let row = |r: usize| pollster::block_on(g.read_f32(&wte.view(r * c, c))).unwrap();
    let before = row(44000);
    let opt = AdamW { lr: 1e-3, ..AdamW::default() };
    let losses: Vec<f32> = (0..3).map(|k| pollster::block_on(train_step(g, &mut m, &hb, &opt, 1e-3, 0.0, Mode::Train { seed: k })).unwrap().lm).collect();
    assert!(losses[2] < losses[0] && losses.iter().all(|l| l.is_finite()), "losses {losses:?}");
    let after = row(44000);
    assert!(before.iter().zip(&after).any(|(a, b)| a != b) && after.iter().all(|x| x.is_finite()), "the second shard's row 44000 did not move");
    println!("3 training steps: losses {losses:?}");
}

/// A key-value cache over one storage binding is refused before anything is allocated, with both
/// sizes and what to do; the model then still generates with a cache that fits.
#[test]
fn a_cache_over_the_binding_limit_is_refused_with_both_sizes() {
    use bertlab::kernels::sample::Draw;
    use bertlab::model::{Model, ModelConfig, Heads};
    let g = gpu();
    let mut cfg = ModelConfig::small_gpt2(100, 768, 1, 12);
    cfg.max_position_embeddings = 16384;
    let (mut m, _) = Model::new(g, cfg, Heads { lm: true, sop: false, num_labels: 0 }, None, 0).unwrap();
    let per = 16384u64 * 3 * 768 * 4;
    // a binding of at most 128 MiB (lavapipe's), under the cache's 151 MB, on any device
    m.limit_cache_binding(128 << 20);
    let limit = g.info.max_storage_buffer_binding_size.min(128 << 20);
    let greedy = Draw { k: 1, top_k: 1, temperature: 1.0, u: 0.0 };
    let e = pollster::block_on(m.decode_start(g, &[1, 2, 3], 16384, greedy)).err().expect("a cache of 151 MB per layer");
    let msg = e.to_string();
    assert!(msg.contains(&per.to_string()) && msg.contains(&limit.to_string()) && msg.contains("fewer new tokens"), "{msg}");
    let id = pollster::block_on(pollster::block_on(m.decode_start(g, &[1, 2, 3], 64, greedy)).unwrap().read(g)).unwrap().0;
    assert!(id.is_some(), "no token after the refusal");
}

/// A token id, token type or masked-LM label outside its table is a `Range` error naming the id and
/// the table's size, refused before anything is uploaded.
#[test]
fn ids_outside_their_tables_are_range_errors() {
    use bertlab::error::Error;
    use bertlab::model::batch::Batch;
    use bertlab::model::ModelConfig;
    let g = gpu();
    let cfg = ModelConfig::small(50, 16, 1, 2);
    let ok = Batch::new(g, &cfg, 1, 2, &[3, 49], &[0, 1], &[1, 1], None, None, None);
    assert!(ok.is_ok(), "{:?}", ok.err());
    let e = Batch::new(g, &cfg, 1, 2, &[3, 50], &[0, 0], &[1, 1], None, None, None).err();
    assert!(matches!(e, Some(Error::Range { id: 50, size: 50, .. })), "{e:?}");
    let e = Batch::new(g, &cfg, 1, 2, &[3, 4], &[0, 2], &[1, 1], None, None, None).err();
    assert!(matches!(e, Some(Error::Range { id: 2, size: 2, .. })), "{e:?}");
    let e = Batch::new(g, &cfg, 1, 2, &[3, 4], &[0, 0], &[1, 1], Some(&[-100, 77]), None, None).err();
    assert!(matches!(e, Some(Error::Range { id: 77, size: 50, .. })), "{e:?}");
    let e = Batch::new(g, &cfg, 1, 3, &[3, 4], &[0, 0], &[1, 1], None, None, None).err();
    assert!(matches!(e, Some(Error::Shape { .. })), "{e:?}");
}

/// What a person brings that does not fit gets a message naming the problem: a family's config
/// whose sizes contradict its weights names the first tensor that differs, in the family's own names;
/// a tokenizer.json whose model kind is unknown says so; a ModernBERT with biases or another rope type
/// is refused by name.
#[test]
fn families_refuse_what_does_not_fit() {
    use bertlab::model::{Model, ModelConfig, Heads};
    use bertlab::safetensors;
    let f = &bertlab::parity::FAMILY_FIXTURES[1]; // RoBERTa
    let weights = safetensors::parse(f.weights).unwrap();
    let bigger = f.config.replace("\"intermediate_size\": 56", "\"intermediate_size\": 60");
    assert_ne!(bigger, f.config, "the fixture's config changed: update this test");
    let cfg = ModelConfig::from_json(&bigger).unwrap();
    let e = match Model::new(gpu(), cfg, Heads { lm: true, sop: false, num_labels: 0 }, Some(&weights), 0) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a RoBERTa whose intermediate size contradicts its weights was accepted"),
    };
    assert!(e.contains("roberta.encoder.layer.0.intermediate.dense.weight: the checkpoint has shape [56, 40], the config needs [60, 40]"), "{e}");
    let tj = String::from_utf8(f.tokenizer.to_vec()).unwrap().replacen("\"type\": \"BPE\"", "\"type\": \"Sentencepiece2000\"", 1);
    let e = bertlab::text::tokenizer::Tokenizer::from_tokenizer_json(tj.as_bytes()).err().expect("an unknown tokenizer kind was accepted").to_string();
    assert!(e.contains("Sentencepiece2000") && e.contains("WordPiece") && e.contains("Unigram"), "{e}");
    let mb = bertlab::parity::FAMILY_FIXTURES[6].config;
    for (what, from, to) in [("norm_bias", "\"norm_bias\": false", "\"norm_bias\": true"), ("rope_type", "\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"")] {
        let bad = mb.replacen(from, to, 1);
        assert_ne!(bad, mb, "the ModernBERT fixture's config lacks {from}");
        let e = ModelConfig::from_json(&bad).err().unwrap_or_else(|| panic!("a ModernBERT with {to} was accepted")).to_string();
        assert!(e.contains(what), "{e}");
    }
}
