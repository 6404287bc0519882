//! What the page shows of a model beside its runs: the memory each way of adopting it needs, the
//! kernels' times on a batch of the data, the cosine between two texts' embeddings.

use serde::{Deserialize, Serialize};

use super::{Loaded, Session};
use crate::error::{Error, Result};
use crate::model::Mode;
use crate::text::tokenizer::Encoded;
use crate::train::batches;
use crate::train::spec::Adopt;

/// One training step with every kernel timed alone.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KernelProfile {
    /// (kernel, ms, dispatches).
    pub rows: Vec<(String, f64, u64)>,
    pub total: f64,
    /// (B, T) of the step's batch.
    pub batch: (usize, usize),
    /// Whether it ran the backward too (of what the last run trained).
    pub backward: bool,
}

/// GPU memory a training step needs, roughly: 4 copies of the weights (value, gradient, m, v)
/// plus the saved activations of (batch x tokens).
pub fn train_memory_bytes(params: usize, layers: usize, hidden: usize, heads: usize, inter: usize, batch: usize, tokens: usize) -> u64 {
    let bt = (batch * tokens) as u64;
    let per_layer = bt * (10 * hidden as u64 + 2 * inter as u64) + 2 * (batch * heads * tokens * tokens) as u64;
    4 * (4 * params as u64 + layers as u64 * per_layer + 12 * bt * hidden as u64)
}

/// The batch (texts, tokens each) that the memory figures are for: the page's model panel and
/// the CLI name it beside them.
pub const MEMORY_BATCH: (usize, usize) = (16, 128);

/// One way of adopting a model for classification, and what it trains and needs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModeCost {
    pub mode: String,
    /// Parameters a run trains (for a 2-label head).
    pub trainable: usize,
    /// GPU memory a run needs at [`MEMORY_BATCH`]: weights, the gradients and AdamW's two moments of
    /// what trains, and the activations.
    pub train_bytes: u64,
}

impl Loaded {
    /// [`train_memory_bytes`] of this model's shape at [`MEMORY_BATCH`], for `params` trained weights.
    fn memory_at_batch(&self, params: usize) -> u64 {
        let c = &self.model.cfg;
        train_memory_bytes(params, c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size, MEMORY_BATCH.0, MEMORY_BATCH.1.min(c.max_position_embeddings))
    }

    /// What the model needs in GPU memory, in words (`ModelInfo::memory`): its weights, the
    /// key-value cache of 1024 generated tokens, a training step at [`MEMORY_BATCH`].
    pub(super) fn memory_words(&self) -> String {
        let c = &self.model.cfg;
        let mb = crate::model::megabytes;
        let weights = 4 * self.model.params.total_params() as u64;
        let mut s = format!("weights {} (f32)", mb(weights));
        if c.is_decoder && self.model.heads.lm {
            let positions = 1024.min(c.max_position_embeddings);
            s.push_str(&format!("; generating {positions} tokens adds a key-value cache of {}", mb(crate::model::decode::cache_bytes(c, positions).1)));
        }
        let (b, t) = (MEMORY_BATCH.0, MEMORY_BATCH.1.min(c.max_tokens()));
        s.push_str(&format!("; a training step at batch {b} × {t}: {} training every weight", mb(self.train_bytes())));
        if let Some(lora) = self.mode_costs().iter().find(|m| m.mode.starts_with("LoRA")) {
            s.push_str(&format!(", {} with LoRA r = 8", mb(lora.train_bytes)));
        }
        s
    }

    /// GPU memory a training step of every weight needs at [`MEMORY_BATCH`] ([`train_memory_bytes`]).
    pub fn train_bytes(&self) -> u64 {
        self.memory_at_batch(self.model.params.total_params())
    }

    /// Each way of adopting the model for a 2-label classifier, with what it trains and needs.
    pub fn mode_costs(&self) -> Vec<ModeCost> {
        let c = &self.model.cfg;
        let params = self.model.params.total_params();
        // the activations of a batch of MEMORY_BATCH (train_memory_bytes without parameters), and for each
        // mode the weights plus the gradient and two moments of what trains
        let acts = self.memory_at_batch(0);
        let last = 2.min(c.num_hidden_layers);
        [(Adopt::Feature, "features (head only)".to_string()), (Adopt::Lora(8), "LoRA, r = 8".to_string()), (Adopt::Last(last), format!("the last {last} layers")), (Adopt::Full, "all layers".to_string())]
            .into_iter()
            .map(|(a, name)| {
                let trainable = self.trainable_for(a, 2);
                let added = if let Adopt::Lora(_) = a { trainable } else { 0 };
                ModeCost { mode: name, trainable, train_bytes: acts + 4 * (params + added + 3 * trainable) as u64 }
            })
            .collect()
    }
}

impl Session {
    /// Times every kernel of one training step's forward and backward (for the parameters the last
    /// run trained) on a batch of the current data, with the GPU in profiling mode. AdamW is left out:
    /// it would change the weights and the optimizer state, and the profile leaves both as they were.
    pub async fn profile_kernels(&self) -> Result<KernelProfile> {
        let mut texts: Vec<String> = self.data(|d| d.map(|d| d.ds.examples.iter().take(16).map(|e| e.text.clone()).collect())).unwrap_or_default();
        if texts.is_empty() {
            texts.push("The curious kitten deftly knocked the toast off the bookshelf.".to_string());
        }
        self.with_model("timing the kernels", async |g, l| {
            let enc: Vec<Encoded> = texts.iter().map(|t| l.tok.encode(t, None, 64)).collect::<Result<_>>()?;
            let refs: Vec<&Encoded> = enc.iter().collect();
            let nl = l.model.heads.num_labels;
            let labels: Vec<i32> = (0..refs.len()).map(|i| if nl > 0 { (i % nl) as i32 } else { 0 }).collect();
            let mut hb = batches::classification(&refs, &labels, l.tok.pad);
            if nl == 0 {
                hb.cls_labels = None;
            }
            let batch = hb.to_gpu(g, &l.model.cfg)?;
            let backward = l.model.params.params.iter().any(|p| p.trainable);
            g.take_kernel_times();
            g.set_profiling(true);
            let mut step = g.begin_step("profile");
            l.model.zero_grads(&mut step);
            let rec = l.model.forward(g, &mut step, &batch, Mode::Eval).and_then(|_| if backward { l.model.backward(&mut step, &batch, Mode::Eval) } else { Ok(()) });
            let done = match rec {
                Ok(()) => step.submit().await.map_err(Error::from),
                Err(e) => Err(e),
            };
            g.set_profiling(false);
            done?;
            let times = g.take_kernel_times();
            Ok(KernelProfile { rows: times.iter().map(|(k, ms, n)| (k.to_string(), *ms, *n as u64)).collect(), total: times.iter().map(|t| t.1).sum::<f64>(), batch: (batch.b, batch.t), backward })
        })
        .await
    }

    /// Cosine similarity of two texts' mean-pooled embeddings: an answer any encoder can give.
    pub async fn similarity(&self, a: &str, b: &str) -> Result<f64> {
        let e = self.embed(&[a.to_string(), b.to_string()], 128).await?;
        let dot: f32 = e[0].iter().zip(&e[1]).map(|(a, b)| a * b).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        Ok((dot / (norm(&e[0]) * norm(&e[1])).max(1e-12)) as f64)
    }
}
