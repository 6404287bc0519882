//! GELU, BERT's erf form or GPT-2's tanh approximation, and its backward (shaders/gelu.wgsl).

use super::{grid, u32_of};
use crate::gpu::{same_whole, GpuError, KernelId, Step, View};
use crate::shaders::params::gelu::Params;

pub const FORWARD: KernelId = KernelId::new("gelu", "gelu_forward", &[1, 2]);
pub const BACKWARD: KernelId = KernelId::new("gelu", "gelu_backward", &[1, 3, 4]);

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

/// y = gelu(x), the two of one shape.
pub fn forward(step: &mut Step, kind: Gelu, y: View, x: View) -> Result<(), GpuError> {
    let n = x.numel();
    let [x, y] = same_whole("gelu_forward", [("x", x), ("y", y)])?;
    let p = Params { n: u32_of("gelu", n)? };
    step.dispatch(FORWARD, &kind.consts(), bytemuck::bytes_of(&p), &[x, y], grid(n, 256))
}

/// dx = dy * gelu'(x), x being the pre-activation saved by the forward; the three of one shape.
pub fn backward(step: &mut Step, kind: Gelu, dx: View, x: View, dy: View) -> Result<(), GpuError> {
    let n = x.numel();
    let [dx, x, dy] = same_whole("gelu_backward", [("dx", dx), ("x", x), ("dy", dy)])?;
    let p = Params { n: u32_of("gelu", n)? };
    step.dispatch(BACKWARD, &kind.consts(), bytemuck::bytes_of(&p), &[x, dy, dx], grid(n, 256))
}
