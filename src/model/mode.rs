//! Whether a pass trains or evaluates, and the one place each dropout site's seed comes from, so
//! that a backward redraws exactly its forward's masks.

/// How a forward (and its backward, which must be given the same mode) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Dropout on at every site, its masks drawn from `seed`.
    Train { seed: u64 },
    /// No dropout: inference, and the parity checks' deterministic gradients.
    Eval,
}

/// Where dropout is applied (both bodies use the same sites).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// After the embeddings (BERT: after their LayerNorm).
    Embeddings,
    /// The classification head's input.
    Classifier,
    /// Layer `l`'s attention probabilities.
    AttentionProbs(usize),
    /// Layer `l`'s attention output, before its residual add.
    AttentionOutput(usize),
    /// Layer `l`'s feed-forward output, before its residual add.
    Output(usize),
    /// The input of the LoRA adapter whose A is parameter `k` (PEFT's `lora_dropout`).
    Lora(usize),
}

impl Site {
    fn id(self) -> u64 {
        match self {
            Site::Embeddings => 1,
            Site::Classifier => 3,
            Site::AttentionProbs(l) => 100 + 10 * l as u64,
            Site::AttentionOutput(l) => 101 + 10 * l as u64,
            Site::Output(l) => 102 + 10 * l as u64,
            Site::Lora(k) => 1_000_003 + 10 * k as u64,
        }
    }
}

impl Mode {
    /// The dropout probability `p` of a site in this mode (0 when evaluating).
    pub fn prob(self, p: f32) -> f32 {
        match self {
            Mode::Train { .. } => p,
            Mode::Eval => 0.0,
        }
    }

    /// The seed of `site`'s mask: the run's seed mixed with the site.
    pub fn seed(self, site: Site) -> u64 {
        match self {
            Mode::Train { seed } => seed ^ site.id().wrapping_mul(0x9e37_79b9_7f4a_7c15),
            Mode::Eval => 0,
        }
    }

    /// Training with dropout drawn from `seed`, or evaluation, as a run's settings say.
    pub fn train_if(dropout: bool, seed: u64) -> Mode {
        if dropout {
            Mode::Train { seed }
        } else {
            Mode::Eval
        }
    }
}
