//! Padding encoded sequences into the (B, T) arrays a `model::Batch` is built from.

use crate::text::tokenizer::Encoded;
use crate::train::masking::Outcome;

/// A batch on the host: (B, T) row-major arrays, padded to the longest sequence rounded up to a
/// multiple of [`T_MULTIPLE`].
#[derive(Debug, Clone, Default)]
pub struct HostBatch {
    pub b: usize,
    pub t: usize,
    pub ids: Vec<u32>,
    pub types: Vec<u32>,
    pub mask: Vec<u32>,
    /// The language-model head's targets, (B, T) with -100 where nothing is predicted: masked
    /// words, or a causal model's next words.
    pub lm_labels: Option<Vec<i32>>,
    pub sop_labels: Option<Vec<i32>>,
    pub cls_labels: Option<Vec<i32>>,
    /// What masking did to each token (MLM batches), for the UI.
    pub outcomes: Option<Vec<Outcome>>,
}

/// Batches are padded to a multiple of this many tokens, so that the attention products (whose K or
/// N is T) meet the vec4 matmul's contract (`kernels::matmul`). Padding is masked out of attention,
/// pooling and the losses, so it changes no result for the real tokens; it costs at most 3 rows.
pub const T_MULTIPLE: usize = 4;

/// Pads `seqs` (ids, types) with `pad_id` to the longest one, rounded up to [`T_MULTIPLE`].
pub fn pad(seqs: &[(&[u32], &[u32])], pad_id: u32) -> HostBatch {
    let b = seqs.len();
    let t = seqs.iter().map(|s| s.0.len()).max().unwrap_or(1).max(1).next_multiple_of(T_MULTIPLE);
    let mut hb = HostBatch { b, t, ids: vec![pad_id; b * t], types: vec![0; b * t], mask: vec![0; b * t], ..Default::default() };
    for (i, (ids, types)) in seqs.iter().enumerate() {
        hb.ids[i * t..i * t + ids.len()].copy_from_slice(ids);
        hb.types[i * t..i * t + types.len()].copy_from_slice(types);
        for m in &mut hb.mask[i * t..i * t + ids.len()] {
            *m = 1;
        }
    }
    hb
}

/// A classification batch of encoded examples with their class ids.
pub fn classification(enc: &[&Encoded], labels: &[i32], pad_id: u32) -> HostBatch {
    let seqs: Vec<(&[u32], &[u32])> = enc.iter().map(|e| (&e.ids[..], &e.type_ids[..])).collect();
    let mut hb = pad(&seqs, pad_id);
    hb.cls_labels = Some(labels.to_vec());
    hb
}

impl HostBatch {
    pub fn to_gpu(&self, gpu: &crate::gpu::Gpu, cfg: &crate::model::ModelConfig) -> Result<crate::model::Batch, crate::error::Error> {
        let cropped;
        let hb = if self.t > cfg.max_tokens() { cropped = self.crop(cfg.max_tokens()); &cropped } else { self };
        crate::model::Batch::new(gpu, cfg, hb.b, hb.t, &hb.ids, &hb.types, &hb.mask, hb.lm_labels.as_deref(), hb.sop_labels.as_deref(), hb.cls_labels.as_deref())
    }

    /// The batch with its padding cut back to `t` columns, where rounding T up passed the model's
    /// positions. Columns that hold a real token are kept (and then refused by `Batch::new`).
    pub fn crop(&self, t: usize) -> HostBatch {
        let longest = (0..self.b).map(|i| self.mask[i * self.t..(i + 1) * self.t].iter().filter(|&&m| m != 0).count()).max().unwrap_or(0);
        let t = t.max(longest).min(self.t);
        let cut = |v: &[u32]| -> Vec<u32> { (0..self.b).flat_map(|i| v[i * self.t..i * self.t + t].to_vec()).collect() };
        let cut_i = |v: &[i32]| -> Vec<i32> { (0..self.b).flat_map(|i| v[i * self.t..i * self.t + t].to_vec()).collect() };
        HostBatch {
            b: self.b,
            t,
            ids: cut(&self.ids),
            types: cut(&self.types),
            mask: cut(&self.mask),
            lm_labels: self.lm_labels.as_deref().map(cut_i),
            outcomes: self.outcomes.as_ref().map(|o| (0..self.b).flat_map(|i| o[i * self.t..i * self.t + t].to_vec()).collect()),
            ..self.clone()
        }
    }
}
