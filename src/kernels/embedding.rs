//! Embedding lookup and its deterministic scatter-add backward (shaders/embedding.wgsl).

use super::{grid, need, u32_of};
use crate::gpu::{uniform, Gpu, GpuBuf, GpuError, KernelId, Step};

pub const FORWARD: KernelId = KernelId::new("embedding", "embedding_forward", &[1, 2, 3]);
pub const BACKWARD: KernelId = KernelId::new("embedding", "embedding_backward", &[4, 5, 6, 7, 8]);

uniform! {
    /// shaders/embedding.wgsl's parameters.
    pub(crate) struct Params { tokens: u32, dim: u32, vocab: u32, n_uniq: u32, off_table: u32, id_base: u32 }
}

/// out (tokens, dim) = (or +=) table[ids] with table (vocab, dim) starting at element `off_table`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    step: &mut Step,
    out: &GpuBuf,
    ids: &GpuBuf,
    table: &GpuBuf,
    off_table: usize,
    tokens: usize,
    dim: usize,
    vocab: usize,
    accumulate: bool,
) -> Result<(), GpuError> {
    forward_shard(step, out, ids, table, off_table, 0, tokens, dim, vocab, accumulate)
}

/// [`forward`] with `table` holding rows `id_base .. id_base + vocab` of a larger table (one shard of
/// a table over the binding limit): ids outside the shard give zero rows.
#[allow(clippy::too_many_arguments)]
pub fn forward_shard(
    step: &mut Step,
    out: &GpuBuf,
    ids: &GpuBuf,
    table: &GpuBuf,
    off_table: usize,
    id_base: usize,
    tokens: usize,
    dim: usize,
    vocab: usize,
    accumulate: bool,
) -> Result<(), GpuError> {
    need("embedding_forward", "ids", ids, 0, tokens)?;
    need("embedding_forward", "out", out, 0, tokens * dim)?;
    need("embedding_forward", "table", table, off_table, vocab * dim)?;
    let p = Params {
        tokens: u32_of("embedding", tokens)?,
        dim: u32_of("embedding", dim)?,
        vocab: u32_of("embedding", vocab)?,
        n_uniq: 0,
        off_table: u32_of("embedding", off_table)?,
        id_base: u32_of("embedding", id_base)?,
    };
    let acc = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    step.dispatch(FORWARD, &acc, bytemuck::bytes_of(&p), &[ids, table, out], grid(tokens, 1))
}

/// The ids of one batch grouped by value (CSR), built on the host, which owns the ids: the backward
/// then sums each id's rows in a fixed order, so it is deterministic without atomics.
pub struct EmbeddingGrouping {
    pub uniq: GpuBuf,
    pub starts: GpuBuf,
    pub pos: GpuBuf,
    pub n_uniq: usize,
    pub tokens: usize,
}

/// Groups `ids` by value: (distinct ids ascending, CSR starts, positions in order).
pub fn group_ids(ids: &[u32]) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let mut order: Vec<u32> = (0..ids.len() as u32).collect();
    order.sort_by_key(|&i| (ids[i as usize], i));
    let mut uniq = Vec::new();
    let mut starts = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        let id = ids[i as usize];
        if uniq.last() != Some(&id) {
            uniq.push(id);
            starts.push(k as u32);
        }
    }
    starts.push(order.len() as u32);
    (uniq, starts, order)
}

impl EmbeddingGrouping {
    pub fn new(gpu: &Gpu, ids: &[u32]) -> Result<EmbeddingGrouping, GpuError> {
        let (uniq, starts, pos) = group_ids(ids);
        Ok(EmbeddingGrouping {
            n_uniq: uniq.len(),
            tokens: ids.len(),
            uniq: gpu.upload_u32("emb.uniq", &uniq)?,
            starts: gpu.upload_u32("emb.starts", &starts)?,
            pos: gpu.upload_u32("emb.pos", &pos)?,
        })
    }
}

/// dtable[id] += sum of dout rows at that id's positions.
pub fn backward(
    step: &mut Step,
    dtable: &GpuBuf,
    off_table: usize,
    dout: &GpuBuf,
    g: &EmbeddingGrouping,
    dim: usize,
    vocab: usize,
) -> Result<(), GpuError> {
    backward_shard(step, dtable, off_table, 0, dout, g, dim, vocab)
}

/// [`backward`] into one shard of a table's gradient, rows `id_base .. id_base + vocab`: ids outside
/// it are skipped.
#[allow(clippy::too_many_arguments)]
pub fn backward_shard(
    step: &mut Step,
    dtable: &GpuBuf,
    off_table: usize,
    id_base: usize,
    dout: &GpuBuf,
    g: &EmbeddingGrouping,
    dim: usize,
    vocab: usize,
) -> Result<(), GpuError> {
    need("embedding_backward", "dout", dout, 0, g.tokens * dim)?;
    need("embedding_backward", "dtable", dtable, off_table, vocab * dim)?;
    let p = Params {
        tokens: u32_of("embedding", g.tokens)?,
        dim: u32_of("embedding", dim)?,
        vocab: u32_of("embedding", vocab)?,
        n_uniq: u32_of("embedding", g.n_uniq)?,
        off_table: u32_of("embedding", off_table)?,
        id_base: u32_of("embedding", id_base)?,
    };
    step.dispatch(BACKWARD, &[], bytemuck::bytes_of(&p), &[&g.uniq, &g.starts, &g.pos, dout, dtable], grid(g.n_uniq, 1))
}
