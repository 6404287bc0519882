//! Decoding with a key-value cache, for both decoder bodies (GPT-2's and BERT's with causal
//! attention). Prefill runs the prompt once through the full forward and keeps each layer's fused
//! q|k|v rows (T, 3C) as the cache; every new token then runs one position through each layer:
//! its projection writes its own row of the cache in place, its query attends over the rows so far
//! (causal by construction), and the products have one row (kernels::matvec). The token is chosen
//! on the GPU (kernels::sample) and stays there as the next step's input: a token costs one
//! submit and one small readback, and once warm no buffer or bind group is created (the position
//! and the draw's numbers travel as uniforms). On CPU adapters natively (lavapipe) the products run
//! from copies of the weights packed into textures (kernels::matvec::Packed; packed again at the
//! prefill after the weights changed), with
//! the feed-forward's GELU fused into its first product.

use super::model::Model;
use super::batch::Batch;
use super::config::Body;
use super::handles::Lin;
use super::kv::PackedWeights;
use super::mode::Mode;
use crate::error::Error;
use crate::gpu::{DType, Gpu, GpuBuf, GpuError, Readback, Step, View};
use crate::kernels::dropout::Dropout;
use crate::kernels::layernorm::{Fused, Stats};
use crate::kernels::matvec::{attend_cached, attend_cached_grouped, one_row, Act, Packed};
use crate::kernels::sample::{self, Draw};
use crate::kernels::{embedding, gelu};
use gelu::Gelu;

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

/// One of a decoder layer's products as the one-row kernels take it: W stored (out, inp) when
/// `trans_w` (torch's Linear, BERT's fused q|k|v), else (inp, out) (GPT-2's Conv1D), and its bias.
struct Product {
    w: GpuBuf,
    b: Option<GpuBuf>,
    out: usize,
    inp: usize,
    trans_w: bool,
}

impl Product {
    fn w(&self) -> View<'_> {
        self.w.at(if self.trans_w { [self.out, self.inp] } else { [self.inp, self.out] })
    }
}

/// Whether decoding runs its products from packed weights when the caller does not say: on CPU
/// adapters natively (lavapipe), where a texel is one load per lane and a storage buffer's vec4
/// four. In the browser the buffer kernels run: on SwiftShader the packed path measured slower (a
/// 4-layer, 256-wide GPT-2 in the page: 14.5 tok/s packed, 24.0 from the buffers, 200 new tokens).
fn packed_by_default(gpu: &Gpu) -> bool {
    !cfg!(target_arch = "wasm32") && gpu.info.is_software && gpu.info.backend == "Vulkan"
}

/// Bytes of the key-value cache for `positions` on a model: (per layer, in all).
pub fn cache_bytes(cfg: &super::ModelConfig, positions: usize) -> (u64, u64) {
    let per = positions as u64 * cfg.qkv_width() as u64 * 4;
    (per, per * cfg.num_hidden_layers as u64)
}

impl Model {
    /// Refuses a key-value cache of more than `bytes` per layer even where the device's storage
    /// binding allows more, as a device with bindings of `bytes` would: for tests, which check the
    /// refusal on any device.
    pub fn limit_cache_binding(&mut self, bytes: u64) {
        self.cache_binding_bytes = Some(bytes);
    }

