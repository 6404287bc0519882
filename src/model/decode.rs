//! Decoding with a key-value cache, for both decoder bodies (GPT-2's and BERT's with causal
//! attention). Prefill runs the prompt once through the full forward and keeps each layer's fused
//! q|k|v rows (T, 3C) as the cache; every new token then runs one position through each layer:
//! its projection writes its own row of the cache in place, its query attends over the rows so far
//! (causal by construction), and the products have one row (kernels::matvec). The token is chosen
//! on the GPU (kernels::sample) and stays there as the next step's input: a token costs one
//! submit and one small readback, and once warm no buffer or bind group is created (the position
//! and the draw's numbers travel as uniforms).

use super::bert::Model;
use super::batch::Batch;
use super::config::Body;
use super::handles::Lin;
use super::mode::Mode;
use crate::error::Error;
use crate::gpu::{DType, Gpu, GpuBuf, GpuError, Readback, Step};
use crate::kernels::dropout::Dropout;
use crate::kernels::layernorm::{Fused, Stats};
use crate::kernels::matvec::{attend_cached, one_row};
use crate::kernels::sample::{self, Draw};
use crate::kernels::{embedding, gelu};

use super::kv::DecodeState;

/// One step's draw on its way back.
pub struct DrawReadback {
    rb: Readback,
}

impl DrawReadback {
    /// The chosen id (None when no logit was a number) and the candidates (id, probability).
    pub async fn read(self, gpu: &Gpu) -> Result<(Option<u32>, Vec<(u32, f32)>), Error> {
        Ok(sample::parse(&self.rb.u32(gpu).await?))
    }
}

/// Bytes of the key-value cache for `positions` on a model: (per layer, in all).
pub fn cache_bytes(cfg: &super::ModelConfig, positions: usize) -> (u64, u64) {
    let per = positions as u64 * 3 * cfg.hidden_size as u64 * 4;
    (per, per * cfg.num_hidden_layers as u64)
}

impl Model {
    /// Cache and activations for `cap` positions and draws of up to `k` candidates.
    fn ensure_decode(&mut self, gpu: &Gpu, cap: usize, k: usize) -> Result<(), Error> {
        if self.decode.as_ref().map(|d| d.cap >= cap && d.k_cap >= k).unwrap_or(false) {
            return Ok(());
        }
        let (cap, k) = self.decode.as_ref().map(|d| (d.cap.max(cap), d.k_cap.max(k))).unwrap_or((cap, k));
        let cfg = &self.cfg;
        let (per, total) = cache_bytes(cfg, cap);
        let limit = gpu.info.max_storage_buffer_binding_size;
        if per > limit {
            return Err(Error::Limit(format!(
                "the key-value cache for {cap} positions needs {per} bytes per layer ({total} for {} layers); this device allows {limit} per storage binding: ask for fewer new tokens or a shorter prompt",
                cfg.num_hidden_layers
            )));
        }
        let (c, i, h, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, cfg.vocab_size);
        let z = |label: &str, n: usize| gpu.zeros(label, n, DType::F32);
        let too_big = |e: GpuError| match e {
            GpuError::Limits(m) => Error::Limit(format!("the key-value cache for {cap} positions ({total} bytes for {} layers) does not fit this device: {m}", cfg.num_hidden_layers)),
            e => e.into(),
        };
        self.decode = None;
        let cache = (0..cfg.num_hidden_layers).map(|_| z("kv_cache", cap * 3 * c)).collect::<Result<Vec<_>, _>>().map_err(too_big)?;
        self.decode = Some(DecodeState {
            cap,
            n: 0,
            cache,
            scores: z("decode_scores", h * cap)?,
            x: z("decode_x", c)?,
            h1: z("decode_h1", c)?,
            res: z("decode_res", c)?,
            res2: z("decode_res2", c)?,
            ctx: z("decode_ctx", c)?,
            lin: z("decode_lin", c)?,
            inter_pre: z("decode_inter_pre", i)?,
            inter: z("decode_inter", i)?,
            mean: z("decode_mean", 1)?,
            rstd: z("decode_rstd", 1)?,
            logits: z("decode_logits", v)?,
            out: gpu.zeros("decode_out", sample::out_len(k), DType::U32)?,
            k_cap: k,
            pos: gpu.zeros("decode_pos", 1, DType::U32)?,
            types: gpu.zeros("decode_types", 1, DType::U32)?,
        });
        Ok(())
    }

    fn check_decoder(&self) -> Result<(), Error> {
        if !self.cfg.is_decoder || !self.heads.lm {
            return Err("generation needs a causal model with a language-model head".into());
        }
        if self.cfg.lora.is_some() {
            // the one-row kernels read each projection's weight alone (the session generates from a
            // merged copy, `Loaded::merged`)
            return Err("this model carries LoRA adapters, which the one-token decoder does not apply: generate from a copy with them merged (`bertlab export --merge`)".into());
        }
        Ok(())
    }

