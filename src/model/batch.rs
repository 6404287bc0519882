//! One batch on the GPU: token ids, positions, types and the padding mask, the targets of each
//! head, and the host-side groupings the embedding backward needs.

use super::config::ModelConfig;
use crate::error::Error;
use crate::gpu::{DType, Gpu, GpuBuf, GpuError};
use crate::kernels::embedding::{self, EmbeddingGrouping};

/// The (B, B*T) matrix whose product with the last hidden states (B*T, C) is their attention-masked
/// mean per sequence; its transpose carries the gradient back. Mean pooling is two matmuls.
pub fn mean_pool_matrix(b: usize, t: usize, attention_mask: &[u32]) -> Vec<f32> {
    let mut p = vec![0f32; b * b * t];
    for i in 0..b {
        let row = &attention_mask[i * t..(i + 1) * t];
        let n = row.iter().filter(|&&m| m != 0).count().max(1) as f32;
        for (j, &m) in row.iter().enumerate() {
            if m != 0 {
                p[i * b * t + i * t + j] = 1.0 / n;
            }
        }
    }
    p
}

/// The row (b*T + position) each sequence's summary is read at: [CLS] (position 0) for a BERT; for a
/// causal model, whose [CLS] sees only itself, the last token that is not padding (`pad`), as
/// transformers' GPT2ForSequenceClassification picks it (the rightmost id that is not the pad id;
/// position 0 when there is none). Only positions the attention mask keeps count.
pub fn summary_rows(b: usize, t: usize, ids: &[u32], attention_mask: &[u32], causal: bool, pad: u32) -> Vec<u32> {
    (0..b)
        .map(|i| {
            let last = if causal { (0..t).rev().find(|&j| attention_mask[i * t + j] != 0 && ids[i * t + j] != pad).unwrap_or(0) } else { 0 };
            (i * t + last) as u32
        })
        .collect()
}

/// One batch's inputs and targets on the GPU, with the host-side groupings the embedding backward
/// needs. Built from token ids the caller already has on the host. Its buffers come from the GPU's
/// recycling pool, sized by (B, T) alone (variable-length parts at their capacity), and go back to it
/// when the batch is dropped: the next batch of the same shape creates no buffer and, since the same
/// buffers come back, no bind group either.
pub struct Batch {
    pub b: usize,
    pub t: usize,
    pub(super) ids: GpuBuf,
    pub(super) types: GpuBuf,
    pub(super) pos: GpuBuf,
    /// (B, T) additive: 0 for tokens, -inf for padding.
    pub(super) mask: GpuBuf,
    pub(super) g_ids: EmbeddingGrouping,
    pub(super) g_types: EmbeddingGrouping,
    pub(super) g_pos: EmbeddingGrouping,
    /// The row each sequence's summary is read at ([`summary_rows`]): [CLS], or a causal model's last
    /// token.
    pub(super) cls_rows: GpuBuf,
    pub(super) g_cls: EmbeddingGrouping,
    /// The language-model head's targets (masked words, or a causal model's next words): the M rows
    /// predicted, their labels, and the row grouping for the backward (buffers of capacity B*T).
    pub m: usize,
    pub(super) lm_rows: Option<GpuBuf>,
    pub(super) lm_labels: Option<GpuBuf>,
    pub(super) g_lm: Option<EmbeddingGrouping>,
    /// The predicted rows on the host, for the language-model head's top tokens.
    pub lm_row_ids: Vec<u32>,
    pub(super) sop_labels: Option<GpuBuf>,
    pub(super) cls_labels: Option<GpuBuf>,
    /// (B, T) attention mask on the host, for the mean-pooling matrix.
    pub(super) attention_mask: Vec<u32>,
    /// The mean-pooling matrix (B, B*T), made on first use by a model with [`Pooling::Mean`].
    pub(super) pool: std::cell::OnceCell<GpuBuf>,
    recycler: crate::gpu::Recycler,
}