    /// Cache and activations for `cap` positions and draws of up to `k` candidates.
    fn ensure_decode(&mut self, gpu: &Gpu, cap: usize, k: usize) -> Result<(), Error> {
        let packed = self.packed_decoding.unwrap_or_else(|| packed_by_default(gpu));
        if self.decode.as_ref().map(|d| d.cap >= cap && d.k_cap >= k && d.packed.is_some() == packed).unwrap_or(false) {
            return Ok(());
        }
        let (cap, k) = self.decode.as_ref().map(|d| (d.cap.max(cap), d.k_cap.max(k))).unwrap_or((cap, k));
        let cfg = &self.cfg;
        let (per, total) = cache_bytes(cfg, cap);
        let limit = gpu.info.max_storage_buffer_binding_size.min(self.cache_binding_bytes.unwrap_or(u64::MAX));
        if per > limit {
            return Err(Error::Limit(format!(
                "the key-value cache for {cap} positions needs {per} bytes per layer ({total} for {} layers); this device allows {limit} per storage binding: ask for fewer new tokens or a shorter prompt",
                cfg.num_hidden_layers
            )));
        }
        let (c, i, h, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, cfg.vocab_size);
        let (w, q, kv) = (cfg.qkv_width(), cfg.q_width(), cfg.kv_heads());
        let llama = cfg.body == Body::Llama;
        let qk_norm = cfg.llama.as_ref().is_some_and(|l| l.qk_norm);
        let z = |label: &str, n: usize| gpu.zeros(label, n, DType::F32);
        let up = |label: &str, v: &[f32]| -> Result<GpuBuf, GpuError> {
            let b = z(label, v.len())?;
            gpu.write(&b, 0, v)?;
            Ok(b)
        };
        // the rotary tables for every position of the cache
        let rope = match &cfg.llama {
            Some(l) => {
                let (cs, sn) = crate::kernels::rotary::tables_of(&l.rope.inv_freq(l.rope_theta, l.head_dim), cap);
                Some((up("decode_rope_cos", &cs)?, up("decode_rope_sin", &sn)?))
            }
            None => None,
        };
        let too_big = |e: GpuError| match e {
            GpuError::Limits(m) => Error::Limit(format!("the key-value cache for {cap} positions ({total} bytes for {} layers) does not fit this device: {m}", cfg.num_hidden_layers)),
            e => e.into(),
        };
        // the packed weights do not depend on the cache's size: a bigger cache keeps them
        let kept = self.decode.take().and_then(|d| d.packed).filter(|_| packed);
        let cache = (0..cfg.num_hidden_layers).map(|_| z("kv_cache", cap * w)).collect::<Result<Vec<_>, _>>().map_err(too_big)?;
        self.decode = Some(DecodeState {
            cap,
            n: 0,
            cache,
            scores: z("decode_scores", h * cap)?,
            x: z("decode_x", c)?,
            h1: z("decode_h1", c)?,
            res: z("decode_res", c)?,
            res2: z("decode_res2", c)?,
            ctx: z("decode_ctx", q)?,
            lin: z("decode_lin", c)?,
            inter_pre: z("decode_inter_pre", if llama { 2 * i } else { i })?,
            inter: z("decode_inter", i)?,
            mean: z("decode_mean", 1)?,
            rstd: z("decode_rstd", 1)?,
            logits: z("decode_logits", v)?,
            out: gpu.zeros("decode_out", sample::out_len(k), DType::U32)?,
            k_cap: k,
            pos: gpu.zeros("decode_pos", 1, DType::U32)?,
            types: gpu.zeros("decode_types", 1, DType::U32)?,
            qkv_pre: z("decode_qkv_pre", if qk_norm { cap * w } else { 1 })?,
            q_rstd: z("decode_q_rstd", h)?,
            k_rstd: z("decode_k_rstd", kv)?,
            rope,
            packed: kept,
        });
        if packed && self.decode.as_ref().is_some_and(|d| d.packed.is_none()) {
            let pw = self.packed_weights(gpu);
            // asked for: a texture the device refuses is an error; by default, the buffer kernels run
            match (pw, self.packed_decoding) {
                (Ok(pw), _) => self.decode.as_mut().unwrap().packed = Some(pw),
                (Err(e), Some(true)) => return Err(e.into()),
                (Err(_), _) => {}
            }
        }
        Ok(())
    }

    /// Whether generation runs its products from packed weights (`Some(true)`), from the weights'
    /// buffers (`Some(false)`), or as the adapter suits (None: packed on CPU adapters natively).
    pub fn set_packed_decoding(&mut self, packed: Option<bool>) {
        self.packed_decoding = packed;
        self.decode = None;
    }

    /// Whether the last generation started ran its products from packed weights.
    pub fn decodes_packed(&self) -> bool {
        self.decode.as_ref().is_some_and(|d| d.packed.is_some())
    }

