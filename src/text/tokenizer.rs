//! BERT tokenizers on Hugging Face's `tokenizers` crate (WordPiece): loaded from `tokenizer.json` or
//! `vocab.txt` (uncased or cased), or trained from the user's own text for from-scratch models.
//! Special tokens are looked up by name, never assumed to have particular ids.
//!
//! A GPT-2 tokenizer.json (byte-level BPE) has one special token, `<|endoftext|>`, GPT-2's document
//! separator; it then stands for [CLS], [SEP] and padding, so a text is framed
//! `<|endoftext|> text <|endoftext|>` and a continuation ends where the model chooses it.


use crate::error::{Error, Result};
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{AddedToken, PostProcessor, Tokenizer as HfTokenizer};

pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

#[derive(Clone)]
pub struct Tokenizer {
    tk: HfTokenizer,
    pub cls: u32,
    pub sep: u32,
    pub pad: u32,
    pub mask: u32,
    pub unk: u32,
    pub vocab_size: usize,
    /// GPT-2's `<|endoftext|>`, for a tokenizer that has it instead of BERT's special tokens.
    pub end_of_text: Option<u32>,
    /// Whether a token reads as its decoded text (byte-level BPE's "Ġcat" is " cat", Unigram's
    /// "▁cat" is "cat") rather than as it is (WordPiece's "##ing").
    pub decode_pieces: bool,
    /// A Llama-shaped decoder's framing: a text is what tokenizer.json's post-processor makes of it
    /// (Llama 3's BOS before it; Qwen's and SmolLM2's nothing), with no end token after it; padding
    /// with the config's pad id ([`Tokenizer::use_lm_framing`]).
    pub lm_framing: bool,
    /// The tokens that end a generated text (a model's generation_config.json `eos_token_id`, one
    /// or several); empty: the end token of the framing ([SEP], <|endoftext|>).
    pub stop_ids: Vec<u32>,
}

/// End-of-text tokens of the decoders' tokenizers that have neither BERT's specials nor GPT-2's
/// `<|endoftext|>` (Llama 3's, Mistral's and Llama 2's `</s>` is BERT's name list already).
const DECODER_ENDS: [&str; 3] = ["<|end_of_text|>", "<|im_end|>", "<|eot_id|>"];

/// GPT-2's end-of-text token.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// One encoded sequence, `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// true at [CLS]/[SEP] (never masked, never predicted).
    pub special: Vec<bool>,
    /// Index of the word each token came from (None for specials), for whole-word masking.
    pub word_ids: Vec<Option<u32>>,
    /// Tokens dropped to fit `max_len`.
    pub truncated: usize,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Data { line: 0, message: e.to_string() }
}

impl Tokenizer {
    fn with_specials(tk: HfTokenizer) -> Result<Tokenizer> {
        // each role by the names the families give it: BERT's [CLS], RoBERTa's <s>...
        let find = |names: &[&str]| names.iter().find_map(|t| tk.token_to_id(t));
        let (cls, sep) = (find(&["[CLS]", "<s>"]), find(&["[SEP]", "</s>"]));
        let (Some(cls), Some(sep)) = (cls, sep) else {
            if let Some(eot) = tk.token_to_id(END_OF_TEXT) {
                let unk = tk.token_to_id("[UNK]").unwrap_or(eot);
                return Ok(Tokenizer { cls: eot, sep: eot, pad: eot, mask: eot, unk, vocab_size: tk.get_vocab_size(true), end_of_text: Some(eot), decode_pieces: true, lm_framing: false, stop_ids: Vec::new(), tk });
            }
            // a Llama 3 tokenizer: its own framing, its end token for every role it lacks
            if let Some(end) = find(&DECODER_ENDS) {
                return Ok(Tokenizer { cls: end, sep: end, pad: end, mask: end, unk: end, vocab_size: tk.get_vocab_size(true), end_of_text: None, decode_pieces: true, lm_framing: true, stop_ids: vec![end], tk });
            }
            return Err(Error::Unsupported(format!("the tokenizer has neither a start token ([CLS] or <s>) and an end token ([SEP] or </s>), nor GPT-2's {END_OF_TEXT}: BERT Lab reads the WordPiece, byte-level BPE and Unigram tokenizers of BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA and GPT-2")));
        };
        let role = |what: &str, names: &[&str]| find(names).ok_or_else(|| Error::Data { line: 0, message: format!("the tokenizer has no {what} token ({})", names.join(" or ")) });
        Ok(Tokenizer {
            end_of_text: None,
            lm_framing: false,
            stop_ids: Vec::new(),
            decode_pieces: !matches!(tk.get_model(), tokenizers::models::ModelWrapper::WordPiece(_) | tokenizers::models::ModelWrapper::WordLevel(_)),
            cls,
            sep,
            pad: role("padding", &["[PAD]", "<pad>"])?,
            mask: role("mask", &["[MASK]", "<mask>"])?,
            unk: role("unknown-word", &["[UNK]", "<unk>"])?,
            vocab_size: tk.get_vocab_size(true),
            tk,
        })
    }

