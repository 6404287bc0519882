//! Text generation with a causal model (`is_decoder`): from a prompt, one token at a time, each
//! chosen from the model's next-token distribution computed on the GPU. Greedy (the most likely
//! token), or sampled among the `top_k` most likely with a `temperature` and a seed, so the same
//! seed gives the same text.

use crate::error::Error;
use crate::gpu::Gpu;
use crate::model::Bert;
use crate::rng::Rng;
use crate::text::tokenizer::BertTokenizer;

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// Tokens to add at most (fewer when the model emits [SEP] or runs out of positions).
    pub max_new: usize,
    /// 1: greedy. k > 1: sample among the k most likely tokens.
    pub top_k: usize,
    /// Sharpens (< 1) or flattens (> 1) the distribution before sampling.
    pub temperature: f32,
    pub seed: u64,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig { max_new: 20, top_k: 1, temperature: 1.0, seed: 42 }
    }
}

/// Most tokens one call adds.
pub const MAX_NEW: usize = 1000;
/// The largest `top_k`.
pub const MAX_TOP_K: usize = 1000;

impl GenerateConfig {
    pub fn validate(&self) -> Result<(), String> {
        crate::train::trainer::in_range("the new tokens", self.max_new, 1, MAX_NEW)?;
        crate::train::trainer::in_range("top-k", self.top_k, 1, MAX_TOP_K)?;
        crate::train::trainer::in_range_f("the temperature", self.temperature, 0.0, 100.0, true)
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `max_new` tokens were added.
    Length,
    /// The model ended the text ([SEP]).
    EndOfText,
    /// The model's positions are all used.
    Positions,
}

impl Stop {
    /// Where generation stopped, in words ("stopped at …").
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Length => "the token limit",
            Stop::EndOfText => "the end of the text",
            Stop::Positions => "the model's positions",
        }
    }
}

/// Continues `prompt`; `on_token` hears each new token (its id and text) as it is chosen. Returns the
/// new ids (without a final [SEP]) and why it stopped.
pub async fn generate(gpu: &Gpu, model: &mut Bert, tok: &BertTokenizer, prompt: &str, cfg: &GenerateConfig, on_token: &mut dyn FnMut(u32, &str)) -> Result<(Vec<u32>, Stop), Error> {
    if !model.cfg.is_decoder {
        return Err("this is a masked (bidirectional) model: it fills in [MASK]s (bertlab fill-mask) but does not continue a text; generate needs a causal model (config is_decoder, e.g. bertlab pretrain --objective causal)".into());
    }
    if !model.heads.mlm {
        return Err("this causal model has no language-model head (cls.predictions)".into());
    }
    let positions = model.cfg.max_position_embeddings;
    let e = tok.encode(prompt, None, positions)?;
    if e.truncated > 0 {
        let start = if tok.end_of_text.is_some() { "<|endoftext|>" } else { "[CLS]" };
        return Err(Error::Limit(format!("the prompt is {} tokens with {start}; the model reads at most {positions}: shorten it", e.ids.len() + e.truncated)));
    }
    // [CLS] prompt (<|endoftext|> prompt for a GPT-2 tokenizer): the [SEP] that ends an encoded
    // text is what the model would predict last
    let prompt_ids = &e.ids[..e.ids.len() - 1];
    generate_ids(gpu, model, prompt_ids, Some(tok.sep), cfg, &mut |id| on_token(id, &tok.piece(id))).await
}

/// [`generate`] from token ids; `end` (if any) ends the text when the model chooses it.
pub async fn generate_ids(gpu: &Gpu, model: &mut Bert, prompt: &[u32], end: Option<u32>, cfg: &GenerateConfig, on_token: &mut dyn FnMut(u32)) -> Result<(Vec<u32>, Stop), Error> {
    if !model.cfg.is_decoder || !model.heads.mlm {
        return Err("generation needs a causal model with a language-model head".into());
    }
    cfg.validate()?;
    if prompt.is_empty() {
        return Err("the prompt has no tokens".into());
    }
    let positions = model.cfg.max_position_embeddings;
    let mut ids = prompt.to_vec();
    let mut rng = Rng::new(cfg.seed);
    let mut new = Vec::new();
    while new.len() < cfg.max_new {
        if ids.len() >= positions {
            return Ok((new, Stop::Positions));
        }
        let types = vec![0u32; ids.len()];
        let top = model.fill_mask(gpu, &ids, &types, &[ids.len() - 1], cfg.top_k).await?;
        let cands = top.into_iter().next().unwrap_or_default();
        let id = pick(&cands, cfg, &mut rng).ok_or("the model gave no next token")?;
        if Some(id) == end {
            return Ok((new, Stop::EndOfText));
        }
        on_token(id);
        ids.push(id);
        new.push(id);
    }
    Ok((new, Stop::Length))
}

/// The next token among `cands` (id, probability), most likely first: the first when greedy,
/// otherwise drawn with probabilities p^(1/T) renormalised (softmax(logits / T) over the top k).
fn pick(cands: &[(u32, f32)], cfg: &GenerateConfig, rng: &mut Rng) -> Option<u32> {
    if cfg.top_k <= 1 {
        return cands.first().map(|c| c.0);
    }
    let w: Vec<f64> = cands.iter().map(|&(_, p)| (p.max(1e-30) as f64).powf(1.0 / cfg.temperature as f64)).collect();
    let total: f64 = w.iter().sum();
    let mut u = rng.uniform() * total;
    for (c, wi) in cands.iter().zip(&w) {
        if u < *wi {
            return Some(c.0);
        }
        u -= wi;
    }
    cands.last().map(|c| c.0)
}
