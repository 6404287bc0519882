//! BERT's forward and backward on the GPU: embeddings, N encoder layers, pooler, and the masked-LM,
//! sentence-order and sequence-classification heads. Everything is recorded into a caller's `Step`
//! (one submit per training step); only the small loss statistics are read back.
//!
//! Shapes (see mod.rs): x (B*T, C); qkv (B*T, 3C), one projection by the three weights side by side
//! in their arena; ctx (B*T, C); probs (B, H, T, T); attention reads heads in place (kernels::attention);
//! inter (B*T, I); MLM rows (M, C) and logits (M, V) only at predicted positions.
//!
//! A GPT-2 body (`Body::Gpt2`) runs on the same activations: its forward and backward are in
//! gpt2.rs, a child module of this one.

use super::config::{BertConfig, Body};
use super::params::{tensor_names, ParamStore};
use crate::error::Error;
use crate::gpu::{DType, Gpu, GpuBuf, GpuError, Step};
use crate::io::safetensors::SafeTensors;
use crate::kernels::adamw::{AdamW, AdamWState};
use crate::kernels::embedding::{self, EmbeddingGrouping};
use crate::kernels::layernorm::{self, LnParams};
use crate::kernels::matmul::Matmul;
use crate::kernels::dropout::Dropout;
use crate::kernels::{cross_entropy, dropout, elementwise, gelu, softmax};
use crate::kernels::softmax::RowKernel;

#[path = "gpt2.rs"]
mod gpt2;

/// Which heads the model carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heads {
    pub mlm: bool,
    pub sop: bool,
    /// Sequence-classification labels; 0 for none.
    pub num_labels: usize,
}

/// What the classification head reads: HF's pooler on [CLS] (tanh(dense(h_cls))), exported as
/// BertForSequenceClassification; or the attention-masked mean of the last hidden states (as
/// sentence-transformers pools), exported as the encoder plus a separate head file.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Pooling {
    #[default]
    Cls,
    Mean,
}

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

/// One batch's inputs and targets on the GPU, with the host-side groupings the embedding backward
/// needs. Built from token ids the caller already has on the host. Its buffers come from the GPU's
/// recycling pool, sized by (B, T) alone (variable-length parts at their capacity), and go back to it
/// when the batch is dropped: the next batch of the same shape creates no buffer and, since the same
/// buffers come back, no bind group either.
pub struct Batch {
    pub b: usize,
    pub t: usize,
    ids: GpuBuf,
    types: GpuBuf,
    pos: GpuBuf,
    /// (B, T) additive: 0 for tokens, -inf for padding.
    mask: GpuBuf,
    g_ids: EmbeddingGrouping,
    g_types: EmbeddingGrouping,
    g_pos: EmbeddingGrouping,
    /// Row b*T of each sequence: its [CLS] token.
    cls_rows: GpuBuf,
    g_cls: EmbeddingGrouping,
    /// MLM: the M rows predicted, their labels, and the row grouping for the backward (buffers of
    /// capacity B*T).
    pub m: usize,
    mlm_rows: Option<GpuBuf>,
    mlm_labels: Option<GpuBuf>,
    g_mlm: Option<EmbeddingGrouping>,
    /// The predicted rows on the host, for masked-token prediction.
    pub mlm_row_ids: Vec<u32>,
    sop_labels: Option<GpuBuf>,
    cls_labels: Option<GpuBuf>,
    /// (B, T) attention mask on the host, for the mean-pooling matrix.
    attention_mask: Vec<u32>,
    /// The mean-pooling matrix (B, B*T), made on first use by a model with [`Pooling::Mean`].
    pool: std::cell::OnceCell<GpuBuf>,
    recycler: crate::gpu::Recycler,
}

