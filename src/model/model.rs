//! The model every body shares (BERT's, GPT-2's, ModernBERT's, the Llama-shaped decoders'): its
//! config, heads and parameters, the pooling the classifier reads, the loss statistics, and one
//! forward and one backward over a batch, recorded into a caller's `Step` (one submit per training
//! step; only the small loss statistics are read back); each body records its own passes (bert.rs,
//! gpt2.rs, modern.rs, llama.rs). The parts are in their own files: the batch (batch.rs), the
//! activations (acts.rs), the operations on named parameters (ops.rs), BERT's embeddings
//! (embeddings.rs), its encoder layer (layer.rs), the heads (heads.rs) and inference (infer.rs).

use super::acts::{Acts, LayerActs, LmActs};
use super::handles::Handles;
use super::batch::Batch;
use super::config::{Body, Heads, ModelConfig};
use super::mode::Mode;
use super::params::{tensor_names, ParamStore};
use crate::error::Error;
use crate::gpu::{DType, Gpu, GpuBuf, GpuError, Step};
use crate::safetensors::SafeTensors;
use crate::kernels::adamw::{AdamW, AdamWState};

/// What the classification head reads: HF's pooler on [CLS] (tanh(dense(h_cls))), exported as
/// BertForSequenceClassification; the attention-masked mean of the last hidden states (as
/// sentence-transformers pools), exported as the encoder plus a separate head file; or, for a
/// causal model, the hidden state of each text's last non-padding token, the one position that has
/// seen the whole text (GPT2ForSequenceClassification's rule; a causal BERT's [CLS] sees only
/// itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    #[default]
    Cls,
    Mean,
    Last,
}

impl Pooling {
    /// What a run that asked for `asked` reads on a model with `cfg`: a causal model's [CLS] is
    /// replaced by its last token; GPT-2's head reads the last token only (as transformers' does).
    pub fn for_model(asked: Pooling, cfg: &ModelConfig) -> Result<Pooling, Error> {
        match (asked, cfg.is_decoder, cfg.body) {
            (Pooling::Mean, _, Body::Gpt2) => Err(Error::Unsupported("GPT-2's classifier reads the last token's hidden state (GPT2ForSequenceClassification); mean pooling is for BERT models".into())),
            (Pooling::Mean, _, Body::Llama) => Err(Error::Unsupported(format!("{}'s classifier reads the last token's hidden state ({}ForSequenceClassification); mean pooling is for BERT models", cfg.family.display(), cfg.family.class_prefix()))),
            (Pooling::Cls, true, _) => Ok(Pooling::Last),
            (Pooling::Last, false, _) => Err(Error::Unsupported("last-token pooling is for causal models (GPT-2, GPT-style BERT); a BERT reads [CLS] or the mean".into())),
            (p, _, _) => Ok(p),
        }
    }

    /// The name runs and exports use ("cls", "mean", "last").
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
            Pooling::Last => "last",
        }
    }

    pub fn parse(s: &str) -> Option<Pooling> {
        match s {
            "cls" => Some(Pooling::Cls),
            "mean" => Some(Pooling::Mean),
            "last" => Some(Pooling::Last),
            _ => None,
        }
    }
}

/// The loss statistics of a step on their way back (see [`Model::record_loss_readback`]).
pub struct LossReadback(crate::gpu::Readback);

/// Mean losses of the last forward (0 for a head not used).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Losses {
    /// The language-model head's: masked words, or a causal model's next words.
    pub lm: f32,
    pub lm_count: f32,
    pub sop: f32,
    pub cls: f32,
    /// Accuracy of the batch's predictions (argmax = label) per head.
    pub lm_acc: f32,
    pub sop_acc: f32,
    pub cls_acc: f32,
}

impl Losses {
    pub fn total(&self) -> f32 {
        self.lm + self.sop + self.cls
    }
}

