//! What the page draws of a model reading one sentence: the masked-words view (predictions at each
//! [MASK], attention, a causal model's next-word guesses) and the companion model's view beside it.

use serde::{Deserialize, Serialize};

use super::{Loaded, Session};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::train::trainer;

/// A causal model's guesses after each token: (token, [(next token, p)], most likely first).
pub type NextWords = (String, Vec<(String, f32)>);

/// The masked-words panel's view of one sentence.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FillView {
    pub tokens: Vec<String>,
    /// Where the [MASK]s are.
    pub positions: Vec<usize>,
    /// Top-k (token, p) at each [MASK] (a causal model: its next-word guess there).
    pub predictions: Vec<Vec<(String, f32)>>,
    /// The chosen layer and head's attention, (T, T).
    pub attention: Vec<Vec<f32>>,
    pub layer: usize,
    pub head: usize,
    pub layers: usize,
    pub heads: usize,
    pub note: Option<String>,
    pub causal: bool,
    /// A causal model's next-word guesses at each position up to the [MASK].
    pub next: Option<Vec<NextWords>>,
    /// The other kind of model kept beside this one, on the same sentence.
    pub beside: Option<BesideView>,
}

/// The companion model's view of the same sentence.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BesideView {
    pub source: String,
    pub causal: bool,
    pub next: Option<Vec<NextWords>>,
    pub predictions: Vec<Vec<(String, f32)>>,
    pub note: Option<String>,
    pub error: Option<String>,
}

/// A causal model's top-k next tokens at each position of `text` up to its first [MASK] (so the
/// last row is its guess for the [MASK], from the words before it): (token, [(next token, p)]).
async fn next_words(g: &Gpu, l: &mut Loaded, text: &str, k: usize) -> Result<Vec<(String, Vec<(String, f32)>)>> {
    let prefix = text.split("[MASK]").next().unwrap_or("").trim_end();
    let e = l.tok.encode(prefix, None, l.model.cfg.max_tokens())?;
    // without the closing [SEP] (<|endoftext|>): what comes after the last word is the question
    let ids = &e.ids[..e.ids.len() - 1];
    let positions: Vec<usize> = (0..ids.len()).collect();
    let top = l.model.top_tokens(g, ids, &vec![0; ids.len()], &positions, k).await?;
    Ok(ids.iter().zip(top).map(|(&id, row)| (l.tok.piece(id), row.into_iter().map(|(t, p)| (l.tok.piece(t), p)).collect())).collect())
}

