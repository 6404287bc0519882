//! Residual add, scaling, the pooler's tanh and bias gradients (shaders/elementwise.wgsl).

use super::{grid, need, u32_of};
use crate::gpu::{uniform, GpuBuf, GpuError, KernelId, Step};

pub const ADD: KernelId = KernelId::new("elementwise", "add", &[1, 2, 3]);
pub const SCALE: KernelId = KernelId::new("elementwise", "scale", &[3]);
pub const TANH_FORWARD: KernelId = KernelId::new("elementwise", "tanh_forward", &[1, 3]);
pub const TANH_BACKWARD: KernelId = KernelId::new("elementwise", "tanh_backward", &[1, 2, 3]);
pub const BIAS_GRAD: KernelId = KernelId::new("elementwise", "bias_grad", &[1, 3]);

uniform! {
    /// shaders/elementwise.wgsl's parameters.
    pub(crate) struct Params { n: u32, cols: u32, alpha: f32 }
}

fn p(n: usize, cols: usize, alpha: f32) -> Result<Params, GpuError> {
    Ok(Params { n: u32_of("elementwise", n)?, cols: u32_of("elementwise", cols)?, alpha })
}

/// y = a + b over n elements.
pub fn add(step: &mut Step, y: &GpuBuf, a: &GpuBuf, b: &GpuBuf, n: usize) -> Result<(), GpuError> {
    for (what, t) in [("y", y), ("a", a), ("b", b)] {
        need("add", what, t, 0, n)?;
    }
    step.dispatch(ADD, &[], bytemuck::bytes_of(&p(n, 1, 0.0)?), &[a, b, y], grid(n, 256))
}

/// y *= alpha over the first n elements.
pub fn scale(step: &mut Step, y: &GpuBuf, alpha: f32, n: usize) -> Result<(), GpuError> {
    need("scale", "y", y, 0, n)?;
    step.dispatch(SCALE, &[], bytemuck::bytes_of(&p(n, 1, alpha)?), &[y], grid(n, 256))
}

pub fn tanh_forward(step: &mut Step, y: &GpuBuf, x: &GpuBuf, n: usize) -> Result<(), GpuError> {
    need("tanh_forward", "x", x, 0, n)?;
    need("tanh_forward", "y", y, 0, n)?;
    step.dispatch(TANH_FORWARD, &[], bytemuck::bytes_of(&p(n, 1, 0.0)?), &[x, y], grid(n, 256))
}

/// dx = dy * (1 - y^2) with y the tanh output.
pub fn tanh_backward(step: &mut Step, dx: &GpuBuf, y: &GpuBuf, dy: &GpuBuf, n: usize) -> Result<(), GpuError> {
    for (what, t) in [("dx", dx), ("y", y), ("dy", dy)] {
        need("tanh_backward", what, t, 0, n)?;
    }
    step.dispatch(TANH_BACKWARD, &[], bytemuck::bytes_of(&p(n, 1, 0.0)?), &[y, dy, dx], grid(n, 256))
}

/// db (cols) += column sums of dy (rows, cols).
pub fn bias_grad(step: &mut Step, db: &GpuBuf, dy: &GpuBuf, rows: usize, cols: usize) -> Result<(), GpuError> {
    need("bias_grad", "dy", dy, 0, rows * cols)?;
    need("bias_grad", "db", db, 0, cols)?;
    step.dispatch(BIAS_GRAD, &[], bytemuck::bytes_of(&p(rows * cols, cols, 0.0)?), &[dy, db], grid(cols, 256))
}