impl Drop for Batch {
    fn drop(&mut self) {
        let r = &self.recycler;
        for (role, b) in [("ids", &self.ids), ("types", &self.types), ("pos", &self.pos), ("mask", &self.mask), ("cls_rows", &self.cls_rows)] {
            r.give_back(role, b);
        }
        let groupings = [("ids", Some(&self.g_ids)), ("types", Some(&self.g_types)), ("pos", Some(&self.g_pos)), ("cls", Some(&self.g_cls)), ("mlm", self.g_mlm.as_ref())];
        for (of, g) in groupings {
            if let Some(g) = g {
                for (part, b) in [("uniq", &g.uniq), ("starts", &g.starts), ("order", &g.pos)] {
                    r.give_back(&grouping_role(of, part), b);
                }
            }
        }
        let rest = [("mlm_rows", &self.mlm_rows), ("mlm_labels", &self.mlm_labels), ("sop", &self.sop_labels), ("cls", &self.cls_labels)];
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

/// The recycling role of one part of a batch's embedding grouping (see `Batch::drop`).
fn grouping_role(of: &str, part: &str) -> String {
    format!("{of}.grouping.{part}")
}

impl Batch {
    /// `ids`, `types`, `attention_mask` are (B, T) row-major; `mlm_labels` is (B, T) with -100 where
    /// nothing is predicted; `sop_labels` and `cls_labels` are (B).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        cfg: &BertConfig,
        b: usize,
        t: usize,
        ids: &[u32],
        types: &[u32],
        attention_mask: &[u32],
        mlm_labels: Option<&[i32]>,
        sop_labels: Option<&[i32]>,
        cls_labels: Option<&[i32]>,
    ) -> Result<Batch, Error> {
        let n = b * t;
        if ids.len() != n || types.len() != n || attention_mask.len() != n {
            return Err(format!("batch of {b}x{t} needs {n} ids, types and mask values").into());
        }
        if t > cfg.max_position_embeddings {
            return Err(format!("sequences of {t} tokens exceed the model's {} positions", cfg.max_position_embeddings).into());
        }
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= cfg.vocab_size) {
            return Err(format!("token id {bad} is outside the vocabulary of {}", cfg.vocab_size).into());
        }
        if let Some(bad) = types.iter().find(|&&i| i as usize >= cfg.type_vocab_size) {
            return Err(format!("token type {bad} is outside the model's {} types", cfg.type_vocab_size).into());
        }
        let e = |x: GpuError| x.to_string();
        // a recycled buffer of `cap` elements holding `data` at its start
        let up_u32 = |label: &str, cap: usize, data: &[u32]| -> Result<GpuBuf, String> {
            let buf = gpu.recycled(label, cap, DType::U32).map_err(e)?;
            gpu.write(&buf, 0, data).map_err(e)?;
            Ok(buf)
        };
        let up_i32 = |label: &str, cap: usize, data: &[i32]| -> Result<GpuBuf, String> {
            let buf = gpu.recycled(label, cap, DType::I32).map_err(e)?;
            gpu.write(&buf, 0, data).map_err(e)?;
            Ok(buf)
        };
        // the CSR grouping of `ids` (of `of`), in buffers of capacity `cap` ids
        let grouping = |of: &str, ids: &[u32], cap: usize| -> Result<EmbeddingGrouping, String> {
            let (uniq, starts, order) = embedding::group_ids(ids);
            Ok(EmbeddingGrouping {
                n_uniq: uniq.len(),
                tokens: ids.len(),
                uniq: up_u32(&grouping_role(of, "uniq"), cap, &uniq)?,
                starts: up_u32(&grouping_role(of, "starts"), cap + 1, &starts)?,
                pos: up_u32(&grouping_role(of, "order"), cap, &order)?,
            })
        };
        let pos: Vec<u32> = (0..n).map(|i| (i % t) as u32).collect();
        let mask: Vec<f32> = attention_mask.iter().map(|&m| if m != 0 { 0.0 } else { f32::NEG_INFINITY }).collect();
        let cls_rows: Vec<u32> = (0..b).map(|i| (i * t) as u32).collect();
        let (mut m, mut mlm_rows, mut mlm_lab, mut g_mlm, mut row_ids) = (0, None, None, None, Vec::new());
        if let Some(labels) = mlm_labels {
            if labels.len() != n {
                return Err(format!("MLM labels: {} values for a {b}x{t} batch", labels.len()).into());
            }
            let rows: Vec<u32> = (0..n as u32).filter(|&i| labels[i as usize] >= 0).collect();
            let lab: Vec<i32> = rows.iter().map(|&i| labels[i as usize]).collect();
            if let Some(bad) = lab.iter().find(|&&l| l as usize >= cfg.vocab_size) {
                return Err(format!("MLM label {bad} is outside the vocabulary of {}", cfg.vocab_size).into());
            }
            m = rows.len();
            if m > 0 {
                mlm_rows = Some(up_u32("mlm_rows", n, &rows)?);
                mlm_lab = Some(up_i32("mlm_labels", n, &lab)?);
                g_mlm = Some(grouping("mlm", &rows, n)?);
            }
            row_ids = rows;
        }
        let labels_buf = |l: Option<&[i32]>, what: &str| -> Result<Option<GpuBuf>, String> {
            match l {
                Some(l) if l.len() != b => Err(format!("{what} labels: {} values for a batch of {b}", l.len()).into()),
                Some(l) => Ok(Some(up_i32(what, b, l)?)),
                None => Ok(None),
            }
        };
        let mask_buf = gpu.recycled("mask", n, DType::F32).map_err(e)?;
        gpu.write(&mask_buf, 0, &mask).map_err(e)?;
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
            mlm_rows,
            mlm_labels: mlm_lab,
            g_mlm,
            mlm_row_ids: row_ids,
            sop_labels: labels_buf(sop_labels, "sop")?,
            cls_labels: labels_buf(cls_labels, "cls")?,
            attention_mask: attention_mask.to_vec(),
            pool: std::cell::OnceCell::new(),
            recycler: gpu.recycler(),
        })
    }

    /// The (B, B*T) mean-pooling matrix, uploaded on first use (only mean-pooling models need it).
    fn pool_matrix(&self, gpu: &Gpu) -> Result<&GpuBuf, GpuError> {
        if self.pool.get().is_none() {
            let buf = gpu.recycled("pool", self.b * self.b * self.t, DType::F32)?;
            gpu.write(&buf, 0, &mean_pool_matrix(self.b, self.t, &self.attention_mask))?;
            let _ = self.pool.set(buf);
        }
        Ok(self.pool.get().unwrap())
    }
}

/// A fused projection's weight and bias, and their gradients when trainable.
struct Fused {
    w: GpuBuf,
    b: GpuBuf,
    dw: Option<GpuBuf>,
    db: Option<GpuBuf>,
}

/// Saved activations of one encoder layer.
struct LayerActs {
    qkv: GpuBuf,
    probs: GpuBuf,
    probs_d: GpuBuf,
    ctx: GpuBuf,
    res1: GpuBuf,
    h1: GpuBuf,
    mean1: GpuBuf,
    rstd1: GpuBuf,
    inter_pre: GpuBuf,
    inter: GpuBuf,
    res2: GpuBuf,
    mean2: GpuBuf,
    rstd2: GpuBuf,
}

/// Activations and scratch for one (B, T), allocated once and reused.
struct Acts {
    /// Capacity: the largest batch and sequence length the buffers hold.
    b: usize,
    t: usize,
    emb: GpuBuf,
    emb_mean: GpuBuf,
    emb_rstd: GpuBuf,
    /// A GPT-2 body's final LayerNorm (`ln_f`): output, mean and rstd (one element each for BERT).
    fin: GpuBuf,
    fin_mean: GpuBuf,
    fin_rstd: GpuBuf,
    /// x[0] = embeddings output, x[l + 1] = output of layer l.
    x: Vec<GpuBuf>,
    layers: Vec<LayerActs>,
    // scratch (B*T, C) / (B*T, I) / (B, H, T, T) / (B, H, T, D)
    lin: GpuBuf,
    lin2: GpuBuf,
    scores: GpuBuf,
    d_x: GpuBuf,
    d_h1: GpuBuf,
    d_res: GpuBuf,
    d_tmp: GpuBuf,
    d_inter: GpuBuf,
    d_inter2: GpuBuf,
    dqkv: GpuBuf,
    dprobs: GpuBuf,
    dscores: GpuBuf,
    ln_scratch: GpuBuf,
    // pooler / sentence heads (B, C), (B, 2), (B, L)
    cls_x: GpuBuf,
    pooled_pre: GpuBuf,
    pooled: GpuBuf,
    pooled_d: GpuBuf,
    d_pooled: GpuBuf,
    d_pooled_pre: GpuBuf,
    d_cls_x: GpuBuf,
    mean: GpuBuf,
    d_mean: GpuBuf,
    sop_logits: GpuBuf,
    d_sop_logits: GpuBuf,
    cls_logits: GpuBuf,
    d_cls_logits: GpuBuf,
    ce_rows: GpuBuf,
    pub(crate) stats: [GpuBuf; 3],
}

/// MLM-head buffers for up to `cap` predicted rows.
struct MlmActs {
    cap: usize,
    x: GpuBuf,
    pre: GpuBuf,
    act: GpuBuf,
    ln: GpuBuf,
    mean: GpuBuf,
    rstd: GpuBuf,
    logits: GpuBuf,
    d_logits: GpuBuf,
    d_ln: GpuBuf,
    d_act: GpuBuf,
    d_x: GpuBuf,
    ce_rows: GpuBuf,
}

