//! The Llama-shaped decoders' body (transformers' `LlamaModel`, `Qwen2Model`, `Qwen3Model`): its
//! forward and backward, on the kernels, activations and heads the other bodies use.
//!
//! `x[0] = embed_tokens[ids]`; per layer, pre-RMSNorm:
//! `h = x + o_proj(attention(rotary(qkv(input_layernorm(x)))))`,
//! `x' = h + down_proj(silu(gate_proj(n)) * up_proj(n))` with `n = post_attention_layernorm(h)`;
//! after the last layer `norm`. The q, k and v projections run as one product into a fused
//! q|k|v row ((H + 2KV) D wide: grouped-query attention's keys and values have KV heads), with
//! their biases where the config has them (Qwen2); Qwen3 normalises each query and key head
//! (q_norm, k_norm) before the rotation. The gate and up projections run as one product into
//! [gate | up], which the GLU kernel's SiLU reads. The LM head is the word embeddings (tied) or
//! `lm_head`; the classifier is `score` on each text's last token (LlamaForSequenceClassification).
//! Dropout: attention's only (attention_dropout; 0 in every released model).
//!
//! Activations: `x[l]` the residual stream into layer l, `h1` = input_layernorm(x[l]) (written by
//! the layer before, or from the embeddings), `qkv` rotated in place (Qwen3: `qkv_pre` before its
//! norms), `res1` = x[l] + attention, `res2` = post_attention_layernorm(res1), `inter_pre` the
//! [gate | up] product and `inter` the SwiGLU; `fin` = norm(x[L]).

use super::acts::Acts;
use super::batch::Batch;
use super::handles::{Handles, LlamaLayer, LoraH};
use super::mode::Mode;
use super::model::{Model, STAT_LM};
use super::params::Id;
use crate::gpu::{GpuBuf, GpuError, Step};
use crate::kernels::glu::{self, GluAct};
use crate::kernels::matmul::Matmul;
use crate::kernels::rmsnorm::{self, Rows};
use crate::kernels::{cross_entropy, elementwise, embedding, rotary};

/// A projection made of several tensors side by side in one arena (q|k|v, gate|up): their weights,
/// biases and adapters, run as one product.
#[derive(Clone, Copy)]
pub(super) struct Packed<'a> {
    pub w: &'a [Id],
    pub b: Option<&'a [Id]>,
    pub lora: &'a [Option<LoraH>],
}

impl Model {
    /// The Llama body's parts (embed_tokens, layers, norm, the LM head's table); a programming
    /// error on another body.
    pub(super) fn llama_parts(&self) -> (Id, &[LlamaLayer], Id, Id) {
        match &self.handles {
            Handles::Llama { embed, layers, norm, lm_head, .. } => (*embed, layers, *norm, lm_head.unwrap_or(*embed)),
            _ => unreachable!("the Llama body's layers asked of another body"),
        }
    }

    fn rms_eps(&self) -> f32 {
        self.cfg.layer_norm_eps as f32
    }

    /// y (rows, out) = x (rows, inp) W^T + b, W the packed tensors' (out, inp) rows one after
    /// another, and each adapter into its columns.
    pub(super) fn packed_forward(&self, step: &mut Step, y: &GpuBuf, x: &GpuBuf, p: Packed, rows: usize) -> Result<(), GpuError> {
        let (w, _) = self.params.fused(p.w)?;
        let out: usize = p.w.iter().map(|&id| self.params.shape(id)[0]).sum();
        let inp = self.params.shape(p.w[0])[1];
        let b = p.b.map(|b| self.params.fused(b)).transpose()?;
        Matmul::new(rows, out, inp).trans_b().record(step, y.at([rows, out]), x.at([rows, inp]), w.at([out, inp]), b.as_ref().map(|(b, _)| b.at([out])))?;
        for lo in p.lora.iter().flatten() {
            self.lora_forward(step, y, out, x, rows, lo)?;
        }
        Ok(())
    }

