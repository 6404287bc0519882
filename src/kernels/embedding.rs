//! Embedding lookup and its deterministic scatter-add backward (shaders/embedding.wgsl).

use super::{grid, need, u32_of};
use crate::gpu::{expect_shape, Gpu, GpuBuf, GpuError, KernelId, Step, View};
use crate::shaders::params::embedding::Params;

pub const FORWARD: KernelId = KernelId::new("embedding", "embedding_forward", &[1, 2, 3]);
pub const BACKWARD: KernelId = KernelId::new("embedding", "embedding_backward", &[4, 5, 6, 7, 8]);

/// out (tokens, dim) = (or += with `accumulate`) rows `ids` of `table` (vocab, dim), which may start
/// anywhere in its buffer.
pub fn forward(step: &mut Step, out: View, ids: &GpuBuf, table: View, accumulate: bool) -> Result<(), GpuError> {
    forward_shard(step, out, ids, table, 0, accumulate)
}

/// [`forward`] with `table` holding rows `id_base .. id_base + vocab` of a larger table (one shard of
/// a table over the binding limit): ids outside the shard give zero rows.
pub fn forward_shard(step: &mut Step, out: View, ids: &GpuBuf, table: View, id_base: usize, accumulate: bool) -> Result<(), GpuError> {
    const K: &str = "embedding_forward";
    let (tokens, dim, vocab) = (out.rows(), out.cols(), table.rows());
    expect_shape(K, "table", &table, [vocab, dim])?;
    need(K, "ids", ids, 0, tokens)?;
    let outb = out.whole(K, "out")?;
    table.check(K, "table")?;
    let p = Params {
        tokens: u32_of("embedding", tokens)?,
        dim: u32_of("embedding", dim)?,
        vocab: u32_of("embedding", vocab)?,
        n_uniq: 0,
        off_table: u32_of("embedding", table.off)?,
        id_base: u32_of("embedding", id_base)?,
    };
    let acc = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    step.dispatch(FORWARD, &acc, bytemuck::bytes_of(&p), &[ids, table.buf, outb], grid(tokens, 1))
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

/// dtable[id] += sum of dout rows at that id's positions; dtable (vocab, dim) may start anywhere in
/// its buffer, dout is (tokens, dim) with the grouping's tokens.
pub fn backward(step: &mut Step, dtable: View, dout: &GpuBuf, g: &EmbeddingGrouping) -> Result<(), GpuError> {
    backward_shard(step, dtable, 0, dout, g)
}

/// [`backward`] into one shard of a table's gradient, rows `id_base .. id_base + vocab`: ids outside
/// it are skipped.
pub fn backward_shard(step: &mut Step, dtable: View, id_base: usize, dout: &GpuBuf, g: &EmbeddingGrouping) -> Result<(), GpuError> {
    const K: &str = "embedding_backward";
    let (vocab, dim) = (dtable.rows(), dtable.cols());
    need(K, "dout", dout, 0, g.tokens * dim)?;
    dtable.check(K, "dtable")?;
    let p = Params {
        tokens: u32_of("embedding", g.tokens)?,
        dim: u32_of("embedding", dim)?,
        vocab: u32_of("embedding", vocab)?,
        n_uniq: u32_of("embedding", g.n_uniq)?,
        off_table: u32_of("embedding", dtable.off)?,
        id_base: u32_of("embedding", id_base)?,
    };
    step.dispatch(BACKWARD, &[], bytemuck::bytes_of(&p), &[&g.uniq, &g.starts, &g.pos, dout, dtable.buf], grid(g.n_uniq, 1))
}
