//! Host-side units that need no GPU: the parameter arenas' layout, vocab.txt tokenisation, the
//! page's bars and data preview, batch padding.

mod arena {
use bertlab::gpu::GpuBuf;
    use bertlab::model::params::{arena_layout, decays, tensor_names};
    use bertlab::model::ModelConfig;

    fn cfg(hidden: usize) -> ModelConfig {
        ModelConfig::small(50, hidden, 2, 2)
    }

    /// Every tensor bindable at an aligned offset, except the key and value that follow their query
    /// with no gap; arenas within the cap; no two tensors overlapping.
    #[test]
    fn arena_layout_aligns_packs_qkv_and_respects_the_cap() {
        for (hidden, cap) in [(24, usize::MAX), (24, 4000), (32, 3 * 32 * 32)] {
            let names = tensor_names(&cfg(hidden), true, true, 3);
            let (place, arenas) = arena_layout(&names, cap);
            let mut spans: Vec<(usize, usize, usize)> = Vec::new();
            for ((name, shape), &(a, off)) in names.iter().zip(&place) {
                let n: usize = shape.iter().product();
                let packed = name.contains(".attention.self.key.") || name.contains(".attention.self.value.");
                assert!(packed || off % GpuBuf::BIND_ALIGN == 0, "{name} at {off}");
                assert!(off + n <= arenas[a].0);
                assert_eq!(arenas[a].1, decays(name), "{name} in the wrong group");
                if n <= cap {
                    assert!(arenas[a].0 <= cap.max(n), "arena {a} of {} over the cap {cap}", arenas[a].0);
                }
                spans.push((a, off, off + n));
            }
            spans.sort();
            assert!(spans.windows(2).all(|w| w[0].0 != w[1].0 || w[0].2 <= w[1].1), "overlapping tensors");
            // each layer's q, k, v are consecutive in one arena
            for l in 0..2 {
                for part in ["weight", "bias"] {
                    let at = |n: &str| {
                        let i = names.iter().position(|(x, _)| x == &format!("encoder.layer.{l}.attention.self.{n}.{part}")).unwrap();
                        (place[i], names[i].1.iter().product::<usize>())
                    };
                    let ((aq, oq), nq) = at("query");
                    let ((ak, ok), _) = at("key");
                    let ((av, ov), _) = at("value");
                    assert!(aq == ak && ak == av && ok == oq + nq && ov == ok + nq, "layer {l} {part}: q/k/v not packed");
                }
            }
        }
    }
}

mod tokenizer {
use bertlab::text::tokenizer::Tokenizer;

