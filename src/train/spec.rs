//! How a classifier adopts the encoder ([`Adopt`]), typed once for the page, the command line,
//! snapshots and exports: one text form (`feature`, `last:2`, `full`) that `FromStr` reads and
//! `Display` writes, and serde reads and writes the same. A whole run's settings are
//! `session::RunSpec`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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
}

impl Adopt {
    /// Whether the tensor `name` trains in this mode, on a model of `layers` layers: the head is
    /// BERT's `classifier` or GPT-2's `score`; the last N layers are BERT's `encoder.layer.k` with
    /// the pooler above them, or GPT-2's `h.k` with the final LayerNorm `ln_f` above them.
    pub fn trainable(&self, name: &str, layers: usize) -> bool {
        let head = name.starts_with("classifier.") || name.starts_with("score.");
        match *self {
            Adopt::Feature => head,
            Adopt::Full => !name.starts_with("cls."),
            Adopt::Last(n) => {
                let layer = |k: usize| name.starts_with(&format!("encoder.layer.{k}.")) || name.starts_with(&format!("h.{k}."));
                head || name.starts_with("pooler.") || name.starts_with("ln_f.") || (0..n.min(layers)).any(|k| layer(layers - 1 - k))
            }
        }
    }

    /// The learning rate a run of this kind starts from when none is given: a head alone learns
    /// fast; a pretrained encoder is moved gently.
    pub fn default_lr(self) -> f32 {
        if self == Adopt::Feature {
            1e-3
        } else {
            5e-5
        }
    }
}

impl fmt::Display for Adopt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Adopt::Feature => write!(f, "feature"),
            Adopt::Last(n) => write!(f, "last:{n}"),
            Adopt::Full => write!(f, "full"),
        }
    }
}

impl FromStr for Adopt {
    type Err = Error;
    fn from_str(s: &str) -> Result<Adopt> {
        match s {
            "feature" | "feature-based" => Ok(Adopt::Feature),
            "full" | "all" => Ok(Adopt::Full),
            _ => s.strip_prefix("last:").and_then(|n| n.parse().ok()).map(Adopt::Last).ok_or_else(|| Error::Limit(format!("{s}: use feature, last:N or full"))),
        }
    }
}
