//! GELU, BERT's erf form or GPT-2's tanh approximation, and its backward (shaders/gelu.wgsl).

use super::{grid, need, u32_of};
use crate::gpu::{uniform, GpuBuf, GpuError, KernelId, Step};

pub const FORWARD: KernelId = KernelId::new("gelu", "gelu_forward", &[1, 2]);
pub const BACKWARD: KernelId = KernelId::new("gelu", "gelu_backward", &[1, 3, 4]);

uniform! {
    /// shaders/gelu.wgsl's parameters.
    pub(crate) struct Params { n: u32 }
}

/// Which GELU: BERT's `gelu` (erf) or GPT-2's `gelu_new` (tanh approximation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Gelu {
    #[default]
    Erf,
    Tanh,
}

impl Gelu {
    fn consts(self) -> [(&'static str, f64); 1] {
        [("TANH", if self == Gelu::Tanh { 1.0 } else { 0.0 })]
    }
}

pub fn forward(step: &mut Step, kind: Gelu, y: &GpuBuf, x: &GpuBuf, n: usize) -> Result<(), GpuError> {
    need("gelu_forward", "x", x, 0, n)?;
    need("gelu_forward", "y", y, 0, n)?;
    let p = Params { n: u32_of("gelu", n)? };
    step.dispatch(FORWARD, &kind.consts(), bytemuck::bytes_of(&p), &[x, y], grid(n, 256))
}

/// dx = dy * gelu'(x), x being the pre-activation saved by the forward.
pub fn backward(step: &mut Step, kind: Gelu, dx: &GpuBuf, x: &GpuBuf, dy: &GpuBuf, n: usize) -> Result<(), GpuError> {
    for (what, b) in [("dx", dx), ("x", x), ("dy", dy)] {
        need("gelu_backward", what, b, 0, n)?;
    }
    let p = Params { n: u32_of("gelu", n)? };
    step.dispatch(BACKWARD, &kind.consts(), bytemuck::bytes_of(&p), &[x, dy, dx], grid(n, 256))
}