    /// Each layer's four products in the order a token runs them: q|k|v, the attention's output,
    /// the feed-forward's first (GELU follows) and second.
    fn layer_products(&self) -> Result<Vec<[Product; 4]>, GpuError> {
        let lin = |l: &Lin| -> Result<Product, GpuError> {
            let (out, inp) = self.lin_dims(l)?;
            Ok(Product { w: self.params.value(l.w).clone(), b: l.b.map(|b| self.params.value(b).clone()), out, inp, trans_w: !l.in_out })
        };
        match self.cfg.body {
            Body::Gpt2 => self.gpt2_parts().2.iter().map(|lp| Ok([lin(&lp.c_attn)?, lin(&lp.c_proj)?, lin(&lp.c_fc)?, lin(&lp.mlp_proj)?])).collect(),
            Body::Bert => {
                let c = self.cfg.hidden_size;
                self.bert_parts()
                    .1
                    .iter()
                    .map(|lp| {
                        let q = self.qkv(lp)?;
                        Ok([Product { w: q.w, b: Some(q.b), out: 3 * c, inp: c, trans_w: true }, lin(&lp.attn_out)?, lin(&lp.inter)?, lin(&lp.out)?])
                    })
                    .collect()
            }
            Body::Modern => Err(GpuError::Shape("ModernBERT reads both ways: it does not continue a text".into())),
            Body::Llama => self
                .llama_parts()
                .1
                .iter()
                .map(|lp| {
                    let packed = |ws: &[super::params::Id], bs: Option<&[super::params::Id]>| -> Result<Product, GpuError> {
                        let (w, _) = self.params.fused(ws)?;
                        let b = bs.map(|b| self.params.fused(b)).transpose()?.map(|(b, _)| b);
                        let out = ws.iter().map(|&id| self.params.shape(id)[0]).sum();
                        Ok(Product { w, b, out, inp: self.params.shape(ws[0])[1], trans_w: true })
                    };
                    Ok([packed(&lp.qkv_w, lp.qkv_b.as_ref().map(|b| &b[..]))?, lin(&lp.o_proj)?, packed(&lp.gate_up_w, lp.gate_up_b.as_ref().map(|b| &b[..]))?, lin(&lp.down)?])
                })
                .collect(),
        }
    }

    /// The BERT body's LM-head dense layer as a product.
    fn dense_product(&self) -> Result<Option<Product>, GpuError> {
        if self.cfg.body != Body::Bert {
            return Ok(None);
        }
        let dense = &self.bert_parts().2.lm.as_ref().ok_or_else(|| GpuError::Shape("a decoder without its language-model head".into()))?.0;
        let (out, inp) = self.lin_dims(dense)?;
        Ok(Some(Product { w: self.params.value(dense.w).clone(), b: dense.b.map(|b| self.params.value(b).clone()), out, inp, trans_w: !dense.in_out }))
    }

    fn word_table(&self) -> super::params::Id {
        match self.cfg.body {
            Body::Gpt2 => self.gpt2_parts().0,
            Body::Bert => self.bert_parts().0.word,
            Body::Modern => self.modern_parts().0,
            // the LM head's table (lm_head, or the word embeddings where tied)
            Body::Llama => self.llama_parts().3,
        }
    }

    /// Textures for every product of the decoder (filled by [`Model::pack_weights`]).
    fn packed_weights(&self, gpu: &Gpu) -> Result<PackedWeights, GpuError> {
        let texture = |p: &Product| Packed::new(gpu, "packed_w", p.out, p.inp);
        let layers = self.layer_products()?.iter().map(|ps| Ok([texture(&ps[0])?, texture(&ps[1])?, texture(&ps[2])?, texture(&ps[3])?])).collect::<Result<Vec<_>, GpuError>>()?;
        let dense = self.dense_product()?.map(|p| texture(&p)).transpose()?;
        let lm = Packed::new(gpu, "packed_lm", self.cfg.vocab_size, self.cfg.hidden_size)?;
        Ok(PackedWeights { fresh: false, layers, dense, lm })
    }

    /// The weights changed (an optimizer step, values written): generation packs them again.
    pub fn weights_written(&mut self) {
        if let Some(pw) = self.decode.as_mut().and_then(|d| d.packed.as_mut()) {
            pw.fresh = false;
        }
    }

