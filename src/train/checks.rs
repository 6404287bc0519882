//! Checks of the data and training layer, shared by tests/native/train.rs and the browser suite:
//! masking proportions, sentence-order pairs, dataset validation messages (no GPU needed), and
//! small training runs on the shipped samples (GPU).

use crate::error::{Error, Result};
use super::masking::{non_special_ids, MlmMasking, Outcome};
use super::sop;
use crate::rng::Rng;
use crate::text::dataset::{self, Format, Severity};
use crate::text::tokenizer::Tokenizer;

pub type CheckResult = Result<String>;

pub const SENTIMENT: &str = include_str!("../../www/samples/sentiment.tsv");
pub const TOPICS: &str = include_str!("../../www/samples/topics.tsv");
pub const CORPUS: &str = include_str!("../../www/samples/corpus.txt");

fn sigma_ok(what: &str, count: usize, n: usize, p: f64) -> Result<f64> {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    let z = (count as f64 - mean) / sd;
    if z.abs() > 3.0 {
        return Err(Error::Check(format!("{what}: {count} of {n}, expected {mean:.0} ± {sd:.0} (z = {z:.2})")));
    }
    Ok(z)
}

/// 15% chosen, then 80% [MASK] / 10% random / 10% unchanged, within 3 standard deviations over a
/// large seeded sample; special tokens never chosen and never drawn as replacements.
pub fn masking_proportions() -> CheckResult {
    let vocab = 1000u32;
    let specials = [0u32, 1, 2, 3, 4];
    let candidates = non_special_ids(vocab as usize, &specials);
    let mut rng = Rng::new(99);
    let m = MlmMasking::default();
    let (mut n, mut chosen, mut masked, mut random, mut unchanged) = (0, 0, 0, 0, 0);
    for _ in 0..2000 {
        let len = 100;
        let ids: Vec<u32> = (0..len).map(|i| if i == 0 { 2 } else if i == len - 1 { 3 } else { 5 + rng.below(vocab - 5) }).collect();
        let special: Vec<bool> = ids.iter().map(|i| specials.contains(i)).collect();
        let words: Vec<Option<u32>> = (0..len).map(|i| Some(i as u32)).collect();
        let r = m.apply(&ids, &special, &words, 4, &candidates, &mut rng);
        for i in 0..len as usize {
            if special[i] {
                if r.outcomes[i] != Outcome::NotChosen || r.labels[i] != -100 || r.input_ids[i] != ids[i] {
                    return Err(Error::Check(format!("special token at {i} was chosen")));
                }
                continue;
            }
            n += 1;
            match r.outcomes[i] {
                Outcome::NotChosen => {
                    if r.labels[i] != -100 {
                        return Err(Error::Check("an unchosen token has a label".into()));
                    }
                }
                o => {
                    chosen += 1;
                    if r.labels[i] != ids[i] as i32 {
                        return Err(Error::Check("a chosen token's label is not its original id".into()));
                    }
                    match o {
                        Outcome::Masked => masked += (r.input_ids[i] == 4) as usize,
                        Outcome::Random => {
                            random += 1;
                            if specials.contains(&r.input_ids[i]) {
                                return Err(Error::Check(format!("a random replacement drew special id {}", r.input_ids[i])));
                            }
                        }
                        _ => unchanged += (r.input_ids[i] == ids[i]) as usize,
                    }
                }
            }
        }
    }
    let z1 = sigma_ok("chosen", chosen, n, 0.15)?;
    let z2 = sigma_ok("[MASK]", masked, chosen, 0.8)?;
    let z3 = sigma_ok("random", random, chosen, 0.1)?;
    let z4 = sigma_ok("unchanged", unchanged, chosen, 0.1)?;
    Ok(format!(
        "{n} tokens: chosen {:.4} (z {z1:.2}); of {chosen} chosen: [MASK] {:.4} (z {z2:.2}), random {:.4} (z {z3:.2}), unchanged {:.4} (z {z4:.2}); specials never chosen or drawn",
        chosen as f64 / n as f64,
        masked as f64 / chosen as f64,
        random as f64 / chosen as f64,
        unchanged as f64 / chosen as f64
    ))
}

/// Whole-word masking chooses all of a word's pieces or none.
pub fn whole_word_masking() -> CheckResult {
    let mut rng = Rng::new(5);
    let m = MlmMasking { whole_word: true, ..MlmMasking::default() };
    let ids: Vec<u32> = (0..3000).map(|i| 10 + (i % 50)).collect();
    let words: Vec<Option<u32>> = (0..3000).map(|i| Some(i / 3)).collect();
    let special = vec![false; 3000];
    let r = m.apply(&ids, &special, &words, 4, &[7, 8], &mut rng);
    let mut chosen_words = 0;
    for w in 0..1000 {
        let c: Vec<bool> = (0..3).map(|k| r.labels[w * 3 + k] >= 0).collect();
        if c.iter().any(|&x| x) != c.iter().all(|&x| x) {
            return Err(Error::Check(format!("word {w} is partly chosen: {c:?}")));
        }
        chosen_words += c[0] as usize;
    }
    sigma_ok("whole words chosen", chosen_words, 1000, 0.15)?;
    Ok(format!("{chosen_words} of 1000 three-piece words chosen whole"))
}