/// The loss statistics of a step on their way back (see [`Bert::record_loss_readback`]).
pub struct LossReadback(crate::gpu::Readback);

/// Mean losses of the last forward (0 for a head not used).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Losses {
    pub mlm: f32,
    pub mlm_count: f32,
    pub sop: f32,
    pub cls: f32,
    /// Accuracy of the batch's predictions (argmax = label) per head.
    pub mlm_acc: f32,
    pub sop_acc: f32,
    pub cls_acc: f32,
}

impl Losses {
    pub fn total(&self) -> f32 {
        self.mlm + self.sop + self.cls
    }
}

pub struct Bert {
    pub cfg: BertConfig,
    pub heads: Heads,
    pub params: ParamStore,
    acts: Option<Acts>,
    mlm_acts: Option<MlmActs>,
    /// Dropout on in training steps (off for parity tests and inference).
    pub dropout: bool,
    pub opt_state: Option<AdamWState>,
    /// What the classification head reads.
    pub pooling: Pooling,
}

const STAT_MLM: usize = 0;
const STAT_SOP: usize = 1;
const STAT_CLS: usize = 2;

fn lname(l: usize, rest: &str) -> String {
    format!("encoder.layer.{l}.{rest}")
}

impl Bert {
    /// A model with `cfg` and `heads`, its weights from `file` where present (HF names) and BERT's
    /// initialisation elsewhere.
    pub fn new(gpu: &Gpu, cfg: BertConfig, heads: Heads, file: Option<&SafeTensors>, seed: u64) -> Result<(Bert, super::LoadReport), Error> {
        cfg.validate()?;
        if cfg.body == Body::Gpt2 && (heads.sop || heads.num_labels > 0) {
            return Err("this is a GPT-2 model, a causal language model with only its next-word head: it has no sentence-order or classification head. Classifying texts and masked or sentence-order pretraining need a BERT; a GPT-2 pretrains further on next words (objective causal)".into());
        }
        // a GPT-2's LM head is its word embeddings: it always has one
        let heads = if cfg.body == Body::Gpt2 { Heads { mlm: true, ..heads } } else { heads };
        let names = tensor_names(&cfg, heads.mlm, heads.sop, heads.num_labels);
        let (params, report) = ParamStore::load(gpu, &names, file, seed)?;
        Ok((Bert { cfg, heads, params, acts: None, mlm_acts: None, dropout: false, opt_state: None, pooling: Pooling::Cls }, report))
    }