    /// Prefill: runs `prompt` once through the full forward, keeps every layer's q|k|v rows as the
    /// cache (sized for `cap` positions), and records the draw of the token after it. Submit the
    /// step, then read the draw.
    pub async fn decode_start(&mut self, gpu: &Gpu, prompt: &[u32], cap: usize, draw: Draw) -> Result<DrawReadback, Error> {
        self.check_decoder()?;
        let t = prompt.len();
        if t == 0 || t > cap || cap > self.cfg.max_position_embeddings {
            return Err(format!("a prompt of {t} tokens in a cache of {cap} positions (the model has {})", self.cfg.max_position_embeddings).into());
        }
        self.ensure_decode(gpu, cap, draw.k)?;
        let mut labels = vec![-100i32; t];
        labels[t - 1] = 0;
        let batch = Batch::new(gpu, &self.cfg, 1, t, prompt, &vec![0; t], &vec![1; t], Some(&labels), None, None)?;
        let mut step = gpu.begin_step("prefill");
        self.forward(gpu, &mut step, &batch, Mode::Eval)?;
        let c3 = 3 * self.cfg.hidden_size;
        let v = self.cfg.vocab_size;
        let (a, ma, d) = (self.acts.as_ref().unwrap(), self.mlm_acts.as_ref().ok_or("no language-model head")?, self.decode.as_mut().unwrap());
        for (l, cache) in d.cache.iter().enumerate() {
            step.copy(&a.layers[l].qkv, 0, cache, 0, t * c3)?;
        }
        step.copy(&ma.logits, 0, &d.logits, 0, v)?;
        d.n = t;
        let rb = Self::record_draw(&mut step, d, v, draw)?;
        step.submit().await?;
        Ok(rb)
    }

    /// Runs the last chosen token at the next position and records the draw of the one after it.
    pub async fn decode_next(&mut self, gpu: &Gpu, draw: Draw) -> Result<DrawReadback, Error> {
        self.check_decoder()?;
        let d = self.decode.as_ref().ok_or("decode_next before decode_start")?;
        if d.n >= d.cap {
            return Err(Error::Limit(format!("the key-value cache holds {} positions, all used", d.cap)));
        }
        if draw.k > d.k_cap {
            return Err(format!("a draw of {} candidates after a start with {}", draw.k, d.k_cap).into());
        }
        gpu.write(&d.pos, 0, &[d.n as u32])?;
        let mut step = gpu.begin_step("decode");
        match self.cfg.body {
            Body::Gpt2 => self.record_decode_gpt2(&mut step)?,
            Body::Bert => self.record_decode_bert(&mut step)?,
        }
        let v = self.cfg.vocab_size;
        let d = self.decode.as_mut().unwrap();
        d.n += 1;
        let rb = Self::record_draw(&mut step, d, v, draw)?;
        step.submit().await?;
        Ok(rb)
    }

    /// The logits of the last step's next token (V), for tests.
    pub fn decode_logits(&self) -> Option<&GpuBuf> {
        self.decode.as_ref().map(|d| &d.logits)
    }

    fn record_draw(step: &mut Step, d: &DecodeState, v: usize, draw: Draw) -> Result<DrawReadback, Error> {
        sample::record(step, &d.out, d.logits.at([v]), draw)?;
        Ok(DrawReadback { rb: step.read_back(&d.out, 0, sample::out_len(draw.k))? })
    }

    /// y (1, out) (written from element `y_off`) = x W + b, by the one-row kernel when its vec4
    /// loads fit the weight, else by the matmul.
    fn linear_row(&self, step: &mut Step, y: &GpuBuf, y_off: usize, x: &GpuBuf, lin: &Lin) -> Result<(), GpuError> {
        let p = &self.params;
        let (out, inp) = self.lin_dims(lin)?;
        let w = p.value(lin.w).at(if lin.in_out { [inp, out] } else { [out, inp] });
        one_row(step, y.at_off(y_off, [1, out]), x.at([1, inp]), w, lin.b.map(|b| p.value(b).at([out])), !lin.in_out)
    }

    /// A decoder's residual sum (nothing dropped): res = skip + branch, of one row.
    fn residual<'a>(&self, res: &'a GpuBuf, branch: &'a GpuBuf) -> Fused<'a> {
        Fused::Residual { res: self.hidden(res, 1), branch: self.hidden(branch, 1), drop: Dropout::default() }
    }