/// Pairs are balanced between the two orders, and `[CLS] A [SEP] B [SEP]` is typed 0…0 1…1.
pub fn sentence_order_pairs() -> CheckResult {
    let texts: Vec<String> = CORPUS.lines().map(str::to_string).collect();
    let mut rng = Rng::new(11);
    let mut pairs = Vec::new();
    for _ in 0..10 {
        pairs.extend(sop::make_pairs(&texts, &mut rng));
    }
    let swapped = pairs.iter().filter(|p| p.label == 1).count();
    sigma_ok("swapped pairs", swapped, pairs.len(), 0.5)?;
    for p in pairs.iter().take(200) {
        let (first, second) = if p.label == 0 { (&p.a, &p.b) } else { (&p.b, &p.a) };
        let joined = format!("{first} {second}");
        if !texts.iter().any(|t| sop::sentences(t).join(" ") == joined) {
            return Err(Error::Check(format!("pair does not restore a text in order: {joined}")));
        }
    }
    let tok = Tokenizer::train_wordpiece(&texts, 400)?;
    let e = tok.encode(&pairs[0].a, Some(&pairs[0].b), 128)?;
    let first_sep = e.ids.iter().position(|&i| i == tok.sep).ok_or_else(|| Error::Check("no [SEP]".into()))?;
    let ok = e.ids[0] == tok.cls
        && *e.ids.last().unwrap() == tok.sep
        && e.type_ids[..=first_sep].iter().all(|&t| t == 0)
        && e.type_ids[first_sep + 1..].iter().all(|&t| t == 1)
        && e.special.iter().filter(|&&s| s).count() == 3;
    if !ok {
        return Err(Error::Check(format!("a pair is not encoded as [CLS] A [SEP] B [SEP] with types 0/1: {:?} {:?}", e.ids, e.type_ids)));
    }
    if sop::unavailable_reason(&["One sentence only".to_string()]).is_none() || sop::make_pairs(&["Just one.".to_string()], &mut rng).len() != 0 {
        return Err(Error::Check("a single-sentence text made a pair".into()));
    }
    Ok(format!("{} pairs, {swapped} swapped ({:.3}); segments restore the original order; types 0…0 1…1; one-sentence texts give none (with a message)", pairs.len(), swapped as f64 / pairs.len() as f64))
}

