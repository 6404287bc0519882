//! Gated linear units (shaders/glu.wgsl): `y = act(a) * b` over the two halves `[a | b]` of one
//! projection's output, ModernBERT's GeGLU and the Llama-shaped models' SwiGLU, and the backward
//! into both halves.

use super::{grid, u32_of};
use crate::gpu::{expect_shape, GpuError, KernelId, Step, View};
use crate::shaders::params::glu::Params;

pub const FORWARD: KernelId = KernelId::new("glu", "glu_forward", &[1, 2]);
pub const BACKWARD: KernelId = KernelId::new("glu", "glu_backward", &[1, 3, 4]);

/// The activation on the first half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GluAct {
    /// GELU, erf form (GeGLU: ModernBERT's "gelu").
    Gelu,
    /// GELU, tanh approximation ("gelu_pytorch_tanh").
    GeluTanh,
    /// SiLU, x·sigmoid(x) (SwiGLU: Llama's "silu").
    Silu,
}

impl GluAct {
    pub const ALL: [GluAct; 3] = [GluAct::Gelu, GluAct::GeluTanh, GluAct::Silu];

    pub(crate) fn consts(self) -> [(&'static str, f64); 1] {
        [("ACT", match self {
            GluAct::Gelu => 0.0,
            GluAct::GeluTanh => 1.0,
            GluAct::Silu => 2.0,
        })]
    }
}

/// y (rows, width) = act(u[:, :width]) * u[:, width:], u (rows, 2 width).
pub fn forward(step: &mut Step, act: GluAct, y: View, u: View) -> Result<(), GpuError> {
    let (rows, width) = (y.rows(), y.cols());
    expect_shape("glu_forward", "u", &u, [rows, 2 * width])?;
    let p = Params { rows: u32_of("glu", rows)?, width: u32_of("glu", width)? };
    let (u, y) = (u.whole("glu_forward", "u")?, y.whole("glu_forward", "y")?);
    step.dispatch(FORWARD, &act.consts(), bytemuck::bytes_of(&p), &[u, y], grid(rows * width, 256))
}

/// du (rows, 2 width) = [dy * b * act'(a) | dy * act(a)] from the forward's input u and dy (rows, width).
pub fn backward(step: &mut Step, act: GluAct, du: View, u: View, dy: View) -> Result<(), GpuError> {
    let (rows, width) = (dy.rows(), dy.cols());
    expect_shape("glu_backward", "u", &u, [rows, 2 * width])?;
    expect_shape("glu_backward", "du", &du, [rows, 2 * width])?;
    let p = Params { rows: u32_of("glu", rows)?, width: u32_of("glu", width)? };
    let (u, dy, du) = (u.whole("glu_backward", "u")?, dy.whole("glu_backward", "dy")?, du.whole("glu_backward", "du")?);
    step.dispatch(BACKWARD, &act.consts(), bytemuck::bytes_of(&p), &[u, dy, du], grid(rows * width, 256))
}
