//! Residual add, scaling, the pooler's tanh (DistilBERT's ReLU) and bias gradients (shaders/elementwise.wgsl).

use super::{grid, u32_of};
use crate::gpu::{expect_shape, same_whole, GpuError, KernelId, Step, View};
use crate::shaders::params::elementwise::Params;

pub const ADD: KernelId = KernelId::new("elementwise", "add", &[1, 2, 3]);
pub const SCALE: KernelId = KernelId::new("elementwise", "scale", &[3]);
pub const TANH_FORWARD: KernelId = KernelId::new("elementwise", "tanh_forward", &[1, 3]);
pub const TANH_BACKWARD: KernelId = KernelId::new("elementwise", "tanh_backward", &[1, 2, 3]);
pub const RELU_FORWARD: KernelId = KernelId::new("elementwise", "relu_forward", &[1, 3]);
pub const RELU_BACKWARD: KernelId = KernelId::new("elementwise", "relu_backward", &[1, 2, 3]);
pub const BIAS_GRAD: KernelId = KernelId::new("elementwise", "bias_grad", &[1, 3]);

fn p(n: usize, cols: usize, alpha: f32) -> Result<Params, GpuError> {
    Ok(Params { n: u32_of("elementwise", n)?, cols: u32_of("elementwise", cols)?, alpha })
}

/// y = a + b, the three of one shape.
pub fn add(step: &mut Step, y: View, a: View, b: View) -> Result<(), GpuError> {
    let n = y.numel();
    let [y, a, b] = same_whole("add", [("y", y), ("a", a), ("b", b)])?;
    step.dispatch(ADD, &[], bytemuck::bytes_of(&p(n, 1, 0.0)?), &[a, b, y], grid(n, 256))
}

/// y *= alpha.
pub fn scale(step: &mut Step, y: View, alpha: f32) -> Result<(), GpuError> {
    let n = y.numel();
    let y = y.whole("scale", "y")?;
    step.dispatch(SCALE, &[], bytemuck::bytes_of(&p(n, 1, alpha)?), &[y], grid(n, 256))
}

/// y = tanh(x), the two of one shape.
pub fn tanh_forward(step: &mut Step, y: View, x: View) -> Result<(), GpuError> {
    let n = x.numel();
    let [x, y] = same_whole("tanh_forward", [("x", x), ("y", y)])?;
    step.dispatch(TANH_FORWARD, &[], bytemuck::bytes_of(&p(n, 1, 0.0)?), &[x, y], grid(n, 256))
}

/// dx = dy * (1 - y^2) with y the tanh output, the three of one shape.
pub fn tanh_backward(step: &mut Step, dx: View, y: View, dy: View) -> Result<(), GpuError> {
    let n = y.numel();
    let [dx, y, dy] = same_whole("tanh_backward", [("dx", dx), ("y", y), ("dy", dy)])?;
    step.dispatch(TANH_BACKWARD, &[], bytemuck::bytes_of(&p(n, 1, 0.0)?), &[y, dy, dx], grid(n, 256))
}

/// y = max(x, 0), the two of one shape.
pub fn relu_forward(step: &mut Step, y: View, x: View) -> Result<(), GpuError> {
    let n = x.numel();
    let [x, y] = same_whole("relu_forward", [("x", x), ("y", y)])?;
    step.dispatch(RELU_FORWARD, &[], bytemuck::bytes_of(&p(n, 1, 0.0)?), &[x, y], grid(n, 256))
}

/// dx = dy where y > 0, else 0, with y the ReLU output, the three of one shape.
pub fn relu_backward(step: &mut Step, dx: View, y: View, dy: View) -> Result<(), GpuError> {
    let n = y.numel();
    let [dx, y, dy] = same_whole("relu_backward", [("dx", dx), ("y", y), ("dy", dy)])?;
    step.dispatch(RELU_BACKWARD, &[], bytemuck::bytes_of(&p(n, 1, 0.0)?), &[y, dy, dx], grid(n, 256))
}

/// db (cols) += column sums of dy (rows, cols).
pub fn bias_grad(step: &mut Step, db: View, dy: View) -> Result<(), GpuError> {
    let (rows, cols) = (dy.rows(), dy.cols());
    expect_shape("bias_grad", "db", &db, [cols])?;
    let (db, dy) = (db.whole("bias_grad", "db")?, dy.whole("bias_grad", "dy")?);
    step.dispatch(BIAS_GRAD, &[], bytemuck::bytes_of(&p(rows * cols, cols, 0.0)?), &[dy, db], grid(cols, 256))
}
