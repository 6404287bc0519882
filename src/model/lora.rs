//! Low-rank adapters (LoRA) on the layers' projections: the forward adds `s · (x Aᵀ) Bᵀ` into the
//! projection's output columns, and the backward gives A and B their gradients and the input its
//! share, `s · (dy B) A`; nothing is computed for the frozen weight. Each is two or four small
//! products of width r beside the projection's own (no second pass over its weight). The product
//! `x Aᵀ` is recomputed in the backward rather than kept: it is r columns wide.

use super::model::Model;
use super::handles::LoraH;
use super::mode::Site;
use crate::gpu::{GpuBuf, GpuError, Step};
use crate::kernels::dropout::{self, Dropout};
use crate::kernels::elementwise;
use crate::kernels::matmul::{Matmul, Operand};

/// A matrix of `rows` rows stored `ld` apart (one of a batch of one).
fn rows_of(rows: usize, ld: usize) -> Operand {
    Operand { ld, outer: rows * ld, inner_stride: 0 }
}

impl Model {
    /// The factor on the low-rank product (alpha / r).
    fn lora_scale(&self) -> f32 {
        self.cfg.lora.as_ref().map(|l| l.scaling()).unwrap_or(0.0)
    }

    /// The (rows, r) scratch of x Aᵀ and of its gradient.
    fn lora_scratch(&self) -> Result<(&GpuBuf, &GpuBuf), GpuError> {
        let a = self.acts.as_ref().ok_or_else(|| GpuError::Shape("LoRA before the activations".into()))?;
        match (&a.lora_t, &a.lora_dt) {
            (Some(t), Some(dt)) => Ok((t, dt)),
            _ => Err(GpuError::Shape("a LoRA layer in a model allocated without LoRA scratch".into())),
        }
    }

    /// The adapter's input dropout in the pass being recorded (PEFT's lora_dropout; none when
    /// evaluating): its probability, and its seed from the adapter's own site.
    fn lora_drop(&self, lo: &LoraH) -> Dropout {
        let (mode, p) = (self.pass.get(), self.cfg.lora.as_ref().map(|l| l.dropout).unwrap_or(0.0));
        Dropout::new(mode.prob(p), mode.seed(Site::Lora(lo.a.index())))
    }

    /// The adapter's input: `x`, or dropout(x) in the (rows, inp) scratch when the pass drops it
    /// (the backward redraws the same mask from the same seed).
    fn lora_input<'a>(&'a self, step: &mut Step, x: &'a GpuBuf, rows: usize, lo: &LoraH) -> Result<&'a GpuBuf, GpuError> {
        let drop = self.lora_drop(lo);
        if drop.prob == 0.0 {
            return Ok(x);
        }
        let xd = self.acts.as_ref().and_then(|a| a.lora_x.as_ref()).ok_or_else(|| GpuError::Shape("LoRA dropout in a model allocated without its scratch".into()))?;
        dropout::apply(step, xd.at([rows, lo.inp]), x.at([rows, lo.inp]), drop)?;
        Ok(xd)
    }

    /// y[:, col..col + out] += s · (dropout(x) Aᵀ) Bᵀ, with y's rows `ld` wide and x (rows, inp).
    pub(super) fn lora_forward(&self, step: &mut Step, y: &GpuBuf, ld: usize, x: &GpuBuf, rows: usize, lo: &LoraH) -> Result<(), GpuError> {
        let (t, _) = self.lora_scratch()?;
        let p = &self.params;
        let x = self.lora_input(step, x, rows, lo)?;
        let (t, wa, wb) = (t.at([rows, lo.r]), p.value(lo.a).at([lo.r, lo.inp]), p.value(lo.b).at([lo.out, lo.r]));
        Matmul::new(rows, lo.r, lo.inp).trans_b().record(step, t, x.at([rows, lo.inp]), wa, None)?;
        Matmul::new(rows, lo.out, lo.r)
            .trans_b()
            .accumulate()
            .alpha(self.lora_scale())
            .starts(0, 0, lo.col)
            .strided(1, rows_of(rows, lo.r), rows_of(lo.out, lo.r), rows_of(rows, ld))
            .record(step, y.at([rows, ld]), t, wb, None)
    }

    /// The backward of [`Model::lora_forward`] from `dy` (its buffer, and how wide its rows are):
    /// dB += s · dyᵀ (x Aᵀ), dt = s · dy B, dA += dtᵀ x, and with `dx`, dx += dt A.
    pub(super) fn lora_backward(&self, step: &mut Step, dx: Option<&GpuBuf>, (dy, ld): (&GpuBuf, usize), x: &GpuBuf, rows: usize, lo: &LoraH) -> Result<(), GpuError> {
        let (t, dt) = self.lora_scratch()?;
        let (p, s, dy_cols) = (&self.params, self.lora_scale(), rows_of(rows, ld));
        let (ga, gb) = (p.grad_of(lo.a), p.grad_of(lo.b));
        let x = self.lora_input(step, x, rows, lo)?.at([rows, lo.inp]);
        let (t, dt, dy) = (t.at([rows, lo.r]), dt.at([rows, lo.r]), dy.at([rows, ld]));
        let (wa, wb) = (p.value(lo.a).at([lo.r, lo.inp]), p.value(lo.b).at([lo.out, lo.r]));
        if gb.is_some() {
            Matmul::new(rows, lo.r, lo.inp).trans_b().record(step, t, x, wa, None)?;
        }
        if let Some(db) = gb {
            // dB (out, r) = s · dy[:, cols]ᵀ t
            Matmul::new(lo.out, lo.r, rows).trans_a().accumulate().alpha(s).starts(lo.col, 0, 0).strided(1, dy_cols, rows_of(rows, lo.r), rows_of(lo.out, lo.r)).record(step, db.at([lo.out, lo.r]), dy, t, None)?;
        }
        if ga.is_none() && dx.is_none() {
            return Ok(());
        }
        // dt (rows, r) = s · dy[:, cols] B
        Matmul::new(rows, lo.r, lo.out).alpha(s).starts(lo.col, 0, 0).strided(1, dy_cols, rows_of(lo.out, lo.r), rows_of(rows, lo.r)).record(step, dt, dy, wb, None)?;
        if let Some(da) = ga {
            Matmul::new(lo.r, lo.inp, rows).trans_a().accumulate().record(step, da.at([lo.r, lo.inp]), dt, x, None)?;
        }
        let Some(dx) = dx else { return Ok(()) };
        let drop = self.lora_drop(lo);
        if drop.prob == 0.0 {
            return Matmul::new(rows, lo.inp, lo.r).accumulate().record(step, dx.at([rows, lo.inp]), dt, wa, None);
        }
        // through the dropout: dx += mask ⊙ (dt A) / (1 - p), the forward's mask redrawn; the sum is
        // made beside dx and copied over it (a dispatch never reads and writes one buffer)
        let a = self.acts.as_ref().ok_or_else(|| GpuError::Shape("LoRA before the activations".into()))?;
        let (xd, u) = a.lora_x.as_ref().zip(a.lora_u.as_ref()).ok_or_else(|| GpuError::Shape("LoRA dropout in a model allocated without its scratch".into()))?;
        let n = rows * lo.inp;
        Matmul::new(rows, lo.inp, lo.r).record(step, u.at([rows, lo.inp]), dt, wa, None)?;
        dropout::apply(step, xd.at([n]), u.at([n]), drop)?;
        elementwise::add(step, u.at([n]), dx.at([n]), xd.at([n]))?;
        step.copy(u, 0, dx, 0, n)
    }
}