impl Drop for Batch {
    fn drop(&mut self) {
        let r = &self.recycler;
        for (role, b) in [("ids", &self.ids), ("types", &self.types), ("pos", &self.pos), ("mask", &self.mask), ("cls_rows", &self.cls_rows)] {
            r.give_back(role, b);
        }
        let groupings = [("ids", Some(&self.g_ids)), ("types", Some(&self.g_types)), ("pos", Some(&self.g_pos)), ("cls", Some(&self.g_cls)), ("lm", self.g_lm.as_ref())];
        for (of, g) in groupings {
            if let Some(g) = g {
                for (part, b) in [("uniq", &g.uniq), ("starts", &g.starts), ("order", &g.pos)] {
                    r.give_back(&grouping_role(of, part), b);
                }
            }
        }
        let rest = [("lm_rows", &self.lm_rows), ("lm_labels", &self.lm_labels), ("sop", &self.sop_labels), ("cls", &self.cls_labels)];
        for (role, b) in rest {
            if let Some(b) = b {
                r.give_back(role, b);
            }
        }
        if let Some(p) = self.pool.get() {
            r.give_back("pool", p);
        }
    }
}

/// Each token's position: its index in the text; RoBERTa's (transformers'
/// create_position_ids_from_input_ids) count the tokens that are not padding up to it, after the
/// padding id (`padding_idx + 1` for the first), and padding itself sits at the padding id.
fn positions(cfg: &ModelConfig, b: usize, t: usize, ids: &[u32]) -> Vec<u32> {
    let offset = cfg.family.position_offset(cfg.pad_token_id) as u32;
    if offset == 0 {
        return (0..b * t).map(|i| (i % t) as u32).collect();
    }
    let pad = cfg.pad_token_id as u32;
    let mut pos = Vec::with_capacity(b * t);
    for row in ids.chunks(t) {
        let mut seen = 0u32;
        for &id in row {
            if id == pad {
                pos.push(pad);
            } else {
                seen += 1;
                pos.push(pad + seen);
            }
        }
    }
    pos
}

/// The recycling role of one part of a batch's embedding grouping (see `Batch::drop`).
fn grouping_role(of: &str, part: &str) -> String {
    format!("{of}.grouping.{part}")
}

