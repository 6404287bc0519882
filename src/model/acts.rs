//! Saved activations and scratch of the forward and backward, allocated once for the largest
//! (B, T) seen and reused by every smaller batch.

use crate::gpu::GpuBuf;

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
    /// Qwen3: q|k|v before the per-head norms, and their rstd (one element each otherwise).
    pub(super) qkv_pre: GpuBuf,
    pub(super) q_rstd: GpuBuf,
    pub(super) k_rstd: GpuBuf,
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
    /// The summed embeddings (B*T, E), E the tables' width.
    pub(super) emb: GpuBuf,
    /// Factorised embeddings: their LayerNorm's (dropped) output (B*T, E) before the projection,
    /// its gradient, and the LayerNorm's input gradient (one element each otherwise).
    pub(super) emb_ln: GpuBuf,
    pub(super) d_emb_ln: GpuBuf,
    pub(super) d_emb: GpuBuf,
    pub(super) emb_mean: GpuBuf,
    pub(super) emb_rstd: GpuBuf,
    /// ModernBERT's rotary tables for the capacity's positions: cos and sin for the global layers'
    /// theta, then for the local layers'.
    pub(super) rope: Option<[GpuBuf; 4]>,
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
    /// Qwen3: the gradient at q|k|v before the per-head norms (one element otherwise).
    pub(super) dqkv_pre: GpuBuf,
    pub(super) dprobs: GpuBuf,
    pub(super) dscores: GpuBuf,
    // pooler / sentence heads (B, C), (B, 2), (B, L)
    pub(super) cls_x: GpuBuf,
    pub(super) pooled_pre: GpuBuf,
    pub(super) pooled: GpuBuf,
    /// A pooler with a norm after its activation (ModernBERT's head): the activation's output, the
    /// norm's statistics, and the gradient at the activation's output.
    pub(super) pooled_act: GpuBuf,
    pub(super) pooled_mean: GpuBuf,
    pub(super) pooled_rstd: GpuBuf,
    pub(super) d_pooled_act: GpuBuf,
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
    /// A LoRA model's (B*T, r) products x Aᵀ and their gradients.
    pub(super) lora_t: Option<GpuBuf>,
    pub(super) lora_dt: Option<GpuBuf>,
    /// With lora_dropout: (B*T, max(C, I)) the dropped input, and a scratch for its gradient.
    pub(super) lora_x: Option<GpuBuf>,
    pub(super) lora_u: Option<GpuBuf>,
}

/// Language-model-head buffers (masked-LM, or next-word) for up to `cap` predicted rows.
pub(super) struct LmActs {
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