pub struct Model {
    pub cfg: ModelConfig,
    pub heads: Heads,
    pub params: ParamStore,
    /// Every parameter by its role, resolved once when the model is built.
    pub(super) handles: Handles,
    pub(super) acts: Option<Acts>,
    pub(super) lm_acts: Option<LmActs>,
    pub opt_state: Option<AdamWState>,
    /// What the classification head reads.
    pub pooling: Pooling,
    /// The key-value cache and one position's activations, for generation (decode.rs).
    pub(super) decode: Option<super::kv::DecodeState>,
    /// Whether generation runs its products from packed weights (None: as the adapter suits; see
    /// [`Model::set_packed_decoding`]).
    pub(super) packed_decoding: Option<bool>,
    /// A smaller shard size for the word embedding than the device's binding limit (tests).
    pub(super) word_shard_bytes: Option<u64>,
    /// A smaller limit for one layer's key-value cache than the device's binding limit (tests).
    pub(super) cache_binding_bytes: Option<u64>,
    /// Zeros, the bias of a LayerNorm without one (ModernBERT's), as wide as the widest norm.
    pub(super) norm_zeros: GpuBuf,
    /// Where such a LayerNorm's beta gradient goes (read by nothing).
    pub(super) norm_scratch: GpuBuf,
    /// The mode of the pass being recorded (forward, then its backward): where the LoRA adapters'
    /// input dropout takes its probability and seeds.
    pub(super) pass: std::cell::Cell<Mode>,
}

pub(super) const STAT_LM: usize = 0;
pub(super) const STAT_SOP: usize = 1;
pub(super) const STAT_CLS: usize = 2;


impl Model {
    /// A model with `cfg` and `heads`, its weights from `file` where present (HF names) and BERT's
    /// initialisation elsewhere.
    pub fn new(gpu: &Gpu, cfg: ModelConfig, heads: Heads, file: Option<&SafeTensors>, seed: u64) -> Result<(Model, super::LoadReport), Error> {
        cfg.validate()?;
        if cfg.body == Body::Llama && heads.sop {
            return Err(Error::Unsupported(format!("this is a {} model, a causal language model: it has no sentence-order head. Masked-LM and sentence-order pretraining need a BERT; it pretrains further on next words (objective causal)", cfg.family.display())));
        }
        if cfg.body == Body::Gpt2 && heads.sop {
            return Err(Error::Unsupported("this is a GPT-2 model, a causal language model: it has no sentence-order head. Masked-LM and sentence-order pretraining need a BERT; a GPT-2 pretrains further on next words (objective causal)".into()));
        }
        // a GPT-2's LM head is its word embeddings: it always has one, and keeps it when it also
        // classifies
        let heads = if cfg.body == Body::Gpt2 { Heads { lm: true, ..heads } } else { heads };
        let names = tensor_names(&cfg, heads.lm, heads.sop, heads.num_labels);
        Self::check_fits(gpu, &cfg, &names)?;
        let (params, report) = ParamStore::load(gpu, cfg.family, &names, file, seed)?;
        let handles = Handles::resolve(&params, &cfg, heads)?;
        let pooling = if cfg.is_decoder { Pooling::Last } else { Pooling::Cls };
        let width = cfg.hidden_size.max(cfg.embed_width());
        let (norm_zeros, norm_scratch) = (gpu.zeros("norm_zeros", width, DType::F32)?, gpu.zeros("norm_scratch", width, DType::F32)?);
        Ok((Model { cfg, heads, params, handles, norm_zeros, norm_scratch, acts: None, lm_acts: None, opt_state: None, pooling, decode: None, packed_decoding: None, word_shard_bytes: None, cache_binding_bytes: None, pass: std::cell::Cell::new(Mode::Eval) }, report))
    }

    /// Refuses, before anything is allocated, a model the device cannot hold: a tensor larger than
    /// one buffer may be (a tensor over the binding limit is bound in shards, but it is one buffer),
    /// or weights (in f32, as BERT Lab computes) over the device's memory budget where one is known.
    /// Each message gives both sizes.
    fn check_fits(gpu: &Gpu, cfg: &ModelConfig, names: &[(String, Vec<usize>)]) -> Result<(), Error> {
        let mb = super::megabytes;
        let what = cfg.family.display();
        let limit = gpu.info.max_buffer_size;
        if let Some((name, bytes)) = names.iter().map(|(n, s)| (n, 4 * s.iter().product::<usize>() as u64)).find(|(_, b)| *b > limit) {
            return Err(Error::Limit(format!(
                "this {what} is larger than this device allows: its {} takes {} in f32, and this device allows {} in one buffer (a GPU with a larger maxBufferSize, or a smaller model)",
                cfg.family.hf_name(name),
                mb(bytes),
                mb(limit)
            )));
        }
        let total: u64 = names.iter().map(|(_, s)| 4 * s.iter().product::<usize>() as u64).sum();
        if let Some(budget) = gpu.info.memory_budget.filter(|&b| total > b) {
            return Err(Error::Limit(format!(
                "this {what} is larger than this device allows: its weights take {} in f32 (BERT Lab computes in f32, whatever the checkpoint stores), and this device has {} for it: pick a smaller model",
                mb(total),
                mb(budget)
            )));
        }
        Ok(())
    }