    pub fn from_tokenizer_json(bytes: &[u8]) -> Result<Tokenizer> {
        // a model kind the tokenizers crate does not know is named as such, not as bad JSON
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
            if let Some(kind) = v.pointer("/model/type").and_then(|t| t.as_str()) {
                if !matches!(kind, "WordPiece" | "BPE" | "Unigram" | "WordLevel") {
                    return Err(Error::Unsupported(format!("tokenizer.json: its model is of kind \"{kind}\"; BERT Lab reads WordPiece, BPE (byte-level included) and Unigram (SentencePiece) tokenizers")));
                }
            }
        }
        let mut tk = HfTokenizer::from_bytes(bytes).map_err(|e| Error::Data { line: 0, message: format!("tokenizer.json could not be read: {e}") })?;
        // Some tokenizer.json files (sentence-transformers' among them) pad every text to a fixed
        // length and truncate; BERT Lab pads batches and truncates pairs itself, so both go.
        tk.with_padding(None);
        tk.with_truncation(None).map_err(err)?;
        Self::with_specials(tk)
    }

    /// GPT-2's original tokenizer files: `vocab.json` (token -> id) and `merges.txt` (one merge "a b"
    /// a line, after a `#version` line), as openai-community/gpt2 and distilgpt2 ship them beside
    /// tokenizer.json. They are the byte-level BPE a GPT-2 tokenizer.json describes, with
    /// `<|endoftext|>` as its one special token; this builds that tokenizer.json and reads it.
    pub fn from_vocab_json_merges(vocab: &[u8], merges: &[u8]) -> Result<Tokenizer> {
        let vocab: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(vocab).map_err(|e| Error::Data { line: 0, message: format!("vocab.json could not be read: {e}") })?;
        if vocab.values().any(|v| !v.is_u64()) {
            return Err(Error::Data { line: 0, message: "vocab.json: every token's id must be a whole number".into() });
        }
        let merges = std::str::from_utf8(merges).map_err(|_| Error::Data { line: 0, message: "merges.txt is not UTF-8".into() })?;
        let mut pairs = Vec::new();
        for (n, line) in merges.lines().enumerate() {
            if line.starts_with("#version") || line.trim().is_empty() {
                continue;
            }
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), None) => pairs.push(serde_json::json!([a, b])),
                _ => return Err(Error::Data { line: n + 1, message: format!("merges.txt: expected two tokens separated by one space, got {line:?}") }),
            }
        }
        let eot = vocab.get("<|endoftext|>").and_then(|v| v.as_u64()).ok_or_else(|| Error::Data { line: 0, message: "vocab.json has no <|endoftext|>: it is not a GPT-2 vocabulary".into() })?;
        let byte_level = |trim: bool| serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": trim, "use_regex": true});
        let json = serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [{"id": eot, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
            "normalizer": null,
            "pre_tokenizer": byte_level(true),
            "post_processor": byte_level(false),
            "decoder": byte_level(true),
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": pairs},
        });
        Self::from_tokenizer_json(json.to_string().as_bytes())
    }

    fn bert_pipeline(model: WordPiece, lowercase: bool) -> HfTokenizer {
        let mut tk = HfTokenizer::new(model);
        tk.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)));
        tk.with_pre_tokenizer(Some(BertPreTokenizer));
        tk.with_decoder(Some(WordPieceDecoder::default()));
        tk
    }

    /// A `vocab.txt` (one token per line, id = line index); `lowercase` for uncased models.
    pub fn from_vocab_txt(text: &str, lowercase: bool) -> Result<Tokenizer> {
        let vocab: ahash::AHashMap<String, u32> = text.lines().enumerate().map(|(i, t)| (t.trim_end_matches('\r').to_string(), i as u32)).collect();
        if vocab.is_empty() {
            return Err(Error::Data { line: 0, message: "vocab.txt is empty".into() });
        }
        // BERT's special tokens are never split (as HF's Tokenizer does): "[MASK]" typed in a
        // text is the mask token, not "[", "mask", "]"
        let specials: Vec<AddedToken> = SPECIAL_TOKENS.iter().filter(|t| vocab.contains_key(**t)).map(|t| AddedToken::from(t.to_string(), true)).collect();
        let wp = WordPiece::builder().vocab(vocab).unk_token("[UNK]".into()).continuing_subword_prefix("##".into()).build().map_err(err)?;
        let mut tk = Self::bert_pipeline(wp, lowercase);
        tk.add_special_tokens(&specials);
        Self::with_specials(tk)
    }

    /// Trains an uncased WordPiece vocabulary of about `vocab_size` tokens on `texts`.
    ///
    /// The same texts always give the same vocabulary, ids included. (`tokenizers`' own trainer
    /// does not: it breaks ties between equally frequent pairs in hash-map order, which changes
    /// from one process to the next, and with it every from-scratch model.) The algorithm is the
    /// one BERT's WordPiece vocabularies are commonly trained with, BPE over words split by BERT's
    /// normalizer and pre-tokenizer: start from the characters (a word's first character, the rest
    /// as `##c`), then repeatedly join the most frequent adjacent pair; ties go to the pair whose
    /// pieces sort first. The vocabulary is the special tokens, the characters, then the joins in
    /// the order they were made.
    pub fn train_wordpiece(texts: &[String], vocab_size: usize) -> Result<Tokenizer> {
        use std::collections::{BTreeMap, BTreeSet};
        use tokenizers::{NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};
        let normalizer = BertNormalizer::new(true, true, None, true);
        let mut words: BTreeMap<String, u64> = BTreeMap::new();
        for t in texts {
            let mut n = NormalizedString::from(t.as_str());
            normalizer.normalize(&mut n).map_err(err)?;
            let mut pre = PreTokenizedString::from(n);
            BertPreTokenizer.pre_tokenize(&mut pre).map_err(err)?;
            for (w, _, _) in pre.get_splits(OffsetReferential::Original, OffsetType::Char) {
                // as WordPiece itself: longer words are [UNK] whole
                if w.chars().count() <= 100 {
                    *words.entry(w.to_string()).or_default() += 1;
                }
            }
        }
        // each word as its pieces, with its count
        let mut split: Vec<(Vec<String>, u64)> = words
            .into_iter()
            .map(|(w, c)| (w.chars().enumerate().map(|(i, ch)| if i == 0 { ch.to_string() } else { format!("##{ch}") }).collect(), c))
            .collect();
        let alphabet: BTreeSet<String> = split.iter().flat_map(|(p, _)| p.iter().cloned()).collect();
        let mut vocab: Vec<String> = SPECIAL_TOKENS.iter().map(|s| s.to_string()).collect();
        vocab.extend(alphabet.iter().filter(|a| !SPECIAL_TOKENS.contains(&a.as_str())).cloned());
        let mut have: BTreeSet<String> = vocab.iter().cloned().collect();
        while vocab.len() < vocab_size {
            let mut pairs: BTreeMap<(&str, &str), u64> = BTreeMap::new();
            for (pieces, c) in &split {
                for w in pieces.windows(2) {
                    *pairs.entry((w[0].as_str(), w[1].as_str())).or_default() += c;
                }
            }
            // the most frequent pair; among equals, the first in order (BTreeMap iterates sorted)
            let Some(((a, b), _)) = pairs.into_iter().fold(None, |best: Option<((&str, &str), u64)>, (p, c)| match best {
                Some((_, bc)) if bc >= c => best,
                _ => Some((p, c)),
            }) else {
                break;
            };
            let (a, b) = (a.to_string(), b.to_string());
            let joined = format!("{a}{}", b.trim_start_matches("##"));
            for (pieces, _) in split.iter_mut() {
                let mut i = 0;
                while i + 1 < pieces.len() {
                    if pieces[i] == a && pieces[i + 1] == b {
                        pieces[i] = joined.clone();
                        pieces.remove(i + 1);
                    }
                    i += 1;
                }
            }
            if have.insert(joined.clone()) {
                vocab.push(joined);
            }
        }
        Self::from_vocab_txt(&vocab.join("\n"), true)
    }

    /// The text of `ids` (WordPiece pieces joined, special tokens left out).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self.tk.decode(ids, true).map_err(err)?)
    }

    /// WordPiece ids of `text` without special tokens, and their word indices.
    pub fn tokenize(&self, text: &str) -> Result<(Vec<u32>, Vec<Option<u32>>)> {
        let e = self.tk.encode(self.with_mask_token(text), false).map_err(err)?;
        Ok((e.get_ids().to_vec(), e.get_word_ids().to_vec()))
    }

    /// Frames texts as a Llama-shaped decoder's tokenizer does (its post-processor only: a BOS
    /// where it adds one, no end token), padding with `pad` (the config's pad_token_id, or its end
    /// token): what loading a Llama, Qwen2 or Qwen3 model sets.
    pub fn use_lm_framing(&mut self, pad: u32) {
        self.lm_framing = true;
        self.pad = pad;
        if self.end_of_text.is_some() {
            // GPT-2's <|endoftext|> (Qwen's, SmolLM2's) stays their end token; BERT Lab no longer
            // frames with it
            self.end_of_text = None;
        }
    }

    /// The tokens that end a generated text.
    pub fn end_ids(&self) -> Vec<u32> {
        if self.stop_ids.is_empty() {
            vec![self.sep]
        } else {
            self.stop_ids.clone()
        }
    }

    /// Whether an encoded text ends with an end token BERT Lab put there ([SEP], GPT-2's
    /// <|endoftext|>, RoBERTa's </s>): not so for a decoder's own framing.
    pub fn appends_end(&self) -> bool {
        !self.lm_framing
    }

    /// Whether the tokenizer has no mask token of its own (GPT-2's, a Llama-shaped decoder's): its
    /// end token stands in for [MASK].
    pub fn mask_stands_in(&self) -> bool {
        self.end_of_text.is_some() || self.lm_framing
    }

    /// The mask token as text ([MASK], RoBERTa's <mask>).
    pub fn mask_token(&self) -> String {
        self.id_to_token(self.mask)
    }

    /// Whether the tokenizer's own post-processor frames texts (BERT's and RoBERTa's templates),
    /// rather than BERT Lab (tokenizers without one, and GPT-2's, whose adds nothing).
    fn frames_itself(&self) -> bool {
        self.tk.get_post_processor().map(|p| p.added_tokens(false) > 0).unwrap_or(false)
    }

    /// A text framed as the model's tokenizer frames it: by tokenizer.json's post-processor where it
    /// has one that adds tokens (`[CLS] a [SEP] b [SEP]`, RoBERTa's `<s> a </s></s> b </s>`), else
    /// BERT Lab's own `[CLS] a [SEP]` (GPT-2's `<|endoftext|> a <|endoftext|>`, which an export's
    /// tokenizer.json then carries: [`Tokenizer::export_json`]). Truncated longest-first to
    /// `max_len` tokens. "[MASK]" in a text is the model's mask token whatever its name.
    pub fn encode(&self, a: &str, b: Option<&str>, max_len: usize) -> Result<Encoded> {
        if !self.frames_itself() && !self.lm_framing {
            return self.encode_own(a, b, max_len);
        }
        let a = self.with_mask_token(a);
        let b = b.map(|b| self.with_mask_token(b));
        let mut ea = self.tk.encode(a.as_str(), false).map_err(err)?;
        let mut eb = match &b {
            Some(b) => Some(self.tk.encode(b.as_str(), false).map_err(err)?),
            None => None,
        };
        let added = self.tk.get_post_processor().map(|p| p.added_tokens(eb.is_some())).unwrap_or(0);
        let budget = max_len.saturating_sub(added);
        let (mut la, mut lb) = (ea.len(), eb.as_ref().map(|e| e.len()).unwrap_or(0));
        let mut truncated = 0;
        while la + lb > budget {
            if la >= lb {
                la -= 1;
            } else {
                lb -= 1;
            }
            truncated += 1;
        }
        use tokenizers::TruncationDirection::Right;
        ea.truncate(la, 0, Right);
        if let Some(e) = eb.as_mut() {
            e.truncate(lb, 0, Right);
        }
        let e = self.tk.post_process(ea, eb, true).map_err(err)?;
        // words of the second text follow the first's (for whole-word masking)
        let offset = e.get_word_ids().iter().zip(e.get_sequence_ids()).filter(|(_, s)| *s == Some(0)).filter_map(|(w, _)| *w).max().map(|m| m + 1).unwrap_or(0);
        let word_ids = e.get_word_ids().iter().zip(e.get_sequence_ids()).map(|(w, s)| w.map(|w| if s == Some(1) { w + offset } else { w })).collect();
        Ok(Encoded { ids: e.get_ids().to_vec(), type_ids: e.get_type_ids().to_vec(), special: e.get_special_tokens_mask().iter().map(|&m| m != 0).collect(), word_ids, truncated })
    }

    /// "[MASK]" as the tokenizer's own mask token, where that has another name.
    fn with_mask_token(&self, text: &str) -> String {
        if self.end_of_text.is_none() && self.tk.token_to_id("[MASK]").is_none() && text.contains("[MASK]") {
            text.replace("[MASK]", &self.mask_token())
        } else {
            text.to_string()
        }
    }

    /// BERT Lab's own framing: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` with its special tokens.
    fn encode_own(&self, a: &str, b: Option<&str>, max_len: usize) -> Result<Encoded> {
        let (mut ia, mut wa) = self.tokenize(a)?;
        let (mut ib, mut wb) = match b {
            Some(b) => self.tokenize(b)?,
            None => (Vec::new(), Vec::new()),
        };
        let specials = if b.is_some() { 3 } else { 2 };
        let budget = max_len.saturating_sub(specials);
        let mut truncated = 0;
        while ia.len() + ib.len() > budget {
            if ia.len() >= ib.len() {
                ia.pop();
                wa.pop();
            } else {
                ib.pop();
                wb.pop();
            }
            truncated += 1;
        }
        let offset = wa.iter().flatten().max().map(|m| m + 1).unwrap_or(0);
        let mut enc = Encoded { ids: vec![self.cls], type_ids: vec![0], special: vec![true], word_ids: vec![None], truncated };
        enc.ids.extend(&ia);
        enc.type_ids.extend(std::iter::repeat_n(0, ia.len()));
        enc.special.extend(std::iter::repeat_n(false, ia.len()));
        enc.word_ids.extend(wa);
        enc.ids.push(self.sep);
        enc.type_ids.push(0);
        enc.special.push(true);
        enc.word_ids.push(None);
        if b.is_some() {
            enc.ids.extend(&ib);
            enc.type_ids.extend(std::iter::repeat_n(1, ib.len()));
            enc.special.extend(std::iter::repeat_n(false, ib.len()));
            enc.word_ids.extend(wb.into_iter().map(|w| w.map(|w| w + offset)));
            enc.ids.push(self.sep);
            enc.type_ids.push(1);
            enc.special.push(true);
            enc.word_ids.push(None);
        }
        Ok(enc)
    }

    /// How token `id` reads in running text: a byte-level piece decoded from its bytes (" cat", not
    /// "Ġcat"), a Unigram piece without its "▁"; a WordPiece token as it is.
    pub fn piece(&self, id: u32) -> String {
        if self.decode_pieces {
            self.tk.decode(&[id], false).unwrap_or_else(|_| self.id_to_token(id))
        } else {
            self.id_to_token(id)
        }
    }

    /// How token `id` continues a running text: a WordPiece "##ing" joins the word before ("ing"),
    /// another token starts a word (" cat"); a GPT-2 piece carries its own space, or none.
    pub fn continuation(&self, id: u32) -> String {
        match self.end_of_text {
            Some(_) => self.piece(id),
            None if self.decode_pieces => self.piece(id),
            None => {
                let t = self.id_to_token(id);
                match t.strip_prefix("##") {
                    Some(rest) => rest.to_string(),
                    None => format!(" {t}"),
                }
            }
        }
    }

    pub fn id_to_token(&self, id: u32) -> String {
        self.tk.id_to_token(id).unwrap_or_else(|| "[UNK]".into())
    }

    pub fn token_to_id(&self, t: &str) -> Option<u32> {
        self.tk.token_to_id(t)
    }

    /// Ids that are special tokens (never chosen for masking, never drawn as random replacements).
    pub fn special_ids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = SPECIAL_TOKENS.iter().chain([&END_OF_TEXT]).filter_map(|t| self.tk.token_to_id(t)).collect();
        v.extend([self.cls, self.sep, self.pad, self.mask, self.unk]);
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The tokenizer's files in a model directory (tokenizer.json, vocab.txt, tokenizer_config.json,
    /// special_tokens_map.json): what the CLI and the app write beside a model they made.
    pub fn files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(vec![
            ("tokenizer.json".into(), self.export_json()?.into_bytes()),
            ("vocab.txt".into(), self.vocab_txt().into_bytes()),
            ("tokenizer_config.json".into(), br#"{"do_lower_case": true, "tokenizer_class": "Tokenizer", "model_max_length": 512}"#.to_vec()),
            ("special_tokens_map.json".into(), br#"{"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]", "unk_token": "[UNK]"}"#.to_vec()),
        ])
    }

    /// tokenizer.json, for export.
    pub fn to_json(&self) -> Result<String> {
        Ok(self.tk.to_string(true).map_err(err)?)
    }

    /// tokenizer.json as an export carries it: where BERT Lab frames texts itself (a tokenizer
    /// without a post-processor that adds tokens, GPT-2's), with a template post-processor that
    /// frames them the same way, so that `AutoTokenizer` and `pipeline()` on the export give the
    /// ids BERT Lab trained on.
    pub fn export_json(&self) -> Result<String> {
        if self.frames_itself() || self.lm_framing {
            return self.to_json();
        }
        use tokenizers::processors::template::TemplateProcessing;
        let (cls, sep) = (self.id_to_token(self.cls), self.id_to_token(self.sep));
        let mut specials = vec![(cls.clone(), self.cls)];
        if sep != cls {
            specials.push((sep.clone(), self.sep));
        }
        let template = TemplateProcessing::builder()
            .try_single(format!("{cls} $A {sep}"))
            .map_err(err)?
            .try_pair(format!("{cls} $A {sep} $B:1 {sep}:1"))
            .map_err(err)?
            .special_tokens(specials)
            .build()
            .map_err(err)?;
        let mut tk = self.tk.clone();
        tk.with_post_processor(Some(template));
        Ok(tk.to_string(true).map_err(err)?)
    }

    /// vocab.txt (tokens in id order), for export.
    pub fn vocab_txt(&self) -> String {
        let mut v: Vec<(String, u32)> = self.tk.get_vocab(true).into_iter().collect();
        v.sort_by_key(|(_, i)| *i);
        let mut s = String::new();
        for (t, _) in v {
            s.push_str(&t);
            s.push('\n');
        }
        s
    }
}
