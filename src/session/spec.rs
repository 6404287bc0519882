//! The session's vocabulary of runs: a whole run's settings ([`RunSpec`]) and what an export's
//! `train_hf.py` is told of a fine-tuning run ([`RunSettings::of`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::export::RunSettings;
use crate::model::ModelConfig;
use crate::train::trainer::{PretrainConfig, TrainConfig};

/// A whole run: fine-tuning a classifier or pretraining, with every setting. Validated once, against
/// the model it runs on ([`RunSpec::validate`]), before any work starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunSpec {
    Train(TrainConfig),
    Pretrain(PretrainConfig),
}

impl RunSpec {
    /// Every setting in its range for `model`, or the first that is not.
    pub fn validate(&self, model: &ModelConfig) -> Result<()> {
        match self {
            RunSpec::Train(c) => c.validate(model),
            RunSpec::Pretrain(c) => c.validate(model),
        }
    }

    /// The step a run restored from a snapshot continues at.
    pub fn start_step(&self) -> usize {
        match self {
            RunSpec::Train(c) => c.start_step,
            RunSpec::Pretrain(c) => c.start_step,
        }
    }
}

impl FromStr for RunSpec {
    type Err = Error;
    /// A run as JSON (`{"kind": "train", "adopt": {"last": 2}, "lr": 0.0001, ...}`); settings left
    /// out take their defaults.
    fn from_str(s: &str) -> Result<RunSpec> {
        serde_json::from_str(s).map_err(|e| Error::Limit(format!("the run's settings cannot be read: {e}")))
    }
}

impl fmt::Display for RunSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", serde_json::to_string(self).map_err(|_| fmt::Error)?)
    }
}

/// An f32 setting as the f64 it was written as (1e-4, not 9.999999747378752e-5).
fn tidy(x: f32) -> f64 {
    format!("{x}").parse().unwrap_or(x as f64)
}

impl RunSettings {
    /// The settings of `cfg`, a run on `labels`.
    pub fn of(cfg: &TrainConfig, labels: &[String]) -> RunSettings {
        RunSettings {
            mode: cfg.adopt.to_string(),
            pooling: cfg.pooling.name().into(),
            lr: tidy(cfg.lr),
            epochs: cfg.epochs,
            batch: cfg.batch_size,
            max_len: cfg.max_len,
            seed: cfg.seed,
            warmup_ratio: tidy(cfg.warmup_ratio),
            weight_decay: tidy(cfg.weight_decay),
            max_grad_norm: tidy(cfg.max_grad_norm),
            labels: labels.to_vec(),
        }
    }
}
