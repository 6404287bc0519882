//! BERT's embeddings: word + position + token type, LayerNorm, dropout; forward and backward.

use super::batch::Batch;
use super::bert::Bert;
use super::mode::{Mode, Site};
use crate::gpu::{GpuError, Step};
use crate::kernels::dropout::Dropout;
use crate::kernels::embedding;
use crate::kernels::layernorm::{self, LnParams};

const LN: &str = "embeddings.LayerNorm";

impl Bert {
    /// x[0] = dropout(LayerNorm(word[ids] + position[pos] + type[types])).
    pub(super) fn embeddings_forward(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg, p) = (self.acts.as_ref().unwrap(), &self.cfg, &self.params);
        let (bt, c) = (batch.b * batch.t, cfg.hidden_size);
        embedding::forward(step, &a.emb, &batch.ids, p.w("embeddings.word_embeddings.weight"), 0, bt, c, cfg.vocab_size, false)?;
        embedding::forward(step, &a.emb, &batch.pos, p.w("embeddings.position_embeddings.weight"), 0, bt, c, cfg.max_position_embeddings, true)?;
        embedding::forward(step, &a.emb, &batch.types, p.w("embeddings.token_type_embeddings.weight"), 0, bt, c, cfg.type_vocab_size, true)?;
        // layernorm and dropout in one kernel
        let (g, be) = (p.w(&format!("{LN}.weight")), p.w(&format!("{LN}.bias")));
        let drop = Dropout::new(mode.prob(cfg.hidden_dropout_prob), mode.seed(Site::Embeddings));
        layernorm::forward_dropped(step, &a.x[0], &a.emb_mean, &a.emb_rstd, &a.emb, drop, g, be, LnParams::default(), bt, c, cfg.layer_norm_eps as f32)
    }

    /// From d_x (the gradient at x[0]): the LayerNorm's and the three tables' gradients.
    pub(super) fn embeddings_backward(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg, p) = (self.acts.as_ref().unwrap(), &self.cfg, &self.params);
        let (bt, c) = (batch.b * batch.t, cfg.hidden_size);
        // the layernorm's backward takes d_x through the embeddings' dropout first
        let wn = format!("{LN}.weight");
        let dg = p.grad(&wn).unwrap_or(&a.ln_scratch);
        let db = p.grad(&format!("{LN}.bias")).unwrap_or(&a.ln_scratch);
        let hp = mode.prob(cfg.hidden_dropout_prob);
        let drop = (hp > 0.0).then(|| Dropout::new(hp, mode.seed(Site::Embeddings)));
        layernorm::backward_dropped(step, &a.d_h1, None, drop, dg, db, &a.d_x, &a.emb, &a.emb_mean, &a.emb_rstd, p.w(&wn), LnParams::default(), bt, c, false)?;
        for (name, g, rows) in [
            ("embeddings.word_embeddings.weight", &batch.g_ids, cfg.vocab_size),
            ("embeddings.position_embeddings.weight", &batch.g_pos, cfg.max_position_embeddings),
            ("embeddings.token_type_embeddings.weight", &batch.g_types, cfg.type_vocab_size),
        ] {
            if let Some(dw) = p.grad(name) {
                embedding::backward(step, dw, 0, &a.d_h1, g, c, rows)?;
            }
        }
        Ok(())
    }
}