    fn ensure_acts(&mut self, gpu: &Gpu, b: usize, t: usize, m: usize) -> Result<(), GpuError> {
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
        if self.heads.mlm && m > 0 && self.mlm_acts.as_ref().map(|a| a.cap < m).unwrap_or(true) {
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

    fn seed(&self, base: u64, site: u64) -> u64 {
        base ^ site.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// Layer `l`'s query, key and value projections as one (3C, C) weight and (3C) bias: views that
    /// span the three tensors, which the arena layout keeps side by side.
    fn qkv(&self, l: usize) -> Result<Fused, GpuError> {
        let names = |part: &str| ["query", "key", "value"].map(|n| lname(l, &format!("attention.self.{n}.{part}")));
        let (w, dw) = self.params.fused(&names("weight")).map_err(GpuError::Shape)?;
        let (b, db) = self.params.fused(&names("bias")).map_err(GpuError::Shape)?;
        Ok(Fused { w, b, dw, db })
    }

    /// y (rows, out) = x (rows, inp) @ W^T + b for the linear layer `name` (torch layout (out, inp)).
    fn linear(&self, step: &mut Step, y: &GpuBuf, x: &GpuBuf, name: &str, rows: usize, out: usize, inp: usize) -> Result<(), GpuError> {
        let p = &self.params;
        Matmul::new(rows, out, inp).trans_b().record(step, y, x, p.w(&format!("{name}.weight")), Some(p.w(&format!("{name}.bias"))))
    }

    /// The backward of `linear`: dW += dy^T x and db += sum(dy) when trainable; dx = (or +=) dy W.
    #[allow(clippy::too_many_arguments)]
    fn linear_backward(&self, step: &mut Step, dx: Option<(&GpuBuf, bool)>, dy: &GpuBuf, x: &GpuBuf, name: &str, rows: usize, out: usize, inp: usize) -> Result<(), GpuError> {
        let p = &self.params;
        let wn = format!("{name}.weight");
        if let Some(dw) = p.grad(&wn) {
            Matmul::new(out, inp, rows).trans_a().accumulate().record(step, dw, dy, x, None)?;
        }
        if let Some(db) = p.grad(&format!("{name}.bias")) {
            elementwise::bias_grad(step, db, dy, rows, out)?;
        }
        if let Some((dx, acc)) = dx {
            let mut mm = Matmul::new(rows, inp, out);
            mm.accumulate = acc;
            mm.record(step, dx, dy, p.w(&wn), None)?;
        }
        Ok(())
    }

    fn ln_forward(&self, step: &mut Step, y: &GpuBuf, mean: &GpuBuf, rstd: &GpuBuf, x: &GpuBuf, name: &str, rows: usize) -> Result<(), GpuError> {
        let p = &self.params;
        let eps = self.cfg.layer_norm_eps as f32;
        layernorm::forward(step, y, mean, rstd, x, p.w(&format!("{name}.weight")), p.w(&format!("{name}.bias")), LnParams::default(), rows, self.cfg.hidden_size, eps)
    }

    #[allow(clippy::too_many_arguments)]
    fn ln_backward(&self, step: &mut Step, dx: &GpuBuf, dy: &GpuBuf, x: &GpuBuf, mean: &GpuBuf, rstd: &GpuBuf, name: &str, rows: usize, accumulate: bool, scratch: &GpuBuf) -> Result<(), GpuError> {
        let p = &self.params;
        let wn = format!("{name}.weight");
        let dg = p.grad(&wn).unwrap_or(scratch);
        let db = p.grad(&format!("{name}.bias")).unwrap_or(scratch);
        layernorm::backward(step, dx, dg, db, dy, x, mean, rstd, p.w(&wn), LnParams::default(), rows, self.cfg.hidden_size, accumulate)
    }

    /// y = layernorm(res), res = skip + dropout(branch) written too: one dispatch.
    #[allow(clippy::too_many_arguments)]
    fn ln_residual(&self, step: &mut Step, y: &GpuBuf, mean: &GpuBuf, rstd: &GpuBuf, res: &GpuBuf, skip: &GpuBuf, branch: &GpuBuf, drop: Dropout, name: &str, rows: usize) -> Result<(), GpuError> {
        let p = &self.params;
        let eps = self.cfg.layer_norm_eps as f32;
        let (g, b) = (p.w(&format!("{name}.weight")), p.w(&format!("{name}.bias")));
        layernorm::forward_residual(step, y, mean, rstd, res, skip, branch, drop, g, b, LnParams::default(), rows, self.cfg.hidden_size, eps)
    }

    /// [`Bert::ln_backward`] (not accumulating) that also writes dropout(dx) into `dxd`.
    #[allow(clippy::too_many_arguments)]
    fn ln_backward_dropped(&self, step: &mut Step, dx: &GpuBuf, dxd: Option<(&GpuBuf, Dropout)>, dy: &GpuBuf, x: &GpuBuf, mean: &GpuBuf, rstd: &GpuBuf, name: &str, rows: usize, scratch: &GpuBuf) -> Result<(), GpuError> {
        let p = &self.params;
        let wn = format!("{name}.weight");
        let dg = p.grad(&wn).unwrap_or(scratch);
        let db = p.grad(&format!("{name}.bias")).unwrap_or(scratch);
        layernorm::backward_dropped(step, dx, dxd, None, dg, db, dy, x, mean, rstd, p.w(&wn), LnParams::default(), rows, self.cfg.hidden_size, false)
    }

    /// Whether any parameter named with one of `prefixes` is trainable.
    fn any_trainable(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.params.params.iter().any(|p| p.trainable && pred(&p.name))
    }

    /// Records the forward pass and the losses of every head that has targets in `batch`.
    /// `seed` drives dropout (used only when `self.dropout`).
    pub fn forward(&mut self, gpu: &Gpu, step: &mut Step, batch: &Batch, seed: u64) -> Result<(), Error> {
        self.ensure_acts(gpu, batch.b, batch.t, batch.m)?;
        if self.pooling == Pooling::Mean && self.heads.num_labels > 0 {
            batch.pool_matrix(gpu)?;
        }
        Ok(self.record_forward(step, batch, seed)?)
    }

    fn record_forward(&self, step: &mut Step, batch: &Batch, seed: u64) -> Result<(), GpuError> {
        if self.cfg.body == Body::Gpt2 {
            return self.record_forward_gpt2(step, batch, seed);
        }
        let a = self.acts.as_ref().unwrap();
        let cfg = &self.cfg;
        let (b, t, c, i, h) = (batch.b, batch.t, cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads);
        let d = c / h;
        let bt = b * t;
        let p = &self.params;
        let hp = if self.dropout { cfg.hidden_dropout_prob } else { 0.0 };
        let ap = if self.dropout { cfg.attention_probs_dropout_prob } else { 0.0 };

        // embeddings: word + position + token type, layernorm, dropout
        embedding::forward(step, &a.emb, &batch.ids, p.w("embeddings.word_embeddings.weight"), 0, bt, c, cfg.vocab_size, false)?;
        embedding::forward(step, &a.emb, &batch.pos, p.w("embeddings.position_embeddings.weight"), 0, bt, c, cfg.max_position_embeddings, true)?;
        embedding::forward(step, &a.emb, &batch.types, p.w("embeddings.token_type_embeddings.weight"), 0, bt, c, cfg.type_vocab_size, true)?;
        // layernorm and dropout in one kernel
        let name = "embeddings.LayerNorm";
        let (g, be) = (p.w(&format!("{name}.weight")), p.w(&format!("{name}.bias")));
        let drop = Dropout::new(hp, self.seed(seed, 1));
        layernorm::forward_dropped(step, &a.x[0], &a.emb_mean, &a.emb_rstd, &a.emb, drop, g, be, LnParams::default(), bt, c, cfg.layer_norm_eps as f32)?;

        let heads = crate::kernels::attention::Heads { b, t, h, d };
        for l in 0..cfg.num_hidden_layers {
            let la = &a.layers[l];
            let x = &a.x[l];
            // one projection to (B*T, 3C): the query, key and value weights side by side
            let qkv = self.qkv(l)?;
            Matmul::new(bt, 3 * c, c).trans_b().record(step, &la.qkv, x, &qkv.w, Some(&qkv.b))?;
            // scores = q k^T; probs = softmax(scores / sqrt(D) + mask); ctx = dropout(probs) v
            heads.scores(step, &a.scores, &la.qkv)?;
            let scale = 1.0 / (d as f32).sqrt();
            let mask = Some((&batch.mask, h * t));
            // a decoder's attention sees only the tokens up to its own (the triangle is computed
            // in the kernel; the padding mask still applies)
            let causal = cfg.is_decoder;
            let probs_used = if ap > 0.0 {
                let drop = Dropout::new(ap, self.seed(seed, 100 + 10 * l as u64));
                softmax::record_forward(RowKernel::Auto, step, &la.probs, Some((&la.probs_d, drop)), &a.scores, mask, causal, b * h * t, t, scale)?;
                &la.probs_d
            } else {
                softmax::record_forward(RowKernel::Auto, step, &la.probs, None, &a.scores, mask, causal, b * h * t, t, scale)?;
                &la.probs
            };
            heads.context(step, &la.ctx, probs_used, &la.qkv)?;
            // attention output: dense, then dropout, residual and layernorm in one kernel
            self.linear(step, &a.lin, &la.ctx, &lname(l, "attention.output.dense"), bt, c, c)?;
            let drop1 = Dropout::new(hp, self.seed(seed, 101 + 10 * l as u64));
            self.ln_residual(step, &la.h1, &la.mean1, &la.rstd1, &la.res1, x, &a.lin, drop1, &lname(l, "attention.output.LayerNorm"), bt)?;
            // feed-forward: dense + GELU, dense, then dropout, residual and layernorm
            self.linear(step, &la.inter_pre, &la.h1, &lname(l, "intermediate.dense"), bt, i, c)?;
            gelu::forward(step, cfg.gelu(), &la.inter, &la.inter_pre, bt * i)?;
            self.linear(step, &a.lin, &la.inter, &lname(l, "output.dense"), bt, c, i)?;
            let drop2 = Dropout::new(hp, self.seed(seed, 102 + 10 * l as u64));
            self.ln_residual(step, &a.x[l + 1], &la.mean2, &la.rstd2, &la.res2, &la.h1, &a.lin, drop2, &lname(l, "output.LayerNorm"), bt)?;
        }
        let last = &a.x[cfg.num_hidden_layers];

        // pooler on [CLS]: tanh(dense(x[b*T]))
        let mean = self.pooling == Pooling::Mean;
        if self.heads.sop || (self.heads.num_labels > 0 && !mean) {
            embedding::forward(step, &a.cls_x, &batch.cls_rows, last, 0, b, c, bt, false)?;
            self.linear(step, &a.pooled_pre, &a.cls_x, "pooler.dense", b, c, c)?;
            elementwise::tanh_forward(step, &a.pooled, &a.pooled_pre, b * c)?;
        }
        if self.heads.sop {
            self.linear(step, &a.sop_logits, &a.pooled, "cls.seq_relationship", b, 2, c)?;
            if let Some(lab) = &batch.sop_labels {
                cross_entropy::forward(step, &a.stats[STAT_SOP], &a.ce_rows, &a.sop_logits, lab, b, 2)?;
            }
        }
        if self.heads.num_labels > 0 {
            let nl = self.heads.num_labels;
            let src = if mean {
                Matmul::new(b, c, bt).record(step, &a.mean, batch.pool.get().ok_or_else(|| GpuError::Shape("mean pooling without its matrix".into()))?, last, None)?;
                &a.mean
            } else {
                &a.pooled
            };
            let pooled = if hp > 0.0 {
                dropout::apply(step, &a.pooled_d, src, b * c, hp, self.seed(seed, 3))?;
                &a.pooled_d
            } else {
                src
            };
            self.linear(step, &a.cls_logits, pooled, "classifier", b, nl, c)?;
            if let Some(lab) = &batch.cls_labels {
                cross_entropy::forward(step, &a.stats[STAT_CLS], &a.ce_rows, &a.cls_logits, lab, b, nl)?;
            }
        }
        // masked LM, only at the M predicted rows: transform (dense, GELU, layernorm), then the
        // decoder tied to the word embeddings plus the output bias
        if let (true, Some(rows), Some(ma)) = (self.heads.mlm, &batch.mlm_rows, &self.mlm_acts) {
            let m = batch.m;
            embedding::forward(step, &ma.x, rows, last, 0, m, c, bt, false)?;
            self.linear(step, &ma.pre, &ma.x, "cls.predictions.transform.dense", m, c, c)?;
            gelu::forward(step, cfg.gelu(), &ma.act, &ma.pre, m * c)?;
            self.ln_forward(step, &ma.ln, &ma.mean, &ma.rstd, &ma.act, "cls.predictions.transform.LayerNorm", m)?;
            let v = cfg.vocab_size;
            Matmul::new(m, v, c).trans_b().record(step, &ma.logits, &ma.ln, p.w("embeddings.word_embeddings.weight"), Some(p.w("cls.predictions.bias")))?;
            if let Some(lab) = &batch.mlm_labels {
                cross_entropy::forward(step, &a.stats[STAT_MLM], &ma.ce_rows, &ma.logits, lab, m, v)?;
            }
        }
        Ok(())
    }

    /// Records the backward of the summed losses into the trainable parameters' gradients (which
    /// the caller zeroes). Frozen parameters get no gradient work, and layers below the lowest
    /// trainable parameter get no backward at all.
    pub fn backward(&self, step: &mut Step, batch: &Batch, seed: u64) -> Result<(), Error> {
        Ok(self.record_backward(step, batch, seed)?)
    }

    fn record_backward(&self, step: &mut Step, batch: &Batch, seed: u64) -> Result<(), GpuError> {
        if self.cfg.body == Body::Gpt2 {
            return self.record_backward_gpt2(step, batch, seed);
        }
        let a = self.acts.as_ref().ok_or_else(|| GpuError::Shape("backward before forward".into()))?;
        let cfg = &self.cfg;
        let (b, t, c, i, h) = (batch.b, batch.t, cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads);
        let d = c / h;
        let bt = b * t;
        let nl_layers = cfg.num_hidden_layers;
        let p = &self.params;
        let hp = if self.dropout { cfg.hidden_dropout_prob } else { 0.0 };
        let ap = if self.dropout { cfg.attention_probs_dropout_prob } else { 0.0 };
        let last = &a.x[nl_layers];
        // does anything below layer l (or in it) need gradients?
        let emb_trainable = self.any_trainable(|n| n.starts_with("embeddings."));
        let layer_trainable: Vec<bool> = (0..nl_layers).map(|l| self.any_trainable(|n| n.starts_with(&format!("encoder.layer.{l}.")))).collect();
        let need_below = |l: usize| emb_trainable || layer_trainable[..l].iter().any(|&x| x);
        let encoder_needs_grad = need_below(nl_layers);

        // d_x holds dLoss/d last hidden state; heads scatter-add into it
        if encoder_needs_grad {
            step.clear(&a.d_x);
        }
        if let (true, Some(ma), Some(lab), Some(g)) = (self.heads.mlm, &self.mlm_acts, &batch.mlm_labels, &batch.g_mlm) {
            let (m, v) = (batch.m, cfg.vocab_size);
            cross_entropy::backward(step, &ma.d_logits, &ma.logits, lab, &a.stats[STAT_MLM], m, v, 1.0)?;
            let word = "embeddings.word_embeddings.weight";
            if let Some(dw) = p.grad(word) {
                Matmul::new(v, c, m).trans_a().accumulate().record(step, dw, &ma.d_logits, &ma.ln, None)?;
            }
            if let Some(db) = p.grad("cls.predictions.bias") {
                elementwise::bias_grad(step, db, &ma.d_logits, m, v)?;
            }
            Matmul::new(m, c, v).record(step, &ma.d_ln, &ma.d_logits, p.w(word), None)?;
            self.ln_backward(step, &ma.d_act, &ma.d_ln, &ma.act, &ma.mean, &ma.rstd, "cls.predictions.transform.LayerNorm", m, false, &a.ln_scratch)?;
            gelu::backward(step, cfg.gelu(), &ma.d_ln, &ma.pre, &ma.d_act, m * c)?;
            let dx = encoder_needs_grad.then_some((&ma.d_x, false));
            self.linear_backward(step, dx, &ma.d_ln, &ma.x, "cls.predictions.transform.dense", m, c, c)?;
            if encoder_needs_grad {
                embedding::backward(step, &a.d_x, 0, &ma.d_x, g, c, bt)?;
            }
        }
        let mean = self.pooling == Pooling::Mean;
        let cls_used = self.heads.num_labels > 0 && batch.cls_labels.is_some();
        if mean && cls_used {
            // classifier on the masked mean: d_mean = dropout(W^T d_logits); d_x += P^T d_mean
            let nl = self.heads.num_labels;
            cross_entropy::backward(step, &a.d_cls_logits, &a.cls_logits, lab_of(&batch.cls_labels), &a.stats[STAT_CLS], b, nl, 1.0)?;
            let input = if hp > 0.0 { &a.pooled_d } else { &a.mean };
            if hp > 0.0 {
                self.linear_backward(step, encoder_needs_grad.then_some((&a.d_pooled_pre, false)), &a.d_cls_logits, input, "classifier", b, nl, c)?;
                if encoder_needs_grad {
                    dropout::apply(step, &a.d_mean, &a.d_pooled_pre, b * c, hp, self.seed(seed, 3))?;
                }
            } else {
                self.linear_backward(step, encoder_needs_grad.then_some((&a.d_mean, false)), &a.d_cls_logits, input, "classifier", b, nl, c)?;
            }
            if encoder_needs_grad {
                Matmul::new(bt, c, b).trans_a().accumulate().record(step, &a.d_x, batch.pool.get().ok_or_else(|| GpuError::Shape("mean pooling without its matrix".into()))?, &a.d_mean, None)?;
            }
        }
        let pooled_used = self.heads.sop && batch.sop_labels.is_some() || (cls_used && !mean);
        if pooled_used {
            step.clear(&a.d_pooled);
            if let (true, Some(lab)) = (self.heads.sop, &batch.sop_labels) {
                cross_entropy::backward(step, &a.d_sop_logits, &a.sop_logits, lab, &a.stats[STAT_SOP], b, 2, 1.0)?;
                self.linear_backward(step, Some((&a.d_pooled, true)), &a.d_sop_logits, &a.pooled, "cls.seq_relationship", b, 2, c)?;
            }
            if let (true, Some(lab)) = (self.heads.num_labels > 0 && !mean, &batch.cls_labels) {
                let nl = self.heads.num_labels;
                cross_entropy::backward(step, &a.d_cls_logits, &a.cls_logits, lab, &a.stats[STAT_CLS], b, nl, 1.0)?;
                let pooled = if hp > 0.0 { &a.pooled_d } else { &a.pooled };
                if hp > 0.0 {
                    self.linear_backward(step, Some((&a.d_pooled_pre, false)), &a.d_cls_logits, pooled, "classifier", b, nl, c)?;
                    dropout::apply(step, &a.d_cls_x, &a.d_pooled_pre, b * c, hp, self.seed(seed, 3))?;
                    elementwise::add(step, &a.d_pooled_pre, &a.d_pooled, &a.d_cls_x, b * c)?;
                    step.copy(&a.d_pooled_pre, 0, &a.d_pooled, 0, b * c)?;
                } else {
                    self.linear_backward(step, Some((&a.d_pooled, true)), &a.d_cls_logits, pooled, "classifier", b, nl, c)?;
                }
            }
            let pooler_needs = encoder_needs_grad || self.any_trainable(|n| n.starts_with("pooler."));
            if pooler_needs {
                elementwise::tanh_backward(step, &a.d_pooled_pre, &a.pooled, &a.d_pooled, b * c)?;
                let dx = encoder_needs_grad.then_some((&a.d_cls_x, false));
                self.linear_backward(step, dx, &a.d_pooled_pre, &a.cls_x, "pooler.dense", b, c, c)?;
                if encoder_needs_grad {
                    embedding::backward(step, &a.d_x, 0, &a.d_cls_x, &batch.g_cls, c, bt)?;
                }
            }
        }
        if !encoder_needs_grad {
            return Ok(());
        }
        let _ = last;

        let heads = crate::kernels::attention::Heads { b, t, h, d };
        let scale = 1.0 / (d as f32).sqrt();
        // d_x: gradient w.r.t. the current layer's output, then its input
        for l in (0..nl_layers).rev() {
            if !layer_trainable[l] && !need_below(l) {
                continue;
            }
            let la = &a.layers[l];
            let x = &a.x[l];
            // output layernorm -> d_res (gradient at res2 = o + h1) and, through the residual
            // branch's dropout, d_o = dropout(d_res) in the same kernel
            let drop2 = (hp > 0.0).then(|| (&a.d_tmp, Dropout::new(hp, self.seed(seed, 102 + 10 * l as u64))));
            self.ln_backward_dropped(step, &a.d_res, drop2, &a.d_x, &la.res2, &la.mean2, &la.rstd2, &lname(l, "output.LayerNorm"), bt, &a.ln_scratch)?;
            // residual: d_h1 = d_res
            step.copy(&a.d_res, 0, &a.d_h1, 0, bt * c)?;
            let d_o = if hp > 0.0 { &a.d_tmp } else { &a.d_res };
            self.linear_backward(step, Some((&a.d_inter, false)), d_o, &la.inter, &lname(l, "output.dense"), bt, c, i)?;
            // GELU: d_inter2 = d(inter_pre)
            gelu::backward(step, cfg.gelu(), &a.d_inter2, &la.inter_pre, &a.d_inter, bt * i)?;
            self.linear_backward(step, Some((&a.d_h1, true)), &a.d_inter2, &la.h1, &lname(l, "intermediate.dense"), bt, i, c)?;
            // attention output layernorm -> d_res (gradient at res1 = a + x), d_a = dropout(d_res)
            let drop1 = (hp > 0.0).then(|| (&a.d_tmp, Dropout::new(hp, self.seed(seed, 101 + 10 * l as u64))));
            self.ln_backward_dropped(step, &a.d_res, drop1, &a.d_h1, &la.res1, &la.mean1, &la.rstd1, &lname(l, "attention.output.LayerNorm"), bt, &a.ln_scratch)?;
            let d_a = if hp > 0.0 { &a.d_tmp } else { &a.d_res };
            // d_ctx (B*T, C) in lin2; the residual's d_x = d_res is added below
            self.linear_backward(step, Some((&a.lin2, false)), d_a, &la.ctx, &lname(l, "attention.output.dense"), bt, c, c)?;
            // ctx = P' v (P' = dropout(P)): dP' = dctx v^T; dv = P'^T dctx; the softmax backward
            // takes dP' back through the dropout
            let probs_used = if ap > 0.0 { &la.probs_d } else { &la.probs };
            heads.context_backward(step, &a.dqkv, &a.dprobs, &a.lin2, &la.qkv, probs_used)?;
            if ap > 0.0 {
                softmax::backward_dropped(step, &a.dscores, &la.probs, &a.dprobs, Dropout::new(ap, self.seed(seed, 100 + 10 * l as u64)), b * h * t, t, scale)?;
            } else {
                softmax::backward(step, &a.dscores, &la.probs, &a.dprobs, b * h * t, t, scale)?;
            }
            heads.scores_backward(step, &a.dqkv, &a.dscores, &la.qkv)?;
            // the input's gradient: residual path plus the three projections
            let input_needed = need_below(l);
            if input_needed {
                step.copy(&a.d_res, 0, &a.d_x, 0, bt * c)?;
            }
            let qkv = self.qkv(l)?;
            if let Some(dw) = &qkv.dw {
                Matmul::new(3 * c, c, bt).trans_a().accumulate().record(step, dw, &a.dqkv, x, None)?;
            }
            if let Some(db) = &qkv.db {
                elementwise::bias_grad(step, db, &a.dqkv, bt, 3 * c)?;
            }
            if input_needed {
                Matmul::new(bt, c, 3 * c).accumulate().record(step, &a.d_x, &a.dqkv, &qkv.w, None)?;
            }
        }
        if emb_trainable {
            // the layernorm's backward takes d_x through the embeddings' dropout first
            let name = "embeddings.LayerNorm";
            let wn = format!("{name}.weight");
            let dg = p.grad(&wn).unwrap_or(&a.ln_scratch);
            let db = p.grad(&format!("{name}.bias")).unwrap_or(&a.ln_scratch);
            let drop = (hp > 0.0).then(|| Dropout::new(hp, self.seed(seed, 1)));
            layernorm::backward_dropped(step, &a.d_h1, None, drop, dg, db, &a.d_x, &a.emb, &a.emb_mean, &a.emb_rstd, p.w(&wn), LnParams::default(), bt, c, false)?;
            for (name, g, rows) in [
                ("embeddings.word_embeddings.weight", &batch.g_ids, cfg.vocab_size),
                ("embeddings.position_embeddings.weight", &batch.g_pos, cfg.max_position_embeddings),
                ("embeddings.token_type_embeddings.weight", &batch.g_types, cfg.type_vocab_size),
            ] {
                if let Some(dw) = p.grad(name) {
                    embedding::backward(step, dw, 0, &a.d_h1, g, c, rows)?;
                }
            }
        }
        Ok(())
    }

    /// Zeroes every trainable gradient (start of a training step): one clear per run of trainable
    /// tensors.
    pub fn zero_grads(&self, step: &mut Step) {
        for (a, off, len) in self.params.trainable_runs() {
            if let Some(g) = &self.params.arenas[a].grad {
                step.clear(&g.view(off, len));
            }
        }
    }

    /// AdamW over every trainable parameter, with HF's weight-decay groups: one norm dispatch and one
    /// update dispatch per run of consecutive trainable tensors in an arena.
    pub fn optimizer_step(&mut self, gpu: &Gpu, step: &mut Step, opt: &AdamW, lr: f32, weight_decay: f32) -> Result<(), Error> {
        let e = |x: GpuError| Error::from(x);
        let slots = self.params.adamw_slots();
        if self.opt_state.as_ref().map(|s| s.partials.len < slots).unwrap_or(true) {
            let state = AdamWState::new(gpu, slots).map_err(e)?;
            if let Some(old) = &self.opt_state {
                // keep the step counter and skip totals of a run whose trainable set grew
                step.copy(&old.state, 0, &state.state, 0, old.state.len).map_err(e)?;
            }
            self.opt_state = Some(state);
        }
        let slices = self.params.adamw_slices(weight_decay);
        opt.record(step, self.opt_state.as_ref().unwrap(), &slices, lr).map_err(e)
    }

    /// Records copies of the three loss statistics; read them after submit with [`Bert::read_losses`].
    pub fn record_loss_readback(&self, step: &mut Step) -> Result<LossReadback, Error> {
        self.record_loss_readback_with(step, &[])
    }

    /// The three loss statistics and then the ranges `extra` (e.g. AdamW's skip flag), in one
    /// readback: a training step maps one buffer.
    pub fn record_loss_readback_with(&self, step: &mut Step, extra: &[(&GpuBuf, usize, usize)]) -> Result<LossReadback, Error> {
        let a = self.acts.as_ref().ok_or("no forward recorded")?;
        let mut parts: Vec<(&GpuBuf, usize, usize)> = a.stats.iter().map(|s| (s, 0, 3)).collect();
        parts.extend_from_slice(extra);
        Ok(LossReadback(step.read_back_parts(&parts)?))
    }

    pub async fn read_losses(gpu: &Gpu, rb: LossReadback) -> Result<Losses, Error> {
        Ok(Self::read_losses_and_extra(gpu, rb).await?.0)
    }

    /// The losses and the values of the `extra` ranges, in order.
    pub async fn read_losses_and_extra(gpu: &Gpu, rb: LossReadback) -> Result<(Losses, Vec<f32>), Error> {
        let v = rb.0.f32(gpu).await?;
        let l = Losses { mlm: v[0], mlm_count: v[1], sop: v[3], cls: v[6], mlm_acc: v[2], sop_acc: v[5], cls_acc: v[8] };
        Ok((l, v[9..].to_vec()))
    }

    /// Buffers of the last forward, for tests, prediction and visualisation.
    pub fn last_hidden(&self) -> Option<&GpuBuf> {
        // a GPT-2's last hidden state is after its final LayerNorm (as transformers' GPT2Model's)
        self.acts.as_ref().map(|a| if self.cfg.body == Body::Gpt2 { &a.fin } else { &a.x[self.cfg.num_hidden_layers] })
    }
    pub fn attention_probs(&self, layer: usize) -> Option<&GpuBuf> {
        self.acts.as_ref().and_then(|a| a.layers.get(layer)).map(|l| &l.probs)
    }
    pub fn mlm_logits(&self) -> Option<&GpuBuf> {
        self.mlm_acts.as_ref().map(|m| &m.logits)
    }
    pub fn sop_logits(&self) -> Option<&GpuBuf> {
        self.acts.as_ref().map(|a| &a.sop_logits)
    }
    pub fn cls_logits(&self) -> Option<&GpuBuf> {
        self.acts.as_ref().map(|a| &a.cls_logits)
    }
    pub fn loss_stats(&self) -> Option<&[GpuBuf; 3]> {
        self.acts.as_ref().map(|a| &a.stats)
    }
}

fn lab_of(l: &Option<GpuBuf>) -> &GpuBuf {
    l.as_ref().expect("labels checked by the caller")
}

/// Softmax of each row of `nl` logits.
pub fn softmax_rows(logits: &[f32], nl: usize) -> Vec<Vec<f32>> {
    logits
        .chunks(nl)
        .map(|row| {
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = row.iter().map(|x| (x - m).exp()).collect();
            let s: f32 = e.iter().sum();
            e.into_iter().map(|x| x / s).collect()
        })
        .collect()
}

/// Top-k (token id, probability) for one predicted row of logits.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let m = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = logits.iter().map(|&x| ((x - m) as f64).exp()).sum();
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(idx.len());
    idx.select_nth_unstable_by(k.saturating_sub(1), |&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    idx.truncate(k);
    idx.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    idx.into_iter().map(|i| (i, (((logits[i as usize] - m) as f64).exp() / z) as f32)).collect()
}

impl Bert {
    /// Masked-token prediction for one sequence: the top-k (token id, probability) at each of
    /// `positions`. Also leaves every layer's attention probabilities readable through
    /// [`Bert::attention_probs`] (shape (1, H, T, T)). Inference only: dropout is off for it.
    pub async fn fill_mask(&mut self, gpu: &Gpu, ids: &[u32], types: &[u32], positions: &[usize], k: usize) -> Result<Vec<Vec<(u32, f32)>>, Error> {
        if !self.heads.mlm {
            return Err("this model has no masked-LM head (cls.predictions); train one on your text first".into());
        }
        let t = ids.len();
        let mut labels = vec![-100i32; t];
        for &p in positions {
            if p >= t {
                return Err(format!("mask position {p} is outside the {t} tokens").into());
            }
            labels[p] = 0;
        }
        let batch = Batch::new(gpu, &self.cfg, 1, t, ids, types, &vec![1; t], Some(&labels), None, None)?;
        let was = self.dropout;
        self.dropout = false;
        let mut step = gpu.begin_step("fill-mask");
        let r = self.forward(gpu, &mut step, &batch, 0);
        self.dropout = was;
        r?;
        let v = self.cfg.vocab_size;
        let m = batch.m;
        let rb = match self.mlm_logits() {
            Some(l) if m > 0 => Some(step.read_back(l, 0, m * v)?),
            _ => None,
        };
        step.submit().await?;
        let logits = match rb {
            Some(rb) => rb.f32(gpu).await?,
            None => return Ok(Vec::new()),
        };
        // rows come back in position order (Batch keeps them ascending)
        Ok((0..m).map(|r| top_k(&logits[r * v..(r + 1) * v], k)).collect())
    }

    /// Class probabilities for a batch of sequences (B, num_labels), dropout off.
    pub async fn classify(&mut self, gpu: &Gpu, batch: &Batch) -> Result<Vec<Vec<f32>>, Error> {
        let nl = self.heads.num_labels;
        if nl == 0 {
            return Err("this model has no classification head".into());
        }
        let was = self.dropout;
        self.dropout = false;
        let mut step = gpu.begin_step("classify");
        let r = self.forward(gpu, &mut step, batch, 0);
        self.dropout = was;
        r?;
        let rb = step.read_back(self.cls_logits().ok_or("no logits")?, 0, batch.b * nl)?;
        step.submit().await?;
        let logits = rb.f32(gpu).await?;
        Ok(softmax_rows(&logits, nl))
    }

    /// Records an inference forward (dropout off) of `batch` and copies what the classification
    /// head reads (pooled [CLS] or the masked mean, (B, C)) into rows `row..row + B` of `dst`:
    /// the features of a frozen encoder, computed once for feature-based training.
    pub fn record_features(&mut self, gpu: &Gpu, step: &mut Step, batch: &Batch, dst: &GpuBuf, row: usize) -> Result<(), Error> {
        if self.heads.num_labels == 0 {
            return Err("features are what a classification head reads; this model has none".into());
        }
        let was = self.dropout;
        self.dropout = false;
        let r = self.forward(gpu, step, batch, 0);
        self.dropout = was;
        r?;
        let a = self.acts.as_ref().unwrap();
        let src = if self.pooling == Pooling::Mean { &a.mean } else { &a.pooled };
        let c = self.cfg.hidden_size;
        Ok(step.copy(src, 0, dst, row * c, batch.b * c)?)
    }

    /// The classification head alone on cached features: gathers `rows` (B indices into `feats`,
    /// which holds `n` rows of C), applies dropout (when on), the classifier and, with `labels`,
    /// the loss and (when `backward`) the classifier's gradients. Logits land in
    /// [`Bert::cls_logits`], the loss in the usual statistics.
    #[allow(clippy::too_many_arguments)]
    pub fn record_head_on_features(&mut self, gpu: &Gpu, step: &mut Step, feats: &GpuBuf, n: usize, rows: &GpuBuf, b: usize, labels: Option<&GpuBuf>, backward: bool, seed: u64) -> Result<(), Error> {
        let nl = self.heads.num_labels;
        if nl == 0 {
            return Err("this model has no classification head".into());
        }
        self.ensure_acts(gpu, b, 1, 0)?;
        let a = self.acts.as_ref().unwrap();
        let c = self.cfg.hidden_size;
        let hp = if self.dropout { self.cfg.hidden_dropout_prob } else { 0.0 };
        let r = (|| -> Result<(), GpuError> {
            embedding::forward(step, &a.cls_x, rows, feats, 0, b, c, n, false)?;
            let x = if hp > 0.0 {
                dropout::apply(step, &a.pooled_d, &a.cls_x, b * c, hp, self.seed(seed, 3))?;
                &a.pooled_d
            } else {
                &a.cls_x
            };
            self.linear(step, &a.cls_logits, x, "classifier", b, nl, c)?;
            if let Some(lab) = labels {
                cross_entropy::forward(step, &a.stats[STAT_CLS], &a.ce_rows, &a.cls_logits, lab, b, nl)?;
                if backward {
                    cross_entropy::backward(step, &a.d_cls_logits, &a.cls_logits, lab, &a.stats[STAT_CLS], b, nl, 1.0)?;
                    self.linear_backward(step, None, &a.d_cls_logits, x, "classifier", b, nl, c)?;
                }
            }
            Ok(())
        })();
        Ok(r?)
    }
}

/// HF's get_linear_schedule_with_warmup: the learning rate of optimizer step `k` (0-based).
pub fn linear_schedule(lr: f32, k: usize, warmup: usize, total: usize) -> f32 {
    if k < warmup {
        return lr * k as f32 / warmup.max(1) as f32;
    }
    lr * (total.saturating_sub(k) as f32 / (total - warmup).max(1) as f32).max(0.0)
}