    /// The same texts give the same vocabulary, ids included (tokenizers' own trainer broke ties in
    /// hash-map order, so each process made a different from-scratch model): specials, then the
    /// characters, then the joins in the order they were made.
    /// GPT-2's original files, vocab.json and merges.txt (written here from the fixture's
    /// tokenizer.json, as openai-community/gpt2 ships both), tokenize and decode every text as the
    /// tokenizer.json does; malformed ones are refused with the line.
    #[test]
    fn gpt2_vocab_json_and_merges_txt_match_tokenizer_json() {
        use bertlab::text::tokenizer::Tokenizer;
        let tj = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny_gpt2/tokenizer.json")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&tj).unwrap();
        let vocab = serde_json::to_vec(&v["model"]["vocab"]).unwrap();
        let mut merges = String::from("#version: 0.2\n");
        for m in v["model"]["merges"].as_array().unwrap() {
            let pair: Vec<&str> = match m {
                serde_json::Value::Array(p) => p.iter().map(|x| x.as_str().unwrap()).collect(),
                serde_json::Value::String(s) => s.split(' ').collect(),
                _ => panic!("merge {m}"),
            };
            merges.push_str(&format!("{} {}\n", pair[0], pair[1]));
        }
        let a = Tokenizer::from_tokenizer_json(&tj).unwrap();
        let b = Tokenizer::from_vocab_json_merges(&vocab, merges.as_bytes()).unwrap();
        assert_eq!((a.vocab_size, a.end_of_text, a.sep), (b.vocab_size, b.end_of_text, b.sep));
        for text in ["the curious kitten deftly opened the bookshelf", "Toast is a simple yet delicious food.", "  spaces\tand émoji 🐈 ", ""] {
            let (ea, eb) = (a.encode(text, None, 512).unwrap(), b.encode(text, None, 512).unwrap());
            assert_eq!(ea.ids, eb.ids, "{text:?}");
            assert_eq!(a.decode(&ea.ids).unwrap(), b.decode(&eb.ids).unwrap(), "{text:?}");
        }
        let bad = Tokenizer::from_vocab_json_merges(&vocab, b"#version: 0.2\nh e\nthree parts here\n").err().expect("a malformed merges.txt");
        assert!(bad.to_string().contains("line 3"), "{bad}");
        let no_eot = Tokenizer::from_vocab_json_merges(br#"{"a": 0, "b": 1}"#, b"a b\n").err().expect("a vocabulary without <|endoftext|>");
        assert!(no_eot.to_string().contains("<|endoftext|>"), "{no_eot}");
    }

    #[test]
    fn trained_wordpiece_is_deterministic() {
        let ds = bertlab::text::dataset::parse(bertlab::train::checks::SENTIMENT.as_bytes(), None);
        let texts: Vec<String> = ds.examples.iter().map(|e| e.text.clone()).collect();
        let a = Tokenizer::train_wordpiece(&texts, 600).unwrap().vocab_txt();
        for _ in 0..3 {
            assert_eq!(Tokenizer::train_wordpiece(&texts, 600).unwrap().vocab_txt(), a);
        }
        let v: Vec<&str> = a.lines().collect();
        assert_eq!(v[..7], ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##a", "##b"]);
        assert!(v.contains(&"the") && v.contains(&"coffee") && v.len() > 250, "{v:?}");
        let small = Tokenizer::train_wordpiece(&texts, 80).unwrap();
        assert_eq!(small.vocab_size, 80);
        let e = small.encode("the soup", None, 16).unwrap();
        assert!(!e.ids.contains(&small.unk), "every character is in the vocabulary: {e:?}");
    }

    #[test]
    fn vocab_txt_keeps_special_tokens_whole() {
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\nsat\n.\n";
        let t = Tokenizer::from_vocab_txt(vocab, true).unwrap();
        let e = t.encode("The cat [MASK] .", None, 16).unwrap();
        assert_eq!(e.ids, vec![t.cls, 5, 6, t.mask, 8, t.sep]);
    }
}

mod protocol {
use bertlab::app::protocol::{bars, preview};

    #[test]
    fn bars_are_sorted_and_keep_labels() {
        let b = bars(&["a".into(), "b".into(), "c".into()], &[0.2, 0.7, 0.1]);
        assert_eq!(b.iter().map(|x| x.label.as_str()).collect::<Vec<_>>(), ["b", "a", "c"]);
    }

    /// What a person types into the page's forms is parsed strictly: each bad field is refused
    /// with a message that names it and its range, every bad field at once, nothing defaulted.
    #[test]
    fn typed_forms_refuse_every_bad_field_by_name() {
        use bertlab::train::spec::Adopt;
        use bertlab::model::Pooling;
        use bertlab::app::protocol::{GenerateForm, ModelBounds, PretrainForm, ScratchForm, TrainForm};
        use bertlab::train::generate::GenerateConfig;
        let m = Some(ModelBounds { layers: 3, positions: 128 });
        let good = TrainForm { mode: "last".into(), last_n: "2".into(), lora_r: "8".into(), lr: "1e-4".into(), epochs: "3".into(), batch: "16".into(), max_len: "64".into(), pooling: "mean".into() };
        let s = good.parse(m, "run 1".into()).unwrap();
        assert_eq!((s.mode, s.pooling, s.lr, s.epochs, s.batch, s.max_len), (Adopt::Last(2), Pooling::Mean, 1e-4, 3, 16, 64));
        let bad = TrainForm { lr: "1e-4x".into(), epochs: "-5".into(), batch: "0".into(), max_len: "100000".into(), last_n: "99".into(), ..good.clone() };
        let errs = bad.parse(m, "run".into()).unwrap_err();
        let msg = |f: &str| errs.iter().find(|e| e.field == f).map(|e| e.message.clone()).unwrap_or_else(|| panic!("no error for {f}: {errs:?}"));
        assert!(msg("ft-lr").contains("“1e-4x” is not a number") && msg("ft-lr").contains("(0, 1]"), "{}", msg("ft-lr"));
        assert!(msg("ft-epochs").contains("from 1 to 1000"), "{}", msg("ft-epochs"));
        assert!(msg("ft-batch").contains("from 1 to 1024; got 0"), "{}", msg("ft-batch"));
        assert!(msg("ft-maxlen").contains("from 8 to 128; got 100000"), "{}", msg("ft-maxlen"));
        assert!(msg("ft-last").contains("from 1 to 3; got 99"), "{}", msg("ft-last"));
        for lr in ["nan", "inf", "0", "-1", "1e9", ""] {
            assert!(TrainForm { lr: lr.into(), ..good.clone() }.parse(m, "r".into()).is_err(), "learning rate {lr:?} accepted");
        }
        // N is only read when the last N layers are trained
        assert!(TrainForm { mode: "full".into(), last_n: "x".into(), ..good.clone() }.parse(m, "r".into()).is_ok());
        let sc = ScratchForm { hidden: "abc".into(), layers: "2".into(), heads: "4".into(), vocab: "600".into(), causal: false, gpt2: false, llama: false }.parse().unwrap_err();
        assert!(sc.len() == 1 && sc[0].field == "scratch-hidden" && sc[0].message.contains("“abc” is not"), "{sc:?}");
        let sc = ScratchForm { hidden: "66".into(), layers: "2".into(), heads: "4".into(), vocab: "600".into(), causal: false, gpt2: false, llama: false }.parse().unwrap_err();
        assert!(sc[0].field == "scratch-heads" && sc[0].message.contains("multiple"), "{sc:?}");
        let sc = ScratchForm { hidden: "64".into(), layers: "2".into(), heads: "4".into(), vocab: "600".into(), causal: false, gpt2: true, llama: false }.parse().unwrap();
        assert!(sc.gpt2 && sc.causal, "a GPT-2 is a causal model: {sc:?}");
        let sc = ScratchForm { hidden: "64".into(), layers: "2".into(), heads: "6".into(), vocab: "600".into(), causal: false, gpt2: false, llama: true }.parse().unwrap_err();
        assert!(sc[0].field == "scratch-heads" && sc[0].message.contains("multiple"), "{sc:?}");
        let sc = ScratchForm { hidden: "54".into(), layers: "2".into(), heads: "6".into(), vocab: "600".into(), causal: false, gpt2: false, llama: true }.parse().unwrap_err();
        assert!(sc[0].field == "scratch-heads" && sc[0].message.contains("even"), "rotary positions need heads of an even width: {sc:?}");
        let sc = ScratchForm { hidden: "48".into(), layers: "2".into(), heads: "6".into(), vocab: "600".into(), causal: false, gpt2: false, llama: true }.parse().unwrap();
        assert!(sc.llama && sc.causal && sc.spec().body == bertlab::session::Body::Llama, "a Llama is a causal model: {sc:?}");
        let pt = PretrainForm { mlm: false, sop: false, steps: "0".into(), lr: "0.001".into(), batch: "16".into(), mode: "full".into(), lora_r: "x".into() }.parse(m, None).unwrap_err();
        assert_eq!(pt.iter().map(|e| e.field).collect::<Vec<_>>(), ["pt-steps", "pt-mlm"]);
        let pt = PretrainForm { mlm: true, sop: false, steps: "10".into(), lr: "0.001".into(), batch: "16".into(), mode: "lora".into(), lora_r: "0".into() }.parse(m, None).unwrap_err();
        assert_eq!(pt.iter().map(|e| e.field).collect::<Vec<_>>(), ["pt-lora-r"]);
        let pt = PretrainForm { mlm: true, sop: false, steps: "10".into(), lr: "0.001".into(), batch: "16".into(), mode: "lora".into(), lora_r: "4".into() }.parse(m, None).unwrap();
        let spec = pt.lora_spec(bertlab::model::config::Family::Bert).unwrap();
        assert!(pt.lora_r == Some(4) && spec.r == 4 && spec.alpha == 8.0 && spec.targets == ["query", "value"], "{pt:?} {spec:?}");
        let gen = GenerateForm { max_new: "8".into(), top_k: "5".into(), temperature: "0.8".into(), seed: "3".into() };
        assert_eq!(gen.parse().unwrap(), GenerateConfig { max_new: 8, top_k: 5, temperature: 0.8, seed: 3 });
        let g = GenerateForm { max_new: "0".into(), top_k: "1001".into(), temperature: "0".into(), seed: "-1".into() }.parse().unwrap_err();
        assert_eq!(g.iter().map(|e| e.field).collect::<Vec<_>>(), ["gen-max-new", "gen-top-k", "gen-seed", "gen-temperature"]);
        assert!(g[3].message.contains("(0, 100]; got 0"), "{g:?}");
        for t in ["nan", "inf", "-0.5", "101", "warm"] {
            assert!(GenerateForm { temperature: t.into(), ..gen.clone() }.parse().is_err(), "temperature {t:?} accepted");
        }
    }

    /// Commands travel as tagged JSON and come back equal; a malformed one is refused with a
    /// message, not read as a default.
    #[test]
    fn commands_round_trip_and_malformed_ones_are_refused() {
        use bertlab::train::spec::Adopt;
        use bertlab::model::Pooling;
        use bertlab::app::protocol::{Command, TrainSettings};
        let c = Command::Train(TrainSettings { mode: Adopt::Last(2), pooling: Pooling::Cls, lr: 1e-3, epochs: 2, batch: 8, max_len: 32, run: "r".into() });
        assert_eq!(Command::from_json(&c.to_json()).unwrap(), c);
        assert_eq!(Command::from_json(&Command::Pause.to_json()).unwrap(), Command::Pause);
        assert_eq!(Command::from_json(&Command::StopGenerate.to_json()).unwrap(), Command::StopGenerate);
        let bad = r#"{"cmd":"train","data":{"mode":"full","pooling":"cls","lr":"1e-4x","epochs":3,"batch":16,"max_len":64,"run":"r"}}"#;
        assert!(Command::from_json(bad).unwrap_err().contains("does not understand"));
        assert!(Command::from_json(r#"{"cmd":"format_disk"}"#).is_err());
    }

    /// Events travel as their name and their data's JSON and come back equal (events without
    /// fields too); a misspelt event or a payload of the wrong type is refused with a message.
    #[test]
    fn events_round_trip_and_unknown_ones_are_refused() {
        use bertlab::app::protocol::{EpochReport, Event, TrainStep};
        let events = [
            Event::Ready {},
            Event::Resumed {},
            Event::Busy { busy: true },
            Event::Step(TrainStep { run: "run 1".into(), step: 3, total: 10, loss: 0.5, lr: 1e-4, ms: 12.5, eta: 3.0 }),
            Event::Epoch(EpochReport { run: "run 1".into(), epoch: 1, train_loss: 0.4, val_loss: None, val_acc: Some(0.75), val_f1: Some(0.7), confusion: vec![vec![3, 1], vec![0, 4]], labels: vec!["neg".into(), "pos".into()] }),
            Event::GenToken { id: 7, token: "##ing".into(), text: "ing".into() },
            Event::Stopped { step: 4, reason: "stopped".into(), nonfinite: false },
            Event::Probe { step: 5, predictions: vec![vec![("cat".into(), 0.5)]] },
            Event::Export { files: vec![("config.json".into(), 512)] },
        ];
        for ev in events {
            let (name, data) = ev.to_parts();
            assert_eq!(Event::from_parts(&name, data.as_deref()).unwrap(), ev, "{name}");
        }
        assert_eq!(Event::Ready {}.to_parts().0, "ready");
        assert_eq!(Event::GenDone { text: String::new(), tokens: 0, stopped_at: String::new(), ms: 0.0 }.to_parts().0, "gen_done");
        assert!(Event::from_parts("tarin_step", Some("{}")).unwrap_err().contains("does not understand"));
        assert!(Event::from_parts("busy", Some(r#"{"busy": "yes"}"#)).is_err());
        assert!(Event::from_parts("crashed", Some(r#"{"message": "boom"}"#)).is_ok(), "worker.js's own event");
    }

    /// The language-model fields read their old spellings (`mlm`, `mlm_acc`, `has_mlm`), which the
    /// sessions saved in the browser's IndexedDB still have.
    #[test]
    fn lm_fields_read_their_old_names() {
        use bertlab::app::protocol::{ModelSummary, PretrainStep};
        let step = PretrainStep { step: 3, total: 10, lm: 2.5, lm_acc: 0.25, ..Default::default() };
        let old = serde_json::to_string(&step).unwrap().replace("\"lm\":", "\"mlm\":").replace("\"lm_acc\":", "\"mlm_acc\":");
        assert!(old.contains("\"mlm\":2.5") && old.contains("\"mlm_acc\":0.25"), "{old}");
        assert_eq!(serde_json::from_str::<PretrainStep>(&old).unwrap(), step);
        let m = ModelSummary { has_lm: true, ..Default::default() };
        let old = serde_json::to_string(&m).unwrap().replace("\"has_lm\":", "\"has_mlm\":");
        assert!(old.contains("\"has_mlm\":true") && serde_json::from_str::<ModelSummary>(&old).unwrap().has_lm, "{old}");
    }

    #[test]
    fn preview_carries_messages_and_problem() {
        let ds = bertlab::text::dataset::parse(b"label\ttext\npos\tgood\npos\tgreat\n\tno label\n", None);
        let p = preview("x", &ds, 0);
        assert_eq!(p.examples, 2);
        assert!(p.problem.as_deref().unwrap_or("").contains("class"), "{:?}", p.problem);
        assert!(p.messages.iter().any(|m| m.line == 4), "{:?}", p.messages);
    }
}

mod batches {
use bertlab::train::batches::pad;

    #[test]
    fn pads_to_a_multiple_of_four_and_crops_to_the_model() {
        let (a, b) = ([1u32, 2, 3, 4, 5], [1u32, 2]);
        let hb = pad(&[(&a, &[0; 5]), (&b, &[0; 2])], 0);
        assert_eq!((hb.b, hb.t), (2, 8));
        assert_eq!(hb.mask, vec![1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0]);
        let c = hb.crop(6);
        assert_eq!((c.t, c.ids), (6, vec![1, 2, 3, 4, 5, 0, 1, 2, 0, 0, 0, 0]));
        assert_eq!(hb.crop(3).t, 5, "a real token is never cropped");
    }
}

mod settings {
    use bertlab::model::ModelConfig;
    use bertlab::train::spec::Adopt;
    use bertlab::train::trainer::{PretrainConfig, TrainConfig};

    /// Each setting out of its range is refused with a message that names the setting and the
    /// range; the defaults pass.
    #[test]
    fn out_of_range_settings_are_refused_with_their_range() {
        let model = ModelConfig::small(100, 32, 3, 2);
        assert_eq!(TrainConfig::default().validate(&model), Ok(()));
        assert_eq!(PretrainConfig::default().validate(&model), Ok(()));
        let t = TrainConfig::default;
        let cases: Vec<(TrainConfig, &str)> = vec![
            (TrainConfig { lr: 0.0, ..t() }, "learning rate must be a number in (0, 1]; got 0"),
            (TrainConfig { lr: -1e-3, ..t() }, "learning rate must be a number in (0, 1]"),
            (TrainConfig { lr: f32::NAN, ..t() }, "got NaN"),
            (TrainConfig { lr: 1e9, ..t() }, "got 1000000000"),
            (TrainConfig { epochs: 0, ..t() }, "epochs must be from 1 to 1000; got 0"),
            (TrainConfig { batch_size: 0, ..t() }, "batch size must be from 1 to 1024; got 0"),
            (TrainConfig { batch_size: 1_000_000_000, ..t() }, "batch size must be from 1 to 1024"),
            (TrainConfig { max_len: 100_000, ..t() }, "maximum length must be from 8 to 512; got 100000 (the model has 512 positions)"),
            (TrainConfig { adopt: Adopt::Last(99), ..t() }, "layers to train must be from 1 to 3; got 99 (the model has 3 layers)"),
            (TrainConfig { adopt: Adopt::Last(0), ..t() }, "layers to train must be from 1 to 3; got 0"),
            (TrainConfig { warmup_ratio: 2.0, ..t() }, "warm-up ratio"),
        ];
        for (cfg, want) in cases {
            let got = cfg.validate(&model).expect_err(want);
            assert!(got.to_string().contains(want), "{got:?} should contain {want:?}");
        }
        let p = PretrainConfig::default;
        for (cfg, want) in [
            (PretrainConfig { lr: f32::INFINITY, ..p() }, "learning rate"),
            (PretrainConfig { steps: 0, ..p() }, "steps must be from 1 to 1000000; got 0"),
            (PretrainConfig { batch_size: 0, ..p() }, "batch size"),
            (PretrainConfig { max_len: 4, ..p() }, "maximum length must be from 8 to 512"),
            (PretrainConfig { warmup: 500, steps: 100, ..p() }, "warm-up steps must be from 0 to 100"),
            (PretrainConfig { mlm: false, sop: false, ..p() }, "at least one objective"),
        ] {
            let got = cfg.validate(&model).expect_err(want);
            assert!(got.to_string().contains(want), "{got:?} should contain {want:?}");
        }
    }
}

mod data_limits {
    use bertlab::text::dataset::{self, check_size, Severity, MAX_BYTES, MAX_ROWS, MAX_TEXT_CHARS};

    /// A file over the size limit is refused naming the limit (the CLI and the page check the size
    /// before reading); 100,000 rows keep the first MAX_ROWS with one message; a 1 MB line is cut
    /// with a message; none of it panics.
    #[test]
    fn big_inputs_meet_their_limits_with_messages() {
        let e = check_size(200 << 20).unwrap_err();
        assert!(e.to_string().contains("209.7 MB") && e.to_string().contains(&format!("at most {} MB", MAX_BYTES >> 20)), "{e}");
        assert!(check_size(MAX_BYTES).is_ok());
        let big = vec![b'a'; MAX_BYTES as usize + 1];
        let ds = dataset::parse(&big, None);
        assert!(ds.examples.is_empty() && ds.messages.iter().any(|m| m.severity == Severity::Error && m.text.contains("MB")), "{:?}", ds.messages);

        let mut rows = String::new();
        for i in 0..100_000 {
            rows.push_str(&format!("{}\ttext number {i}\n", if i % 2 == 0 { "a" } else { "b" }));
        }
        let ds = dataset::parse(rows.as_bytes(), None);
        assert_eq!(ds.examples.len(), MAX_ROWS);
        let m = ds.messages.iter().find(|m| m.text.contains("rows are read (the limit)")).expect("a message about the row limit");
        assert_eq!(m.line, MAX_ROWS + 1);
        assert!(m.text.contains("50000 rows from here on are skipped"), "{}", m.text);

        let line = format!("pos\t{}\nneg\tshort\n", "word ".repeat(200_000));
        let ds = dataset::parse(line.as_bytes(), None);
        assert_eq!(ds.examples[0].text.chars().count(), MAX_TEXT_CHARS);
        assert!(ds.messages.iter().any(|m| m.line == 1 && m.text.contains("cut to the first")), "{:?}", ds.messages);
    }

    /// Hostile text is data: markup, direction overrides, joiners, emoji, NUL bytes and thousands of
    /// [MASK]s parse and tokenize without a panic, unchanged, and are cut to the model's length.
    #[test]
    fn hostile_text_parses_and_tokenizes() {
        use bertlab::text::tokenizer::Tokenizer;
        let texts = [
            "<script>alert(1)</script> & <b>bold</b>",
            "abc\u{202E}fed\u{202C} right-to-left override",
            "family \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} zero-width joined",
            "nul \u{0} byte",
            &"[MASK] ".repeat(10_000),
        ];
        let mut data = String::new();
        for (i, t) in texts.iter().enumerate() {
            data.push_str(&format!("{}\t{t}\n", if i % 2 == 0 { "x" } else { "y" }));
        }
        let ds = dataset::parse(data.as_bytes(), None);
        assert_eq!(ds.examples.len(), texts.len(), "{:?}", ds.messages);
        assert_eq!(ds.examples[0].text, texts[0], "markup is kept as text");
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nscript\nalert\nb\nbold\n";
        let tok = Tokenizer::from_vocab_txt(vocab, true).unwrap();
        for e in &ds.examples {
            let enc = tok.encode(&e.text, None, 64).unwrap();
            assert!(enc.ids.len() <= 64 && enc.ids[0] == tok.cls, "{:?}", &e.text[..e.text.len().min(30)]);
        }
    }
}

mod fuzz_replay {
    /// Every input saved for a fuzz target (its seeds, each crash the fuzzer found once fixed, and
    /// the minimised corpus of the last fuzzing run) goes through the target's function again: none
    /// may panic. scripts/fuzz.sh runs the fuzzer and packs the corpus.
    #[test]
    fn saved_fuzz_inputs_do_not_panic() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
        let mut n = 0;
        for (name, target) in bertlab::fuzzing::TARGETS {
            let dir = root.join(name);
            let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
            files.sort();
            assert!(!files.is_empty(), "no saved inputs for {name}");
            for f in files {
                let data = std::fs::read(&f).unwrap();
                if std::panic::catch_unwind(|| target(&data)).is_err() {
                    panic!("{name} panics on {}", f.display());
                }
                n += 1;
            }
            // the minimised corpus of the last fuzzing run, packed (scripts/fuzz.sh)
            let packed = root.join(format!("{name}.corpus"));
            if let Ok(bytes) = std::fs::read(&packed) {
                let mut at = 0;
                let mut k = 0;
                while at + 4 <= bytes.len() {
                    let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                    let data = &bytes[at + 4..at + 4 + len];
                    if std::panic::catch_unwind(|| target(data)).is_err() {
                        panic!("{name} panics on input {k} of {}", packed.display());
                    }
                    at += 4 + len;
                    k += 1;
                    n += 1;
                }
                assert_eq!(at, bytes.len(), "{} is truncated", packed.display());
            }
        }
        println!("{n} saved fuzz inputs replayed");
    }
}

mod checkpoint_writes {
    use bertlab::train::checkpoint::{resolve, write_dir_atomically};

    /// Every state a kill can leave `write_dir_atomically` in resolves to a complete directory: a
    /// half-written `.new` is ignored, and between the two renames the `.old` one is used. A
    /// rewrite replaces the files and leaves no `.new` or `.old` behind.
    #[test]
    fn every_interrupted_state_resolves_to_a_complete_checkpoint() {
        let tmp = std::env::temp_dir().join(format!("bertlab-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let dir = tmp.join("checkpoint");
        let files = |v: &str| vec![("a".to_string(), v.as_bytes().to_vec()), ("b".to_string(), v.as_bytes().to_vec())];
        write_dir_atomically(&dir, &files("one")).unwrap();
        write_dir_atomically(&dir, &files("two")).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("b")).unwrap(), "two");
        assert!(!tmp.join("checkpoint.new").exists() && !tmp.join("checkpoint.old").exists());
        // killed while writing the new files: .new is partial, the checkpoint is whole
        std::fs::create_dir_all(tmp.join("checkpoint.new")).unwrap();
        std::fs::write(tmp.join("checkpoint.new/a"), "thr").unwrap();
        assert_eq!(resolve(&dir), (dir.clone(), None));
        // killed between the renames: only .old
        std::fs::rename(&dir, tmp.join("checkpoint.old")).unwrap();
        let (p, note) = resolve(&dir);
        assert_eq!(p, tmp.join("checkpoint.old"));
        assert!(note.unwrap().contains("interrupted"));
        assert_eq!(std::fs::read_to_string(p.join("a")).unwrap(), "two");
        // the next write recovers: a whole new checkpoint, no leftovers
        write_dir_atomically(&dir, &files("three")).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "three");
        assert!(!tmp.join("checkpoint.new").exists() && !tmp.join("checkpoint.old").exists());
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

mod errors {
    use bertlab::error::{Error, NON_FINITE};
    use bertlab::gpu::GpuError;

    /// Callers match the variant, never the text: a lost device stays a lost device through the
    /// layers, a non-finite step carries its number, and messages still read as sentences.
    #[test]
    fn errors_are_matched_by_variant() {
        let lost: Error = GpuError::DeviceLost("Destroyed: Device was destroyed.".into()).into();
        assert!(lost.is_device_lost());
        assert_eq!(lost.to_string(), "the GPU device was lost (Destroyed: Device was destroyed.)");
        let oom: Error = GpuError::OutOfMemory("activations".into()).into();
        assert!(!oom.is_device_lost() && matches!(oom, Error::Gpu(GpuError::OutOfMemory(_))));
        assert!(matches!(Error::from(GpuError::Limits("binding".into())), Error::Limit(_)));
        assert_eq!(Error::non_finite(7).to_string(), format!("step 7: {NON_FINITE}"));
        // a message that only mentions "lost" is not a lost device
        assert!(!Error::io("model.safetensors", "the file was lost in transit").is_device_lost());
        let shape = Error::Shape { tensor: "classifier.weight".into(), message: "the model has 3 labels but the data has 2".into() };
        assert_eq!(shape.to_string(), "classifier.weight: the model has 3 labels but the data has 2");
        assert_eq!(Error::Data { line: 4, message: "no label".into() }.to_string(), "line 4: no label");
    }

    /// Each kind of bad input gives its own variant, never a panic and never `Other`: sizes a
    /// config cannot have, a setting out of its range, tensors whose shapes do not fit, a bad line
    /// of a file, a file that is not JSON. (A token id beyond the vocabulary: tests/native/model.rs,
    /// which has a GPU.)
    #[test]
    fn bad_inputs_give_their_kinds() {
        use bertlab::model::ModelConfig;
        let config = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string("tests/fixtures/tiny_bert/config.json").unwrap()).unwrap();
            edit(&mut v);
            ModelConfig::from_json(&v.to_string())
        };
        assert!(config(&|_| {}).is_ok());
        for hidden in [1, 2] {
            let e = config(&|v| {
                v["hidden_size"] = hidden.into();
                v["num_attention_heads"] = hidden.into();
            });
            assert!(matches!(&e, Err(Error::Shape { tensor, .. }) if tensor == "hidden_size"), "hidden_size {hidden}: {e:?}");
        }
        let e = config(&|v| {
            v["hidden_size"] = 3.into();
            v["num_attention_heads"] = 2.into();
        });
        assert!(matches!(&e, Err(Error::Shape { tensor, .. }) if tensor == "num_attention_heads"), "{e:?}");
        for field in ["num_attention_heads", "num_hidden_layers", "vocab_size", "intermediate_size", "max_position_embeddings"] {
            let e = config(&|v| v[field] = 0.into());
            assert!(matches!(&e, Err(Error::Limit(m)) if m.contains(field)), "{field} 0: {e:?}");
        }
        let e = config(&|v| v["vocab_size"] = u64::MAX.into());
        assert!(matches!(&e, Err(Error::Limit(m)) if m.contains("vocab_size")), "{e:?}");
        let e = ModelConfig::from_json(r#"{"model_type": "gpt2", "vocab_size": 50257, "n_embd": 4611686018427387904, "n_head": 1}"#);
        assert!(matches!(&e, Err(Error::Limit(m)) if m.contains("hidden_size")), "{e:?}");
        assert!(matches!(ModelConfig::from_json("{not json"), Err(Error::Data { line: 0, .. })));
        assert!(matches!(config(&|v| v["model_type"] = "llama".into()), Err(Error::Unsupported(_))));
        // a setting out of its range
        let g = bertlab::train::generate::GenerateConfig { max_new: 0, top_k: 5, temperature: 1.0, seed: 0 };
        assert!(matches!(g.validate(), Err(Error::Limit(_))));
        // an optimizer checkpoint whose two moments of one tensor differ in shape
        let meta = std::collections::BTreeMap::from([("step".to_string(), "3".to_string()), ("format".to_string(), "bertlab-optimizer-1".to_string())]);
        let file = bertlab::safetensors::serialize(&[("w::m".into(), vec![2], vec![0.0; 2]), ("w::v".into(), vec![3], vec![0.0; 3])], &meta);
        let e = bertlab::train::checkpoint::optimizer_header(&file).map(|_| ());
        assert!(matches!(&e, Err(Error::Shape { tensor, .. }) if tensor == "w"), "{e:?}");
        // a bad line of merges.txt, by its number
        let vocab = br#"{"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}"#;
        let e = bertlab::text::tokenizer::Tokenizer::from_vocab_json_merges(vocab, b"#version: 0.2\na b\nab a b\n").map(|_| ());
        assert!(matches!(e, Err(Error::Data { line: 3, .. })), "{e:?}");
        assert!(bertlab::text::tokenizer::Tokenizer::from_vocab_json_merges(vocab, b"#version: 0.2\na b\n").is_ok());
    }
}

/// The page's one-file export: a zip of stored files whose CRC-32 is zip's (the standard check
/// value), read back here through its central directory, every file whole.
#[test]
fn export_zip_reads_back() {
    use bertlab::io::zip::{crc32, zip_stored};
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    let files = vec![("config.json".to_string(), b"{\"a\": 1}".to_vec()), ("model.safetensors".to_string(), (0..=255u8).cycle().take(70_000).collect())];
    let z = zip_stored("my-model", &files).unwrap();
    let u16at = |o: usize| u16::from_le_bytes([z[o], z[o + 1]]) as usize;
    let u32at = |o: usize| u32::from_le_bytes([z[o], z[o + 1], z[o + 2], z[o + 3]]) as usize;
    let eocd = z.len() - 22;
    assert_eq!(u32at(eocd), 0x0605_4b50);
    assert_eq!(u16at(eocd + 10), 2);
    let mut cd = u32at(eocd + 16);
    for (name, bytes) in &files {
        assert_eq!(u32at(cd), 0x0201_4b50);
        let (crc, size, name_len, local) = (u32at(cd + 16), u32at(cd + 24), u16at(cd + 28), u32at(cd + 42));
        assert_eq!(&z[cd + 46..cd + 46 + name_len], format!("my-model/{name}").as_bytes());
        assert_eq!(u32at(local), 0x0403_4b50);
        let data = local + 30 + u16at(local + 26);
        assert_eq!((&z[data..data + size], crc), (&bytes[..], crc32(bytes) as usize));
        cd += 46 + name_len;
    }
}

/// sentence-transformers' pooling config gives the head's default pooling, told apart from a model's
/// config.json by what it holds.
#[test]
fn sentence_transformers_pooling_is_read_from_the_models_files() {
    use bertlab::session::model_dir::{is_pooling_config, sentence_pooling, POOLING_CONFIG};
    use bertlab::session::Pooling;
    let mean = br#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false}"#.to_vec();
    let cls = br#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#.to_vec();
    let max = br#"{"pooling_mode_max_tokens": true}"#.to_vec();
    let of = |b: &Vec<u8>| sentence_pooling(&[(POOLING_CONFIG.to_string(), b.clone())].into_iter().collect());
    assert_eq!(of(&mean).map(|p| p.0), Some(Pooling::Mean));
    assert!(of(&mean).unwrap().1.contains("1_Pooling/config.json"));
    assert_eq!(of(&cls).map(|p| p.0), Some(Pooling::Cls));
    let (p, why) = of(&max).unwrap();
    assert!(p == Pooling::Mean && why.contains("max pooling"), "{why}");
    assert_eq!(sentence_pooling(&Default::default()), None);
    assert!(is_pooling_config(&mean) && !is_pooling_config(br#"{"model_type": "bert", "hidden_size": 384}"#));
    // the served default model carries its pooling config (scripts/fetch_model.sh)
    let served = std::fs::read(format!("models/all-MiniLM-L6-v2/{POOLING_CONFIG}")).expect("scripts/fetch_model.sh writes the pooling config");
    assert_eq!(sentence_pooling(&[(POOLING_CONFIG.to_string(), served)].into_iter().collect()).map(|p| p.0), Some(Pooling::Mean));
}

#[test]
fn family_names_map_to_transformers_names() {
    use bertlab::model::family::{Family, ALL};
    assert_eq!(Family::DistilBert.hf_name("encoder.layer.1.attention.self.query.weight"), "distilbert.transformer.layer.1.attention.q_lin.weight");
    assert_eq!(Family::DistilBert.hf_name("encoder.layer.0.output.LayerNorm.bias"), "distilbert.transformer.layer.0.output_layer_norm.bias");
    assert_eq!(Family::DistilBert.hf_name("encoder.layer.0.attention.self.value.lora_B.weight"), "distilbert.transformer.layer.0.attention.v_lin.lora_B.weight");
    assert_eq!(Family::DistilBert.hf_name("pooler.dense.weight"), "pre_classifier.weight");
    assert_eq!(Family::Roberta.hf_name("classifier.weight"), "classifier.out_proj.weight");
    assert_eq!(Family::Roberta.hf_name("pooler.dense.bias"), "classifier.dense.bias");
    assert_eq!(Family::Roberta.hf_name("cls.predictions.bias"), "lm_head.bias");
    assert_eq!(Family::Electra.hf_name("cls.predictions.transform.LayerNorm.weight"), "generator_predictions.LayerNorm.weight");
    assert_eq!(Family::Bert.hf_name("encoder.layer.0.output.dense.weight"), "bert.encoder.layer.0.output.dense.weight");
    assert_eq!(Family::Gpt2.hf_name("h.0.attn.c_attn.weight"), "transformer.h.0.attn.c_attn.weight");
    assert_eq!(Family::Gpt2.hf_name("score.weight"), "score.weight");
    for f in ALL {
        assert_eq!(Family::from_model_type(f.model_type()), Some(f));
    }
    // an unsupported model type names the ones that are
    let e = bertlab::model::ModelConfig::from_json(r#"{"model_type": "deberta-v2", "vocab_size": 10}"#).unwrap_err().to_string();
    for t in ["deberta-v2", "distilbert", "roberta", "xlm-roberta", "electra", "bert", "gpt2"] {
        assert!(e.contains(t), "{e}");
    }
}
