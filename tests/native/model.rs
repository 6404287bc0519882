//! The model against PyTorch (tests/fixtures), natively on wgpu. Nothing is skipped.


use crate::common::gpu;

macro_rules! native_tests {
    ($($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let g = gpu();
                match pollster::block_on(bertlab::model::checks::$name(g)) {
                    Ok(summary) => println!("{} on {}: {summary}", stringify!($name), g.info.name),
                    Err(e) => panic!("{} on {}: {e}", stringify!($name), g.info.summary()),
                }
            }
        )*
    };
}

bertlab::for_each_model_check!(native_tests);

/// The real pretrained all-MiniLM-L6-v2 (scripts/fetch_model.sh puts it in models/): loads with
/// its prefix-less BertModel names, its last hidden states match transformers within 1e-3, and one
/// fine-tuning step's per-layer gradient norms match within 1% (tests/fixtures/minilm_ref.safetensors).
#[test]
fn minilm_matches_transformers() {
    use bertlab::io::safetensors;
    use bertlab::model::{Batch, Bert, BertConfig, Heads};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch_model.sh", dir.join(f).display()));
    let weights = read("model.safetensors");
    let cfg = BertConfig::from_json(&String::from_utf8(read("config.json")).unwrap()).unwrap();
    let reference = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_ref.safetensors")).unwrap();
    let r = safetensors::parse(&reference).unwrap();
    let mut st = safetensors::parse(&weights).unwrap();
    st.tensors.insert("classifier.weight".into(), r.tensors["cls.weight"].clone());
    st.tensors.insert("classifier.bias".into(), r.tensors["cls.bias"].clone());
    let g = gpu();
    let heads = Heads { mlm: false, sop: false, num_labels: 3 };
    let (mut model, report) = Bert::new(g, cfg.clone(), heads, Some(&st), 0).unwrap();
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
        let losses = Bert::read_losses(g, rbs).await.unwrap();
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
/// `python3 tests/fixtures/check_export.py` (torch + transformers; run by a developer).
#[test]
fn write_exports_for_transformers_check() {
    use bertlab::io::export::{export_files, ModelCard};
    use bertlab::io::safetensors;
    use bertlab::model::{Batch, Bert, BertConfig, Heads};
    let g = gpu();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = BertConfig::from_json(bertlab::model::checks::TINY_CONFIG).unwrap();
    let mut st = safetensors::parse(bertlab::model::checks::TINY_WEIGHTS).unwrap();
    st.tensors.extend(safetensors::parse(bertlab::model::checks::TINY_CLASSIFIER).unwrap().tensors);
    let ids: Vec<u32> = vec![2, 17, 250, 1999, 3, 44, 45, 46, 5, 0, 0, 0, 2, 9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 11];
    let types: Vec<u32> = vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
    let mask: Vec<u32> = ids.iter().enumerate().map(|(i, _)| if i < 9 || i >= 12 { 1 } else { 0 }).collect();
    for (dir, heads) in [("cls", Heads { mlm: false, sop: false, num_labels: 3 }), ("mlm", Heads { mlm: true, sop: false, num_labels: 0 })] {
        let (mut m, _) = Bert::new(g, cfg.clone(), heads, Some(&st), 0).unwrap();
        let out = root.join("target/hf-export-check").join(dir);
        std::fs::create_dir_all(&out).unwrap();
        let logits: Vec<f32> = pollster::block_on(async {
            if heads.num_labels > 0 {
                let batch = Batch::new(g, &cfg, 2, 12, &ids, &types, &mask, None, None, Some(&[0, 1])).unwrap();
                m.classify(g, &batch).await.unwrap().concat()
            } else {
                let labels: Vec<i32> = (0..24).map(|i| if i == 3 || i == 14 { 0 } else { -100 }).collect();
                let batch = Batch::new(g, &cfg, 2, 12, &ids, &types, &mask, Some(&labels), None, None).unwrap();
                let mut step = g.begin_step("mlm");
                m.forward(g, &mut step, &batch, bertlab::model::Mode::Eval).unwrap();
                step.submit().await.unwrap();
                let mut l = g.read_f32(m.mlm_logits().unwrap()).await.unwrap();
                l.truncate(2 * cfg.vocab_size);
                l
            }
        });
        let tensors = pollster::block_on(m.params.read_all(g)).unwrap();
        let labels = ["negative".to_string(), "neutral".to_string(), "positive".to_string()];
        for (name, bytes) in export_files(&cfg, heads, tensors, &labels, &[], &ModelCard::default()) {
            std::fs::write(out.join(name), bytes).unwrap();
        }
        let probe = serde_json::json!({"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "rows": [3, 14], "bertlab": logits});
        std::fs::write(out.join("bertlab_outputs.json"), probe.to_string()).unwrap();
    }
}
