//! Host-side units that need no GPU: the parameter arenas' layout, vocab.txt tokenisation, the
//! page's bars and data preview, batch padding.

mod arena {
use bertlab::gpu::GpuBuf;
    use bertlab::model::params::{arena_layout, decays, tensor_names};
    use bertlab::model::BertConfig;

    fn cfg(hidden: usize) -> BertConfig {
        BertConfig::small(50, hidden, 2, 2)
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
use bertlab::text::tokenizer::BertTokenizer;

    #[test]
    fn vocab_txt_keeps_special_tokens_whole() {
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\nsat\n.\n";
        let t = BertTokenizer::from_vocab_txt(vocab, true).unwrap();
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
    use bertlab::model::BertConfig;
    use bertlab::train::trainer::{Mode, PretrainConfig, TrainConfig};

    /// Each setting out of its range is refused with a message that names the setting and the
    /// range; the defaults pass.
    #[test]
    fn out_of_range_settings_are_refused_with_their_range() {
        let model = BertConfig::small(100, 32, 3, 2);
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
            (TrainConfig { mode: Mode::LastLayers(99), ..t() }, "layers to train must be from 1 to 3; got 99 (the model has 3 layers)"),
            (TrainConfig { mode: Mode::LastLayers(0), ..t() }, "layers to train must be from 1 to 3; got 0"),
            (TrainConfig { warmup_ratio: 2.0, ..t() }, "warm-up ratio"),
        ];
        for (cfg, want) in cases {
            let got = cfg.validate(&model).expect_err(want);
            assert!(got.contains(want), "{got:?} should contain {want:?}");
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
            assert!(got.contains(want), "{got:?} should contain {want:?}");
        }
    }
}
