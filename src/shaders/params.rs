//! Each kernel's uniform parameters, declared once for Rust and WGSL with [`uniform!`]: the kernel
//! (`crate::kernels::<name>`) fills the Rust struct, and [`super::source`] puts its WGSL text in
//! front of the shader that reads it.

use super::uniform::uniform;

pub(crate) mod matvec {
    use super::uniform;

    uniform! {
        /// shaders/matvec.wgsl's parameters.
        pub(crate) struct MatvecParams { rows: u32, n: u32, k: u32, x_off: u32, y_off: u32, off_w: u32, off_bias: u32 }
    }
    uniform! {
        /// shaders/matvec_packed.wgsl's parameters (both entry points).
        pub(crate) struct PackedParams { n: u32, k: u32, qc: u32, chunks: u32, s: u32, x_off: u32, y_off: u32, off_w: u32, off_bias: u32, n0: u32, rows: u32 }
    }
    uniform! {
        /// shaders/attention_cached.wgsl's parameters.
        pub(crate) struct AttnParams { n: u32, heads: u32, d: u32, ld: u32, q_off: u32, cap: u32, scale: f32, k_off: u32, v_off: u32, group: u32 }
    }
}

pub(crate) mod embedding {
    use super::uniform;

    uniform! {
        /// shaders/embedding.wgsl's parameters.
        pub(crate) struct Params { tokens: u32, dim: u32, vocab: u32, n_uniq: u32, off_table: u32, id_base: u32 }
    }
}

pub(crate) mod adamw {
    use super::uniform;

    uniform! {
        /// shaders/adamw.wgsl's parameters: the slice (n, off) and its partial-sum slot, the optimiser's
        /// settings, and ln(beta1), ln(beta2) for the bias corrections.
        pub(crate) struct Params {
            n: u32, off: u32, slot: u32, n_slots: u32,
            lr: f32, beta1: f32, beta2: f32, eps: f32,
            weight_decay: f32, max_norm: f32, ln_beta1: f32, ln_beta2: f32,
        }
    }
}

pub(crate) mod layernorm {
    use super::uniform;

    uniform! {
        /// shaders/layernorm.wgsl's parameters: the shape, eps, and the fused dropout's seed and probability.
        pub(crate) struct Params { rows: u32, cols: u32, eps: f32, seed_lo: u32, seed_hi: u32, prob: f32 }
    }
}

pub(crate) mod matmul {
    use super::uniform;

    uniform! {
        /// The parameters of the three matmul shaders (their use: shaders/matmul_common.wgsl).
        pub(crate) struct Params {
            m: u32, n: u32, k: u32, batch: u32,
            stride_a: u32, stride_b: u32, stride_c: u32, alpha: f32,
            off_a: u32, off_b: u32, off_c: u32, off_bias: u32,
            lda: u32, ldb: u32, ldc: u32, inner: u32,
            stride_a2: u32, stride_b2: u32, stride_c2: u32,
        }
    }
}

pub(crate) mod cross_entropy {
    use super::uniform;

    uniform! {
        /// shaders/cross_entropy.wgsl's parameters.
        pub(crate) struct Params { rows: u32, classes: u32, weight: f32 }
    }
}

pub(crate) mod softmax {
    use super::uniform;

    uniform! {
        /// shaders/softmax.wgsl's parameters: the shape, the mask's rows, the scale, and the fused
        /// dropout's seed and probability.
        pub(crate) struct Params { rows: u32, cols: u32, rows_per_mask: u32, scale: f32, seed_lo: u32, seed_hi: u32, prob: f32 }
    }
}

pub(crate) mod dropout {
    use super::uniform;

    uniform! {
        /// shaders/dropout.wgsl's parameters.
        pub(crate) struct Params { n: u32, seed_lo: u32, seed_hi: u32, prob: f32 }
    }
}

pub(crate) mod elementwise {
    use super::uniform;

    uniform! {
        /// shaders/elementwise.wgsl's parameters.
        pub(crate) struct Params { n: u32, cols: u32, alpha: f32 }
    }
}

pub(crate) mod gelu {
    use super::uniform;

    uniform! {
        /// shaders/gelu.wgsl's parameters.
        pub(crate) struct Params { n: u32 }
    }
}

pub(crate) mod glu {
    use super::uniform;

    uniform! {
        /// shaders/glu.wgsl's parameters.
        pub(crate) struct Params { rows: u32, width: u32 }
    }
}

pub(crate) mod rmsnorm {
    use super::uniform;

    uniform! {
        /// shaders/rmsnorm.wgsl's parameters.
        pub(crate) struct Params { rows: u32, cols: u32, eps: f32, per_row: u32, ld: u32, off: u32 }
    }
}

pub(crate) mod rotary {
    use super::uniform;

    uniform! {
        /// shaders/rotary.wgsl's parameters: rows, the sequence length, the row's width, the heads
        /// rotated (query heads, then key heads from k_off), the head size, the first position, and
        /// the direction (1: rotate, -1: the transpose, the backward).
        pub(crate) struct Params { rows: u32, t: u32, ld: u32, q_heads: u32, k_heads: u32, d: u32, q_off: u32, k_off: u32, pos_base: u32, sign: f32 }
    }
}

pub(crate) mod sample {
    use super::uniform;

    uniform! {
        /// shaders/sample.wgsl's parameters.
        pub(crate) struct Params { v: u32, k: u32, top_k: u32, off: u32, inv_temp: f32, u: f32 }
    }
}