    fn record_decode_gpt2(&self, step: &mut Step) -> Result<(), GpuError> {
        let d = self.decode.as_ref().unwrap();
        let cfg = &self.cfg;
        let (c, i, h, n) = (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, d.n);
        let (wte, wpe, hl, ln_f) = self.gpt2_parts();
        let p = &self.params;
        let st = Stats { mean: &d.mean, rstd: &d.rstd };
        // x = wte[id] + wpe[n]; h1 = ln_1(x)
        self.word_lookup(step, &d.x, &d.out.view(0, 1), wte, 1, false)?;
        embedding::forward(step, d.x.at([1, c]), &d.pos, p.value(wpe).at([cfg.max_position_embeddings, c]), true)?;
        let first = hl.first().map(|l| &l.ln_1).unwrap_or(ln_f);
        self.ln_forward(step, self.hidden(&d.h1, 1), st, self.hidden(&d.x, 1), first, Fused::None)?;
        for (l, lp) in hl.iter().enumerate() {
            // this position's q|k|v straight into its row of the cache, then attention over it
            self.linear_row(step, &d.cache[l], n * 3 * c, &d.h1, &lp.c_attn)?;
            attend_cached(step, d.ctx.at([c]), d.scores.at([h, d.cap]), d.cache[l].at([n + 1, 3 * c]))?;
            self.linear_row(step, &d.lin, 0, &d.ctx, &lp.c_proj)?;
            // res = x + attention; res2 = ln_2(res)
            self.ln_forward(step, self.hidden(&d.res2, 1), st, self.hidden(&d.x, 1), &lp.ln_2, self.residual(&d.res, &d.lin))?;
            self.linear_row(step, &d.inter_pre, 0, &d.res2, &lp.c_fc)?;
            gelu::forward(step, cfg.gelu(), d.inter.at([i]), d.inter_pre.at([i]))?;
            self.linear_row(step, &d.lin, 0, &d.inter, &lp.mlp_proj)?;
            // x = res + mlp; h1 = the next layer's ln_1(x), or ln_f(x)
            let norm = hl.get(l + 1).map(|n| &n.ln_1).unwrap_or(ln_f);
            self.ln_forward(step, self.hidden(&d.h1, 1), st, self.hidden(&d.res, 1), norm, self.residual(&d.x, &d.lin))?;
        }
        // logits = ln_f(x) wte^T
        self.lm_logits(step, &d.logits, &d.h1, 1, wte, None)
    }

    fn record_decode_bert(&self, step: &mut Step) -> Result<(), GpuError> {
        let d = self.decode.as_ref().unwrap();
        let cfg = &self.cfg;
        let (c, i, h, n) = (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, d.n);
        let (e, layers, heads) = self.bert_parts();
        let p = &self.params;
        let st = Stats { mean: &d.mean, rstd: &d.rstd };
        // x = LN(word[id] + position[n] + type[0])
        self.word_lookup(step, &d.lin, &d.out.view(0, 1), e.word, 1, false)?;
        embedding::forward(step, d.lin.at([1, c]), &d.pos, p.value(e.position).at([cfg.max_position_embeddings, c]), true)?;
        embedding::forward(step, d.lin.at([1, c]), &d.types, p.value(e.token_type).at([cfg.type_vocab_size, c]), true)?;
        self.ln_forward(step, self.hidden(&d.x, 1), st, self.hidden(&d.lin, 1), &e.ln, Fused::None)?;
        for (l, lp) in layers.iter().enumerate() {
            let qkv = self.qkv(lp)?;
            one_row(step, d.cache[l].at_off(n * 3 * c, [1, 3 * c]), d.x.at([1, c]), qkv.w.at([3 * c, c]), Some(qkv.b.at([3 * c])), true)?;
            attend_cached(step, d.ctx.at([c]), d.scores.at([h, d.cap]), d.cache[l].at([n + 1, 3 * c]))?;
            self.linear_row(step, &d.lin, 0, &d.ctx, &lp.attn_out)?;
            // h1 = LN(x + attention)
            self.ln_forward(step, self.hidden(&d.h1, 1), st, self.hidden(&d.x, 1), &lp.attn_ln, self.residual(&d.res, &d.lin))?;
            self.linear_row(step, &d.inter_pre, 0, &d.h1, &lp.inter)?;
            gelu::forward(step, cfg.gelu(), d.inter.at([i]), d.inter_pre.at([i]))?;
            self.linear_row(step, &d.lin, 0, &d.inter, &lp.out)?;
            // x = LN(h1 + ffn)
            self.ln_forward(step, self.hidden(&d.x, 1), st, self.hidden(&d.h1, 1), &lp.out_ln, self.residual(&d.res, &d.lin))?;
        }
        // the LM head: transform (dense, GELU, LayerNorm), then the decoder tied to the word
        // embeddings plus the output bias
        let (dense, norm, bias) = heads.lm.as_ref().ok_or_else(|| GpuError::Shape("a decoder without its language-model head".into()))?;
        self.linear_row(step, &d.res2, 0, &d.x, dense)?;
        gelu::forward(step, cfg.gelu(), d.h1.at([c]), d.res2.at([c]))?;
        self.ln_forward(step, self.hidden(&d.res2, 1), st, self.hidden(&d.h1, 1), norm, Fused::None)?;
        self.lm_logits(step, &d.logits, &d.res2, 1, e.word, Some(p.value(*bias)))
    }
}
