//! One BERT encoder layer (post-LN): self-attention, then the feed-forward block, each with its
//! residual add, dropout and LayerNorm; its forward and, beside it, its backward.

use super::batch::Batch;
use super::model::Model;
use super::mode::{Mode, Site};
use crate::gpu::{GpuError, Step};
use crate::kernels::dropout::Dropout;
use crate::kernels::layernorm::{Fused, Saved, Stats};
use crate::kernels::matmul::Matmul;
use crate::kernels::{elementwise, gelu};

impl Model {
    /// x[l + 1] = LN(h1 + dropout(ffn(h1))), h1 = LN(x[l] + dropout(attention(x[l]))).
    pub(super) fn layer_forward(&self, step: &mut Step, batch: &Batch, l: usize, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg) = (self.acts.as_ref().unwrap(), &self.cfg);
        let (b, t, c, i) = (batch.b, batch.t, cfg.hidden_size, cfg.intermediate_size);
        let bt = b * t;
        let hp = mode.prob(cfg.hidden_dropout_prob);
        let (la, x, lp) = (&a.layers[l], &a.x[l], &self.bert_parts().1[l]);
        // one projection to (B*T, 3C): the query, key and value weights side by side
        let qkv = self.qkv(lp)?;
        Matmul::new(bt, 3 * c, c).trans_b().record(step, la.qkv.at([bt, 3 * c]), x.at([bt, c]), qkv.w.at([3 * c, c]), Some(qkv.b.at([3 * c])))?;
        for lo in lp.qkv_lora.iter().flatten() {
            self.lora_forward(step, &la.qkv, 3 * c, x, bt, lo)?;
        }
        // scores, (causal) masked softmax with dropout, ctx
        self.attention_forward(step, batch, l, mode)?;
        // attention output: dense, then dropout, residual and layernorm in one kernel
        self.linear(step, &a.lin, &la.ctx, &lp.attn_out, bt)?;
        let drop1 = Dropout::new(hp, mode.seed(Site::AttentionOutput(l)));
        let sum1 = Fused::Residual { res: self.hidden(&la.res1, bt), branch: self.hidden(&a.lin, bt), drop: drop1 };
        self.ln_forward(step, self.hidden(&la.h1, bt), Stats { mean: &la.mean1, rstd: &la.rstd1 }, self.hidden(x, bt), &lp.attn_ln, sum1)?;
        // feed-forward: dense + GELU, dense, then dropout, residual and layernorm
        self.linear(step, &la.inter_pre, &la.h1, &lp.inter, bt)?;
        gelu::forward(step, cfg.gelu(), la.inter.at([bt, i]), la.inter_pre.at([bt, i]))?;
        self.linear(step, &a.lin, &la.inter, &lp.out, bt)?;
        let drop2 = Dropout::new(hp, mode.seed(Site::Output(l)));
        let sum2 = Fused::Residual { res: self.hidden(&la.res2, bt), branch: self.hidden(&a.lin, bt), drop: drop2 };
        self.ln_forward(step, self.hidden(&a.x[l + 1], bt), Stats { mean: &la.mean2, rstd: &la.rstd2 }, self.hidden(&la.h1, bt), &lp.out_ln, sum2)
    }

    /// From d_x (the gradient at x[l + 1]): the layer's trainable gradients and, when
    /// `input_needed`, d_x becomes the gradient at x[l].
    pub(super) fn layer_backward(&self, step: &mut Step, batch: &Batch, l: usize, mode: Mode, input_needed: bool) -> Result<(), GpuError> {
        let (a, cfg) = (self.acts.as_ref().unwrap(), &self.cfg);
        let (b, t, c, i) = (batch.b, batch.t, cfg.hidden_size, cfg.intermediate_size);
        let bt = b * t;
        let hp = mode.prob(cfg.hidden_dropout_prob);
        let (la, x, lp) = (&a.layers[l], &a.x[l], &self.bert_parts().1[l]);
        // output layernorm -> d_res (gradient at res2 = o + h1) and, through the residual branch's
        // dropout, d_o = dropout(d_res) in the same kernel
        let saved2 = Saved { x: self.hidden(&la.res2, bt), stats: Stats { mean: &la.mean2, rstd: &la.rstd2 } };
        self.ln_backward(step, self.hidden(&a.d_res, bt), self.hidden(&a.d_x, bt), saved2, &lp.out_ln, self.drop_dx(&a.d_tmp, bt, hp, mode.seed(Site::Output(l))))?;
        // residual: d_h1 = d_res
        step.copy(&a.d_res, 0, &a.d_h1, 0, bt * c)?;
        let d_o = if hp > 0.0 { &a.d_tmp } else { &a.d_res };
        self.linear_backward(step, Some((&a.d_inter, false)), d_o, &la.inter, &lp.out, bt)?;
        // GELU: d_inter2 = d(inter_pre)
        gelu::backward(step, cfg.gelu(), a.d_inter2.at([bt, i]), la.inter_pre.at([bt, i]), a.d_inter.at([bt, i]))?;
        self.linear_backward(step, Some((&a.d_h1, true)), &a.d_inter2, &la.h1, &lp.inter, bt)?;
        // attention output layernorm -> d_res (gradient at res1 = a + x), d_a = dropout(d_res)
        let saved1 = Saved { x: self.hidden(&la.res1, bt), stats: Stats { mean: &la.mean1, rstd: &la.rstd1 } };
        self.ln_backward(step, self.hidden(&a.d_res, bt), self.hidden(&a.d_h1, bt), saved1, &lp.attn_ln, self.drop_dx(&a.d_tmp, bt, hp, mode.seed(Site::AttentionOutput(l))))?;
        let d_a = if hp > 0.0 { &a.d_tmp } else { &a.d_res };
        // d_ctx (B*T, C) in lin2; the residual's d_x = d_res is added below
        self.linear_backward(step, Some((&a.lin2, false)), d_a, &la.ctx, &lp.attn_out, bt)?;
        self.attention_backward(step, batch, l, mode)?;
        // the input's gradient: residual path plus the three projections
        if input_needed {
            step.copy(&a.d_res, 0, &a.d_x, 0, bt * c)?;
        }
        let qkv = self.qkv(lp)?;
        if let Some(dw) = &qkv.dw {
            Matmul::new(3 * c, c, bt).trans_a().accumulate().record(step, dw.at([3 * c, c]), a.dqkv.at([bt, 3 * c]), x.at([bt, c]), None)?;
        }
        if let Some(db) = &qkv.db {
            elementwise::bias_grad(step, db.at([3 * c]), a.dqkv.at([bt, 3 * c]))?;
        }
        if input_needed {
            Matmul::new(bt, c, 3 * c).accumulate().record(step, a.d_x.at([bt, c]), a.dqkv.at([bt, 3 * c]), qkv.w.at([3 * c, c]), None)?;
        }
        for lo in lp.qkv_lora.iter().flatten() {
            self.lora_backward(step, input_needed.then_some(&a.d_x), (&a.dqkv, 3 * c), x, bt, lo)?;
        }
        Ok(())
    }
}
