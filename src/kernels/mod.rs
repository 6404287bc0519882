//! One Rust file per shader under `shaders/`: its bindings and its dispatch math, filling the uniform
//! struct its shader reads (declared once for Rust and WGSL in [`crate::shaders::params`] with
//! [`crate::shaders::uniform::uniform!`]). Every function records into a [`crate::gpu::Step`], takes
//! its tensors as [`crate::gpu::View`]s (or a descriptor such as [`matmul::Matmul`] that carries
//! their shapes) and returns shape errors as values; nothing here reads back.
//! Naming follows llm.c: outputs first, then inputs, then weights.

pub mod adamw;
pub mod attention;
pub mod checks;
pub mod cpu;
pub mod cross_entropy;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod gelu;
pub mod glu;
pub mod rmsnorm;
pub mod rotary;
pub mod layernorm;
pub mod matmul;
pub mod matvec;
pub mod sample;
pub mod softmax;

mod dispatch;

use crate::gpu::KernelId;

pub(crate) use dispatch::{grid, need, u32_of};

/// Every (kernel, override constants) the engine uses, with the given matmul kernels
/// ([`matmul::Kernel::available`]); the browser tests and the self-check build each of them inside an
/// error scope.
pub fn all_pipelines(matmuls: &[matmul::Kernel]) -> Vec<(KernelId, Vec<(&'static str, f64)>)> {
    let mut v = Vec::new();
    for kernel in matmuls.iter().filter_map(|k| k.shader(false)).map(|s| s.0) {
        let plain = matmul::Variant::default();
        for trans_a in [false, true] {
            for trans_b in [false, true] {
                v.push((kernel, matmul::Variant { trans_a, trans_b, ..plain }.constants()));
            }
        }
        // x @ W^T + b (torch's Linear) through GELU, or added to C
        v.push((kernel, matmul::Variant { trans_b: true, bias: true, gelu: true, ..plain }.constants()));
        v.push((kernel, matmul::Variant { trans_b: true, bias: true, accumulate: true, ..plain }.constants()));
        v.push((kernel, matmul::Variant { accumulate: true, ..plain }.constants()));
        // GPT-2's Conv1D: x @ W + b, and its weight gradient x^T dy accumulated
        v.push((kernel, matmul::Variant { bias: true, ..plain }.constants()));
        v.push((kernel, matmul::Variant { trans_a: true, accumulate: true, ..plain }.constants()));
    }
    for k in [softmax::FORWARD, softmax::FORWARD_ROWS] {
        v.push((k, vec![("HAS_MASK", 1.0)]));
        v.push((k, vec![("HAS_MASK", 0.0)]));
        // a sliding window (its size is the model's; any one builds the same code)
        v.push((k, vec![("HAS_MASK", 1.0), ("WINDOW", 64.0)]));
    }
    v.push((softmax::BACKWARD, vec![]));
    v.push((softmax::BACKWARD_ROWS, vec![]));
    for (fwd, bwd) in [(layernorm::FORWARD, layernorm::BACKWARD_INPUT), (layernorm::FORWARD_ROWS, layernorm::BACKWARD_INPUT_ROWS)] {
        v.push((fwd, vec![]));
        v.push((bwd, vec![("ACCUMULATE", 0.0)]));
        v.push((bwd, vec![("ACCUMULATE", 1.0)]));
    }
    v.push((layernorm::BACKWARD_PARAMS, vec![]));
    for tanh in [0.0, 1.0] {
        v.push((gelu::FORWARD, vec![("TANH", tanh)]));
        v.push((gelu::BACKWARD, vec![("TANH", tanh)]));
    }
    for act in glu::GluAct::ALL {
        v.push((glu::FORWARD, act.consts().to_vec()));
        v.push((glu::BACKWARD, act.consts().to_vec()));
    }
    v.push((rotary::ROTARY, vec![]));
    v.push((rmsnorm::FORWARD, vec![]));
    v.push((rmsnorm::BACKWARD_INPUT, vec![("ACCUMULATE", 0.0)]));
    v.push((rmsnorm::BACKWARD_INPUT, vec![("ACCUMULATE", 1.0)]));
    v.push((rmsnorm::BACKWARD_PARAMS, vec![]));
    for k in [elementwise::ADD, elementwise::SCALE, elementwise::TANH_FORWARD, elementwise::TANH_BACKWARD, elementwise::RELU_FORWARD, elementwise::RELU_BACKWARD, elementwise::BIAS_GRAD] {
        v.push((k, vec![]));
    }
    v.push((embedding::FORWARD, vec![("ACCUMULATE", 0.0)]));
    v.push((embedding::FORWARD, vec![("ACCUMULATE", 1.0)]));
    v.push((embedding::BACKWARD, vec![]));
    v.push((dropout::DROPOUT, vec![]));
    for k in [cross_entropy::ROWS, cross_entropy::REDUCE, cross_entropy::BACKWARD] {
        v.push((k, vec![]));
    }
    for k in [adamw::SUMSQ, adamw::FINALIZE, adamw::UPDATE] {
        v.push((k, vec![]));
    }
    v.extend(matvec::pipelines());
    v.push((sample::SAMPLE, vec![]));
    v
}