impl Batch {
    /// `ids`, `types`, `attention_mask` are (B, T) row-major; `lm_labels` is (B, T) with -100 where
    /// nothing is predicted; `sop_labels` and `cls_labels` are (B).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        cfg: &ModelConfig,
        b: usize,
        t: usize,
        ids: &[u32],
        types: &[u32],
        attention_mask: &[u32],
        lm_labels: Option<&[i32]>,
        sop_labels: Option<&[i32]>,
        cls_labels: Option<&[i32]>,
    ) -> Result<Batch, Error> {
        let n = b * t;
        if ids.len() != n || types.len() != n || attention_mask.len() != n {
            return Err(Error::Shape { tensor: "input_ids".into(), message: format!("batch of {b}x{t} needs {n} ids, types and mask values") });
        }
        if cfg.positions_needed(t) > cfg.max_position_embeddings {
            let offset = cfg.family.position_offset(cfg.pad_token_id);
            let usable = cfg.max_position_embeddings.saturating_sub(offset);
            return Err(Error::Limit(if offset > 0 {
                format!("sequences of {t} tokens exceed the model's {usable} positions ({} in its table, the first {offset} before {}'s first)", cfg.max_position_embeddings, cfg.family.display())
            } else {
                format!("sequences of {t} tokens exceed the model's {} positions", cfg.max_position_embeddings)
            }));
        }
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= cfg.vocab_size) {
            return Err(Error::Range { id: *bad as usize, size: cfg.vocab_size, message: format!("token id {bad} is outside the vocabulary of {}", cfg.vocab_size) });
        }
        // a model with one token type (RoBERTa) or none (DistilBERT) has no second segment: every
        // token is of type 0 whatever the framing said
        let zeros;
        let types = if cfg.type_vocab_size <= 1 {
            zeros = vec![0u32; n];
            &zeros[..]
        } else {
            types
        };
        if let Some(bad) = types.iter().find(|&&i| i as usize >= cfg.type_vocab_size.max(1)) {
            return Err(Error::Range { id: *bad as usize, size: cfg.type_vocab_size, message: format!("token type {bad} is outside the model's {} types", cfg.type_vocab_size) });
        }
        // a recycled buffer of `cap` elements holding `data` at its start (a lost device stays one)
        let up_u32 = |label: &str, cap: usize, data: &[u32]| -> Result<GpuBuf, GpuError> {
            let buf = gpu.recycled(label, cap, DType::U32)?;
            gpu.write(&buf, 0, data)?;
            Ok(buf)
        };
        let up_i32 = |label: &str, cap: usize, data: &[i32]| -> Result<GpuBuf, GpuError> {
            let buf = gpu.recycled(label, cap, DType::I32)?;
            gpu.write(&buf, 0, data)?;
            Ok(buf)
        };
        // the CSR grouping of `ids` (of `of`), in buffers of capacity `cap` ids
        let grouping = |of: &str, ids: &[u32], cap: usize| -> Result<EmbeddingGrouping, GpuError> {
            let (uniq, starts, order) = embedding::group_ids(ids);
            Ok(EmbeddingGrouping {
                n_uniq: uniq.len(),
                tokens: ids.len(),
                uniq: up_u32(&grouping_role(of, "uniq"), cap, &uniq)?,
                starts: up_u32(&grouping_role(of, "starts"), cap + 1, &starts)?,
                pos: up_u32(&grouping_role(of, "order"), cap, &order)?,
            })
        };
        let pos = positions(cfg, b, t, ids);
        let mask: Vec<f32> = attention_mask.iter().map(|&m| if m != 0 { 0.0 } else { f32::NEG_INFINITY }).collect();
        let cls_rows = summary_rows(b, t, ids, attention_mask, cfg.is_decoder, cfg.pad_token_id as u32);
        let (mut m, mut lm_rows, mut lm_lab, mut g_lm, mut row_ids) = (0, None, None, None, Vec::new());
        if let Some(labels) = lm_labels {
            if labels.len() != n {
                return Err(Error::Shape { tensor: "lm_labels".into(), message: format!("language-model labels: {} values for a {b}x{t} batch", labels.len()) });
            }
            let rows: Vec<u32> = (0..n as u32).filter(|&i| labels[i as usize] >= 0).collect();
            let lab: Vec<i32> = rows.iter().map(|&i| labels[i as usize]).collect();
            if let Some(bad) = lab.iter().find(|&&l| l as usize >= cfg.vocab_size) {
                return Err(Error::Range { id: *bad as usize, size: cfg.vocab_size, message: format!("language-model label {bad} is outside the vocabulary of {}", cfg.vocab_size) });
            }
            m = rows.len();
            if m > 0 {
                lm_rows = Some(up_u32("lm_rows", n, &rows)?);
                lm_lab = Some(up_i32("lm_labels", n, &lab)?);
                g_lm = Some(grouping("lm", &rows, n)?);
            }
            row_ids = rows;
        }
        let labels_buf = |l: Option<&[i32]>, what: &str| -> Result<Option<GpuBuf>, Error> {
            match l {
                Some(l) if l.len() != b => Err(Error::Data { line: 0, message: format!("{what} labels: {} values for a batch of {b}", l.len()) }),
                Some(l) => Ok(Some(up_i32(what, b, l)?)),
                None => Ok(None),
            }
        };
        let mask_buf = gpu.recycled("mask", n, DType::F32)?;
        gpu.write(&mask_buf, 0, &mask)?;
        Ok(Batch {
            b,
            t,
            ids: up_u32("ids", n, ids)?,
            types: up_u32("types", n, types)?,
            pos: up_u32("pos", n, &pos)?,
            mask: mask_buf,
            g_ids: grouping("ids", ids, n)?,
            g_types: grouping("types", types, n)?,
            g_pos: grouping("pos", &pos, n)?,
            cls_rows: up_u32("cls_rows", b, &cls_rows)?,
            g_cls: grouping("cls", &cls_rows, b)?,
            m,
            lm_rows,
            lm_labels: lm_lab,
            g_lm,
            lm_row_ids: row_ids,
            sop_labels: labels_buf(sop_labels, "sop")?,
            cls_labels: labels_buf(cls_labels, "cls")?,
            attention_mask: attention_mask.to_vec(),
            pool: std::cell::OnceCell::new(),
            recycler: gpu.recycler(),
        })
    }

    /// The (B, B*T) mean-pooling matrix, uploaded on first use (only mean-pooling models need it).
    pub(super) fn pool_matrix(&self, gpu: &Gpu) -> Result<&GpuBuf, GpuError> {
        if self.pool.get().is_none() {
            let buf = gpu.recycled("pool", self.b * self.b * self.t, DType::F32)?;
            gpu.write(&buf, 0, &mean_pool_matrix(self.b, self.t, &self.attention_mask))?;
            let _ = self.pool.set(buf);
        }
        Ok(self.pool.get().unwrap())
    }
}

