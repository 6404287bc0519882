//! Masked-LM inputs with Hugging Face's DataCollatorForLanguageModeling semantics: every non-special
//! token is chosen with probability 0.15; a chosen token becomes [MASK] with probability 0.8, a random
//! non-special token with 0.1, and stays unchanged with 0.1; labels are the original ids at chosen
//! positions and -100 elsewhere. Whole-word masking chooses words instead of tokens. Seeded.

use crate::rng::Rng;

/// What happened to one token, for the UI's view of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    NotChosen,
    Masked,
    Random,
    Unchanged,
}

impl Outcome {
    /// The outcome's name, as the page's masking view marks each token with it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::NotChosen => "NotChosen",
            Outcome::Masked => "Masked",
            Outcome::Random => "Random",
            Outcome::Unchanged => "Unchanged",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlmMasking {
    pub prob: f64,
    pub mask_frac: f64,
    pub random_frac: f64,
    pub whole_word: bool,
}

impl Default for MlmMasking {
    fn default() -> Self {
        MlmMasking { prob: 0.15, mask_frac: 0.8, random_frac: 0.1, whole_word: false }
    }
}

/// One masked sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Masked {
    pub input_ids: Vec<u32>,
    /// Original id at chosen positions, -100 elsewhere.
    pub labels: Vec<i32>,
    pub outcomes: Vec<Outcome>,
}

impl MlmMasking {
    /// Masks `ids`; `special[i]` marks tokens never chosen ([CLS], [SEP], [PAD]); `word_ids` groups
    /// tokens into words for whole-word masking; random replacements are drawn from `candidates`
    /// (the vocabulary's non-special ids).
    pub fn apply(&self, ids: &[u32], special: &[bool], word_ids: &[Option<u32>], mask_id: u32, candidates: &[u32], rng: &mut Rng) -> Masked {
        let n = ids.len();
        let mut chosen = vec![false; n];
        if self.whole_word {
            let mut last_word = None;
            let mut pick = false;
            for i in 0..n {
                if special[i] {
                    continue;
                }
                if word_ids[i] != last_word || word_ids[i].is_none() {
                    pick = rng.uniform() < self.prob;
                    last_word = word_ids[i];
                }
                chosen[i] = pick;
            }
        } else {
            for i in 0..n {
                chosen[i] = !special[i] && rng.uniform() < self.prob;
            }
        }
        let mut input_ids = ids.to_vec();
        let mut labels = vec![-100i32; n];
        let mut outcomes = vec![Outcome::NotChosen; n];
        for i in 0..n {
            if !chosen[i] {
                continue;
            }
            labels[i] = ids[i] as i32;
            let u = rng.uniform();
            if u < self.mask_frac {
                input_ids[i] = mask_id;
                outcomes[i] = Outcome::Masked;
            } else if u < self.mask_frac + self.random_frac && !candidates.is_empty() {
                input_ids[i] = candidates[rng.below(candidates.len() as u32) as usize];
                outcomes[i] = Outcome::Random;
            } else {
                outcomes[i] = Outcome::Unchanged;
            }
        }
        Masked { input_ids, labels, outcomes }
    }
}

/// Every id of a vocabulary of `vocab_size` that is not in `special_ids` (sorted).
pub fn non_special_ids(vocab_size: usize, special_ids: &[u32]) -> Vec<u32> {
    (0..vocab_size as u32).filter(|i| special_ids.binary_search(i).is_err()).collect()
}
