//! The key-value cache of cached decoding and one position's activations (model::decode runs
//! them).

use crate::gpu::GpuBuf;
use crate::kernels::matvec::Packed;

/// The decoder's weights packed for the one-row kernel of CPU adapters (kernels::matvec::Packed):
/// per layer q|k|v, the attention's output, the feed-forward's two; the LM head's dense layer
/// (BERT's body); the tied word embedding as the LM head. Packed at the first prefill after they
/// were made or the weights changed (`Model::weights_written`).
pub(super) struct PackedWeights {
    pub(super) fresh: bool,
    pub(super) layers: Vec<[Packed; 4]>,
    pub(super) dense: Option<Packed>,
    pub(super) lm: Packed,
}

/// The cache and one position's activations, allocated for `cap` positions and reused by every
/// generation that fits them.
pub(super) struct DecodeState {
    /// Positions the cache holds, and positions filled.
    pub(super) cap: usize,
    pub(super) n: usize,
    /// Per layer, (cap, 3C): each position's q|k|v.
    pub(super) cache: Vec<GpuBuf>,
    /// (H, cap) attention scratch.
    pub(super) scores: GpuBuf,
    // one position: (C) or (I)
    pub(super) x: GpuBuf,
    pub(super) h1: GpuBuf,
    pub(super) res: GpuBuf,
    pub(super) res2: GpuBuf,
    pub(super) ctx: GpuBuf,
    pub(super) lin: GpuBuf,
    pub(super) inter_pre: GpuBuf,
    pub(super) inter: GpuBuf,
    pub(super) mean: GpuBuf,
    pub(super) rstd: GpuBuf,
    /// (V) the next token's logits.
    pub(super) logits: GpuBuf,
    /// The draw's result (`kernels::sample::out_len` of `k_cap`); element 0, the chosen id, is the next
    /// step's input.
    pub(super) out: GpuBuf,
    pub(super) k_cap: usize,
    /// The new token's position and token type (0), as the embeddings' lookups read them.
    pub(super) pos: GpuBuf,
    pub(super) types: GpuBuf,
    /// The Llama body's: Qwen3's q|k|v before its per-head norms (cap rows, each at its
    /// position's row), the norms' rstd, and the rotary tables for the cache's positions.
    pub(super) qkv_pre: GpuBuf,
    pub(super) q_rstd: GpuBuf,
    pub(super) k_rstd: GpuBuf,
    pub(super) rope: Option<(GpuBuf, GpuBuf)>,
    /// The packed weights, where the products run from them.
    pub(super) packed: Option<PackedWeights>,
}