/// Every dataset problem gets its message and line number.
pub fn dataset_messages() -> CheckResult {
    let mut bytes = b"label\ttext\npositive\tgood film\n\nnegative\t\n\tno label here\npositive\tgood film\nnegative\tbad \xff\xfe film\nnegative\tawful\n".to_vec();
    bytes.extend_from_slice(b"positive\tfine\n");
    let ds = dataset::parse(&bytes, None);
    let has = |line: usize, needle: &str| ds.messages.iter().any(|m| m.line == line && m.text.contains(needle));
    let expect = [(3, "empty row"), (4, "no text"), (5, "no label"), (6, "duplicate of line 2"), (7, "invalid UTF-8")];
    for (line, needle) in expect {
        if !has(line, needle) {
            return Err(Error::Check(format!("no \"{needle}\" message for line {line}: {:?}", ds.messages)));
        }
    }
    if ds.examples.len() != 3 || ds.labels != ["negative", "positive"] {
        return Err(Error::Check(format!("kept {:?}", ds.examples)));
    }
    let single = dataset::parse(b"a\tone\na\ttwo\n", Some(Format::Tsv));
    if !single.messages.iter().any(|m| m.severity == Severity::Error && m.text.contains("at least two classes")) || single.trainable().is_ok() {
        return Err(Error::Check("a single-class dataset was not refused".into()));
    }
    let csv = dataset::parse(b"text,label\n\"Hello, world\",greeting\n\"She said \"\"hi\"\"\nthen left\",story\n", None);
    if csv.examples.len() != 2 || csv.examples[0].text != "Hello, world" || csv.examples[1].text != "She said \"hi\"\nthen left" || csv.examples[1].line != 3 {
        return Err(Error::Check(format!("CSV quoting: {:?}", csv.examples)));
    }
    // Windows line ends (decoded line by line) read as Unix ones (read in place)
    let (crlf, lf) = (dataset::parse(b"label\ttext\r\npositive\tgood film\r\nnegative\tbad film\r\n", None), dataset::parse(b"label\ttext\npositive\tgood film\nnegative\tbad film\n", None));
    if crlf.examples != lf.examples || lf.examples.len() != 2 || lf.examples[1].text != "bad film" {
        return Err(Error::Check(format!("CRLF rows {:?} differ from LF rows {:?}", crlf.examples, lf.examples)));
    }
    let jl = dataset::parse(b"{\"text\": \"a b\", \"label\": \"x\"}\n{\"text\": \"c\", \"label\": 1}\nnot json\n", None);
    if jl.examples.len() != 2 || jl.examples[1].label != "1" || !jl.messages.iter().any(|m| m.line == 3 && m.text.contains("not valid JSON")) {
        return Err(Error::Check(format!("JSON lines: {:?} {:?}", jl.examples, jl.messages)));
    }
    let pairs = dataset::parse(b"entailment\tA man sleeps.\tA person rests.\ncontradiction\tA man runs.\tNobody moves.\n", None);
    if pairs.examples[0].text_b.as_deref() != Some("A person rests.") {
        return Err(Error::Check(format!("text pairs: {:?}", pairs.examples)));
    }
    // plain text (the corpus sample: sentences with commas, no tabs) is a corpus, not 600 rows of
    // "label, text": no examples, one message, refused for fine-tuning with that message
    let corpus = dataset::parse(include_bytes!("../../www/samples/corpus.txt"), None);
    if !corpus.plain || !corpus.examples.is_empty() || corpus.messages.len() != 1 || !corpus.trainable().is_err_and(|e| e.to_string().contains("lines of plain text")) {
        return Err(Error::Check(format!("the corpus sample read as {} examples, {} messages ({:?})", corpus.examples.len(), corpus.messages.len(), corpus.messages.first())));
    }
    // labels that are text: most classes have one example; refused before any run
    let singles = dataset::parse(b"a\tone\nb\ttwo\nc\tthree\nd\tfour\nd\tfive\n", None);
    if !singles.trainable().is_err_and(|e| e.to_string().contains("3 of the 4 classes have a single example")) {
        return Err(Error::Check(format!("one example per class was not refused: {:?}", singles.trainable())));
    }
    // many messages of one kind: five listed, the rest summed up with the last line
    let mut many = b"label\ttext\npositive\tgood\nnegative\tbad\n".to_vec();
    for _ in 0..40 {
        many.extend_from_slice(b"positive\t\n");
    }
    let many = dataset::parse(&many, None);
    let no_text = many.messages.iter().filter(|m| m.text.contains("no text")).count();
    if no_text != 6 || !many.messages.iter().any(|m| m.text.starts_with("…and 35 more like it") && m.text.ends_with("up to line 43")) {
        return Err(Error::Check(format!("40 rows without text gave {} messages: {:?}", many.messages.len(), many.messages.iter().map(|m| m.to_string()).collect::<Vec<_>>())));
    }
    // a binary file is said to be one; a quote that never closes is named with its line
    let binary = dataset::parse(b"PK\x03\x04\x00\x00\x08\x00 a zip file, say", None);
    let unclosed = dataset::parse(b"label,text\npositive,\"good film\nnegative,bad film\npositive,nice\n", None);
    if !binary.messages.iter().any(|m| m.text.starts_with("the file is not text")) || !unclosed.messages.iter().any(|m| m.line == 2 && m.text.contains("never closes")) {
        return Err(Error::Check(format!("binary: {:?}; unclosed quote: {:?}", binary.messages, unclosed.messages)));
    }
    // truncation is counted when encoding to the model's maximum
    let tok = Tokenizer::train_wordpiece(&["a b c d e f g h i j".to_string()], 100)?;
    let e = tok.encode("a b c d e f g h i j", None, 6)?;
    if e.ids.len() != 6 || e.truncated != 6 {
        return Err(Error::Check(format!("truncation to 6 gave {} tokens, {} truncated", e.ids.len(), e.truncated)));
    }
    let (tr, va) = dataset::stratified_split(&dataset::parse(SENTIMENT.as_bytes(), None), 0.2, 1);
    let (tr2, va2) = dataset::stratified_split(&dataset::parse(SENTIMENT.as_bytes(), None), 0.2, 1);
    if tr != tr2 || va != va2 || va.len() != 80 {
        return Err(Error::Check(format!("split not deterministic or not 20%: {} / {}", tr.len(), va.len())));
    }
    Ok("empty, unlabeled, textless, duplicate and invalid-UTF-8 rows reported with line numbers; single class refused; CSV quotes, JSON lines, text pairs, truncation counts and a deterministic stratified split".into())
}

