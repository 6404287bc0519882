//! The word embedding and the language-model head tied to it, in shards of rows that each fit one
//! storage binding. OpenAI's GPT-2 vocabulary (50,257 × 768 = 154 MB) is more than the 128 MiB a
//! binding holds on many adapters (WebGPU's default limit): the table lives in one buffer, and every
//! kernel that reads or writes it binds it a shard at a time, as a view. The lookup and its
//! backward take each shard's ids (`id_base`); the logits (M, V) and their gradients are written
//! and read a column block per shard (the matmul's row pitch is V). A table that fits one binding is
//! one shard, whose dispatches are those of the whole table (the row pitch is then the width).

use super::model::Model;
use super::params::Id;
use crate::gpu::{GpuBuf, GpuError, Step};
use crate::kernels::embedding::{self, EmbeddingGrouping};
use crate::kernels::matmul::{Matmul, Operand};
use crate::kernels::matvec::one_row;

/// Which gradient [`Model::lm_logits_backward`] computes.
#[derive(Clone, Copy, Debug)]
pub(super) enum LmGrad<'a> {
    /// The word embedding's, where it trains.
    Table,
    /// The input's, into this buffer.
    Input(&'a GpuBuf),
}

impl Model {
    /// Row ranges (first row, rows) of the (V, C) word embedding, each within one storage binding
    /// (and each starting at a bindable offset: shards are whole multiples of 64 rows).
    pub fn word_shards(&self, gpu: &crate::gpu::Gpu) -> Vec<(usize, usize)> {
        let (v, c) = (self.cfg.vocab_size, self.cfg.embed_width());
        let limit = gpu.info.max_storage_buffer_binding_size.min(self.word_shard_bytes.unwrap_or(u64::MAX));
        if (v * c) as u64 * 4 <= limit {
            return vec![(0, v)];
        }
        let rows = ((limit / (4 * c as u64)) as usize / 64 * 64).max(64);
        (0..v).step_by(rows).map(|r0| (r0, rows.min(v - r0))).collect()
    }

    /// Binds the word embedding in shards no larger than `bytes` even where the device allows more,
    /// and AdamW the arenas in views no larger: for tests, which check that a sharded model computes
    /// and trains as an unsharded one does, on any device.
    pub fn limit_word_shards(&mut self, bytes: u64) {
        self.word_shard_bytes = Some(bytes);
    }

    /// out (tokens, C) = (or +=) word[ids], shard by shard.
    pub(super) fn word_lookup(&self, step: &mut Step, out: &GpuBuf, ids: &GpuBuf, word: Id, tokens: usize, accumulate: bool) -> Result<(), GpuError> {
        let c = self.cfg.embed_width();
        let table = self.params.value(word);
        for (s, &(r0, rows)) in self.word_shards(step.gpu()).iter().enumerate() {
            embedding::forward_shard(step, out.at([tokens, c]), ids, table.view(r0 * c, rows * c).at([rows, c]), r0, accumulate || s > 0)?;
        }
        Ok(())
    }

    /// d word[id] += the rows of `dout` at that id's positions, shard by shard.
    pub(super) fn word_lookup_backward(&self, step: &mut Step, dword: &GpuBuf, dout: &GpuBuf, g: &EmbeddingGrouping) -> Result<(), GpuError> {
        let c = self.cfg.embed_width();
        for (r0, rows) in self.word_shards(step.gpu()) {
            embedding::backward_shard(step, dword.view(r0 * c, rows * c).at([rows, c]), r0, dout, g)?;
        }
        Ok(())
    }

    /// logits (M, V) = x (M, C) word^T (+ bias (V)), a column block per shard.
    pub(super) fn lm_logits_forward(&self, step: &mut Step, logits: &GpuBuf, x: &GpuBuf, m: usize, word: Id, bias: Option<&GpuBuf>) -> Result<(), GpuError> {
        let (v, c) = (self.cfg.vocab_size, self.cfg.embed_width());
        let table = self.params.value(word);
        let shards = self.word_shards(step.gpu());
        // one row (a prompt's next token, one [MASK]): the one-row kernel, which reads each weight
        // once, where the matmul's tiles for many rows would waste all but one (with V not a
        // multiple of 4, GPT-2's 50,257, the tiled kernel: 12 s of SwiftShader for one row)
        if m == 1 {
            for (r0, rows) in shards {
                let (w, b) = (table.view(r0 * c, rows * c), bias.map(|b| b.view(r0, rows)));
                one_row(step, logits.at_off(r0, [1, rows]), x.at([1, c]), w.at([rows, c]), b.as_ref().map(|b| b.at([rows])), true)?;
            }
            return Ok(());
        }
        for (r0, rows) in shards {
            let mm = Matmul::new(m, rows, c).trans_b().starts(0, 0, r0).strided(
                1,
                Operand { ld: c, outer: m * c, inner_stride: 0 },
                Operand { ld: c, outer: rows * c, inner_stride: 0 },
                Operand { ld: v, outer: m * v, inner_stride: 0 },
            );
            let w = table.view(r0 * c, rows * c);
            mm.record(step, logits.at([m, v]), x.at([m, c]), w.at([rows, c]), bias.map(|b| b.at_off(r0, [rows])))?;
        }
        Ok(())
    }

    /// The backward of [`Model::lm_logits_forward`]: per `grad`, d word += d_logits^T x (when the word
    /// embedding trains), or dx (M, C) = d_logits word; a column block of d_logits per shard.
    pub(super) fn lm_logits_backward(&self, step: &mut Step, grad: LmGrad, d_logits: &GpuBuf, x: &GpuBuf, m: usize, word: Id) -> Result<(), GpuError> {
        let (v, c) = (self.cfg.vocab_size, self.cfg.embed_width());
        let (dword, dx) = match grad {
            LmGrad::Table => (self.params.grad_of(word), None),
            LmGrad::Input(dx) => (None, Some(dx)),
        };
        let table = self.params.value(word);
        let shards = self.word_shards(step.gpu());
        // d_logits' columns r0 .. r0 + rows: stored (M, rows) with rows V apart
        let dl = Operand { ld: v, outer: m * v, inner_stride: 0 };
        for (s, &(r0, rows)) in shards.iter().enumerate() {
            if let Some(dw) = dword {
                // (rows, C) += (d_logits block)^T x
                let mm = Matmul::new(rows, c, m).trans_a().accumulate().starts(r0, 0, 0).strided(1, dl, Operand { ld: c, outer: m * c, inner_stride: 0 }, Operand { ld: c, outer: rows * c, inner_stride: 0 });
                mm.record(step, dw.view(r0 * c, rows * c).at([rows, c]), d_logits.at([m, v]), x.at([m, c]), None)?;
            }
            if let Some(dx) = dx {
                // (M, C) (+)= d_logits block (M, rows) · word rows (rows, C)
                let mut mm = Matmul::new(m, c, rows).starts(r0, 0, 0).strided(1, dl, Operand { ld: c, outer: rows * c, inner_stride: 0 }, Operand { ld: c, outer: m * c, inner_stride: 0 });
                mm.accumulate = s > 0;
                mm.record(step, dx.at([m, c]), d_logits.at([m, v]), table.view(r0 * c, rows * c).at([rows, c]), None)?;
            }
        }
        Ok(())
    }
}