    /// Records the packing of every product's weight (the word embedding shard by shard), unless
    /// the packed copies are fresh; the caller marks them fresh once the step is submitted.
    fn pack_weights(&self, step: &mut Step) -> Result<(), GpuError> {
        let Some(pw) = self.decode.as_ref().and_then(|d| d.packed.as_ref()).filter(|pw| !pw.fresh) else { return Ok(()) };
        for (ps, pk) in self.layer_products()?.iter().zip(&pw.layers) {
            for (p, k) in ps.iter().zip(pk) {
                k.pack(step, p.w(), p.trans_w, 0)?;
            }
        }
        if let (Some(p), Some(k)) = (self.dense_product()?, &pw.dense) {
            k.pack(step, p.w(), p.trans_w, 0)?;
        }
        let (table, c) = (self.params.value(self.word_table()), self.cfg.hidden_size);
        for (r0, rows) in self.word_shards(step.gpu()) {
            pw.lm.pack(step, table.view(r0 * c, rows * c).at([rows, c]), true, r0)?;
        }
        Ok(())
    }

    /// y = act(x W + b) for one row: from the packed weight when there is one (the activation
    /// fused), else by the one-row buffer kernel (or the matmul) into `pre` and the GELU kernel.
    #[allow(clippy::too_many_arguments)]
    fn product_row(&self, step: &mut Step, y: View, x: View, p: &Product, packed: Option<&Packed>, gelu_after: bool, pre: View) -> Result<(), GpuError> {
        let kind = self.cfg.gelu();
        if let Some(k) = packed {
            let act = match (gelu_after, kind) {
                (false, _) => Act::None,
                (true, Gelu::Erf) => Act::Gelu,
                (true, Gelu::Tanh) => Act::GeluTanh,
            };
            return k.record(step, y, x, p.b.as_ref().map(|b| b.at([p.out])), act);
        }
        let b = p.b.as_ref().map(|b| b.at([p.out]));
        if !gelu_after {
            return one_row(step, y, x, p.w(), b, p.trans_w);
        }
        one_row(step, pre.buf.at_off(pre.off, [1, p.out]), x, p.w(), b, p.trans_w)?;
        gelu::forward(step, kind, y.buf.at_off(y.off, [p.out]), pre.buf.at_off(pre.off, [p.out]))
    }

    fn check_decoder(&self) -> Result<(), Error> {
        if !self.cfg.is_decoder || !self.heads.lm {
            return Err(Error::Unsupported("generation needs a causal model with a language-model head".into()));
        }
        if self.cfg.lora.is_some() {
            // the one-row kernels read each projection's weight alone (the session generates from a
            // merged copy, `Loaded::merged`)
            return Err(Error::Unsupported("this model carries LoRA adapters, which the one-token decoder does not apply: generate from a copy with them merged (`bertlab export --merge`)".into()));
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
            return Err(Error::Limit(format!("a prompt of {t} tokens in a cache of {cap} positions (the model has {})", self.cfg.max_position_embeddings)));
        }
        self.ensure_decode(gpu, cap, draw.k)?;
        let mut labels = vec![-100i32; t];
        labels[t - 1] = 0;
        let batch = Batch::new(gpu, &self.cfg, 1, t, prompt, &vec![0; t], &vec![1; t], Some(&labels), None, None)?;
        let mut step = gpu.begin_step("prefill");
        self.pack_weights(&mut step)?;
        self.forward(gpu, &mut step, &batch, Mode::Eval)?;
        let c3 = self.cfg.qkv_width();
        let v = self.cfg.vocab_size;
        let (a, ma, d) = (self.acts.as_ref().unwrap(), self.lm_acts.as_ref().ok_or_else(|| Error::Unsupported("no language-model head".into()))?, self.decode.as_mut().unwrap());
        for (l, cache) in d.cache.iter().enumerate() {
            step.copy(&a.layers[l].qkv, 0, cache, 0, t * c3)?;
        }
        step.copy(&ma.logits, 0, &d.logits, 0, v)?;
        d.n = t;
        let rb = Self::record_draw(&mut step, d, v, draw)?;
        step.submit().await?;
        if let Some(pw) = &mut d.packed {
            pw.fresh = true;
        }
        Ok(rb)
    }