    /// Records the forward pass and the losses of every head that has targets in `batch`;
    /// `mode` says whether dropout is on (and its seed).
    pub fn forward(&mut self, gpu: &Gpu, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), Error> {
        self.pass.set(mode);
        self.ensure_acts(gpu, batch.b, batch.t, batch.m)?;
        if self.pooling == Pooling::Mean && self.heads.num_labels > 0 {
            batch.pool_matrix(gpu)?;
        }
        Ok(self.record_forward(step, batch, mode)?)
    }

    fn record_forward(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        match self.cfg.body {
            Body::Bert => self.record_forward_bert(step, batch, mode),
            Body::Gpt2 => self.record_forward_gpt2(step, batch, mode),
            Body::Modern => self.record_forward_modern(step, batch, mode),
            Body::Llama => self.record_forward_llama(step, batch, mode),
        }
    }

    /// Records the backward of the summed losses into the trainable parameters' gradients (which
    /// the caller zeroes), in the forward's `mode`. Frozen parameters get no gradient work, and
    /// layers below the lowest trainable parameter get no backward at all.
    pub fn backward(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), Error> {
        if self.acts.is_none() {
            return Err(GpuError::Shape("backward before forward".into()).into());
        }
        Ok(self.record_backward(step, batch, mode)?)
    }

