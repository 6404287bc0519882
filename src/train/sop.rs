//! Sentence-order prediction pairs: consecutive segments A, B cut at a sentence boundary of one of
//! the user's texts, as `[CLS] A [SEP] B [SEP]`; with probability 0.5 the two are swapped. Labels follow
//! Hugging Face's `cls.seq_relationship` convention: 0 = B follows A, 1 = swapped.

use crate::rng::Rng;

/// Splits text into sentences at `.`, `!` or `?` followed by whitespace (keeping the punctuation).
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        cur.push(c);
        let end = matches!(c, '.' | '!' | '?') && chars.get(i + 1).map(|n| n.is_whitespace()).unwrap_or(true);
        if end {
            let s = cur.trim().to_string();
            if !s.is_empty() {
                out.push(s);
            }
            cur.clear();
        }
    }
    let s = cur.trim().to_string();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
pub struct SopPair {
    pub a: String,
    pub b: String,
    /// 0: b follows a; 1: the segments were swapped.
    pub label: i32,
}

/// One pair per text that has at least two sentences (texts too short give none). The cut point is
/// drawn uniformly among the sentence boundaries.
pub fn make_pairs(texts: &[String], rng: &mut Rng) -> Vec<SopPair> {
    let mut pairs = Vec::new();
    for t in texts {
        let s = sentences(t);
        if s.len() < 2 {
            continue;
        }
        let k = 1 + rng.below(s.len() as u32 - 1) as usize;
        let a = s[..k].join(" ");
        let b = s[k..].join(" ");
        if rng.uniform() < 0.5 {
            pairs.push(SopPair { a, b, label: 0 });
        } else {
            pairs.push(SopPair { a: b, b: a, label: 1 });
        }
    }
    pairs
}

/// Why sentence-order prediction cannot run on these texts, if it cannot.
pub fn unavailable_reason(texts: &[String]) -> Option<String> {
    if texts.iter().any(|t| sentences(t).len() >= 2) {
        None
    } else {
        Some("sentence-order prediction is off: none of the texts has two or more sentences to put in order (it needs texts of several sentences)".into())
    }
}
