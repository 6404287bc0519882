//! Saved activations and scratch of the forward and backward, allocated once for the largest
//! (B, T) seen and reused by every smaller batch.

use super::bert::Model;
use super::config::Body;
use crate::gpu::{DType, Gpu, GpuBuf, GpuError};

/// A fused projection's weight and bias, and their gradients when trainable.
pub(super) struct Fused {
    pub(super) w: GpuBuf,
    pub(super) b: GpuBuf,
    pub(super) dw: Option<GpuBuf>,
    pub(super) db: Option<GpuBuf>,
}

/// Saved activations of one encoder layer.
pub(super) struct LayerActs {
    pub(super) qkv: GpuBuf,
    pub(super) probs: GpuBuf,
    pub(super) probs_d: GpuBuf,
    pub(super) ctx: GpuBuf,
    pub(super) res1: GpuBuf,
    pub(super) h1: GpuBuf,
    pub(super) mean1: GpuBuf,
    pub(super) rstd1: GpuBuf,
    pub(super) inter_pre: GpuBuf,
    pub(super) inter: GpuBuf,
    pub(super) res2: GpuBuf,
    pub(super) mean2: GpuBuf,
    pub(super) rstd2: GpuBuf,
}

/// Activations and scratch for one (B, T), allocated once and reused.
pub(super) struct Acts {
    /// Capacity: the largest batch and sequence length the buffers hold.
    pub(super) b: usize,
    pub(super) t: usize,
    pub(super) emb: GpuBuf,
    pub(super) emb_mean: GpuBuf,
    pub(super) emb_rstd: GpuBuf,
    /// A GPT-2 body's final LayerNorm (`ln_f`): output, mean and rstd (one element each for BERT).
    pub(super) fin: GpuBuf,
    pub(super) fin_mean: GpuBuf,
    pub(super) fin_rstd: GpuBuf,
    /// x[0] = embeddings output, x[l + 1] = output of layer l.
    pub(super) x: Vec<GpuBuf>,
    pub(super) layers: Vec<LayerActs>,
    // scratch (B*T, C) / (B*T, I) / (B, H, T, T) / (B, H, T, D)
    pub(super) lin: GpuBuf,
    pub(super) lin2: GpuBuf,
    pub(super) scores: GpuBuf,
    pub(super) d_x: GpuBuf,
    pub(super) d_h1: GpuBuf,
    pub(super) d_res: GpuBuf,
    pub(super) d_tmp: GpuBuf,
    pub(super) d_inter: GpuBuf,
    pub(super) d_inter2: GpuBuf,
    pub(super) dqkv: GpuBuf,
    pub(super) dprobs: GpuBuf,
    pub(super) dscores: GpuBuf,
    pub(super) ln_scratch: GpuBuf,
    // pooler / sentence heads (B, C), (B, 2), (B, L)
    pub(super) cls_x: GpuBuf,
    pub(super) pooled_pre: GpuBuf,
    pub(super) pooled: GpuBuf,
    pub(super) pooled_d: GpuBuf,
    pub(super) d_pooled: GpuBuf,
    pub(super) d_pooled_pre: GpuBuf,
    pub(super) d_cls_x: GpuBuf,
    pub(super) mean: GpuBuf,
    pub(super) d_mean: GpuBuf,
    pub(super) sop_logits: GpuBuf,
    pub(super) d_sop_logits: GpuBuf,
    pub(super) cls_logits: GpuBuf,
    pub(super) d_cls_logits: GpuBuf,
    pub(super) ce_rows: GpuBuf,
    pub(crate) stats: [GpuBuf; 3],
}

/// MLM-head buffers for up to `cap` predicted rows.
pub(super) struct MlmActs {
    pub(super) cap: usize,
    pub(super) x: GpuBuf,
    pub(super) pre: GpuBuf,
    pub(super) act: GpuBuf,
    pub(super) ln: GpuBuf,
    pub(super) mean: GpuBuf,
    pub(super) rstd: GpuBuf,
    pub(super) logits: GpuBuf,
    pub(super) d_logits: GpuBuf,
    pub(super) d_ln: GpuBuf,
    pub(super) d_act: GpuBuf,
    pub(super) d_x: GpuBuf,
    pub(super) ce_rows: GpuBuf,
}

