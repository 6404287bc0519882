//! The learning-rate schedule: linear warm-up, then linear decay to 0 (HF's
//! `get_linear_schedule_with_warmup`).

/// The learning rate of optimizer step `k` (0-based) of `total`, with `warmup` warm-up steps.
pub fn linear_schedule(lr: f32, k: usize, warmup: usize, total: usize) -> f32 {
    if k < warmup {
        return lr * k as f32 / warmup.max(1) as f32;
    }
    lr * (total.saturating_sub(k) as f32 / (total - warmup).max(1) as f32).max(0.0)
}
