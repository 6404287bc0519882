//! How a classifier adopts the encoder ([`Adopt`]), typed once for the page, the command line,
//! snapshots and exports: one text form (`feature`, `last:2`, `full`, `lora:8`) that `FromStr` reads and
//! `Display` writes, and serde reads and writes the same. A whole run's settings are
//! `session::RunSpec`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::params::Part;

/// How a classification run adopts the pretrained encoder: which parameters train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adopt {
    /// Encoder frozen: only the classification head learns (no encoder backward at all); the
    /// features are computed once.
    Feature,
    /// The head, the pooler (GPT-2: the final LayerNorm) and the last N layers.
    Last(usize),
    /// Everything but the pretraining heads (a kept masked-LM or sentence-order head is not what a
    /// classification run trains).
    Full,
    /// Low-rank adapters of rank r on the projections (PEFT's LoRA), and the head; the body frozen.
    Lora(usize),
}

impl Adopt {
    /// Whether a tensor of `part` trains in this mode, on a model of `layers` layers: the head; and
    /// for the last N layers also the pooler (GPT-2: its final LayerNorm) above them.
    pub fn trainable(&self, part: Part, layers: usize) -> bool {
        match (*self, part) {
            (_, Part::Classifier) => true,
            (Adopt::Feature, _) => false,
            // everything but the pretraining heads (a kept masked-LM or sentence-order head is not
            // what a classification run trains)
            (Adopt::Full, p) => !matches!(p, Part::LmHead | Part::SopHead),
            (Adopt::Last(_), Part::Pooler | Part::FinalNorm) => true,
            (Adopt::Last(n), Part::Layer(k)) => k + n.min(layers) >= layers,
            // ALBERT's shared set is every layer, the top one too
            (Adopt::Last(n), Part::SharedLayers) => n > 0,
            (Adopt::Last(_), _) => false,
            (Adopt::Lora(_), p) => p == Part::Lora,
        }
    }

    /// The learning rate a run of this kind starts from when none is given: a head alone learns
    /// fast; a pretrained encoder is moved gently.
    pub fn default_lr(self) -> f32 {
        match self {
            Adopt::Feature => 1e-3,
            Adopt::Lora(_) => 2e-3,
            _ => 5e-5,
        }
    }
}

impl fmt::Display for Adopt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Adopt::Feature => write!(f, "feature"),
            Adopt::Last(n) => write!(f, "last:{n}"),
            Adopt::Full => write!(f, "full"),
            Adopt::Lora(r) => write!(f, "lora:{r}"),
        }
    }
}

impl FromStr for Adopt {
    type Err = Error;
    fn from_str(s: &str) -> Result<Adopt> {
        match s {
            "feature" | "feature-based" => Ok(Adopt::Feature),
            "full" | "all" => Ok(Adopt::Full),
            _ => {
                let n = |p: &str| s.strip_prefix(p).and_then(|n| n.parse().ok());
                n("last:").map(Adopt::Last).or_else(|| n("lora:").map(Adopt::Lora)).ok_or_else(|| Error::Limit(format!("{s}: use feature, last:N, full or lora:R")))
            }
        }
    }
}
