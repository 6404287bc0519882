//! BERT's embeddings: word + position + token type (none in DistilBERT), LayerNorm, dropout;
//! forward and backward.

use super::batch::Batch;
use super::model::Model;
use super::mode::{Mode, Site};
use crate::gpu::{GpuError, Step};
use crate::kernels::dropout::Dropout;
use crate::kernels::embedding;
use crate::kernels::layernorm::{BackwardOpts, Fused, FusedBack, Saved, Stats};

impl Model {
    /// x[0] = dropout(LayerNorm(word[ids] + position[pos] + type[types])).
    pub(super) fn embeddings_forward(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg, p) = (self.acts.as_ref().unwrap(), &self.cfg, &self.params);
        let e = self.bert_parts().0;
        let (bt, c) = (batch.b * batch.t, cfg.embed_width());
        self.word_lookup(step, &a.emb, &batch.ids, e.word, bt, false)?;
        embedding::forward(step, a.emb.at([bt, c]), &batch.pos, p.value(e.position).at([cfg.max_position_embeddings, c]), true)?;
        if let Some(tt) = e.token_type {
            embedding::forward(step, a.emb.at([bt, c]), &batch.types, p.value(tt).at([cfg.type_vocab_size, c]), true)?;
        }
        // layernorm and dropout in one kernel
        let drop = Dropout::new(mode.prob(cfg.hidden_dropout_prob), mode.seed(Site::Embeddings));
        let stats = Stats { mean: &a.emb_mean, rstd: &a.emb_rstd };
        match &e.proj {
            None => self.ln_forward(step, self.hidden(&a.x[0], bt), stats, self.hidden(&a.emb, bt), &e.ln, Fused::DropOutput(drop)),
            // factorised (ALBERT, ELECTRA-small): the E-wide result projected to the hidden size
            Some(proj) => {
                self.ln_forward(step, a.emb_ln.at([bt, c]), stats, a.emb.at([bt, c]), &e.ln, Fused::DropOutput(drop))?;
                self.linear(step, &a.x[0], &a.emb_ln, proj, bt)
            }
        }
    }

    /// From d_x (the gradient at x[0]): the LayerNorm's and the three tables' gradients.
    pub(super) fn embeddings_backward(&self, step: &mut Step, batch: &Batch, mode: Mode) -> Result<(), GpuError> {
        let (a, cfg, p) = (self.acts.as_ref().unwrap(), &self.cfg, &self.params);
        let e = self.bert_parts().0;
        let (bt, c) = (batch.b * batch.t, cfg.embed_width());
        // factorised: through the projection first, into the E-wide gradient
        let (dy, dx) = match &e.proj {
            None => (&a.d_x, &a.d_h1),
            Some(proj) => {
                self.linear_backward(step, Some((&a.d_emb_ln, false)), &a.d_x, &a.emb_ln, proj, bt)?;
                (&a.d_emb_ln, &a.d_emb)
            }
        };
        // the layernorm's backward takes dy through the embeddings' dropout first
        let hp = mode.prob(cfg.hidden_dropout_prob);
        let fused = if hp > 0.0 { FusedBack::DropDy(Dropout::new(hp, mode.seed(Site::Embeddings))) } else { FusedBack::None };
        let saved = Saved { x: a.emb.at([bt, c]), stats: Stats { mean: &a.emb_mean, rstd: &a.emb_rstd } };
        self.ln_backward(step, dx.at([bt, c]), dy.at([bt, c]), saved, &e.ln, BackwardOpts { accumulate: false, fused })?;
        if let Some(dw) = p.grad_of(e.word) {
            self.word_lookup_backward(step, dw, dx, &batch.g_ids)?;
        }
        for (id, g, rows) in [(Some(e.position), &batch.g_pos, cfg.max_position_embeddings), (e.token_type, &batch.g_types, cfg.type_vocab_size)] {
            let Some(id) = id else { continue };
            if let Some(dw) = p.grad_of(id) {
                embedding::backward(step, dw.at([rows, c]), dx, g)?;
            }
        }
        Ok(())
    }
}