impl Model {
    /// Activations for a batch of (B, T) with M predicted rows, grown when a batch is larger than
    /// any before.
    pub(super) fn ensure_acts(&mut self, gpu: &Gpu, b: usize, t: usize, m: usize) -> Result<(), GpuError> {
        let (c, i, h) = (self.cfg.hidden_size, self.cfg.intermediate_size, self.cfg.num_attention_heads);
        let gpt2 = self.cfg.body == Body::Gpt2;
                let z = |label: &str, n: usize| gpu.zeros(label, n, DType::F32);
        // Buffers are sized for the largest (B, T) seen so far and reused for smaller batches (the
        // kernels index by the batch's own shape), so a training loop with dynamic padding
        // allocates activations once, not every step.
        if self.acts.as_ref().map(|a| b > a.b || t > a.t).unwrap_or(true) {
            let (b, t) = self.acts.as_ref().map(|a| (a.b.max(b), a.t.max(t))).unwrap_or((b, t));
            let bt = b * t;
            let mut layers = Vec::new();
            for _ in 0..self.cfg.num_hidden_layers {
                layers.push(LayerActs {
                    qkv: z("qkv", bt * 3 * c)?,
                    probs: z("probs", b * h * t * t)?,
                    probs_d: z("probs_d", b * h * t * t)?,
                    ctx: z("ctx", bt * c)?,
                    res1: z("res1", bt * c)?,
                    h1: z("h1", bt * c)?,
                    mean1: z("mean1", bt)?,
                    rstd1: z("rstd1", bt)?,
                    inter_pre: z("inter_pre", bt * i)?,
                    inter: z("inter", bt * i)?,
                    res2: z("res2", bt * c)?,
                    mean2: z("mean2", bt)?,
                    rstd2: z("rstd2", bt)?,
                });
            }
            let labels = self.heads.num_labels.max(2);
            self.acts = Some(Acts {
                b,
                t,
                emb: z("emb", bt * c)?,
                emb_mean: z("emb_mean", bt)?,
                emb_rstd: z("emb_rstd", bt)?,
                fin: z("fin", if gpt2 { bt * c } else { 1 })?,
                fin_mean: z("fin_mean", if gpt2 { bt } else { 1 })?,
                fin_rstd: z("fin_rstd", if gpt2 { bt } else { 1 })?,
                x: (0..=self.cfg.num_hidden_layers).map(|_| z("x", bt * c)).collect::<Result<_, _>>()?,
                layers,
                lin: z("lin", bt * c)?,
                lin2: z("lin2", bt * c)?,
                scores: z("scores", b * h * t * t)?,
                d_x: z("d_x", bt * c)?,
                d_h1: z("d_h1", bt * c)?,
                d_res: z("d_res", bt * c)?,
                d_tmp: z("d_tmp", bt * c)?,
                d_inter: z("d_inter", bt * i)?,
                d_inter2: z("d_inter2", bt * i)?,
                dqkv: z("dqkv", bt * 3 * c)?,
                dprobs: z("dprobs", b * h * t * t)?,
                dscores: z("dscores", b * h * t * t)?,
                ln_scratch: z("ln_scratch", c)?,
                cls_x: z("cls_x", b * c)?,
                pooled_pre: z("pooled_pre", b * c)?,
                pooled: z("pooled", b * c)?,
                pooled_d: z("pooled_d", b * c)?,
                d_pooled: z("d_pooled", b * c)?,
                d_pooled_pre: z("d_pooled_pre", b * c)?,
                d_cls_x: z("d_cls_x", b * c)?,
                mean: z("mean", b * c)?,
                d_mean: z("d_mean", b * c)?,
                sop_logits: z("sop_logits", b * 2)?,
                d_sop_logits: z("d_sop_logits", b * 2)?,
                cls_logits: z("cls_logits", b * labels)?,
                d_cls_logits: z("d_cls_logits", b * labels)?,
                ce_rows: z("ce_rows", b * 3)?,
                stats: [z("stats_mlm", 3)?, z("stats_sop", 3)?, z("stats_cls", 3)?],
            });
        }
        if self.heads.lm && m > 0 && self.mlm_acts.as_ref().map(|a| a.cap < m).unwrap_or(true) {
            let cap = m.next_power_of_two();
            let v = self.cfg.vocab_size;
            self.mlm_acts = Some(MlmActs {
                cap,
                x: z("mlm_x", cap * c)?,
                pre: z("mlm_pre", cap * c)?,
                act: z("mlm_act", cap * c)?,
                ln: z("mlm_ln", cap * c)?,
                mean: z("mlm_mean", cap)?,
                rstd: z("mlm_rstd", cap)?,
                logits: z("mlm_logits", cap * v)?,
                d_logits: z("mlm_d_logits", cap * v)?,
                d_ln: z("mlm_d_ln", cap * c)?,
                d_act: z("mlm_d_act", cap * c)?,
                d_x: z("mlm_d_x", cap * c)?,
                ce_rows: z("mlm_ce_rows", cap * 3)?,
            });
        }
        Ok(())
    }

}