/// A training step in steady state does no host-side allocation on the GPU: after warm-up steps of
/// one batch shape, steps on new batches of that shape (new ids, new labels, a different number of
/// masked tokens) create 0 buffers and 0 bind groups, submit once and read back once. Covers a
/// pretraining step (MLM + sentence order, dropout on) and classification steps with mean and [CLS]
/// pooling; the 2-layer [CLS] classification step (BERT-tiny's) makes at most 100 dispatches.
/// `gpu` must be used by nothing else meanwhile (its counters are global).
pub async fn steady_state_step_creates_nothing(gpu: &crate::gpu::Gpu) -> CheckResult {
    use crate::kernels::adamw::AdamW;
    use crate::model::{Model, ModelConfig, Heads, Pooling};
    use crate::train::batches::HostBatch;
    let (b, t, vocab) = (4usize, 12usize, 60usize);
    let mut rng = Rng::new(9);
    // a batch of shape (b, t) whose contents change with `k`, padding included
    let batch = |k: u64, mlm: bool, rng: &mut Rng| -> HostBatch {
        let n = b * t;
        let lens: Vec<usize> = (0..b).map(|i| t - (i + k as usize) % 4).collect();
        let mut hb = HostBatch { b, t, ids: vec![0; n], types: vec![0; n], mask: vec![0; n], ..Default::default() };
        for (i, &len) in lens.iter().enumerate() {
            for j in 0..len {
                hb.ids[i * t + j] = 5 + rng.below(vocab as u32 - 5);
                hb.types[i * t + j] = (j >= len / 2) as u32;
                hb.mask[i * t + j] = 1;
            }
        }
        if mlm {
            hb.lm_labels = Some((0..n).map(|i| if hb.mask[i] == 1 && rng.below(5) == 0 { hb.ids[i] as i32 } else { -100 }).collect());
            hb.sop_labels = Some((0..b).map(|i| ((i as u64 + k) % 2) as i32).collect());
        } else {
            hb.cls_labels = Some((0..b).map(|i| ((i as u64 * 7 + k) % 3) as i32).collect());
        }
        hb
    };
    let mut out = Vec::new();
    let cls = ("classification, [CLS] pooling", Heads { lm: false, sop: false, num_labels: 2 }, Pooling::Cls);
    for (what, heads, pooling) in [("pretraining (MLM + SOP)", Heads { lm: true, sop: true, num_labels: 0 }, Pooling::Cls), ("classification, mean pooling", Heads { lm: false, sop: false, num_labels: 3 }, Pooling::Mean), cls] {
        let (mut model, _) = Model::new(gpu, ModelConfig::small(vocab, 16, 2, 2), heads, None, 3)?;
        model.pooling = pooling;
        model.params.set_trainable(gpu, |_| true)?;
        let opt = AdamW { lr: 1e-3, ..AdamW::default() };
        let mlm = heads.lm;
        for k in 0..3 {
            super::trainer::train_step(gpu, &mut model, &batch(k, mlm, &mut rng), &opt, 1e-3, 0.01, crate::model::Mode::Train { seed: k }).await?;
        }
        gpu.reset_counters();
        let steps = 4u64;
        let mut ms = Vec::new();
        for k in 3..3 + steps {
            let hb = batch(k, mlm, &mut rng);
            let t0 = crate::gpu::now_ms();
            super::trainer::train_step(gpu, &mut model, &hb, &opt, 1e-3, 0.01, crate::model::Mode::Train { seed: k }).await?;
            ms.push(crate::gpu::now_ms() - t0);
        }
        let c = gpu.counters();
        let per = |x: u64| x as f64 / steps as f64;
        if c.dispatches_of("layernorm_backward") == 0 || c.dispatches_of("adamw") == 0 {
            return Err(Error::Check(format!("{what}: the steps ran no backward or no optimizer: {:?}", c.dispatches)));
        }
        if c.buffers_created != 0 || c.bind_groups_created != 0 || c.submits != steps || c.readbacks != steps {
            return Err(Error::Check(format!(
                "{what}: {steps} steady-state steps created {} buffers and {} bind groups, made {} submits and {} readbacks (want 0, 0, {steps}, {steps})",
                c.buffers_created, c.bind_groups_created, c.submits, c.readbacks
            )));
        }
        // a 2-layer classification step is BERT-tiny's (the count does not depend on the width, the
        // batch or the length): at most 100 dispatches, where PyTorch eager launches 234 kernels
        if what == cls.0 && c.total_dispatches() > 100 * steps {
            return Err(Error::Check(format!("{what}: {} dispatches per step, more than 100: {:?}", per(c.total_dispatches()), c.dispatches)));
        }
        out.push(format!(
            "{what}: per step 0 buffers, 0 bind groups, 1 submit, 1 readback ({} bytes), {} dispatches, {:.0} bytes written, {} buffers recycled",
            per(c.bytes_read_back),
            per(c.total_dispatches()),
            per(c.bytes_written),
            per(c.buffers_recycled)
        ));
    }
    Ok(out.join("; "))
}