    /// The backward of [`Model::packed_forward`]: the weights' and biases' gradients where they
    /// train, the adapters', and with `dx`, dx = (or += with its `true`) dy W.
    pub(super) fn packed_backward(&self, step: &mut Step, dx: Option<(&GpuBuf, bool)>, dy: &GpuBuf, x: &GpuBuf, p: Packed, rows: usize) -> Result<(), GpuError> {
        let (w, dw) = self.params.fused(p.w)?;
        let out: usize = p.w.iter().map(|&id| self.params.shape(id)[0]).sum();
        let inp = self.params.shape(p.w[0])[1];
        if let Some(dw) = &dw {
            Matmul::new(out, inp, rows).trans_a().accumulate().record(step, dw.at([out, inp]), dy.at([rows, out]), x.at([rows, inp]), None)?;
        }
        if let Some((_, Some(db))) = p.b.map(|b| self.params.fused(b)).transpose()? {
            elementwise::bias_grad(step, db.at([out]), dy.at([rows, out]))?;
        }
        if let Some((dx, acc)) = dx {
            let mut mm = Matmul::new(rows, inp, out);
            mm.accumulate = acc;
            mm.record(step, dx.at([rows, inp]), dy.at([rows, out]), w.at([out, inp]), None)?;
        }
        for lo in p.lora.iter().flatten() {
            self.lora_backward(step, dx.map(|d| d.0), (dy, out), x, rows, lo)?;
        }
        Ok(())
    }

