//! Global gradient-norm clipping and AdamW (torch.optim.AdamW semantics) with a GPU-side non-finite
//! flag that skips the whole step (shaders/adamw.wgsl).

use super::{grid, need, u32_of};
use crate::gpu::{Gpu, GpuBuf, GpuError, KernelId, Step};
use crate::shaders::params::adamw::Params;

pub const SUMSQ: KernelId = KernelId::new("adamw", "sumsq_partial", &[1, 2]);
pub const FINALIZE: KernelId = KernelId::new("adamw", "grad_norm_finalize", &[3, 4]);
pub const UPDATE: KernelId = KernelId::new("adamw", "adamw_update", &[5, 6, 7, 8, 9]);

/// Elements one `sumsq_partial` workgroup reduces.
pub const CHUNK: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Clip the global gradient norm to this; 0 disables clipping.
    pub max_grad_norm: f32,
}

impl Default for AdamW {
    /// torch.optim.AdamW's defaults, with HF Trainer's max_grad_norm of 1.
    fn default() -> Self {
        AdamW { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, max_grad_norm: 1.0 }
    }
}

/// One parameter tensor (a slice of a buffer) with its gradient and moments at the same offset.
pub struct ParamSlice {
    pub param: GpuBuf,
    pub grad: GpuBuf,
    pub m: GpuBuf,
    pub v: GpuBuf,
    pub off: usize,
    pub len: usize,
    pub weight_decay: f32,
}

/// The optimizer's GPU state: [step, clip factor, grad norm, skipped-this-step, skipped total] and
/// the per-chunk partial sums of squares.
pub struct AdamWState {
    pub state: GpuBuf,
    pub partials: GpuBuf,
}

pub const STATE_STEP: usize = 0;
pub const STATE_CLIP: usize = 1;
pub const STATE_NORM: usize = 2;
pub const STATE_SKIPPED: usize = 3;
pub const STATE_SKIPPED_TOTAL: usize = 4;

impl AdamWState {
    /// State for gradients totalling at most `max_slots` chunks (see [`slots_for`]).
    pub fn new(gpu: &Gpu, max_slots: usize) -> Result<AdamWState, GpuError> {
        Ok(AdamWState { state: gpu.zeros("adamw.state", 8, crate::gpu::DType::F32)?, partials: gpu.zeros("adamw.partials", max_slots.max(1), crate::gpu::DType::F32)? })
    }
}

/// Number of partial-sum slots a set of gradient slices needs.
pub fn slots_for(lens: &[usize]) -> usize {
    lens.iter().map(|&n| n.div_ceil(CHUNK)).sum()
}

impl AdamW {
    fn params(&self) -> Params {
        Params {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            max_norm: self.max_grad_norm,
            ln_beta1: (self.beta1 as f64).ln() as f32,
            ln_beta2: (self.beta2 as f64).ln() as f32,
            ..Default::default()
        }
    }

    /// Computes the global norm of every slice's gradient, then updates every slice, all in `step`.
    /// `lr` overrides `self.lr` for this step (the schedule).
    pub fn record(&self, step: &mut Step, st: &AdamWState, slices: &[ParamSlice], lr: f32) -> Result<(), GpuError> {
        let base = Params { lr, ..self.params() };
        let mut slot = 0usize;
        for s in slices {
            need("adamw", "param", &s.param, s.off, s.len)?;
            need("adamw", "grad", &s.grad, s.off, s.len)?;
            need("adamw", "m", &s.m, s.off, s.len)?;
            need("adamw", "v", &s.v, s.off, s.len)?;
            let p = Params { n: u32_of("adamw", s.len)?, off: u32_of("adamw", s.off)?, slot: slot as u32, ..base };
            need("adamw", "partials", &st.partials, 0, slot + s.len.div_ceil(CHUNK))?;
            step.dispatch(SUMSQ, &[], bytemuck::bytes_of(&p), &[&s.grad, &st.partials], grid(s.len, CHUNK))?;
            slot += s.len.div_ceil(CHUNK);
        }
        let p = Params { n_slots: slot as u32, ..base };
        step.dispatch(FINALIZE, &[], bytemuck::bytes_of(&p), &[&st.partials, &st.state], [1, 1, 1])?;
        for s in slices {
            let p = Params { n: u32_of("adamw", s.len)?, off: u32_of("adamw", s.off)?, weight_decay: s.weight_decay, ..base };
            step.dispatch(UPDATE, &[], bytemuck::bytes_of(&p), &[&s.param, &s.grad, &s.m, &s.v, &st.state], grid(s.len, 256))?;
        }
        Ok(())
    }
}