/// The companion model's view of the same sentence: a masked model's top-k at each [MASK], or a
/// causal model's next words. None when there is no companion.
async fn companion_view(s: &Session, text: &str, k: usize) -> Option<BesideView> {
    s.with_companion(async |g, c| {
        let mut v = BesideView { source: c.source.clone(), causal: c.model.cfg.is_decoder, ..Default::default() };
        let r = async {
            if v.causal {
                v.next = Some(next_words(g, c, text, k).await?);
            } else if c.model.heads.lm && text.contains("[MASK]") {
                v.predictions = trainer::probe(g, &mut c.model, &c.tok, text, k).await?;
            } else {
                v.note = Some("this model has no masked-LM head, or the sentence no [MASK]".into());
            }
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = r {
            v.error = Some(e.to_string());
        }
        v
    })
    .await
}

/// Tokens whose attention the page draws, at most: a square over 64 tokens does not read.
const HEATMAP_MAX: usize = 64;

impl Session {
    /// The masked-words panel's view of `text`: the top `k` at each [MASK] (a causal model: its
    /// next-word guess there, and its guesses along the way), layer `layer`'s head `head`'s
    /// attention over the first [`HEATMAP_MAX`] tokens, notes on what the model can and cannot
    /// do, and the companion model's view of the same sentence.
    pub async fn fill_view(&self, text: &str, k: usize, layer: usize, head: usize) -> Result<FillView> {
        let r = self
            .with_model("predicting masked words", async |g, l| {
                // a GPT-2 tokenizer has no [MASK]: <|endoftext|> stands in for it (and frames the text), so
                // the positions are the ones inside the frame
                // (a Llama-shaped decoder's tokenizer likewise: its end token stands in, inside no frame)
                let gpt2_tok = l.tok.mask_stands_in();
                let framed = if gpt2_tok { text.replace(" [MASK]", "[MASK]").replace("[MASK]", &l.tok.id_to_token(l.tok.mask)) } else { text.to_string() };
                let e = l.tok.encode(&framed, None, l.model.cfg.max_tokens())?;
                let inside = |i: usize| !gpt2_tok || (i > 0 && (l.tok.lm_framing || i + 1 < e.ids.len()));
                let positions: Vec<usize> = (0..e.ids.len()).filter(|&i| e.ids[i] == l.tok.mask && inside(i)).collect();
                let tokens: Vec<String> = e.ids.iter().map(|&i| l.tok.piece(i)).collect();
                let mut preds = Vec::new();
                let causal = l.model.cfg.is_decoder;
                if causal && l.model.heads.lm && !positions.is_empty() {
                    // a causal model predicts the word at [MASK] from the words before it only: its
                    // prediction at the position just before
                    let before = positions[0].max(1) - 1;
                    let top = l.model.top_tokens(g, &e.ids, &e.type_ids, &[before], k).await?;
                    preds = top.into_iter().map(|row| row.into_iter().map(|(id, p)| (l.tok.piece(id), p)).collect()).collect();
                } else if l.model.heads.lm && !positions.is_empty() {
                    preds = trainer::probe(g, &mut l.model, &l.tok, text, k).await?;
                } else {
                    // no MLM head (or no [MASK]): still run the encoder for the attention view
                    l.forward_eval(g, &e.ids, &e.type_ids).await?;
                }
                let (layers, heads) = (l.model.cfg.num_hidden_layers, l.model.cfg.num_attention_heads);
                if layer >= layers || head >= heads {
                    let (id, size) = if layer >= layers { (layer, layers) } else { (head, heads) };
                    return Err(Error::Range { id, size, message: format!("this model has layers 0 to {} and heads 0 to {}; layer {layer}, head {head} do not exist", layers - 1, heads - 1) });
                }
                let t = e.ids.len();
                let probs = g.read_f32(l.model.attention_probs(layer).ok_or_else(|| Error::Internal("no attention".into()))?).await?;
                // the first HEATMAP_MAX tokens' attention among themselves: a longer square is unreadable
                let shown = t.min(HEATMAP_MAX);
                let attention: Vec<Vec<f32>> = (0..shown).map(|i| probs[(head * t + i) * t..(head * t + i) * t + shown].to_vec()).collect();
                let masks_in_text = text.matches("[MASK]").count();
                let masks_cut = masks_in_text.saturating_sub(positions.len());
                let cut = (e.truncated > 0).then(|| {
                    let max = l.model.cfg.max_tokens();
                    let lost = match (masks_cut, positions.len()) {
                        (0, _) => String::new(),
                        (_, 0) => format!(", and the text's [MASK] with them: put [MASK] within the first {max} tokens"),
                        (n, kept) => format!(", and {n} of its {masks_in_text} [MASK]s with them: predictions are shown for the other {kept}"),
                    };
                    format!("The text is {} tokens; the model reads at most {max}, so the last {} were cut{lost}.", t + e.truncated, e.truncated)
                });
                let note = if causal && !positions.is_empty() {
                    Some(
                        "A causal (GPT-style) model reads left to right: it predicts the word at [MASK] from the words before it only, as the next word; a BERT uses the words on both sides."
                            .to_string(),
                    )
                } else if !l.model.heads.lm {
                    Some("This model has no masked-LM head, so it cannot predict [MASK] yet. Pretrain it with MLM on your text (panel 3) to train one.".to_string())
                } else if positions.is_empty() && masks_cut == 0 {
                    Some("Put [MASK] where a word should be predicted.".to_string())
                } else {
                    None
                };
                let note = match (note, cut) {
                    (Some(n), Some(c)) => Some(format!("{c} {n}")),
                    (n, c) => n.or(c),
                };
                // after the attention was read: this forward replaces it
                let next = if causal && l.model.heads.lm { Some(next_words(g, l, text, 3).await?) } else { None };
                let (layers, heads) = (l.model.cfg.num_hidden_layers, l.model.cfg.num_attention_heads);
                Ok(FillView { tokens, positions, predictions: preds, attention, layer, head, layers, heads, note, causal, next, beside: None })
            })
            .await;
        let mut v = r?;
        v.beside = companion_view(self, text, k).await;
        Ok(v)
    }
}
