//! Text generation with a causal model (`is_decoder`): from a prompt, one token at a time, each
//! chosen from the model's next-token distribution computed on the GPU. Greedy (the most likely
//! token), or sampled among the `top_k` most likely with a `temperature` and a seed, so the same
//! seed gives the same text.

use crate::error::Result;
use crate::error::Error;
use crate::gpu::Gpu;
use crate::model::Model;
use crate::kernels::sample::Draw;
use crate::rng::Rng;
use crate::text::tokenizer::Tokenizer;

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
    pub fn validate(&self) -> Result<()> {
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
    /// The person asked it to stop.
    Asked,
}

impl Stop {
    /// Where generation stopped, in words ("stopped at …").
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Length => "the token limit",
            Stop::EndOfText => "the end of the text",
            Stop::Positions => "the model's positions",
            Stop::Asked => "your Stop",
        }
    }
}

/// Continues `prompt`; `on_token` hears each new token (its id and text) as it is chosen. Returns the
/// new ids (without a final [SEP]) and why it stopped.
pub async fn generate(gpu: &Gpu, model: &mut Model, tok: &Tokenizer, prompt: &str, cfg: &GenerateConfig, on_token: &mut dyn FnMut(u32, &str)) -> Result<(Vec<u32>, Stop), Error> {
    generate_until(gpu, model, tok, prompt, cfg, &|| false, on_token).await
}

/// [`generate`] that also stops (with [`Stop::Asked`]) when `asked` says so, checked after each
/// token: the page's Stop.
pub async fn generate_until(gpu: &Gpu, model: &mut Model, tok: &Tokenizer, prompt: &str, cfg: &GenerateConfig, asked: &dyn Fn() -> bool, on_token: &mut dyn FnMut(u32, &str)) -> Result<(Vec<u32>, Stop), Error> {
    if !model.cfg.is_decoder {
        return Err(Error::Unsupported("this is a masked (bidirectional) model: it fills in [MASK]s (bertlab fill-mask) but does not continue a text; generate needs a causal model (config is_decoder, e.g. bertlab pretrain --objective causal)".into()));
    }
    if !model.heads.lm {
        return Err(Error::Unsupported("this causal model has no language-model head (cls.predictions)".into()));
    }
    let positions = model.cfg.max_position_embeddings;
    let e = tok.encode(prompt, None, positions)?;
    if e.truncated > 0 {
        let start = if tok.end_of_text.is_some() { "<|endoftext|>" } else { "[CLS]" };
        return Err(Error::Limit(format!("the prompt is {} tokens with {start}; the model reads at most {positions}: shorten it", e.ids.len() + e.truncated)));
    }
    // [CLS] prompt (<|endoftext|> prompt for a GPT-2 tokenizer): the [SEP] that ends an encoded
    // text is what the model would predict last; a Llama-shaped decoder's own framing (a BOS where
    // its tokenizer adds one) ends with the prompt's last token
    let prompt_ids = if tok.appends_end() { &e.ids[..e.ids.len() - 1] } else { &e.ids[..] };
    if prompt_ids.is_empty() {
        return Err(Error::Limit("the prompt has no tokens: type a few words to continue".into()));
    }
    generate_ids_until(gpu, model, prompt_ids, &tok.end_ids(), cfg, asked, &mut |id| on_token(id, &tok.piece(id))).await
}

/// [`generate`] from token ids; `end` (if any) ends the text when the model chooses it. The prompt
/// runs once (prefill) and each new token runs one position against the key-value cache, the token
/// drawn on the GPU (`Model::decode_start`, `Model::decode_next`).
pub async fn generate_ids(gpu: &Gpu, model: &mut Model, prompt: &[u32], end: Option<u32>, cfg: &GenerateConfig, on_token: &mut dyn FnMut(u32)) -> Result<(Vec<u32>, Stop), Error> {
    generate_ids_until(gpu, model, prompt, end.as_slice(), cfg, &|| false, on_token).await
}

/// [`generate_ids`] that stops when `asked` says so (checked after each token), or at any of the
/// `ends` (a model's generation_config.json may name several end tokens).
pub async fn generate_ids_until(gpu: &Gpu, model: &mut Model, prompt: &[u32], ends: &[u32], cfg: &GenerateConfig, asked: &dyn Fn() -> bool, on_token: &mut dyn FnMut(u32)) -> Result<(Vec<u32>, Stop), Error> {
    if !model.cfg.is_decoder || !model.heads.lm {
        return Err(Error::Unsupported("generation needs a causal model with a language-model head".into()));
    }
    cfg.validate()?;
    if prompt.is_empty() {
        return Err(Error::Limit("the prompt has no tokens".into()));
    }
    let positions = model.cfg.max_position_embeddings;
    if prompt.len() >= positions {
        return Ok((Vec::new(), Stop::Positions));
    }
    // the cache holds what this call can reach: the prompt and its new tokens
    let cap = (prompt.len() + cfg.max_new).min(positions);
    let mut rng = Rng::new(cfg.seed);
    let mut draw = || Draw {
        k: cfg.top_k,
        top_k: cfg.top_k,
        temperature: cfg.temperature,
        // one uniform number per sampled token from the seeded generator (the same seed, the same text)
        u: if cfg.top_k > 1 { (rng.uniform() as f32).min(0.999_999_9) } else { 0.0 },
    };
    let mut next = model.decode_start(gpu, prompt, cap, draw()).await?;
    let mut new = Vec::new();
    loop {
        let id = next.read(gpu).await?.0.ok_or_else(|| Error::Data { line: 0, message: "the model gave no next token (its logits are not numbers)".into() })?;
        if ends.contains(&id) {
            return Ok((new, Stop::EndOfText));
        }
        on_token(id);
        new.push(id);
        if new.len() >= cfg.max_new {
            return Ok((new, Stop::Length));
        }
        if prompt.len() + new.len() >= positions {
            return Ok((new, Stop::Positions));
        }
        if asked() {
            return Ok((new, Stop::Asked));
        }
        next = model.decode_next(gpu, draw()).await?;
    }
}
