//! BERT's body on the shared [`Model`] (model.rs): its forward (the embeddings, the encoder layers,
//! the heads) and its backward, which skips the layers below the lowest trainable parameter. The
//! parts are in their own files: the embeddings (embeddings.rs), the encoder layer (layer.rs) and
//! the heads (heads.rs); GPT-2's body is in gpt2.rs.
//!
//! Shapes (see mod.rs): x (B*T, C); qkv (B*T, 3C), one projection by the three weights side by side
//! in their arena; ctx (B*T, C); probs (B, H, T, T); attention reads heads in place (kernels::attention);
//! inter (B*T, I); the language-model head's rows (M, C) and logits (M, V) only at predicted
//! positions.

use super::batch::Batch;
use super::mode::Mode;
use super::model::Model;
use crate::gpu::{GpuError, Step};

impl Model {
    /// Records BERT's forward: the embeddings, every layer, the heads that have targets.
    pub(super) fn record_forward_bert(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        self.embeddings_forward(step, batch, mode)?;
        for l in 0..self.cfg.num_hidden_layers {
            self.layer_forward(step, batch, l, mode)?;
        }
        self.heads_forward(step, batch, mode)
    }

    /// Records BERT's backward, the heads' first; layers below the lowest trainable parameter get
    /// none.
    pub(super) fn record_backward_bert(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let layers = self.cfg.num_hidden_layers;
        // does anything below layer l (or in it) need gradients?
        let (emb, layer_params, _) = self.bert_parts();
        let emb_trainable = self.any_trains(emb.ids());
        let layer_trainable: Vec<bool> = layer_params.iter().map(|lp| self.any_trains(lp.ids())).collect();
        let need_below = |l: usize| emb_trainable || layer_trainable[..l].iter().any(|&x| x);
        let encoder_needs_grad = need_below(layers);
        // d_x holds dLoss/d(the last hidden state), then of each layer's input
        self.heads_backward(step, batch, mode, encoder_needs_grad)?;
        if !encoder_needs_grad {
            return Ok(());
        }
        for l in (0..layers).rev() {
            if layer_trainable[l] || need_below(l) {
                self.layer_backward(step, batch, l, mode, need_below(l))?;
            }
        }
        if emb_trainable {
            self.embeddings_backward(step, batch, mode)?;
        }
        Ok(())
    }
}