    fn record_backward(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        self.pass.set(mode);
        match self.cfg.body {
            Body::Bert => self.record_backward_bert(step, batch, mode),
            Body::Gpt2 => self.record_backward_gpt2(step, batch, mode),
            Body::Modern => self.record_backward_modern(step, batch, mode),
            Body::Llama => self.record_backward_llama(step, batch, mode),
        }
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

    /// A fresh optimizer: AdamW's moments cleared for every parameter that has them, and its step
    /// counter and skip totals gone, so that the next step is a first step (a fresh run, or the
    /// run after a rollback). One submit.
    pub async fn reset_optimizer(&mut self, gpu: &Gpu) -> Result<(), Error> {
        self.opt_state = None;
        let mut step = gpu.begin_step("reset-moments");
        for p in &self.params.params {
            if let (Some(m), Some(v)) = (&p.m, &p.v) {
                step.clear(m);
                step.clear(v);
            }
        }
        Ok(step.submit().await?)
    }

    /// AdamW over every trainable parameter, with HF's weight-decay groups: one norm dispatch and one
    /// update dispatch per run of consecutive trainable tensors in an arena.
    pub fn optimizer_step(&mut self, gpu: &Gpu, step: &mut Step, opt: &AdamW, lr: f32, weight_decay: f32) -> Result<(), Error> {
        let e = |x: GpuError| Error::from(x);
        // AdamW binds each arena whole, or in views of at most one binding (or of the word table's
        // shard size, where a test has set a smaller one)
        let binding = (gpu.info.max_storage_buffer_binding_size.min(self.word_shard_bytes.unwrap_or(u64::MAX)) / 4) as usize;
        let slots = self.params.adamw_slots(binding);
        if self.opt_state.as_ref().map(|s| s.partials.len < slots).unwrap_or(true) {
            let state = AdamWState::new(gpu, slots).map_err(e)?;
            if let Some(old) = &self.opt_state {
                // keep the step counter and skip totals of a run whose trainable set grew
                step.copy(&old.state, 0, &state.state, 0, old.state.len).map_err(e)?;
            }
            self.opt_state = Some(state);
        }
        let slices = self.params.adamw_slices(weight_decay, binding);
        self.weights_written();
        opt.record(step, self.opt_state.as_ref().unwrap(), &slices, lr).map_err(e)
    }

    /// Records copies of the three loss statistics; read them after submit with [`Model::read_losses`].
    pub fn record_loss_readback(&self, step: &mut Step) -> Result<LossReadback, Error> {
        self.record_loss_readback_with(step, &[])
    }

    /// The three loss statistics and then the ranges `extra` (e.g. AdamW's skip flag), in one
    /// readback: a training step maps one buffer.
    pub fn record_loss_readback_with(&self, step: &mut Step, extra: &[(&GpuBuf, usize, usize)]) -> Result<LossReadback, Error> {
        let a = self.acts.as_ref().ok_or_else(|| Error::Internal("no forward recorded".into()))?;
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
        // each head's statistics: (loss, count, accuracy), in STAT_* order
        let (loss, count, acc) = (|s: usize| v[3 * s], |s: usize| v[3 * s + 1], |s: usize| v[3 * s + 2]);
        let l = Losses { lm: loss(STAT_LM), lm_count: count(STAT_LM), sop: loss(STAT_SOP), cls: loss(STAT_CLS), lm_acc: acc(STAT_LM), sop_acc: acc(STAT_SOP), cls_acc: acc(STAT_CLS) };
        Ok((l, v[9..].to_vec()))
    }

    /// Buffers of the last forward, for tests, prediction and visualisation.
    pub fn last_hidden(&self) -> Option<&GpuBuf> {
        // a GPT-2's last hidden state is after its final LayerNorm (as transformers' GPT2Model's)
        self.acts.as_ref().map(|a| self.encoder_out(a))
    }
    pub fn attention_probs(&self, layer: usize) -> Option<&GpuBuf> {
        self.acts.as_ref().and_then(|a| a.layers.get(layer)).map(|l| &l.probs)
    }
    pub fn lm_logits(&self) -> Option<&GpuBuf> {
        self.lm_acts.as_ref().map(|m| &m.logits)
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

impl Model {
    /// Activations for a batch of (B, T) with M predicted rows, grown when a batch is larger than
    /// any before.
    pub(super) fn ensure_acts(&mut self, gpu: &Gpu, b: usize, t: usize, m: usize) -> Result<(), GpuError> {
        let (c, i, h) = (self.cfg.hidden_size, self.cfg.intermediate_size, self.cfg.num_attention_heads);
        let gpt2 = self.cfg.body == Body::Gpt2;
        let factorised = self.cfg.embedding_size.is_some();
        let modern = self.cfg.body == Body::Modern;
        let llama = self.cfg.body == Body::Llama;
        let glu = modern || llama;
        // the fused q|k|v rows and the queries' width (3C and C but for grouped-query attention and
        // Qwen3's head_dim); Qwen3 keeps q|k|v before its per-head norms, and their rstd
        let (w, q, kv_heads) = (self.cfg.qkv_width(), self.cfg.q_width(), self.cfg.kv_heads());
        let qk_norm = self.cfg.llama.as_ref().is_some_and(|l| l.qk_norm);
        let attn_drop = self.cfg.attention_probs_dropout_prob > 0.0;
        let lora_r = self.cfg.lora.as_ref().map(|l| l.r);
        let lora_drop = self.cfg.lora.as_ref().map(|l| l.dropout > 0.0).unwrap_or(false);
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
                    qkv: z("qkv", bt * w)?,
                    qkv_pre: z("qkv_pre", if qk_norm { bt * w } else { 1 })?,
                    q_rstd: z("q_rstd", if qk_norm { bt * h } else { 1 })?,
                    k_rstd: z("k_rstd", if qk_norm { bt * kv_heads } else { 1 })?,
                    probs: z("probs", b * h * t * t)?,
                    // dropped probabilities only where attention drops anything
                    probs_d: z("probs_d", if attn_drop { b * h * t * t } else { 1 })?,
                    ctx: z("ctx", bt * q)?,
                    res1: z("res1", bt * c)?,
                    h1: z("h1", bt * c)?,
                    mean1: z("mean1", bt)?,
                    rstd1: z("rstd1", bt)?,
                    // ModernBERT's Wi gives the GeGLU's two halves, the Llama body's gate|up the SwiGLU's
                    inter_pre: z("inter_pre", bt * i * if glu { 2 } else { 1 })?,
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
                emb: z("emb", bt * self.cfg.embed_width())?,
                emb_ln: z("emb_ln", if factorised { bt * self.cfg.embed_width() } else { 1 })?,
                d_emb_ln: z("d_emb_ln", if factorised { bt * self.cfg.embed_width() } else { 1 })?,
                d_emb: z("d_emb", if factorised { bt * self.cfg.embed_width() } else { 1 })?,
                emb_mean: z("emb_mean", bt)?,
                emb_rstd: z("emb_rstd", bt)?,
                fin: z("fin", if gpt2 || modern || llama { bt * c } else { 1 })?,
                fin_mean: z("fin_mean", if gpt2 || modern || llama { bt } else { 1 })?,
                fin_rstd: z("fin_rstd", if gpt2 || modern || llama { bt } else { 1 })?,
                rope: {
                    let up = |label: &str, v: &[f32]| -> Result<GpuBuf, GpuError> {
                        let buf = z(label, v.len())?;
                        gpu.write(&buf, 0, v)?;
                        Ok(buf)
                    };
                    match (&self.cfg.modern, &self.cfg.llama) {
                        (Some(m), _) => {
                            let d = c / h;
                            let (cg, sg) = crate::kernels::rotary::tables(m.global_theta, d, t);
                            let (cl, sl) = crate::kernels::rotary::tables(m.local_theta, d, t);
                            Some([up("rope_cos_global", &cg)?, up("rope_sin_global", &sg)?, up("rope_cos_local", &cl)?, up("rope_sin_local", &sl)?])
                        }
                        (_, Some(l)) => {
                            // one theta (and scaling) for every layer: the same tables twice
                            let (cs, sn) = crate::kernels::rotary::tables_of(&l.rope.inv_freq(l.rope_theta, l.head_dim), t);
                            let (cos, sin) = (up("rope_cos", &cs)?, up("rope_sin", &sn)?);
                            Some([cos.clone(), sin.clone(), cos, sin])
                        }
                        _ => None,
                    }
                },
                x: (0..=self.cfg.num_hidden_layers).map(|_| z("x", bt * c)).collect::<Result<_, _>>()?,
                layers,
                lin: z("lin", bt * c)?,
                // d_ctx, as wide as the queries
                lin2: z("lin2", bt * c.max(q))?,
                scores: z("scores", b * h * t * t)?,
                d_x: z("d_x", bt * c)?,
                d_h1: z("d_h1", bt * c)?,
                d_res: z("d_res", bt * c)?,
                d_tmp: z("d_tmp", bt * c)?,
                d_inter: z("d_inter", bt * i)?,
                d_inter2: z("d_inter2", bt * i * if glu { 2 } else { 1 })?,
                dqkv: z("dqkv", bt * w)?,
                dqkv_pre: z("dqkv_pre", if qk_norm { bt * w } else { 1 })?,
                dprobs: z("dprobs", b * h * t * t)?,
                dscores: z("dscores", b * h * t * t)?,
                cls_x: z("cls_x", b * c)?,
                pooled_pre: z("pooled_pre", b * c)?,
                pooled: z("pooled", b * c)?,
                pooled_act: z("pooled_act", b * c)?,
                pooled_mean: z("pooled_mean", b)?,
                pooled_rstd: z("pooled_rstd", b)?,
                d_pooled_act: z("d_pooled_act", b * c)?,
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
                stats: [z("stats_lm", 3)?, z("stats_sop", 3)?, z("stats_cls", 3)?],
                lora_t: lora_r.map(|r| z("lora_t", bt * r)).transpose()?,
                lora_dt: lora_r.map(|r| z("lora_dt", bt * r)).transpose()?,
                // the dropped input and the input's gradient through the dropout (widest: I)
                lora_x: lora_drop.then(|| z("lora_x", bt * c.max(i))).transpose()?,
                lora_u: lora_drop.then(|| z("lora_u", bt * c.max(i))).transpose()?,
            });
        }
        if self.heads.lm && m > 0 && self.lm_acts.as_ref().map(|a| a.cap < m).unwrap_or(true) {
            let cap = m.next_power_of_two();
            let v = self.cfg.vocab_size;
            // the head's transform is E wide (the tables' width)
            let e = self.cfg.embed_width();
            self.lm_acts = Some(LmActs {
                cap,
                x: z("lm_x", cap * c)?,
                pre: z("lm_pre", cap * e)?,
                act: z("lm_act", cap * e)?,
                ln: z("lm_ln", cap * e)?,
                mean: z("lm_mean", cap)?,
                rstd: z("lm_rstd", cap)?,
                logits: z("lm_logits", cap * v)?,
                d_logits: z("lm_d_logits", cap * v)?,
                d_ln: z("lm_d_ln", cap * e)?,
                d_act: z("lm_d_act", cap * e)?,
                d_x: z("lm_d_x", cap * c)?,
                ce_rows: z("lm_ce_rows", cap * 3)?,
            });
        }
        Ok(())
    }

}