    /// Runs the last chosen token at the next position and records the draw of the one after it.
    pub async fn decode_next(&mut self, gpu: &Gpu, draw: Draw) -> Result<DrawReadback, Error> {
        self.check_decoder()?;
        let d = self.decode.as_ref().ok_or_else(|| Error::Internal("decode_next before decode_start".into()))?;
        if d.n >= d.cap {
            return Err(Error::Limit(format!("the key-value cache holds {} positions, all used", d.cap)));
        }
        if draw.k > d.k_cap {
            return Err(Error::Limit(format!("a draw of {} candidates after a start with {}", draw.k, d.k_cap)));
        }
        gpu.write(&d.pos, 0, &[d.n as u32])?;
        let mut step = gpu.begin_step("decode");
        match self.cfg.body {
            Body::Gpt2 => self.record_decode_gpt2(&mut step)?,
            Body::Bert => self.record_decode_bert(&mut step)?,
            Body::Modern => return Err(GpuError::Shape("ModernBERT reads both ways: it does not continue a text".into()).into()),
            Body::Llama => self.record_decode_llama(&mut step)?,
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
        let products = self.layer_products()?;
        let pk = |l: usize, j: usize| d.packed.as_ref().map(|pw| &pw.layers[l][j]);
        // x = wte[id] + wpe[n]; h1 = ln_1(x)
        self.word_lookup(step, &d.x, &d.out.view(0, 1), wte, 1, false)?;
        embedding::forward(step, d.x.at([1, c]), &d.pos, p.value(wpe).at([cfg.max_position_embeddings, c]), true)?;
        let first = hl.first().map(|l| &l.ln_1).unwrap_or(ln_f);
        self.ln_forward(step, self.hidden(&d.h1, 1), st, self.hidden(&d.x, 1), first, Fused::None)?;
        for (l, (lp, pr)) in hl.iter().zip(&products).enumerate() {
            // this position's q|k|v straight into its row of the cache, then attention over it
            self.product_row(step, d.cache[l].at_off(n * 3 * c, [1, 3 * c]), d.h1.at([1, c]), &pr[0], pk(l, 0), false, d.lin.at([c]))?;
            attend_cached(step, d.ctx.at([c]), d.scores.at([h, d.cap]), d.cache[l].at([n + 1, 3 * c]))?;
            self.product_row(step, d.lin.at([1, c]), d.ctx.at([1, c]), &pr[1], pk(l, 1), false, d.lin.at([c]))?;
            // res = x + attention; res2 = ln_2(res)
            self.ln_forward(step, self.hidden(&d.res2, 1), st, self.hidden(&d.x, 1), &lp.ln_2, self.residual(&d.res, &d.lin))?;
            self.product_row(step, d.inter.at([1, i]), d.res2.at([1, c]), &pr[2], pk(l, 2), true, d.inter_pre.at([i]))?;
            self.product_row(step, d.lin.at([1, c]), d.inter.at([1, i]), &pr[3], pk(l, 3), false, d.lin.at([c]))?;
            // x = res + mlp; h1 = the next layer's ln_1(x), or ln_f(x)
            let norm = hl.get(l + 1).map(|n| &n.ln_1).unwrap_or(ln_f);
            self.ln_forward(step, self.hidden(&d.h1, 1), st, self.hidden(&d.res, 1), norm, self.residual(&d.x, &d.lin))?;
        }
        // logits = ln_f(x) wte^T
        match &d.packed {
            Some(pw) => pw.lm.record(step, d.logits.at([1, cfg.vocab_size]), d.h1.at([1, c]), None, Act::None),
            None => self.lm_logits_forward(step, &d.logits, &d.h1, 1, wte, None),
        }
    }

    /// One token through the Llama body: x = embed[id]; per layer q|k|v into its cache row (Qwen3:
    /// through the per-head norms), rotated at the position, attention over the cache (grouped),
    /// o_proj and the residual, the post-attention norm, [gate | up], SwiGLU, down and the residual;
    /// the final norm and the LM head.
    fn record_decode_llama(&self, step: &mut Step) -> Result<(), GpuError> {
        use crate::kernels::{elementwise, glu, rmsnorm, rotary};
        let d = self.decode.as_ref().unwrap();
        let cfg = &self.cfg;
        let (c, i, h, n) = (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, d.n);
        let (w, kv, hd, eps) = (cfg.qkv_width(), cfg.kv_heads(), cfg.head_dim(), cfg.layer_norm_eps as f32);
        let (embed, layers, norm, table) = self.llama_parts();
        let p = &self.params;
        let products = self.layer_products()?;
        let pk = |l: usize, j: usize| d.packed.as_ref().map(|pw| &pw.layers[l][j]);
        let (cos, sin) = d.rope.as_ref().ok_or_else(|| GpuError::Shape("the decoder's rotary tables are missing".into()))?;
        let rms = |step: &mut Step, y: &GpuBuf, x: &GpuBuf, id: super::params::Id| rmsnorm::forward(step, y.at([1, c]), &d.rstd, x.at([1, c]), p.value(id), eps);
        let add = |step: &mut Step, y: &GpuBuf, a: &GpuBuf, b: &GpuBuf| elementwise::add(step, y.at([c]), a.at([c]), b.at([c]));
        // x = embed[id]; h1 = the first norm
        self.word_lookup(step, &d.x, &d.out.view(0, 1), embed, 1, false)?;
        rms(step, &d.h1, &d.x, layers.first().map(|l| l.input_norm).unwrap_or(norm))?;
        for (l, (lp, pr)) in layers.iter().zip(&products).enumerate() {
            // this position's q|k|v into its row of the cache (Qwen3: beside it, then normed into it)
            match lp.q_norm.zip(lp.k_norm) {
                Some((qn, kn)) => {
                    self.product_row(step, d.qkv_pre.at_off(n * w, [1, w]), d.h1.at([1, c]), &pr[0], pk(l, 0), false, d.lin.at([c]))?;
                    step.copy(&d.qkv_pre, n * w, &d.cache[l], n * w, w)?;
                    rmsnorm::forward_rows(step, &d.cache[l], &d.q_rstd, &d.qkv_pre, p.value(qn), eps, rmsnorm::Rows::heads(1, h, hd, w, n * w))?;
                    rmsnorm::forward_rows(step, &d.cache[l], &d.k_rstd, &d.qkv_pre, p.value(kn), eps, rmsnorm::Rows::heads(1, kv, hd, w, n * w + h * hd))?;
                }
                None => self.product_row(step, d.cache[l].at_off(n * w, [1, w]), d.h1.at([1, c]), &pr[0], pk(l, 0), false, d.lin.at([c]))?,
            }
            let heads = rotary::Heads { rows: 1, t: 1, ld: w, q_heads: h, k_heads: kv, d: hd, q_off: n * w, k_off: n * w + h * hd, pos_base: n };
            rotary::apply(step, d.cache[l].at([d.cap * w]), cos, sin, heads, false)?;
            attend_cached_grouped(step, d.ctx.at([h * hd]), d.scores.at([h, d.cap]), d.cache[l].at([n + 1, w]), kv)?;
            self.product_row(step, d.lin.at([1, c]), d.ctx.at([1, h * hd]), &pr[1], pk(l, 1), false, d.lin.at([c]))?;
            // res = x + attention; res2 = post_attention_layernorm(res)
            add(step, &d.res, &d.x, &d.lin)?;
            rms(step, &d.res2, &d.res, lp.post_norm)?;
            self.product_row(step, d.inter_pre.at([1, 2 * i]), d.res2.at([1, c]), &pr[2], pk(l, 2), false, d.lin.at([c]))?;
            glu::forward(step, glu::GluAct::Silu, d.inter.at([1, i]), d.inter_pre.at([1, 2 * i]))?;
            self.product_row(step, d.lin.at([1, c]), d.inter.at([1, i]), &pr[3], pk(l, 3), false, d.lin.at([c]))?;
            // x = res + mlp; h1 = the next layer's input norm, or the final norm
            add(step, &d.x, &d.res, &d.lin)?;
            rms(step, &d.h1, &d.x, layers.get(l + 1).map(|n| n.input_norm).unwrap_or(norm))?;
        }
        match &d.packed {
            Some(pw) => pw.lm.record(step, d.logits.at([1, cfg.vocab_size]), d.h1.at([1, c]), None, Act::None),
            None => self.lm_logits_forward(step, &d.logits, &d.h1, 1, table, None),
        }
    }

    fn record_decode_bert(&self, step: &mut Step) -> Result<(), GpuError> {
        let d = self.decode.as_ref().unwrap();
        let cfg = &self.cfg;
        let (c, i, h, n) = (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, d.n);
        let (e, layers, heads) = self.bert_parts();
        let p = &self.params;
        let st = Stats { mean: &d.mean, rstd: &d.rstd };
        let products = self.layer_products()?;
        let pk = |l: usize, j: usize| d.packed.as_ref().map(|pw| &pw.layers[l][j]);
        // x = LN(word[id] + position[n] + type[0])
        self.word_lookup(step, &d.lin, &d.out.view(0, 1), e.word, 1, false)?;
        embedding::forward(step, d.lin.at([1, c]), &d.pos, p.value(e.position).at([cfg.max_position_embeddings, c]), true)?;
        if let Some(tt) = e.token_type {
            embedding::forward(step, d.lin.at([1, c]), &d.types, p.value(tt).at([cfg.type_vocab_size, c]), true)?;
        }
        self.ln_forward(step, self.hidden(&d.x, 1), st, self.hidden(&d.lin, 1), &e.ln, Fused::None)?;
        for (l, (lp, pr)) in layers.iter().zip(&products).enumerate() {
            self.product_row(step, d.cache[l].at_off(n * 3 * c, [1, 3 * c]), d.x.at([1, c]), &pr[0], pk(l, 0), false, d.lin.at([c]))?;
            attend_cached(step, d.ctx.at([c]), d.scores.at([h, d.cap]), d.cache[l].at([n + 1, 3 * c]))?;
            self.product_row(step, d.lin.at([1, c]), d.ctx.at([1, c]), &pr[1], pk(l, 1), false, d.lin.at([c]))?;
            // h1 = LN(x + attention)
            self.ln_forward(step, self.hidden(&d.h1, 1), st, self.hidden(&d.x, 1), &lp.attn_ln, self.residual(&d.res, &d.lin))?;
            self.product_row(step, d.inter.at([1, i]), d.h1.at([1, c]), &pr[2], pk(l, 2), true, d.inter_pre.at([i]))?;
            self.product_row(step, d.lin.at([1, c]), d.inter.at([1, i]), &pr[3], pk(l, 3), false, d.lin.at([c]))?;
            // x = LN(h1 + ffn)
            self.ln_forward(step, self.hidden(&d.x, 1), st, self.hidden(&d.h1, 1), &lp.out_ln, self.residual(&d.res, &d.lin))?;
        }
        // the LM head: transform (dense, GELU, LayerNorm), then the decoder tied to the word
        // embeddings plus the output bias
        let (_, norm, bias) = heads.lm.as_ref().ok_or_else(|| GpuError::Shape("a decoder without its language-model head".into()))?;
        let dense = self.dense_product()?.ok_or_else(|| GpuError::Shape("a decoder without its language-model head".into()))?;
        self.product_row(step, d.h1.at([1, c]), d.x.at([1, c]), &dense, d.packed.as_ref().and_then(|pw| pw.dense.as_ref()), true, d.res2.at([c]))?;
        self.ln_forward(step, self.hidden(&d.res2, 1), st, self.hidden(&d.h1, 1), norm, Fused::None)?;
        match &d.packed {
            Some(pw) => pw.lm.record(step, d.logits.at([1, cfg.vocab_size]), d.res2.at([1, c]), bias.map(|b| p.value(b).at([cfg.vocab_size])), Act::None),
            None => self.lm_logits_forward(step, &d.logits, &d.res2, 1, e.word, bias.map(|b| p.value(b))),
        }
    }
}
