//! BERT's embeddings: word + position + token type, LayerNorm, dropout; forward and backward.

use super::batch::Batch;
use super::bert::Model;
use super::mode::{Mode, Site};
use crate::gpu::{GpuError, Step};
use crate::kernels::dropout::Dropout;
use crate::kernels::embedding;
use crate::kernels::layernorm::{self, LnParams};

impl Model {
    /// x[0] = dropout(LayerNorm(word[ids] + position[pos] + type[types])).
    pub(super) fn embeddings_forward(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg, p) = (self.acts.as_ref().unwrap(), &self.cfg, &self.params);
        let e = self.bert_parts().0;
        let (bt, c) = (batch.b * batch.t, cfg.hidden_size);
        self.word_lookup(step, &a.emb, &batch.ids, e.word, bt, false)?;
        embedding::forward(step, &a.emb, &batch.pos, p.value(e.position), 0, bt, c, cfg.max_position_embeddings, true)?;
        embedding::forward(step, &a.emb, &batch.types, p.value(e.token_type), 0, bt, c, cfg.type_vocab_size, true)?;
        // layernorm and dropout in one kernel
        let (g, be) = (p.value(e.ln.g), p.value(e.ln.b));
        let drop = Dropout::new(mode.prob(cfg.hidden_dropout_prob), mode.seed(Site::Embeddings));
        layernorm::forward_dropped(step, &a.x[0], &a.emb_mean, &a.emb_rstd, &a.emb, drop, g, be, LnParams::default(), bt, c, cfg.layer_norm_eps as f32)
    }

    /// From d_x (the gradient at x[0]): the LayerNorm's and the three tables' gradients.
    pub(super) fn embeddings_backward(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg, p) = (self.acts.as_ref().unwrap(), &self.cfg, &self.params);
        let e = self.bert_parts().0;
        let (bt, c) = (batch.b * batch.t, cfg.hidden_size);
        // the layernorm's backward takes d_x through the embeddings' dropout first
        let dg = p.grad_of(e.ln.g).unwrap_or(&a.ln_scratch);
        let db = p.grad_of(e.ln.b).unwrap_or(&a.ln_scratch);
        let hp = mode.prob(cfg.hidden_dropout_prob);
        let drop = (hp > 0.0).then(|| Dropout::new(hp, mode.seed(Site::Embeddings)));
        layernorm::backward_dropped(step, &a.d_h1, None, drop, dg, db, &a.d_x, &a.emb, &a.emb_mean, &a.emb_rstd, p.value(e.ln.g), LnParams::default(), bt, c, false)?;
        if let Some(dw) = p.grad_of(e.word) {
            self.word_lookup_backward(step, dw, &a.d_h1, &batch.g_ids)?;
        }
        for (id, g, rows) in [(e.position, &batch.g_pos, cfg.max_position_embeddings), (e.token_type, &batch.g_types, cfg.type_vocab_size)] {
            if let Some(dw) = p.grad_of(id) {
                embedding::backward(step, dw, 0, &a.d_h1, g, c, rows)?;
            }
        }
        Ok(())
    }
}