    fn qkv_packed(lp: &LlamaLayer) -> Packed<'_> {
        Packed { w: &lp.qkv_w, b: lp.qkv_b.as_ref().map(|b| &b[..]), lora: &lp.qkv_lora }
    }

    fn gate_up_packed(lp: &LlamaLayer) -> Packed<'_> {
        Packed { w: &lp.gate_up_w, b: lp.gate_up_b.as_ref().map(|b| &b[..]), lora: &lp.gate_up_lora }
    }

    /// The per-head norms' rows of a fused q|k|v: the query heads, and the key heads.
    fn qk_rows(&self, rows: usize) -> (Rows, Rows) {
        let (h, kv, d, w) = (self.cfg.num_attention_heads, self.cfg.kv_heads(), self.cfg.head_dim(), self.cfg.qkv_width());
        (Rows::heads(rows, h, d, w, 0), Rows::heads(rows, kv, d, w, h * d))
    }

    /// The RMSNorm that follows layer `l`'s output: the next layer's input_layernorm, or the final
    /// norm; and the buffers it writes (output, rstd).
    fn llama_next_norm<'a>(&'a self, a: &'a Acts, l: usize) -> (Id, &'a GpuBuf, &'a GpuBuf) {
        let (_, layers, norm, _) = self.llama_parts();
        match layers.get(l + 1) {
            Some(n) => (n.input_norm, &a.layers[l + 1].h1, &a.layers[l + 1].rstd1),
            None => (norm, &a.fin, &a.fin_rstd),
        }
    }

    pub(super) fn record_forward_llama(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let a = self.acts.as_ref().unwrap();
        let cfg = &self.cfg;
        let (b, t, c, i) = (batch.b, batch.t, cfg.hidden_size, cfg.intermediate_size);
        let (bt, w, eps, p) = (b * t, cfg.qkv_width(), self.rms_eps(), &self.params);
        let (embed, layers, norm, table) = self.llama_parts();
        // x[0] = embed_tokens[ids]; the first norm
        self.word_lookup(step, &a.x[0], &batch.ids, embed, bt, false)?;
        let (id, y, rstd) = match layers.first() {
            Some(l0) => (l0.input_norm, &a.layers[0].h1, &a.layers[0].rstd1),
            None => (norm, &a.fin, &a.fin_rstd),
        };
        rmsnorm::forward(step, self.hidden(y, bt), rstd, self.hidden(&a.x[0], bt), p.value(id), eps)?;
        for (l, lp) in layers.iter().enumerate() {
            let la = &a.layers[l];
            // q|k|v of input_layernorm(x); Qwen3 normalises each query and key head first
            let qk_norm = lp.q_norm.zip(lp.k_norm);
            let proj = if qk_norm.is_some() { &la.qkv_pre } else { &la.qkv };
            self.packed_forward(step, proj, &la.h1, Self::qkv_packed(lp), bt)?;
            if let Some((qn, kn)) = qk_norm {
                let (qr, kr) = self.qk_rows(bt);
                step.copy(&la.qkv_pre, 0, &la.qkv, 0, bt * w)?;
                rmsnorm::forward_rows(step, &la.qkv, &la.q_rstd, &la.qkv_pre, p.value(qn), eps, qr)?;
                rmsnorm::forward_rows(step, &la.qkv, &la.k_rstd, &la.qkv_pre, p.value(kn), eps, kr)?;
            }
            let (heads, cos, sin) = self.rope_of(a, batch, l)?;
            rotary::apply(step, la.qkv.at([bt * w]), cos, sin, heads, false)?;
            self.attention_forward(step, batch, l, mode)?;
            self.linear(step, &a.lin, &la.ctx, &lp.o_proj, bt)?;
            // res1 = x + attention; res2 = post_attention_layernorm(res1)
            elementwise::add(step, la.res1.at([bt * c]), a.x[l].at([bt * c]), a.lin.at([bt * c]))?;
            rmsnorm::forward(step, self.hidden(&la.res2, bt), &la.rstd2, self.hidden(&la.res1, bt), p.value(lp.post_norm), eps)?;
            // SwiGLU: silu(gate) * up, then down
            self.packed_forward(step, &la.inter_pre, &la.res2, Self::gate_up_packed(lp), bt)?;
            glu::forward(step, GluAct::Silu, la.inter.at([bt, i]), la.inter_pre.at([bt, 2 * i]))?;
            self.linear(step, &a.lin, &la.inter, &lp.down, bt)?;
            // x[l + 1] = res1 + mlp, and the norm that reads it
            elementwise::add(step, a.x[l + 1].at([bt * c]), la.res1.at([bt * c]), a.lin.at([bt * c]))?;
            let (id, y, rstd) = self.llama_next_norm(a, l);
            rmsnorm::forward(step, self.hidden(y, bt), rstd, self.hidden(&a.x[l + 1], bt), p.value(id), eps)?;
        }
        // the LM head at the M predicted rows: norm(x) @ table^T
        if let (true, Some(rows), Some(ma)) = (self.heads.lm, &batch.lm_rows, &self.lm_acts) {
            let (m, v) = (batch.m, cfg.vocab_size);
            embedding::forward(step, ma.x.at([m, c]), rows, a.fin.at([bt, c]), false)?;
            self.lm_logits_forward(step, &ma.logits, &ma.x, m, table, None)?;
            if let Some(lab) = &batch.lm_labels {
                cross_entropy::forward(step, &a.stats[STAT_LM], &ma.ce_rows, ma.logits.at([m, v]), lab)?;
            }
        }
        if self.heads.num_labels > 0 {
            self.last_token_head_forward(step, batch, mode, &a.fin)?;
        }
        Ok(())
    }

    pub(super) fn record_backward_llama(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let a = self.acts.as_ref().ok_or_else(|| GpuError::Shape("backward before forward".into()))?;
        let cfg = &self.cfg;
        let (b, t, c, i) = (batch.b, batch.t, cfg.hidden_size, cfg.intermediate_size);
        let (bt, nl, w, p) = (b * t, cfg.num_hidden_layers, cfg.qkv_width(), &self.params);
        let (embed, layers, norm, table) = self.llama_parts();
        let emb_trainable = self.any_trains([embed]);
        let layer_trainable: Vec<bool> = layers.iter().map(|lp| self.any_trains(lp.ids())).collect();
        let need_below = |l: usize| emb_trainable || layer_trainable[..l].iter().any(|&x| x);
        let body_needs_grad = need_below(nl) || self.any_trains([norm]);

        // the heads: their gradients and d(norm's output) in d_h1
        if !self.decoder_heads_backward(step, batch, mode, table, body_needs_grad)? || !body_needs_grad {
            return Ok(());
        }
        // the final norm: d x[L] in d_x
        rmsnorm::backward(step, self.hidden(&a.d_x, bt), self.hidden(&a.d_h1, bt), self.hidden(&a.x[nl], bt), &a.fin_rstd, p.value(norm), p.grad_of(norm), false)?;
        for l in (0..nl).rev() {
            if !layer_trainable[l] && !need_below(l) {
                break;
            }
            let (la, lp) = (&a.layers[l], &layers[l]);
            // x[l + 1] = res1 + down(silu(gate) * up)
            self.linear_backward(step, Some((&a.d_inter, false)), &a.d_x, &la.inter, &lp.down, bt)?;
            glu::backward(step, GluAct::Silu, a.d_inter2.at([bt, 2 * i]), la.inter_pre.at([bt, 2 * i]), a.d_inter.at([bt, i]))?;
            self.packed_backward(step, Some((&a.d_h1, false)), &a.d_inter2, &la.res2, Self::gate_up_packed(lp), bt)?;
            // d res1 = d x[l + 1] (the residual) + post_attention_layernorm's backward
            step.copy(&a.d_x, 0, &a.d_res, 0, bt * c)?;
            rmsnorm::backward(step, self.hidden(&a.d_res, bt), self.hidden(&a.d_h1, bt), self.hidden(&la.res1, bt), &la.rstd2, p.value(lp.post_norm), p.grad_of(lp.post_norm), true)?;
            // res1 = x[l] + o_proj(ctx): d_ctx in lin2
            self.linear_backward(step, Some((&a.lin2, false)), &a.d_res, &la.ctx, &lp.o_proj, bt)?;
            self.attention_backward(step, batch, l, mode)?;
            // the queries' and keys' gradients turn back by their rotation
            let (heads, cos, sin) = self.rope_of(a, batch, l)?;
            rotary::apply(step, a.dqkv.at([bt * w]), cos, sin, heads, true)?;
            // Qwen3: back through the per-head norms (v's gradient passes as it is)
            let dproj = match lp.q_norm.zip(lp.k_norm) {
                Some((qn, kn)) => {
                    let (qr, kr) = self.qk_rows(bt);
                    step.copy(&a.dqkv, 0, &a.dqkv_pre, 0, bt * w)?;
                    rmsnorm::backward_rows(step, &a.dqkv_pre, &a.dqkv, &la.qkv_pre, &la.q_rstd, p.value(qn), p.grad_of(qn), false, qr)?;
                    rmsnorm::backward_rows(step, &a.dqkv_pre, &a.dqkv, &la.qkv_pre, &la.k_rstd, p.value(kn), p.grad_of(kn), false, kr)?;
                    &a.dqkv_pre
                }
                None => &a.dqkv,
            };
            let below = need_below(l) || self.any_trains([lp.input_norm]);
            self.packed_backward(step, below.then_some((&a.d_h1, false)), dproj, &la.h1, Self::qkv_packed(lp), bt)?;
            if below {
                // d x[l] = d res1 (the residual) + input_layernorm's backward
                step.copy(&a.d_res, 0, &a.d_x, 0, bt * c)?;
                rmsnorm::backward(step, self.hidden(&a.d_x, bt), self.hidden(&a.d_h1, bt), self.hidden(&a.x[l], bt), &la.rstd1, p.value(lp.input_norm), p.grad_of(lp.input_norm), true)?;
            }
        }
        if emb_trainable {
            if let Some(dw) = p.grad_of(embed) {
                self.word_lookup_backward(step, dw, &a.d_x, &batch.g_ids)?;
            }
        }
        Ok(())
    }
}
