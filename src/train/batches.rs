//! Padding encoded sequences into the (B, T) arrays a `model::Batch` is built from.

use crate::text::tokenizer::Encoded;
use crate::train::masking::Outcome;

/// A batch on the host: (B, T) row-major arrays, padded to the longest sequence.
#[derive(Debug, Clone, Default)]
pub struct HostBatch {
    pub b: usize,
    pub t: usize,
    pub ids: Vec<u32>,
    pub types: Vec<u32>,
    pub mask: Vec<u32>,
    pub mlm_labels: Option<Vec<i32>>,
    pub sop_labels: Option<Vec<i32>>,
    pub cls_labels: Option<Vec<i32>>,
    /// What masking did to each token (MLM batches), for the UI.
    pub outcomes: Option<Vec<Outcome>>,
}

/// Pads `seqs` (ids, types) with `pad_id` to the longest one.
pub fn pad(seqs: &[(&[u32], &[u32])], pad_id: u32) -> HostBatch {
    let b = seqs.len();
    let t = seqs.iter().map(|s| s.0.len()).max().unwrap_or(1).max(1);
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
    pub fn to_gpu(&self, gpu: &crate::gpu::Gpu, cfg: &crate::model::BertConfig) -> Result<crate::model::Batch, String> {
        crate::model::Batch::new(gpu, cfg, self.b, self.t, &self.ids, &self.types, &self.mask, self.mlm_labels.as_deref(), self.sop_labels.as_deref(), self.cls_labels.as_deref())
    }
}
