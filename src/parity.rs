//! The model against PyTorch: checks shared by tests/native/model.rs, tests/web.rs and the
//! page's self-check. The reference is tests/fixtures/tiny_bert* (written by make_bert_fixture.py
//! with transformers; dropout off, eager attention).

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::model::{Heads, Model, Pooling};
use crate::model::batch::Batch;
use crate::model::mode::Mode;
use crate::train::schedule::linear_schedule;
use crate::model::config::ModelConfig;
use crate::gpu::Gpu;
use crate::safetensors::{self, SafeTensors};
use crate::kernels::adamw::AdamW;

pub type CheckResult = Result<String>;
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + 'a>>;

/// Calls `$m!(name, name, ...)` with every model check: the native tests and the self-check;
/// `for_each_model_check!(m, browser)` gives the browser suite's share (all but the second group).
#[macro_export]
macro_rules! for_each_model_check {
    ($m:ident) => { $crate::for_each_model_check! { @ $m; all } };
    ($m:ident, browser) => { $crate::for_each_model_check! { @ $m; browser } };
    (@ $m:ident; $which:ident) => {
        $crate::checks_of! { $m; $which; [
            model_forward_matches_pytorch,
            model_pretraining_gradients_match_pytorch,
            model_classification_gradients_match_pytorch,
            model_adamw_10_steps_match_pytorch,
            model_frozen_encoder_is_untouched,
            model_export_round_trip,
            model_export_hf_files,
            model_loads_f16_bf16_and_legacy_names,
            model_fill_mask_and_attention,
            model_mean_pooling_head,
            model_dropout_gradients_match_finite_differences,
            model_rejects_bad_checkpoints,
            model_new_labels_get_a_fresh_head,
            model_causal_matches_pytorch,
            model_causal_generation_matches_transformers,
            model_gpt2_matches_pytorch,
            model_gpt2_generation_matches_transformers,
            model_gpt2_export_round_trip,
            model_word_embedding_in_shards_matches_pytorch,
            model_last_token_classifier_matches_pytorch,
            model_lora_matches_peft
        ]; [
            // natively only. In the browser, model_adamw_10_steps_match_pytorch runs AdamW over a
            // model's arenas, and each body's forward and gradients are checked against PyTorch
            // (and peft's LoRA): the other bodies' ten steps add SwiftShader minutes, not kernels.
            // Decoding is checked against transformers' tokens there; the full-pass comparison
            // also covers the packed path, which is off in the browser. One dropout
            // finite-difference check (BERT's) stays there.
            model_causal_adamw_10_steps_match_pytorch,
            model_gpt2_adamw_10_steps_match_pytorch,
            model_last_token_classifier_adamw_10_steps_match_pytorch,
            model_lora_adamw_10_steps_match_peft,
            model_cached_decoding_matches_full_pass,
            model_gpt2_dropout_gradients_match_finite_differences,
            model_lora_dropout_gradients_match_finite_differences
        ] }
    };
}

/// Calls `$m!(name, ...)` with every family check (DistilBERT, RoBERTa, XLM-R, ELECTRA, ALBERT,
/// ModernBERT against transformers and peft): the native tests and the browser suite run them;
/// `for_each_family_check!(m, browser)` gives the browser's share (all but LoRA's ten steps, whose
/// kernels the others run). The page's self-check leaves them out, so that the app's wasm does not
/// carry their fixtures (4.5 MB).
#[macro_export]
macro_rules! for_each_family_check {
    ($m:ident) => { $crate::for_each_family_check! { @ $m; all } };
    ($m:ident, browser) => { $crate::for_each_family_check! { @ $m; browser } };
    (@ $m:ident; $which:ident) => {
        $crate::checks_of! { $m; $which; [
            model_families_match_transformers,
            model_family_tokenizers_frame_as_transformers,
            model_families_lora_matches_peft,
            model_families_adamw_10_steps_match_transformers,
            model_decoders_match_transformers,
            model_decoders_generate_as_transformers,
            model_decoders_lora_matches_peft,
            model_decoders_adamw_10_steps_match_transformers,
            model_decoders_load_as_the_hub_stores_them
        ]; [
            model_families_lora_adamw_10_steps_match_peft,
            model_decoders_lora_adamw_10_steps_match_peft,
            model_decoders_cached_decoding_matches_full_pass
        ] }
    };
}

pub fn all() -> Vec<(&'static str, for<'a> fn(&'a Gpu) -> CheckFuture<'a>)> {
    macro_rules! list {
        ($($name:ident),*) => {
            vec![$((stringify!($name), (|g| Box::pin($name(g))) as for<'a> fn(&'a Gpu) -> CheckFuture<'a>)),*]
        };
    }
    for_each_model_check!(list)
}

pub const TINY_CONFIG: &str = include_str!("../tests/fixtures/tiny_bert/config.json");
pub const TINY_WEIGHTS: &[u8] = include_bytes!("../tests/fixtures/tiny_bert/model.safetensors");
pub const TINY_CLASSIFIER: &[u8] = include_bytes!("../tests/fixtures/tiny_bert/classifier.safetensors");
pub const TINY_REF: &[u8] = include_bytes!("../tests/fixtures/tiny_bert_ref.safetensors");
/// transformers' BertLMHeadModel (is_decoder): BERT's body with causal attention, predicting the
/// next token (tests/fixtures/make_causal_fixture.py).
pub const CAUSAL_CONFIG: &str = include_str!("../tests/fixtures/tiny_causal/config.json");
pub const CAUSAL_WEIGHTS: &[u8] = include_bytes!("../tests/fixtures/tiny_causal/model.safetensors");
pub const CAUSAL_REF: &[u8] = include_bytes!("../tests/fixtures/tiny_causal_ref.safetensors");
/// transformers' GPT2LMHeadModel (tests/fixtures/make_gpt2_fixture.py).
pub const GPT2_CONFIG: &str = include_str!("../tests/fixtures/tiny_gpt2/config.json");
pub const GPT2_WEIGHTS: &[u8] = include_bytes!("../tests/fixtures/tiny_gpt2/model.safetensors");
pub const GPT2_REF: &[u8] = include_bytes!("../tests/fixtures/tiny_gpt2_ref.safetensors");
/// GPT's step 2: a classifier on a causal model's last token, GPT2ForSequenceClassification's and the
/// GPT-style BERT's (tests/fixtures/make_last_token_fixture.py); each holds its head as `head.*`.
pub const GPT2_CLS_REF: &[u8] = include_bytes!("../tests/fixtures/tiny_gpt2_cls_ref.safetensors");
pub const CAUSAL_CLS_REF: &[u8] = include_bytes!("../tests/fixtures/tiny_causal_cls_ref.safetensors");
/// The third way to adopt a model: peft's LoRA (r 4, alpha 8, PEFT's default targets) on a BERT and
/// a GPT-2 classifier (tests/fixtures/make_lora_fixture.py); the adapters and heads as `head.*`.
pub const BERT_LORA_REF: &[u8] = include_bytes!("../tests/fixtures/tiny_bert_lora_ref.safetensors");
pub const GPT2_LORA_REF: &[u8] = include_bytes!("../tests/fixtures/tiny_gpt2_lora_ref.safetensors");

/// One encoder family's fixture (tests/fixtures/make_encoder_fixtures.py): a random transformers
/// model with its masked-LM head and its own tokenizer, the reference (masked LM, the sequence
/// classifier with its head, 10 AdamW steps) and the LoRA reference (peft).
pub struct FamilyFixture {
    pub family: &'static str,
    pub config: &'static str,
    pub weights: &'static [u8],
    pub tokenizer: &'static [u8],
    pub reference: &'static [u8],
    pub lora_reference: &'static [u8],
}

macro_rules! family_fixture {
    ($family:literal, $dir:literal) => {
        FamilyFixture {
            family: $family,
            config: include_str!(concat!("../tests/fixtures/", $dir, "/config.json")),
            weights: include_bytes!(concat!("../tests/fixtures/", $dir, "/model.safetensors")),
            tokenizer: include_bytes!(concat!("../tests/fixtures/", $dir, "/tokenizer.json")),
            reference: include_bytes!(concat!("../tests/fixtures/", $dir, "_ref.safetensors")),
            lora_reference: include_bytes!(concat!("../tests/fixtures/", $dir, "_lora_ref.safetensors")),
        }
    };
}

/// The families besides BERT and GPT-2, each against transformers: ELECTRA as wide as its layers
/// and small (factorised embeddings), ALBERT (factorised, one shared set of layers) and ModernBERT
/// (its own body: rotary positions, GeGLU, local attention, no biases).
pub const FAMILY_FIXTURES: [FamilyFixture; 7] = [
    family_fixture!("distilbert", "tiny_distilbert"),
    family_fixture!("roberta", "tiny_roberta"),
    family_fixture!("xlm-roberta", "tiny_xlm_roberta"),
    family_fixture!("electra", "tiny_electra"),
    family_fixture!("electra", "tiny_electra_small"),
    family_fixture!("albert", "tiny_albert"),
    family_fixture!("modernbert", "tiny_modernbert"),
];

/// The Llama-shaped decoders (tests/fixtures/make_llama_fixtures.py): Llama with grouped-query
/// attention, rope_scaling llama3 and tied embeddings; Qwen2 with one key/value head, q, k, v
/// biases, an untied LM head and rope_scaling linear; Qwen3 with per-head q and k norms and a
/// head_dim that is not hidden / heads.
pub const DECODER_FIXTURES: [FamilyFixture; 3] = [family_fixture!("llama", "tiny_llama"), family_fixture!("qwen2", "tiny_qwen2"), family_fixture!("qwen3", "tiny_qwen3")];

struct Fixture {
    cfg: ModelConfig,
    weights: SafeTensors<'static>,
    r: SafeTensors<'static>,
    b: usize,
    t: usize,
}

fn fixture() -> Result<Fixture> {
    fixture_of(TINY_CONFIG, &[TINY_WEIGHTS, TINY_CLASSIFIER], TINY_REF)
}

fn causal_fixture() -> Result<Fixture> {
    fixture_of(CAUSAL_CONFIG, &[CAUSAL_WEIGHTS], CAUSAL_REF)
}

fn gpt2_fixture() -> Result<Fixture> {
    fixture_of(GPT2_CONFIG, &[GPT2_WEIGHTS], GPT2_REF)
}

/// The two last-token classifiers: (fixture, what), the head's weights taken from the reference.
fn last_token_fixtures() -> Result<[(Fixture, &'static str); 2]> {
    Ok([(fixture_of(GPT2_CONFIG, &[GPT2_WEIGHTS], GPT2_CLS_REF)?, "GPT2ForSequenceClassification"), (fixture_of(CAUSAL_CONFIG, &[CAUSAL_WEIGHTS], CAUSAL_CLS_REF)?, "GPT-style BERT, last token")])
}

/// The two LoRA classifiers: (fixture with its LoRA spec from the reference's metadata, what).
fn lora_fixtures() -> Result<[(Fixture, &'static str); 2]> {
    let with_lora = |mut fx: Fixture| -> Result<Fixture> {
        let meta = |k: &str| fx.r.metadata.get(k).and_then(|v| v.parse::<usize>().ok()).ok_or_else(|| Error::Check(format!("fixture metadata lacks {k}")));
        let (r, alpha) = (meta("lora_r")?, meta("lora_alpha")?);
        fx.cfg.lora = Some(crate::model::config::LoraSpec { alpha: alpha as f32, ..crate::model::config::LoraSpec::new(r, fx.cfg.family) });
        fx.cfg.validate()?;
        Ok(fx)
    };
    Ok([
        (with_lora(fixture_of(TINY_CONFIG, &[TINY_WEIGHTS], BERT_LORA_REF)?)?, "BERT + LoRA on query, value"),
        (with_lora(fixture_of(GPT2_CONFIG, &[GPT2_WEIGHTS], GPT2_LORA_REF)?)?, "GPT-2 + LoRA on c_attn"),
    ])
}

/// What a LoRA run trains: the adapters and the head (PEFT's modules_to_save).
fn lora_trains(p: &crate::model::params::Param) -> bool {
    matches!(p.part, crate::model::params::Part::Lora | crate::model::params::Part::Classifier)
}

fn fixture_of(config: &str, files: &[&'static [u8]], reference: &'static [u8]) -> Result<Fixture> {
    let cfg = ModelConfig::from_json(config)?;
    let mut weights = safetensors::parse(files[0])?;
    for f in &files[1..] {
        weights.tensors.extend(safetensors::parse(f)?.tensors);
    }
    let r = safetensors::parse(reference)?;
    // a reference may carry the head its numbers were made with
    for (name, t) in &r.tensors {
        if let Some(n) = name.strip_prefix("head.") {
            weights.tensors.insert(n.to_string(), t.clone());
        }
    }
    let shape = r.tensors.get("input.input_ids").ok_or_else(|| Error::Check("fixture lacks input ids".into()))?.shape.clone();
    Ok(Fixture { cfg, weights, r, b: shape[0], t: shape[1] })
}

impl Fixture {
    fn f32(&self, name: &str) -> Result<Vec<f32>> {
        Ok(self.r.tensors.get(name).ok_or_else(|| Error::Check(format!("fixture lacks {name}")))?.to_f32())
    }
    fn ints(&self, name: &str) -> Result<Vec<i64>> {
        Ok(self.r.tensors.get(name).ok_or_else(|| Error::Check(format!("fixture lacks {name}")))?.to_i64())
    }
    fn batch(&self, gpu: &Gpu, lm: bool, sop: bool, cls: bool) -> Result<Batch> {
        let u = |v: Vec<i64>| v.into_iter().map(|x| x as u32).collect::<Vec<u32>>();
        let i = |v: Vec<i64>| v.into_iter().map(|x| x as i32).collect::<Vec<i32>>();
        let ids = u(self.ints("input.input_ids")?);
        let types = u(self.ints("input.token_type_ids")?);
        let mask = u(self.ints("input.attention_mask")?);
        let lm_l = i(self.ints("input.mlm_labels")?);
        let sop_l = if sop { i(self.ints("input.sop_labels")?) } else { Vec::new() };
        let cls_l = if cls { i(self.ints("input.cls_labels")?) } else { Vec::new() };
        Ok(Batch::new(gpu, &self.cfg, self.b, self.t, &ids, &types, &mask, lm.then_some(&lm_l[..]), sop.then_some(&sop_l[..]), cls.then_some(&cls_l[..]))?)
    }
    fn model(&self, gpu: &Gpu, heads: Heads) -> Result<Model> {
        Ok(Model::new(gpu, self.cfg.clone(), heads, Some(&self.weights), 0)?.0)
    }
}

const PRETRAIN: Heads = Heads { lm: true, sop: true, num_labels: 0 };
/// Which of the fixture's targets a batch carries: (MLM or next token, sentence order, class).
type Targets = (bool, bool, bool);
const CLASSIFY: Heads = Heads { lm: false, sop: false, num_labels: 3 };
/// A language model's heads: the masked-LM head alone (on the next token for a decoder).
const LM: Heads = Heads { lm: true, sop: false, num_labels: 0 };

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn within(what: &str, got: &[f32], want: &[f32], tol: f32) -> Result<f32> {
    if got.len() < want.len() {
        return Err(Error::Check(format!("{what}: {} values, expected {}", got.len(), want.len())));
    }
    let d = max_abs_diff(&got[..want.len()], want);
    if !(d <= tol) {
        return Err(Error::Check(format!("{what}: max |diff| {d:.3e} > {tol:.1e}")));
    }
    Ok(d)
}

async fn read(gpu: &Gpu, b: &crate::gpu::GpuBuf) -> Result<Vec<f32>> {
    Ok(gpu.read_f32(b).await?)
}

async fn run_forward(gpu: &Gpu, model: &mut Model, batch: &Batch, mode: Mode) -> Result<crate::model::Losses> {
    let mut step = gpu.begin_step("forward");
    model.forward(gpu, &mut step, batch, mode)?;
    let rbs = model.record_loss_readback(&mut step)?;
    step.submit().await?;
    Ok(Model::read_losses(gpu, rbs).await?)
}

pub async fn model_forward_matches_pytorch(gpu: &Gpu) -> CheckResult {
    let fx = fixture()?;
    let (b, t, v) = (fx.b, fx.t, fx.cfg.vocab_size);
    let mut pt = fx.model(gpu, PRETRAIN)?;
    let batch = fx.batch(gpu, true, true, false)?;
    let losses = run_forward(gpu, &mut pt, &batch, Mode::Eval).await?;
    let hidden = read(gpu, pt.last_hidden().unwrap()).await?;
    let d_h = within("last hidden state", &hidden, &fx.f32("out.last_hidden_state")?, 1e-4)?;
    // MLM logits exist only at the predicted rows: compare those rows of HF's (B, T, V) logits
    let all = fx.f32("out.mlm_logits")?;
    let want: Vec<f32> = batch.lm_row_ids.iter().flat_map(|&r| all[r as usize * v..(r as usize + 1) * v].to_vec()).collect();
    let d_mlm = within("MLM logits", &read(gpu, pt.lm_logits().unwrap()).await?, &want, 1e-4)?;
    let d_sop = within("sentence-order logits", &read(gpu, pt.sop_logits().unwrap()).await?, &fx.f32("out.sop_logits")?, 1e-4)?;
    let probs = read(gpu, pt.attention_probs(0).unwrap()).await?;
    let d_att = within("layer-0 attention probabilities", &probs, &fx.f32("out.attentions0")?, 1e-5)?;
    within("MLM loss", &[losses.lm], &fx.f32("out.mlm_loss")?, 1e-4)?;
    within("SOP loss", &[losses.sop], &fx.f32("out.sop_loss")?, 1e-4)?;
    let mut cm = fx.model(gpu, CLASSIFY)?;
    let cb = fx.batch(gpu, false, false, true)?;
    let cl = run_forward(gpu, &mut cm, &cb, Mode::Eval).await?;
    let d_cls = within("classification logits", &read(gpu, cm.cls_logits().unwrap()).await?, &fx.f32("out.cls_logits")?, 1e-4)?;
    within("classification loss", &[cl.cls], &fx.f32("out.cls_loss")?, 1e-4)?;
    let _ = (b, t);
    Ok(format!(
        "max |diff| vs transformers: hidden {d_h:.1e}, MLM logits {d_mlm:.1e}, SOP {d_sop:.1e}, classifier {d_cls:.1e}, attention {d_att:.1e}; losses {:.5}/{:.5}/{:.5}",
        losses.lm, losses.sop, cl.cls
    ))
}

/// Every trainable parameter's gradient against the fixture's `prefix.<HF name>` tensors:
/// max |diff| <= 1e-3 * max|ref| per tensor. The key biases' gradients are zero in exact arithmetic
/// (softmax ignores a constant added to a row), so both sides hold only rounding noise (~1e-14 in
/// torch, ~1e-11 here); the bound's scale is floored at 1e-6 of the largest gradient of the model.
async fn compare_grads(gpu: &Gpu, fx: &Fixture, model: &Model, prefix: &str) -> Result<(usize, f32)> {
    let mut worst = 0.0f32;
    let mut n = 0;
    let mut global = 0.0f32;
    for p in &model.params.params {
        let hf = crate::model::params::hf_name(fx.cfg.family, &p.name);
        if let Ok(want) = fx.f32(&format!("{prefix}.{hf}")) {
            global = want.iter().fold(global, |m, v| m.max(v.abs()));
        }
    }
    for p in &model.params.params {
        let hf = crate::model::params::hf_name(fx.cfg.family, &p.name);
        let Ok(want) = fx.f32(&format!("{prefix}.{hf}")) else { continue };
        let got = read(gpu, p.grad.as_ref().ok_or_else(|| Error::Check(format!("{} has no gradient", p.name)))?).await?;
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6 * global);
        let d = max_abs_diff(&got[..want.len()], &want);
        if !(d <= 1e-3 * scale) {
            return Err(Error::Check(format!("gradient of {hf}: max |diff| {d:.3e} > 1e-3 * max|ref| = {:.3e}", 1e-3 * scale)));
        }
        worst = worst.max(if scale > 0.0 { d / scale } else { 0.0 });
        n += 1;
    }
    Ok((n, worst))
}

async fn grads_step(gpu: &Gpu, model: &mut Model, batch: &Batch, mode: Mode) -> Result<()> {
    let mut step = gpu.begin_step("grads");
    model.zero_grads(&mut step);
    model.forward(gpu, &mut step, batch, mode)?;
    model.backward(&mut step, batch, mode)?;
    Ok(step.submit().await?)
}

pub async fn model_pretraining_gradients_match_pytorch(gpu: &Gpu) -> CheckResult {
    gradients_match(gpu, PRETRAIN, (true, true, false), "grad_pt", "MLM + SOP loss").await
}

pub async fn model_classification_gradients_match_pytorch(gpu: &Gpu) -> CheckResult {
    gradients_match(gpu, CLASSIFY, (false, false, true), "grad_cls", "classification loss").await
}

/// Every parameter's gradient of the tiny BERT with `heads` on the batch's `targets`, against the
/// fixture's `prefix.*`.
async fn gradients_match(gpu: &Gpu, heads: Heads, targets: Targets, prefix: &str, what: &str) -> CheckResult {
    let fx = fixture()?;
    let mut m = fx.model(gpu, heads)?;
    m.params.set_trainable(gpu, |_| true)?;
    let batch = fx.batch(gpu, targets.0, targets.1, targets.2)?;
    grads_step(gpu, &mut m, &batch, Mode::Eval).await?;
    let (n, worst) = compare_grads(gpu, &fx, &m, prefix).await?;
    if n != m.params.params.len() {
        return Err(Error::Check(format!("only {n} of {} parameters had a reference gradient", m.params.params.len())));
    }
    Ok(format!("{what}: all {n} gradient tensors within {worst:.1e} · max|ref| (bound 1e-3)"))
}

/// A device of the check's own, so that its counters see only its own work even when other checks
/// run beside it.
async fn own_gpu() -> Result<Gpu> {
    Ok(Gpu::new().await?)
}

pub async fn model_adamw_10_steps_match_pytorch(_shared: &Gpu) -> CheckResult {
    adamw_10_steps(&fixture()?, PRETRAIN, (true, true, false)).await
}

/// 10 AdamW steps on the fixture's batch (its `train.*` and `final.*` tensors), on a device of
/// the check's own.
async fn adamw_10_steps(fx: &Fixture, heads: Heads, targets: Targets) -> CheckResult {
    adamw_10_steps_of(fx, heads, targets, |_| true).await
}

/// 10 AdamW steps training what `trains` picks; the others must stay as they were.
async fn adamw_10_steps_of(fx: &Fixture, heads: Heads, targets: Targets, trains: fn(&crate::model::params::Param) -> bool) -> CheckResult {
    adamw_10_steps_within(fx, heads, targets, trains, 1e-4).await
}

/// 10 AdamW steps training what `trains` picks, the losses within `loss_tol` of the reference's.
async fn adamw_10_steps_within(fx: &Fixture, heads: Heads, targets: Targets, trains: fn(&crate::model::params::Param) -> bool, loss_tol: f32) -> CheckResult {
    let gpu = &own_gpu().await?;
    let meta = |k: &str| -> Result<f32> { Ok(fx.r.metadata.get(k).and_then(|v| v.parse().ok()).ok_or_else(|| Error::Check(format!("fixture metadata lacks {k}")))?) };
    let (lr, warmup, total, max_norm, wd) = (meta("lr")?, meta("warmup")? as usize, meta("total_steps")? as usize, meta("max_grad_norm")?, meta("weight_decay")?);
    let mut m = fx.model(gpu, heads)?;
    m.params.set_trainable(gpu, trains)?;
    let batch = fx.batch(gpu, targets.0, targets.1, targets.2)?;
    let opt = AdamW { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, max_grad_norm: max_norm };
    let want = fx.f32("train.losses")?;
    let mut got = Vec::new();
    let frozen_before = m.params.read_all(gpu).await?;
    gpu.reset_counters();
    for k in 0..total {
        let mut step = gpu.begin_step("train");
        m.zero_grads(&mut step);
        m.forward(gpu, &mut step, &batch, Mode::Eval)?;
        m.backward(&mut step, &batch, Mode::Eval)?;
        m.optimizer_step(gpu, &mut step, &opt, linear_schedule(lr, k, warmup, total), wd)?;
        let rbs = m.record_loss_readback(&mut step)?;
        step.submit().await?;
        got.push(Model::read_losses(gpu, rbs).await?.total());
    }
    let c = gpu.counters();
    if c.submits != total as u64 {
        return Err(Error::Check(format!("{total} training steps made {} submits", c.submits)));
    }
    // what does not train stays bit for bit as it was
    let after = m.params.read_all(gpu).await?;
    for ((name, _, v0), (_, _, v1)) in frozen_before.iter().zip(&after) {
        if m.params.get(name).map(|p| !trains(p)).unwrap_or(false) && v0 != v1 {
            return Err(Error::Check(format!("{name} does not train, yet it changed")));
        }
    }
    let d = within("losses of 10 AdamW steps", &got, &want, loss_tol)?;
    // final weights too, judged against how far training moved them
    let mut worst = 0.0f32;
    for p in &m.params.params {
        let hf = crate::model::params::hf_name(fx.cfg.family, &p.name);
        // a decoder (BertLMHeadModel) has no pooler: BERT Lab's is unused there and stays as it was
        if (fx.cfg.is_decoder && p.name.starts_with("pooler.")) || !trains(p) {
            continue;
        }
        let w = fx.f32(&format!("final.{hf}"))?;
        let got = read(gpu, &p.value).await?;
        let dd = max_abs_diff(&got[..w.len()], &w);
        if dd > 1e-4 {
            return Err(Error::Check(format!("{hf} after 10 steps: max |diff| {dd:.2e} > 1e-4")));
        }
        worst = worst.max(dd);
    }
    Ok(format!("10 steps (warmup 3, linear decay, clip at {max_norm}, wd {wd}): losses max |diff| {d:.1e}, final weights max |diff| {worst:.1e}; {} submits, {} bytes read back", c.submits, c.bytes_read_back))
}

pub async fn model_frozen_encoder_is_untouched(_shared: &Gpu) -> CheckResult {
    let gpu = &own_gpu().await?;
    let fx = fixture()?;
    let mut m = fx.model(gpu, CLASSIFY)?;
    m.params.set_trainable(gpu, |p| p.part == crate::model::params::Part::Classifier)?;
    let before = m.params.read_all(gpu).await?;
    let batch = fx.batch(gpu, false, false, true)?;
    let opt = AdamW { lr: 1e-2, ..AdamW::default() };
    gpu.reset_counters();
    let mut losses = Vec::new();
    for _ in 0..5 {
        let mut step = gpu.begin_step("feature-based");
        m.zero_grads(&mut step);
        m.forward(gpu, &mut step, &batch, Mode::Eval)?;
        m.backward(&mut step, &batch, Mode::Eval)?;
        m.optimizer_step(gpu, &mut step, &opt, opt.lr, 0.01)?;
        let rbs = m.record_loss_readback(&mut step)?;
        step.submit().await?;
        losses.push(Model::read_losses(gpu, rbs).await?.cls);
    }
    let c = gpu.counters();
    for k in ["softmax_backward", "layernorm_backward_input", "gelu_backward", "embedding_backward", "tanh_backward"] {
        if c.dispatches_of(k) != 0 {
            return Err(Error::Check(format!("a frozen encoder dispatched {} {k} kernels", c.dispatches_of(k))));
        }
    }
    let after = m.params.read_all(gpu).await?;
    let mut changed = 0;
    for ((name, _, a), (_, _, b)) in before.iter().zip(&after) {
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        if name.starts_with("classifier.") {
            changed += (!same) as usize;
        } else if !same {
            return Err(Error::Check(format!("frozen {name} changed")));
        }
    }
    if changed != 2 || !(losses[4] < losses[0]) {
        return Err(Error::Check(format!("the head did not train: {changed} head tensors changed, losses {losses:?}")));
    }
    Ok(format!("5 feature-based steps: encoder bit-identical, no encoder backward dispatched, head loss {:.4} -> {:.4}", losses[0], losses[4]))
}

pub async fn model_export_round_trip(gpu: &Gpu) -> CheckResult {
    let fx = fixture()?;
    let mut m = fx.model(gpu, PRETRAIN)?;
    let batch = fx.batch(gpu, true, true, false)?;
    run_forward(gpu, &mut m, &batch, Mode::Eval).await?;
    let logits = read(gpu, m.lm_logits().unwrap()).await?;
    let tensors = m.params.read_all(gpu).await?;
    let hf: Vec<(String, Vec<usize>, Vec<f32>)> = tensors.into_iter().map(|(n, s, v)| (crate::model::params::hf_name(fx.cfg.family, &n), s, v)).collect();
    let bytes = safetensors::serialize(&hf, &BTreeMap::new());
    let st = safetensors::parse(&bytes)?;
    let mut m2 = Model::new(gpu, fx.cfg.clone(), PRETRAIN, Some(&st), 0)?.0;
    run_forward(gpu, &mut m2, &batch, Mode::Eval).await?;
    let logits2 = read(gpu, m2.lm_logits().unwrap()).await?;
    if logits != logits2 {
        return Err(Error::Check(format!("reloaded export's MLM logits differ by {:.3e}", max_abs_diff(&logits, &logits2))));
    }
    Ok(format!("{} tensors exported with HF names ({} bytes) and reloaded: identical logits", hf.len(), bytes.len()))
}

pub async fn model_rejects_bad_checkpoints(gpu: &Gpu) -> CheckResult {
    let fx = fixture()?;
    let good = TINY_WEIGHTS;
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    cases.push(("truncated file", good[..good.len() / 2].to_vec(), "outside"));
    cases.push(("header longer than the file", { let mut v = good.to_vec(); v[..8].copy_from_slice(&(good.len() as u64 * 4).to_le_bytes()); v }, "truncated"));
    cases.push(("huge header claim", { let mut v = good.to_vec(); v[..8].copy_from_slice(&u64::MAX.to_le_bytes()); v }, "header claims"));
    cases.push(("seven bytes", good[..7].to_vec(), "shorter"));
    let header = std::str::from_utf8(&good[8..8 + n])?;
    let rewrite = |h: String| -> Vec<u8> {
        let mut hb = h.into_bytes();
        while hb.len() < n { hb.push(b' '); }
        let mut v = (hb.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(&hb);
        v.extend_from_slice(&good[8 + n..]);
        v
    };
    let json: serde_json::Value = serde_json::from_str(header)?;
    let mut j = json.clone();
    j["bert.pooler.dense.bias"]["data_offsets"] = serde_json::json!([0u64, 1u64 << 40]);
    cases.push(("offsets out of range", rewrite(j.to_string()), "outside"));
    let mut j = json.clone();
    let off = j["bert.pooler.dense.weight"]["data_offsets"].clone();
    let b0 = off[0].as_u64().unwrap();
    j["bert.pooler.dense.bias"]["data_offsets"] = serde_json::json!([b0, b0 + 256]);
    cases.push(("overlapping tensors", rewrite(j.to_string()), "overlap"));
    let mut j = json.clone();
    j["bert.pooler.dense.bias"]["shape"] = serde_json::json!([32, 2]);
    cases.push(("wrong shape", rewrite(j.to_string()), "pooler.dense.bias: the checkpoint has shape [32, 2], the config needs [64]"));
    let mut j = json.clone();
    j.as_object_mut().unwrap().remove("bert.encoder.layer.1.output.dense.weight");
    cases.push(("missing tensor", rewrite(j.to_string()), "encoder.layer.1.output.dense.weight: missing"));
    let mut seen = Vec::new();
    for (what, bytes, expect) in cases {
        let msg = match safetensors::parse(&bytes) {
            Err(e) => e.to_string(),
            Ok(st) => match Model::new(gpu, fx.cfg.clone(), PRETRAIN, Some(&st), 0) {
                Err(e) => e.to_string(),
                Ok(_) => return Err(Error::Check(format!("a checkpoint with {what} was accepted"))),
            },
        };
        if !msg.contains(expect) {
            return Err(Error::Check(format!("{what}: the message \"{msg}\" does not mention \"{expect}\"")));
        }
        seen.push(what);
    }
    // a vocabulary that does not match the embedding rows, and heads that do not divide hidden
    let mut cfg = fx.cfg.clone();
    cfg.vocab_size += 7;
    match Model::new(gpu, cfg, PRETRAIN, Some(&fx.weights), 0) {
        Err(bertlab_error @ crate::error::Error::Shape { .. }) if bertlab_error.to_string().contains("word_embeddings") && bertlab_error.to_string().contains("2003") => seen.push("vocabulary size mismatch"),
        Err(e) => return Err(Error::Check(format!("vocab mismatch gave: {e}"))),
        Ok(_) => return Err(Error::Check("a vocabulary larger than the embedding was accepted".into())),
    }
    let bad = TINY_CONFIG.replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 5");
    match ModelConfig::from_json(&bad) {
        Err(e) if { let e = e.to_string(); e.contains("not divisible") } => seen.push("hidden not divisible by heads"),
        other => return Err(Error::Check(format!("hidden 64 with 5 heads gave {other:?}"))),
    }
    match ModelConfig::from_json(r#"{"model_type": "t5", "vocab_size": 10}"#) {
        Err(e) if { let e = e.to_string(); e.contains("'t5'") && e.contains("qwen3") && e.contains("gpt2") } => seen.push("a model type BERT Lab does not run"),
        other => return Err(Error::Check(format!("a T5 config gave {other:?}"))),
    }
    // the Llama-shaped decoders: what their configs can say that BERT Lab does not run
    let llama = |extra: &str| format!(r#"{{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 12{extra}}}"#);
    for (what, extra, expect) in [
        ("rope_scaling of an unknown kind", r#", "rope_scaling": {"rope_type": "yarn", "factor": 4.0}"#, "\"yarn\""),
        ("query heads not a multiple of the key/value heads", r#", "num_key_value_heads": 3, "num_attention_heads": 4, "hidden_size": 16"#, "num_key_value_heads"),
        ("sliding-window attention", r#", "use_sliding_window": true"#, "use_sliding_window"),
        ("another activation", r#", "hidden_act": "gelu""#, "SwiGLU"),
    ] {
        match ModelConfig::from_json(&llama(extra)) {
            Err(e) if { let e = e.to_string(); e.contains(expect) } => seen.push(what),
            other => return Err(Error::Check(format!("a Llama config with {what} gave {other:?}"))),
        }
    }
    if ModelConfig::from_json(&llama(r#", "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "num_key_value_heads": 1"#)).is_err() {
        return Err(Error::Check("a Llama 3 config (rope_scaling llama3, one key/value head) was refused".into()));
    }
    for (what, extra, expect) in [
        ("GPT-2 scaled by layer", r#""scale_attn_by_inverse_layer_idx": true"#, "scale_attn_by_inverse_layer_idx"),
        ("GPT-2 untied head", r#""tie_word_embeddings": false"#, "tie_word_embeddings"),
        ("GPT-2 relu", r#""activation_function": "relu""#, "relu"),
    ] {
        match ModelConfig::from_json(&format!(r#"{{"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_head": 2, {extra}}}"#)) {
            Err(e) if { let e = e.to_string(); e.contains(expect) } => seen.push(what),
            other => return Err(Error::Check(format!("{what} gave {other:?}"))),
        }
    }
    Ok(format!("refused with a message naming the problem: {}", seen.join(", ")))
}

pub async fn model_export_hf_files(gpu: &Gpu) -> CheckResult {
    use crate::io::export::{export_files, pick_weights_file, ModelCard};
    let fx = fixture()?;
    let mut m = fx.model(gpu, CLASSIFY)?;
    let batch = fx.batch(gpu, false, false, true)?;
    let probs = m.classify(gpu, &batch).await?;
    let labels: Vec<String> = ["negative", "neutral", "positive"].iter().map(|s| s.to_string()).collect();
    let run = Some(crate::session::RunSettings::of(&crate::session::TrainConfig { seed: 7, ..Default::default() }, &labels));
    let card = ModelCard { base_model: "tiny fixture".into(), data_summary: "3 sequences".into(), metrics: vec![("accuracy".into(), "0.5".into())], seed: 7, notes: String::new(), run, ..Default::default() };
    let tensors = m.params.read_all(gpu).await?;
    let tok = vec![("vocab.txt".to_string(), b"[PAD]\n[UNK]\n".to_vec())];
    let files = export_files(&m.cfg, CLASSIFY, tensors, &labels, &tok, &card);
    let get = |n: &str| files.iter().find(|(f, _)| f == n).map(|(_, b)| b.clone()).ok_or_else(|| Error::Check(format!("export lacks {n}")));
    let cfg_text = String::from_utf8(get("config.json")?)?;
    let cfg = ModelConfig::from_json(&cfg_text)?;
    let v: serde_json::Value = serde_json::from_str(&cfg_text)?;
    if v["architectures"][0] != "BertForSequenceClassification" || v["id2label"]["2"] != "positive" || v["label2id"]["neutral"] != 1 {
        return Err(Error::Check(format!("config.json lacks the classifier's architecture or labels: {cfg_text}")));
    }
    let weights = get("model.safetensors")?;
    let st = safetensors::parse(&weights)?;
    if !st.tensors.contains_key("bert.encoder.layer.0.attention.self.query.weight") || !st.tensors.contains_key("classifier.weight") {
        return Err(Error::Check("exported tensors do not carry Hugging Face's BertForSequenceClassification names".into()));
    }
    let card_text = String::from_utf8(get("README.md")?)?;
    if !card_text.contains("seed: 7") || !card_text.contains("| accuracy | 0.5 |") {
        return Err(Error::Check("the model card lacks the seed or metrics".into()));
    }
    get("vocab.txt")?;
    // the script that continues the run with transformers' Trainer, its settings written in
    let script = String::from_utf8(get(crate::io::export::TRAIN_HF)?)?;
    if !script.contains("\"labels\": [\n    \"negative\",\n    \"neutral\",\n    \"positive\"\n  ]") || !script.contains("\"mode\": \"full\"") || script.contains("__SETTINGS__") {
        return Err(Error::Check(format!("train_hf.py lacks the run's settings: {}", &script[script.find("SETTINGS =").unwrap_or(0)..].chars().take(400).collect::<String>())));
    }
    let mut m2 = Model::new(gpu, cfg, CLASSIFY, Some(&st), 0)?.0;
    let probs2 = m2.classify(gpu, &batch).await?;
    if probs != probs2 {
        return Err(Error::Check("the export, loaded back, classifies differently".into()));
    }
    pick_weights_file(&["config.json", "model.safetensors"])?;
    match pick_weights_file(&["config.json", "pytorch_model.bin"]) {
        Err(e) if { let e = e.to_string(); e.contains("pytorch_model.bin") && e.contains("save_pretrained") } => {}
        other => return Err(Error::Check(format!("a .bin-only repository gave {other:?}"))),
    }
    Ok(format!("{} files (model.safetensors, config.json with id2label, README.md card, tokenizer files); reloaded export gives identical class probabilities", files.len()))
}

pub async fn model_loads_f16_bf16_and_legacy_names(gpu: &Gpu) -> CheckResult {
    let fx = fixture()?;
    let original: Vec<(String, Vec<usize>, Vec<f32>)> = fx.weights.tensors.iter().map(|(n, v)| (n.clone(), v.shape.clone(), v.to_f32())).collect();
    // no `bert.` prefix and TF-era LayerNorm.gamma/beta names
    let legacy: Vec<(String, Vec<usize>, Vec<f32>)> = original
        .iter()
        .map(|(n, s, v)| (n.strip_prefix("bert.").unwrap_or(n).replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"), s.clone(), v.clone()))
        .collect();
    let mut out = Vec::new();
    for (dtype, round) in [
        (safetensors::Dtype::F16, (|x: f32| half::f16::from_f32(x).to_f32()) as fn(f32) -> f32),
        (safetensors::Dtype::BF16, |x: f32| half::bf16::from_f32(x).to_f32()),
    ] {
        let bytes = safetensors::serialize_as(&legacy, &BTreeMap::new(), dtype);
        let st = safetensors::parse(&bytes)?;
        let (m, report) = Model::new(gpu, fx.cfg.clone(), PRETRAIN, Some(&st), 0)?;
        if !report.initialised.iter().all(|n| n.starts_with("classifier")) || report.loaded.len() != 46 {
            return Err(Error::Check(format!("{dtype:?}: loaded {}, initialised {:?}", report.loaded.len(), report.initialised)));
        }
        for (name, _, vals) in &original {
            let ours = name.strip_prefix("bert.").unwrap_or(name);
            let Some(p) = m.params.get(ours) else { continue };
            let got = read(gpu, &p.value).await?;
            if vals.iter().zip(&got).any(|(v, g)| round(*v) != *g) {
                return Err(Error::Check(format!("{dtype:?}: {name} is not the {dtype:?} rounding of the original")));
            }
        }
        out.push(dtype.name());
    }
    Ok(format!("{} checkpoints with legacy LayerNorm.gamma/beta names and no bert. prefix load exactly", out.join(" and ")))
}

pub async fn model_fill_mask_and_attention(gpu: &Gpu) -> CheckResult {
    let fx = fixture()?;
    let mut m = fx.model(gpu, PRETRAIN)?;
    let (t, v) = (fx.t, fx.cfg.vocab_size);
    let ids: Vec<u32> = fx.ints("input.input_ids")?[..t].iter().map(|&x| x as u32).collect();
    let types: Vec<u32> = fx.ints("input.token_type_ids")?[..t].iter().map(|&x| x as u32).collect();
    let positions = [1usize, 4, 7];
    let preds = m.top_tokens(gpu, &ids, &types, &positions, 5).await?;
    if preds.len() != 3 || preds.iter().any(|p| p.len() != 5) {
        return Err(Error::Check(format!("expected 3 positions x top-5, got {:?}", preds.iter().map(|p| p.len()).collect::<Vec<_>>())));
    }
    // sequence 0 has no padding, so its logits equal HF's at those positions
    let all = fx.f32("out.mlm_logits")?;
    for (k, &p) in positions.iter().enumerate() {
        let row = &all[p * v..(p + 1) * v];
        let best = crate::model::infer::top_k(row, 5);
        let ids_ref: Vec<u32> = best.iter().map(|x| x.0).collect();
        let ids_got: Vec<u32> = preds[k].iter().map(|x| x.0).collect();
        if ids_ref != ids_got {
            return Err(Error::Check(format!("position {p}: top-5 {ids_got:?}, transformers' logits give {ids_ref:?}")));
        }
        if preds[k].windows(2).any(|w| w[0].1 < w[1].1) || preds[k].iter().map(|x| x.1).sum::<f32>() > 1.0 + 1e-5 {
            return Err(Error::Check(format!("position {p}: probabilities not ranked or sum above 1: {:?}", preds[k])));
        }
    }
    let h = fx.cfg.num_attention_heads;
    for l in 0..fx.cfg.num_hidden_layers {
        let probs = read(gpu, m.attention_probs(l).ok_or_else(|| Error::Check("no attention probabilities".into()))?).await?;
        for r in 0..h * t {
            let s: f32 = probs[r * t..(r + 1) * t].iter().sum();
            if (s - 1.0).abs() > 1e-5 {
                return Err(Error::Check(format!("layer {l} attention row {r} sums to {s}")));
            }
        }
    }
    Ok(format!("top-5 at 3 positions ranked as transformers' logits rank them; every attention row of {} layers sums to 1", fx.cfg.num_hidden_layers))
}

/// A new task on a fine-tuned model: the fixture's 3-label classifier loaded for 2 labels keeps every
/// encoder tensor, builds a fresh (2, C) head, and says which tensors it replaced; a mismatch
/// anywhere else is still an error.
pub async fn model_new_labels_get_a_fresh_head(gpu: &Gpu) -> CheckResult {
    let fx = fixture()?;
    let (m, report) = Model::new(gpu, fx.cfg.clone(), Heads { lm: false, sop: false, num_labels: 2 }, Some(&fx.weights), 0)?;
    if report.replaced.len() != 2 || !report.replaced.iter().all(|r| r.starts_with("classifier.")) {
        return Err(Error::Check(format!("expected classifier.weight and .bias replaced, got {:?}", report.replaced)));
    }
    let shape = &m.params.get("classifier.weight").ok_or_else(|| Error::Check("no classifier.weight".into()))?.shape;
    if shape != &vec![2, fx.cfg.hidden_size] {
        return Err(Error::Check(format!("the fresh head has shape {shape:?}")));
    }
    let name = "encoder.layer.1.output.dense.weight";
    let got = read(gpu, &m.params.get(name).ok_or_else(|| Error::Check("no encoder tensor".into()))?.value).await?;
    let want = fx.weights.tensors.iter().find(|(k, _)| k.ends_with(name)).ok_or_else(|| Error::Check("fixture lacks the tensor".into()))?.1.to_f32();
    if got != want {
        return Err(Error::Check(format!("{name} was not kept from the checkpoint")));
    }
    Ok(format!("3-label checkpoint for 2 labels: {}; encoder kept", report.replaced.join("; ")))
}

/// For each tensor of `names`: the gradient already in the model against central finite differences
/// of `loss` (step `eps`) along a unit direction, random plus the gradient's own (the forward runs with
/// the seed the gradients had, so dropout masks match). Returns the worst relative error; more than
/// 2e-2 is an error, and so is a loss that moves by less than [`FD_MIN_MOVE`] roundings (a zero
/// gradient, or a tensor the loss ignores: the fixtures' tensors move it by 330 roundings or more).
/// The least loss change, in f32 roundings (f32::EPSILON) of the loss, that [`directional_fd`] takes
/// as a derivative.
const FD_MIN_MOVE: f32 = 32.0;

async fn directional_fd(gpu: &Gpu, m: &mut Model, batch: &Batch, mode: Mode, names: &[&str], seed: u64, eps: f32, loss: impl Fn(&crate::model::Losses) -> f32) -> Result<f32> {
    let mut rng = crate::rng::Rng::new(seed);
    let mut worst = 0f32;
    for &name in names {
        let p = m.params.get(name).ok_or_else(|| Error::Check(format!("no {name}")))?;
        let n = p.numel();
        let g = read(gpu, p.grad.as_ref().ok_or_else(|| Error::Check(format!("{name} has no gradient")))?).await?;
        let w0: Vec<f32> = read(gpu, &p.value).await?[..n].to_vec();
        // a random unit direction plus the gradient's own (unit) direction, so that the derivative
        // along it is of the gradient's size, not of a random projection's (1/sqrt(n) of it)
        let unit = |v: &mut [f32]| {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|x| *x /= norm);
            }
        };
        let mut d = rng.normals(n, 1.0);
        unit(&mut d);
        let mut gd = g[..n].to_vec();
        unit(&mut gd);
        d.iter_mut().zip(&gd).for_each(|(x, g)| *x += g);
        unit(&mut d);
        let analytic: f32 = g[..n].iter().zip(&d).map(|(a, b)| a * b).sum();
        let mut l = [0f32; 2];
        for (k, s) in [1f32, -1.0].iter().enumerate() {
            let shifted: Vec<f32> = w0.iter().zip(&d).map(|(w, d)| w + s * eps * d).collect();
            gpu.write(&m.params.get(name).unwrap().value, 0, &shifted)?;
            l[k] = loss(&run_forward(gpu, m, batch, mode).await?);
        }
        gpu.write(&m.params.get(name).unwrap().value, 0, &w0)?;
        let fd = (l[0] - l[1]) / (2.0 * eps);
        let err = (fd - analytic).abs() / analytic.abs().max(1e-3);
        if !(err <= 2e-2) {
            return Err(Error::Check(format!("{name}: gradient along a random direction {analytic:.6e}, finite difference {fd:.6e} (relative error {err:.2e})")));
        }
        // the two agreeing says nothing when the loss hardly moves (a zero gradient and a parameter
        // the loss ignores agree): the step must change the loss by far more than its f32 rounding
        let moved = (l[0] - l[1]).abs() / (FD_MIN_MOVE * f32::EPSILON * l[0].abs().max(l[1].abs()).max(1.0));
        if !(moved >= 1.0) {
            return Err(Error::Check(format!("{name}: the loss moved {:.3e} for a step of {eps} along a random direction (gradient {analytic:.3e}), under {FD_MIN_MOVE} f32 roundings of the loss {:.4}: no gradient to check", (l[0] - l[1]).abs(), l[0])));
        }
        worst = worst.max(err);
    }
    Ok(worst)
}

/// Every parameter's gradient of one training step with dropout on (seed 0), and the loss with
/// dropout and without: an error when they are equal (nothing was dropped).
async fn gradients_with_dropout(gpu: &Gpu, m: &mut Model, batch: &Batch) -> Result<(Mode, f32, f32)> {
    m.params.set_trainable(gpu, |_| true)?;
    let train = Mode::Train { seed: 0 };
    grads_step(gpu, m, batch, train).await?;
    let with = run_forward(gpu, m, batch, train).await?.total();
    let without = run_forward(gpu, m, batch, Mode::Eval).await?.total();
    if with == without {
        return Err(Error::Check(format!("dropout on and off give the same loss {with}: nothing was dropped")));
    }
    Ok((train, with, without))
}

/// With dropout on (every site: embeddings, attention probabilities, both residual branches, the
/// classifier's input), the gradients of all three heads' summed loss agree with finite differences
/// of the same loss under the same masks: the fused kernels' backward masks are the forward's.
pub async fn model_dropout_gradients_match_finite_differences(gpu: &Gpu) -> CheckResult {
    let fx = fixture()?;
    let heads = Heads { lm: true, sop: true, num_labels: 3 };
    let mut m = fx.model(gpu, heads)?;
    // the fixture's config turns dropout off (for the parity checks); here it is BERT's 0.1
    m.cfg.hidden_dropout_prob = 0.1;
    m.cfg.attention_probs_dropout_prob = 0.1;
    // sharpen attention (the fixture's random queries and keys make it nearly uniform, and then
    // the softmax's backward, where the probabilities' dropout mask acts, carries almost nothing)
    for l in 0..m.cfg.num_hidden_layers {
        for part in ["query", "key"] {
            let name = format!("encoder.layer.{l}.attention.self.{part}.weight");
            let p = m.params.get(&name).ok_or_else(|| Error::Check(format!("no {name}")))?;
            let w: Vec<f32> = read(gpu, &p.value).await?.iter().map(|v| v * 6.0).collect();
            gpu.write(&p.value, 0, &w)?;
        }
    }
    let batch = fx.batch(gpu, true, true, true)?;
    let (train, with, without) = gradients_with_dropout(gpu, &mut m, &batch).await?;
    let names = [
        "embeddings.LayerNorm.weight",
        "encoder.layer.0.attention.self.query.weight",
        "encoder.layer.0.attention.self.value.bias",
        "encoder.layer.1.attention.output.dense.weight",
        "encoder.layer.1.output.dense.weight",
        "classifier.weight",
        "cls.predictions.transform.dense.weight",
    ];
    // a step of 0.05 along a unit direction: the query's gradient is small in this random model, and
    // a smaller step drowns it in the f32 loss's rounding
    let worst = directional_fd(gpu, &mut m, &batch, train, &names, 23, 5e-2, |l| l.total()).await?;
    Ok(format!("loss {with:.4} with dropout, {without:.4} without; {} tensors' directional gradients within {worst:.1e} (relative) of finite differences", names.len()))
}

/// The classification head on mean pooling: logits equal the classifier applied to the masked mean
/// of transformers' last hidden states, and the gradients agree with central finite differences
/// of the loss along a random direction (encoder, embeddings and head tensors).
pub async fn model_mean_pooling_head(gpu: &Gpu) -> CheckResult {
    let fx = fixture()?;
    let (b, t, c) = (fx.b, fx.t, fx.cfg.hidden_size);
    let mut m = fx.model(gpu, CLASSIFY)?;
    m.pooling = Pooling::Mean;
    m.params.set_trainable(gpu, |_| true)?;
    let batch = fx.batch(gpu, false, false, true)?;
    grads_step(gpu, &mut m, &batch, Mode::Eval).await?;
    let h = fx.f32("out.last_hidden_state")?;
    let mask = fx.ints("input.attention_mask")?;
    let w = fx.weights.tensors.get("classifier.weight").ok_or_else(|| Error::Check("fixture lacks classifier.weight".into()))?.to_f32();
    let bias = fx.weights.tensors.get("classifier.bias").ok_or_else(|| Error::Check("fixture lacks classifier.bias".into()))?.to_f32();
    let nl = bias.len();
    let mut want = Vec::new();
    for i in 0..b {
        let n = (0..t).filter(|&j| mask[i * t + j] != 0).count() as f32;
        let mean: Vec<f32> = (0..c).map(|k| (0..t).filter(|&j| mask[i * t + j] != 0).map(|j| h[(i * t + j) * c + k]).sum::<f32>() / n).collect();
        for l in 0..nl {
            want.push(bias[l] + (0..c).map(|k| w[l * c + k] * mean[k]).sum::<f32>());
        }
    }
    let d_logits = within("mean-pooled classification logits", &read(gpu, m.cls_logits().unwrap()).await?, &want, 1e-4)?;
    let names = ["classifier.weight", "encoder.layer.1.output.dense.weight", "encoder.layer.0.attention.self.query.weight", "embeddings.word_embeddings.weight"];
    let worst = directional_fd(gpu, &mut m, &batch, Mode::Eval, &names, 17, 1e-2, |l| l.cls).await?;
    // export: the encoder as BertModel plus the documented head file; reloading gives the same
    // probabilities and the mean pooling back
    use crate::io::export::{export_files, ModelCard, HEAD_FILE, HEAD_JSON};
    let labels: Vec<String> = (0..nl).map(|i| format!("class{i}")).collect();
    let tensors = m.params.read_all(gpu).await?;
    let vocab: String = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].iter().map(|s| s.to_string()).chain((5..fx.cfg.vocab_size).map(|i| format!("w{i}"))).collect::<Vec<_>>().join("\n");
    let card = ModelCard { pooling: Pooling::Mean, ..Default::default() };
    let files: BTreeMap<String, Vec<u8>> = export_files(&m.cfg, CLASSIFY, tensors, &labels, &[("vocab.txt".into(), vocab.into_bytes())], &card).into_iter().collect();
    let main = safetensors::parse(&files["model.safetensors"])?;
    if main.tensors.keys().any(|k| k.contains("classifier")) || !files.contains_key(HEAD_FILE) || !files.contains_key(HEAD_JSON) {
        return Err(Error::Check(format!("a mean-pooling export must keep the head out of model.safetensors, in {HEAD_FILE} + {HEAD_JSON}; files: {:?}", files.keys().collect::<Vec<_>>())));
    }
    if !String::from_utf8_lossy(&files["config.json"]).contains("\"BertModel\"") {
        return Err(Error::Check("a mean-pooling export's config.json must say BertModel".into()));
    }
    let want_p = m.classify(gpu, &batch).await?;
    let mut lm = crate::io::model_dir::load(gpu, &files, None, 5)?;
    if lm.model.pooling != Pooling::Mean || lm.labels != labels {
        return Err(Error::Check(format!("reloaded export: pooling {:?}, labels {:?}", lm.model.pooling, lm.labels)));
    }
    let got_p = lm.model.classify(gpu, &batch).await?;
    let d_export = max_abs_diff(&want_p.concat(), &got_p.concat());
    if d_export > 1e-6 {
        return Err(Error::Check(format!("the reloaded mean-pooling export's probabilities differ by {d_export:.2e}")));
    }
    Ok(format!("mean pooling: logits within {d_logits:.1e} of the masked mean of transformers' hidden states; 4 tensors' directional gradients within {worst:.1e} (relative) of finite differences; export (encoder + {HEAD_FILE}) reloads with probabilities within {d_export:.0e}"))
}

/// The causal model ("same body": BERT with causal attention and the masked-LM head on the next
/// token) against transformers' BertLMHeadModel: hidden states, next-token logits and loss,
/// layer-0 attention (zero above the diagonal), and every gradient.
pub async fn model_causal_matches_pytorch(gpu: &Gpu) -> CheckResult {
    let fx = causal_fixture()?;
    if !fx.cfg.is_decoder {
        return Err(Error::Check("the causal fixture's config is not a decoder".into()));
    }
    causal_parity(gpu, &fx, "BertLMHeadModel").await
}

/// GPT-2's body (pre-LN, Conv1D weights, gelu_new, ln_f, tied head) against transformers'
/// GPT2LMHeadModel, as the causal model is checked.
pub async fn model_gpt2_matches_pytorch(gpu: &Gpu) -> CheckResult {
    let fx = gpt2_fixture()?;
    if fx.cfg.body != crate::model::config::Body::Gpt2 || fx.cfg.intermediate_size != 64 || fx.cfg.gelu() != crate::kernels::gelu::Gelu::Tanh {
        return Err(Error::Check(format!("the GPT-2 fixture's config was read as {:?}", fx.cfg)));
    }
    causal_parity(gpu, &fx, "GPT2LMHeadModel").await
}

async fn causal_parity(gpu: &Gpu, fx: &Fixture, what: &str) -> CheckResult {
    let (t, v) = (fx.t, fx.cfg.vocab_size);
    let mut m = fx.model(gpu, LM)?;
    m.params.set_trainable(gpu, |_| true)?;
    let batch = fx.batch(gpu, true, false, false)?;
    let losses = run_forward(gpu, &mut m, &batch, Mode::Eval).await?;
    let d_h = within("last hidden state", &read(gpu, m.last_hidden().unwrap()).await?, &fx.f32("out.last_hidden_state")?, 1e-4)?;
    let all = fx.f32("out.mlm_logits")?;
    let want: Vec<f32> = batch.lm_row_ids.iter().flat_map(|&r| all[r as usize * v..(r as usize + 1) * v].to_vec()).collect();
    let d_lm = within("next-token logits", &read(gpu, m.lm_logits().unwrap()).await?, &want, 1e-4)?;
    let probs = read(gpu, m.attention_probs(0).unwrap()).await?;
    let d_att = within("layer-0 attention probabilities", &probs, &fx.f32("out.attentions0")?, 1e-5)?;
    if (0..probs.len() / t).any(|r| probs[r * t + r % t + 1..(r + 1) * t].iter().any(|&p| p != 0.0)) {
        return Err(Error::Check("a token attends to a later token".into()));
    }
    within("next-token loss", &[losses.lm], &fx.f32("out.mlm_loss")?, 1e-4)?;
    grads_step(gpu, &mut m, &batch, Mode::Eval).await?;
    let (n, worst) = compare_grads(gpu, fx, &m, "grad_lm").await?;
    let pooler = m.params.params.iter().filter(|p| p.name.starts_with("pooler.")).count();
    if n + pooler != m.params.params.len() {
        return Err(Error::Check(format!("only {n} of {} parameters had a reference gradient", m.params.params.len() - pooler)));
    }
    Ok(format!(
        "max |diff| vs transformers' {what}: hidden {d_h:.1e}, next-token logits {d_lm:.1e}, attention {d_att:.1e} (0 above the diagonal), loss {:.5}; all {n} gradient tensors within {worst:.1e} · max|ref|",
        losses.lm
    ))
}

pub async fn model_causal_adamw_10_steps_match_pytorch(_shared: &Gpu) -> CheckResult {
    adamw_10_steps(&causal_fixture()?, LM, (true, false, false)).await
}

/// Greedy decoding gives the tokens transformers' `generate(do_sample=False)` gives from the same
/// prompt; sampling (top-k 5, temperature 0.8) with a seed gives the same tokens twice, and another
/// seed other tokens.
pub async fn model_causal_generation_matches_transformers(gpu: &Gpu) -> CheckResult {
    greedy_and_sampled(gpu, &causal_fixture()?).await
}

pub async fn model_gpt2_generation_matches_transformers(gpu: &Gpu) -> CheckResult {
    greedy_and_sampled(gpu, &gpt2_fixture()?).await
}

async fn greedy_and_sampled(gpu: &Gpu, fx: &Fixture) -> CheckResult {
    use crate::train::generate::{generate_ids, GenerateConfig};
    let mut m = fx.model(gpu, LM)?;
    let prompt: Vec<u32> = fx.ints("gen.prompt")?.into_iter().map(|x| x as u32).collect();
    let want: Vec<u32> = fx.ints("gen.greedy")?.into_iter().map(|x| x as u32).collect();
    let greedy = GenerateConfig { max_new: want.len(), top_k: 1, temperature: 1.0, seed: 0 };
    let mut streamed = Vec::new();
    let (got, _) = generate_ids(gpu, &mut m, &prompt, None, &greedy, &mut |id| streamed.push(id)).await?;
    if got != want || streamed != want {
        return Err(Error::Check(format!("greedy decoding gave {got:?} (streamed {streamed:?}); transformers gave {want:?}")));
    }
    let sample = |seed| GenerateConfig { max_new: 12, top_k: 5, temperature: 0.8, seed };
    let a = generate_ids(gpu, &mut m, &prompt, None, &sample(7), &mut |_| {}).await?.0;
    let b = generate_ids(gpu, &mut m, &prompt, None, &sample(7), &mut |_| {}).await?.0;
    let c = generate_ids(gpu, &mut m, &prompt, None, &sample(8), &mut |_| {}).await?.0;
    if a != b || a == c {
        return Err(Error::Check(format!("sampling is not a function of the seed: seed 7 gave {a:?} then {b:?}; seed 8 gave {c:?}")));
    }
    Ok(format!("greedy: the {} tokens transformers generates ({want:?}), streamed one by one; top-k 5 sampling reproducible by seed", want.len()))
}

pub async fn model_gpt2_adamw_10_steps_match_pytorch(_shared: &Gpu) -> CheckResult {
    adamw_10_steps(&gpt2_fixture()?, LM, (true, false, false)).await
}

/// GPT-2 with dropout on at every site (embeddings, attention probabilities, both residual
/// branches): the gradients agree with finite differences of the loss under the same masks.
pub async fn model_gpt2_dropout_gradients_match_finite_differences(gpu: &Gpu) -> CheckResult {
    let fx = gpt2_fixture()?;
    let mut m = fx.model(gpu, LM)?;
    m.cfg.hidden_dropout_prob = 0.1;
    m.cfg.attention_probs_dropout_prob = 0.1;
    let batch = fx.batch(gpu, true, false, false)?;
    let (train, with, without) = gradients_with_dropout(gpu, &mut m, &batch).await?;
    let names = ["wte.weight", "wpe.weight", "h.0.ln_1.weight", "h.0.attn.c_attn.weight", "h.0.attn.c_proj.bias", "h.1.ln_2.bias", "h.1.mlp.c_fc.weight", "h.1.mlp.c_proj.weight", "ln_f.weight"];
    let worst = directional_fd(gpu, &mut m, &batch, train, &names, 29, 2e-2, |l| l.total()).await?;
    Ok(format!("loss {with:.4} with dropout, {without:.4} without; {} tensors' directional gradients within {worst:.1e} (relative) of finite differences", names.len()))
}

/// A GPT-2 exported as transformers' GPT2LMHeadModel (config.json with GPT2Config's names, tensors
/// under `transformer.`, Conv1D weights (in, out), no lm_head tensor) and loaded back as a model
/// directory gives identical logits.
pub async fn model_gpt2_export_round_trip(gpu: &Gpu) -> CheckResult {
    use crate::io::export::{export_files, ModelCard};
    let fx = gpt2_fixture()?;
    let mut m = fx.model(gpu, LM)?;
    let batch = fx.batch(gpu, true, false, false)?;
    run_forward(gpu, &mut m, &batch, Mode::Eval).await?;
    let logits = read(gpu, m.lm_logits().unwrap()).await?;
    let tensors = m.params.read_all(gpu).await?;
    let vocab: String = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].iter().map(|s| s.to_string()).chain((5..fx.cfg.vocab_size).map(|i| format!("w{i}"))).collect::<Vec<_>>().join("\n");
    let files: BTreeMap<String, Vec<u8>> = export_files(&m.cfg, LM, tensors, &[], &[("vocab.txt".into(), vocab.into_bytes())], &ModelCard::default()).into_iter().collect();
    let config: serde_json::Value = serde_json::from_slice(&files["config.json"])?;
    if config["model_type"] != "gpt2" || config["architectures"][0] != "GPT2LMHeadModel" || config["n_inner"] != 64 || config["activation_function"] != "gelu_new" {
        return Err(Error::Check(format!("config.json is not GPT2LMHeadModel's: {config}")));
    }
    let st = safetensors::parse(&files["model.safetensors"])?;
    for (name, shape) in [("transformer.h.0.attn.c_attn.weight", vec![32, 96]), ("transformer.h.1.mlp.c_fc.weight", vec![32, 64]), ("transformer.ln_f.bias", vec![32])] {
        if st.tensors.get(name).map(|t| &t.shape) != Some(&shape) {
            return Err(Error::Check(format!("the export lacks {name} {shape:?}; it has {:?}", st.tensors.keys().take(6).collect::<Vec<_>>())));
        }
    }
    let mut lm = crate::io::model_dir::load(gpu, &files, None, 5)?;
    run_forward(gpu, &mut lm.model, &batch, Mode::Eval).await?;
    let again = read(gpu, lm.model.lm_logits().unwrap()).await?;
    if logits[..batch.m * fx.cfg.vocab_size] != again[..batch.m * fx.cfg.vocab_size] {
        return Err(Error::Check(format!("the reloaded export's logits differ by {:.3e}", max_abs_diff(&logits, &again))));
    }
    Ok(format!("{} tensors as GPT2LMHeadModel (transformer.*, Conv1D (in, out), no lm_head), config.json as GPT2Config; reloaded: identical logits", st.tensors.len()))
}

/// Generation with the key-value cache against the full pass, both decoder bodies, the products
/// from the weights' buffers and from their packed copies (CPU adapters' path): at every step
/// until the positions run out, the cached path's next-token logits are the full forward's on the
/// whole text so far (within 1e-5), greedy continues with the full pass's argmax, once warm
/// each token costs one submit and one readback and creates no buffer and no bind group, and after
/// a training step the next generation runs from the new weights (packed again).
pub async fn model_cached_decoding_matches_full_pass(_shared: &Gpu) -> CheckResult {
    // a device of the check's own: its counters see no other check's work
    let gpu = &own_gpu().await?;
    cached_decoding_of(gpu, vec![(causal_fixture()?, "BERT body, causal".to_string()), (gpt2_fixture()?, "GPT-2 body".to_string())]).await
}

/// [`model_cached_decoding_matches_full_pass`] on the Llama body (grouped-query attention over the
/// cache, rotary at each position, Qwen3's per-head norms on each new row): in the family list, so
/// that the page's self-check (and its wasm) leaves the decoder fixtures out.
pub async fn model_decoders_cached_decoding_matches_full_pass(_shared: &Gpu) -> CheckResult {
    let gpu = &own_gpu().await?;
    let mut fixtures = Vec::new();
    for f in &DECODER_FIXTURES {
        let fx = family_fixture(f, false)?;
        let what = format!("{} (Llama body)", fx.cfg.family.display());
        fixtures.push((fx, what));
    }
    cached_decoding_of(gpu, fixtures).await
}

async fn cached_decoding_of(gpu: &Gpu, fixtures: Vec<(Fixture, String)>) -> CheckResult {
    let mut out = Vec::new();
    for (fx, what) in fixtures {
        for packed in [false, true] {
            let how = if packed { "weights packed in textures" } else { "weights in their buffers" };
            out.push(format!("{what}, {how}: {}", cached_vs_full(gpu, &fx, packed).await.map_err(|e| Error::Check(format!("{what}, {how}: {e}")))?));
        }
    }
    Ok(out.join("; "))
}

/// The full forward's logits for the token after `ids` (the first V of its logits buffer).
async fn full_pass_logits(gpu: &Gpu, m: &mut Model, ids: &[u32]) -> Result<Vec<f32>> {
    let t = ids.len();
    let mut labels = vec![-100i32; t];
    labels[t - 1] = 0;
    let batch = Batch::new(gpu, &m.cfg, 1, t, ids, &vec![0; t], &vec![1; t], Some(&labels), None, None)?;
    run_forward(gpu, m, &batch, Mode::Eval).await?;
    read(gpu, m.lm_logits().unwrap()).await
}

async fn cached_vs_full(gpu: &Gpu, fx: &Fixture, packed: bool) -> Result<String> {
    use crate::kernels::sample::Draw;
    let mut m = fx.model(gpu, LM)?;
    m.set_packed_decoding(Some(packed));
    let (v, positions) = (fx.cfg.vocab_size, fx.cfg.max_position_embeddings);
    let prompt: Vec<u32> = fx.ints("gen.prompt").or_else(|_| fx.ints("gen.prompt.0"))?.into_iter().map(|x| x as u32).collect();
    let mut ids = prompt.clone();
    let greedy = Draw { k: 1, top_k: 1, temperature: 1.0, u: 0.0 };
    let mut next = m.decode_start(gpu, &ids, positions, greedy).await?;
    if m.decodes_packed() != packed {
        return Err(Error::Check(format!("asked for packed={packed}, decoding ran packed={}", m.decodes_packed())));
    }
    let (mut worst, mut steps) = (0.0f32, 0);
    loop {
        let id = next.read(gpu).await?.0.ok_or_else(|| Error::Check("no token".into()))?;
        let cached = read(gpu, m.decode_logits().unwrap()).await?;
        let t = ids.len();
        let full = full_pass_logits(gpu, &mut m, &ids).await?;
        worst = worst.max(within(&format!("cached logits after {t} tokens"), &cached, &full[..v], 1e-5)?);
        let argmax = (0..v).max_by(|&a, &b| full[a].total_cmp(&full[b]).then(b.cmp(&a))).unwrap() as u32;
        if id != argmax {
            return Err(Error::Check(format!("after {t} tokens the cached path chose {id}, the full pass's argmax is {argmax}")));
        }
        ids.push(id);
        steps += 1;
        if ids.len() >= positions {
            break;
        }
        next = m.decode_next(gpu, greedy).await?;
    }
    // generation alone, as generate_ids runs it: after 4 tokens to warm up, what each token costs
    let mut next = m.decode_start(gpu, &prompt, positions, greedy).await?;
    let mut before = None;
    let mut tokens = 0u64;
    for i in 0..positions - prompt.len() - 1 {
        next.read(gpu).await?;
        if i == 4 {
            before = Some(gpu.counters());
        }
        tokens += before.is_some() as u64;
        next = m.decode_next(gpu, greedy).await?;
    }
    next.read(gpu).await?;
    let (a, b) = (before.ok_or_else(|| Error::Check("too few positions to warm up".into()))?, gpu.counters());
    let (submits, readbacks) = (b.submits - a.submits, b.readbacks - a.readbacks);
    let (buffers, bind_groups) = (b.buffers_created - a.buffers_created, b.bind_groups_created - a.bind_groups_created);
    if tokens < 10 || submits != tokens || readbacks != tokens || buffers != 0 || bind_groups != 0 {
        return Err(Error::Check(format!("{tokens} warm tokens took {submits} submits and {readbacks} readbacks and created {buffers} buffers and {bind_groups} bind groups (want one submit and one readback each, nothing created)")));
    }
    // a training step changes the weights: the next generation runs from the new ones (packed
    // again). The prefill's logits come from the full forward: compare a decoded token's.
    let first = m.decode_start(gpu, &prompt, positions, greedy).await?.read(gpu).await?.0.ok_or_else(|| Error::Check("no token".into()))?;
    m.decode_next(gpu, greedy).await?.read(gpu).await?;
    let old = read(gpu, m.decode_logits().unwrap()).await?;
    m.params.set_trainable(gpu, |_| true)?;
    let t = prompt.len();
    let labels: Vec<i32> = prompt.iter().map(|&x| x as i32).collect();
    let batch = Batch::new(gpu, &m.cfg, 1, t, &prompt, &vec![0; t], &vec![1; t], Some(&labels), None, None)?;
    let opt = crate::kernels::adamw::AdamW { lr: 1e-2, ..Default::default() };
    let mut step = gpu.begin_step("train");
    m.zero_grads(&mut step);
    m.forward(gpu, &mut step, &batch, Mode::Eval)?;
    m.backward(&mut step, &batch, Mode::Eval)?;
    m.optimizer_step(gpu, &mut step, &opt, opt.lr, 0.0)?;
    step.submit().await?;
    let id = m.decode_start(gpu, &prompt, positions, greedy).await?.read(gpu).await?.0.ok_or_else(|| Error::Check("no token".into()))?;
    m.decode_next(gpu, greedy).await?.read(gpu).await?;
    let cached = read(gpu, m.decode_logits().unwrap()).await?;
    let text: Vec<u32> = prompt.iter().copied().chain([id]).collect();
    let full = full_pass_logits(gpu, &mut m, &text).await?;
    let moved = max_abs_diff(&old, &cached);
    if id == first && moved < 1e-3 {
        return Err(Error::Check(format!("a training step moved a decoded token's logits by {moved:.1e} only")));
    }
    worst = worst.max(within("cached logits after a training step", &cached, &full[..v], 1e-5)?);
    Ok(format!("{steps} tokens to the last position and a prompt after a training step: logits within {worst:.1e} of the full pass, its greedy choices; {tokens} warm tokens: 1 submit and 1 readback each, 0 buffers and 0 bind groups created"))
}

/// The word embedding bound in shards (of 256 rows for the BERT fixture's 2,003, 64 rows for the
/// decoders' 211 and 300, as a table over the binding limit is on a real device): the lookup, the
/// tied LM head's logits and every gradient, the word embedding's included, against transformers,
/// and greedy generation (the cached path's sharded lookup and head) gives transformers' tokens.
pub async fn model_word_embedding_in_shards_matches_pytorch(gpu: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for (fx, heads, prefix, rows, what) in [(fixture()?, PRETRAIN, "grad_pt", 256, "BERT (MLM + SOP)"), (causal_fixture()?, LM, "grad_lm", 64, "BERT causal"), (gpt2_fixture()?, LM, "grad_lm", 64, "GPT-2")] {
        let c = fx.cfg.hidden_size;
        let v = fx.cfg.vocab_size;
        let mut m = fx.model(gpu, heads)?;
        m.limit_word_shards((rows * c * 4) as u64);
        let shards = m.word_shards(gpu).len();
        if shards != v.div_ceil(rows) {
            return Err(Error::Check(format!("{what}: {v} rows in shards of {rows} made {shards} shards")));
        }
        m.params.set_trainable(gpu, |_| true)?;
        let batch = fx.batch(gpu, true, heads.sop, false)?;
        run_forward(gpu, &mut m, &batch, Mode::Eval).await?;
        let all = fx.f32("out.mlm_logits")?;
        let want: Vec<f32> = batch.lm_row_ids.iter().flat_map(|&r| all[r as usize * v..(r as usize + 1) * v].to_vec()).collect();
        let d = within(&format!("{what}: logits from {shards} shards"), &read(gpu, m.lm_logits().unwrap()).await?, &want, 1e-4)?;
        grads_step(gpu, &mut m, &batch, Mode::Eval).await?;
        let (n, worst) = compare_grads(gpu, &fx, &m, prefix).await?;
        let mut line = format!("{what}: {shards} shards, logits within {d:.1e}, {n} gradients within {worst:.1e} · max|ref|");
        if fx.cfg.is_decoder {
            use crate::train::generate::{generate_ids, GenerateConfig};
            let prompt: Vec<u32> = fx.ints("gen.prompt")?.into_iter().map(|x| x as u32).collect();
            let want: Vec<u32> = fx.ints("gen.greedy")?.into_iter().map(|x| x as u32).collect();
            let greedy = GenerateConfig { max_new: want.len(), top_k: 1, temperature: 1.0, seed: 0 };
            let got = generate_ids(gpu, &mut m, &prompt, None, &greedy, &mut |_| {}).await?.0;
            if got != want {
                return Err(Error::Check(format!("{what} in {shards} shards: greedy decoding gave {got:?}; transformers gave {want:?}")));
            }
            line.push_str(", transformers' greedy tokens");
        }
        out.push(line);
    }
    Ok(out.join("; "))
}

/// GPT's step 2 against PyTorch, both causal bodies: the classifier on each text's last token
/// (GPT2ForSequenceClassification's `score`, no bias; the GPT-style BERT's `classifier`) gives
/// transformers' logits and loss, and every parameter's gradient (the causal BERT's pooler, which
/// nothing reads, has none).
pub async fn model_last_token_classifier_matches_pytorch(gpu: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for (fx, what) in last_token_fixtures()? {
        let mut m = fx.model(gpu, CLASSIFY)?;
        if m.pooling != Pooling::Last {
            return Err(Error::Check(format!("{what}: a causal model's classifier reads {:?}, not the last token", m.pooling)));
        }
        m.params.set_trainable(gpu, |_| true)?;
        let batch = fx.batch(gpu, false, false, true)?;
        let losses = run_forward(gpu, &mut m, &batch, Mode::Eval).await?;
        let d_logits = within(&format!("{what}: logits"), &read(gpu, m.cls_logits().unwrap()).await?, &fx.f32("out.cls_logits")?, 1e-5)?;
        within(&format!("{what}: loss"), &[losses.cls], &fx.f32("out.cls_loss")?, 1e-5)?;
        grads_step(gpu, &mut m, &batch, Mode::Eval).await?;
        let (n, worst) = compare_grads(gpu, &fx, &m, "grad_cls").await?;
        let unread = m.params.params.iter().filter(|p| p.name.starts_with("pooler.")).count();
        if n + unread != m.params.params.len() {
            return Err(Error::Check(format!("{what}: only {n} of {} parameters had a reference gradient", m.params.params.len() - unread)));
        }
        out.push(format!("{what}: logits within {d_logits:.1e}, loss {:.5}, all {n} gradient tensors within {worst:.1e} · max|ref|", losses.cls));
    }
    Ok(out.join("; "))
}

/// 10 AdamW steps of the last-token classifiers (both bodies, everything trainable) against PyTorch's.
pub async fn model_last_token_classifier_adamw_10_steps_match_pytorch(_shared: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for (fx, what) in last_token_fixtures()? {
        out.push(format!("{what}: {}", adamw_10_steps(&fx, CLASSIFY, (false, false, true)).await?));
    }
    Ok(out.join("; "))
}

/// peft's LoRA against BERT Lab's, on a BERT and a GPT-2 classifier: logits, loss, and the
/// gradients of every adapter's A and B and of the head; the frozen weights get none.
pub async fn model_lora_matches_peft(gpu: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for (fx, what) in lora_fixtures()? {
        let mut m = fx.model(gpu, CLASSIFY)?;
        m.params.set_trainable(gpu, lora_trains)?;
        let batch = fx.batch(gpu, false, false, true)?;
        let losses = run_forward(gpu, &mut m, &batch, Mode::Eval).await?;
        let d_logits = within(&format!("{what}: logits"), &read(gpu, m.cls_logits().unwrap()).await?, &fx.f32("out.cls_logits")?, 1e-5)?;
        within(&format!("{what}: loss"), &[losses.cls], &fx.f32("out.cls_loss")?, 1e-5)?;
        grads_step(gpu, &mut m, &batch, Mode::Eval).await?;
        let (n, worst) = compare_grads(gpu, &fx, &m, "grad_cls").await?;
        let trained = m.params.params.iter().filter(|p| lora_trains(p)).count();
        let adapters = m.params.params.iter().filter(|p| p.part == crate::model::params::Part::Lora).count();
        if n != trained || adapters == 0 {
            return Err(Error::Check(format!("{what}: {n} gradients compared, {trained} tensors train ({adapters} adapters)")));
        }
        if let Some(p) = m.params.params.iter().find(|p| !lora_trains(p) && p.grad.is_some()) {
            return Err(Error::Check(format!("{what}: the frozen {} has a gradient buffer", p.name)));
        }
        out.push(format!("{what}: logits within {d_logits:.1e}, loss {:.5}, {n} gradient tensors ({adapters} A and B, the head) within {worst:.1e} · max|ref|", losses.cls));
    }
    Ok(out.join("; "))
}

/// 10 AdamW steps over the adapters and the head against peft's; every frozen weight stays put.
pub async fn model_lora_adamw_10_steps_match_peft(_shared: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for (fx, what) in lora_fixtures()? {
        out.push(format!("{what}: {}", adamw_10_steps_of(&fx, CLASSIFY, (false, false, true), lora_trains).await?));
    }
    Ok(out.join("; "))
}

/// LoRA's input dropout (lora_dropout 0.3; the fixture's other sites are off): the adapters' and
/// the head's gradients agree with finite differences of the loss under the same masks, through two
/// layers (the upper adapters' dropout lies on the lower adapters' gradient path).
pub async fn model_lora_dropout_gradients_match_finite_differences(gpu: &Gpu) -> CheckResult {
    let [(mut fx, _), _] = lora_fixtures()?;
    if let Some(l) = fx.cfg.lora.as_mut() {
        l.dropout = 0.3;
    }
    let mut m = fx.model(gpu, CLASSIFY)?;
    let batch = fx.batch(gpu, false, false, true)?;
    let (train, with, without) = gradients_with_dropout(gpu, &mut m, &batch).await?;
    let names = [
        "encoder.layer.0.attention.self.query.lora_A.weight",
        "encoder.layer.0.attention.self.value.lora_B.weight",
        "encoder.layer.1.attention.self.query.lora_B.weight",
        "encoder.layer.1.attention.self.value.lora_A.weight",
        "classifier.weight",
        // below the upper adapters: their gradient crosses those adapters' dropout
        "encoder.layer.0.output.dense.weight",
        "embeddings.LayerNorm.weight",
    ];
    let worst = directional_fd(gpu, &mut m, &batch, train, &names, 29, 5e-2, |l| l.cls).await?;
    Ok(format!("loss {with:.4} with the adapters' input dropout, {without:.4} without; {} tensors' directional gradients within {worst:.1e} (relative) of finite differences", names.len()))
}


fn family_fixture(f: &FamilyFixture, lora: bool) -> Result<Fixture> {
    let mut fx = fixture_of(f.config, &[f.weights], if lora { f.lora_reference } else { f.reference })?;
    if fx.cfg.family.model_type() != f.family {
        return Err(Error::Check(format!("{}: config.json read as {}", f.family, fx.cfg.family.model_type())));
    }
    if lora {
        let meta = |k: &str| fx.r.metadata.get(k).cloned().ok_or_else(|| Error::Check(format!("fixture metadata lacks {k}")));
        let r: usize = meta("lora_r")?.parse().map_err(|_| Error::Check("lora_r".into()))?;
        let alpha: f32 = meta("lora_alpha")?.parse().map_err(|_| Error::Check("lora_alpha".into()))?;
        let spec = crate::model::config::LoraSpec { alpha, ..crate::model::config::LoraSpec::new(r, fx.cfg.family) };
        // BERT Lab's default targets for the family are the ones the reference adapted
        let targets: Vec<String> = serde_json::from_str(&meta("lora_targets")?)?;
        let mut ours = spec.targets.clone();
        ours.sort();
        if ours != targets {
            return Err(Error::Check(format!("{}: BERT Lab's default LoRA targets {ours:?}, peft's run adapted {targets:?}", f.family)));
        }
        fx.cfg.lora = Some(spec);
        fx.cfg.validate()?;
    }
    Ok(fx)
}

/// Every `prefix.*` gradient of the reference against ours (each reference tensor must be one of
/// the model's, under the family's name): max |diff| <= 1e-4 · max|ref| per tensor (floored at 1e-5
/// of the model's largest); a key bias's, zero in exact arithmetic, under 1e-6 of the largest.
async fn family_grads(gpu: &Gpu, fx: &Fixture, model: &Model, prefix: &str, what: &str) -> Result<(usize, f32)> {
    let want_names: Vec<&String> = fx.r.tensors.keys().filter(|k| k.starts_with(&format!("{prefix}."))).collect();
    let mut global = 0.0f32;
    for k in &want_names {
        global = fx.f32(k)?.iter().fold(global, |m, v| m.max(v.abs()));
    }
    let mut worst = 0.0f32;
    for k in &want_names {
        let hf = &k[prefix.len() + 1..];
        // one name may be two of ours (ModernBERT's `head`: the masked-LM head's or the classifier's)
        let named: Vec<&crate::model::params::Param> = model.params.params.iter().filter(|p| model.cfg.family.hf_name(&p.name) == hf).collect();
        let p = named
            .iter()
            .find(|p| named.len() == 1 || (prefix == "grad_lm") != (p.part == crate::model::params::Part::Classifier))
            .ok_or_else(|| Error::Check(format!("{what}: transformers' {hf} is none of BERT Lab's tensors")))?;
        let want = fx.f32(k)?;
        let got = read(gpu, p.grad.as_ref().ok_or_else(|| Error::Check(format!("{what}: {hf} has no gradient")))?).await?;
        // a key bias's gradient is zero in exact arithmetic (softmax ignores a constant added to a
        // row): both sides hold rounding noise, so ours must be noise too (under 1e-6 of the
        // model's largest gradient), not equal to the reference's noise
        if p.name.ends_with(".attention.self.key.bias") {
            let ours = got[..want.len()].iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if !(ours <= 1e-6 * global) {
                return Err(Error::Check(format!("{what}: gradient of {hf}, zero in exact arithmetic, is {ours:.3e} > 1e-6 · the largest gradient")));
            }
            continue;
        }
        // the scale is floored at 1e-5 of the model's largest gradient
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-5 * global);
        let d = max_abs_diff(&got[..want.len()], &want);
        if !(d <= 1e-4 * scale) {
            return Err(Error::Check(format!("{what}: gradient of {hf}: max |diff| {d:.3e} > 1e-4 · max|ref| = {:.3e}", 1e-4 * scale)));
        }
        worst = worst.max(if scale > 0.0 { d / scale } else { 0.0 });
    }
    Ok((want_names.len(), worst))
}

/// DistilBERT, RoBERTa, XLM-RoBERTa and ELECTRA against transformers: the masked-LM logits (at the
/// masked rows), the last hidden state, layer 0's attention and the loss within 1e-5, every
/// gradient of the masked-LM loss within 1e-4 of its largest reference value; the same for the
/// family's sequence classifier (its own head: RoBERTa's dense + out_proj, DistilBERT's
/// pre_classifier with ReLU, ELECTRA's with GELU).
pub async fn model_families_match_transformers(gpu: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for f in &FAMILY_FIXTURES {
        let fx = family_fixture(f, false)?;
        let v = fx.cfg.vocab_size;
        let what = fx.cfg.family.display();
        // ALBERT's reference is AlbertForPreTraining: masked LM and sentence order together
        let sop = fx.r.tensors.contains_key("input.sop_labels");
        let mut m = fx.model(gpu, if sop { PRETRAIN } else { LM })?;
        m.params.set_trainable(gpu, |_| true)?;
        let batch = fx.batch(gpu, true, sop, false)?;
        let losses = run_forward(gpu, &mut m, &batch, Mode::Eval).await?;
        if sop {
            within(&format!("{what}: sentence-order logits"), &read(gpu, m.sop_logits().unwrap()).await?, &fx.f32("out.sop_logits")?, 1e-5)?;
            within(&format!("{what}: sentence-order loss"), &[losses.sop], &fx.f32("out.sop_loss")?, 1e-5)?;
        }
        let all = fx.f32("out.mlm_logits")?;
        let want: Vec<f32> = batch.lm_row_ids.iter().flat_map(|&r| all[r as usize * v..(r as usize + 1) * v].to_vec()).collect();
        // at the texts' tokens: a padding position's own state is nobody's input (ModernBERT's, whose
        // local window sees only padding, is transformers' average over masked keys, BERT Lab's 0)
        let keep: Vec<bool> = fx.ints("input.attention_mask")?.iter().flat_map(|&m| std::iter::repeat_n(m != 0, fx.cfg.hidden_size)).collect();
        let real = |v: Vec<f32>| -> Vec<f32> { v.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(x, _)| x).collect() };
        let d_h = within(&format!("{what}: last hidden state"), &real(read(gpu, m.last_hidden().unwrap()).await?), &real(fx.f32("out.last_hidden_state")?), 1e-5)?;
        let d_mlm = within(&format!("{what}: masked-LM logits"), &read(gpu, m.lm_logits().unwrap()).await?, &want, 1e-5)?;
        within(&format!("{what}: layer-0 attention"), &read(gpu, m.attention_probs(0).unwrap()).await?, &fx.f32("out.attentions0")?, 1e-5)?;
        within(&format!("{what}: masked-LM loss"), &[losses.lm], &fx.f32("out.mlm_loss")?, 1e-5)?;
        grads_step(gpu, &mut m, &batch, Mode::Eval).await?;
        let (n_lm, w_lm) = family_grads(gpu, &fx, &m, "grad_lm", &format!("{what} masked LM")).await?;
        let mut c = fx.model(gpu, CLASSIFY)?;
        c.params.set_trainable(gpu, |_| true)?;
        let cb = fx.batch(gpu, false, false, true)?;
        let cl = run_forward(gpu, &mut c, &cb, Mode::Eval).await?;
        let d_cls = within(&format!("{what}: classifier logits"), &read(gpu, c.cls_logits().unwrap()).await?, &fx.f32("out.cls_logits")?, 1e-5)?;
        within(&format!("{what}: classifier loss"), &[cl.cls], &fx.f32("out.cls_loss")?, 1e-5)?;
        grads_step(gpu, &mut c, &cb, Mode::Eval).await?;
        let (n_cls, w_cls) = family_grads(gpu, &fx, &c, "grad_cls", &format!("{what} classifier")).await?;
        let what = if fx.cfg.embedding_size.is_some() { format!("{what} (embeddings {} wide)", fx.cfg.embed_width()) } else { what.to_string() };
        out.push(format!("{what}: MLM{} logits {d_mlm:.1e}, hidden {d_h:.1e}, {n_lm} gradients within {w_lm:.1e}·max; classifier logits {d_cls:.1e}, {n_cls} gradients within {w_cls:.1e}·max", if sop { " + SOP" } else { "" }));
    }
    Ok(out.join("; "))
}

/// Each family's classifier trained whole for 10 AdamW steps: losses within 1e-5 of transformers',
/// final weights within 1e-4.
pub async fn model_families_adamw_10_steps_match_transformers(_shared: &Gpu) -> CheckResult {
    fixtures_adamw_10_steps(&FAMILY_FIXTURES, false, CLASSIFY, (false, false, true)).await
}

/// 10 AdamW steps on each of the fixtures `list` (with `lora`: their LoRA references, the adapters
/// and the head training; else everything), losses within 1e-5, final weights within 1e-4.
async fn fixtures_adamw_10_steps(list: &[FamilyFixture], lora: bool, heads: Heads, targets: Targets) -> CheckResult {
    let mut out = Vec::new();
    for f in list {
        let fx = family_fixture(f, lora)?;
        let what = format!("{}{}", fx.cfg.family.display(), if lora { " + LoRA" } else { "" });
        let trains: fn(&crate::model::params::Param) -> bool = if lora { lora_trains } else { |_| true };
        out.push(format!("{what}: {}", adamw_10_steps_within(&fx, heads, targets, trains, 1e-5).await.map_err(|e| Error::Check(format!("{what}: {e}")))?));
    }
    Ok(out.join("; "))
}

/// peft's LoRA on each family's classifier: logits within 1e-5, the adapters' and the head's
/// gradients within 1e-4 of their largest reference value, nothing else with a gradient.
pub async fn model_families_lora_matches_peft(gpu: &Gpu) -> CheckResult {
    lora_matches_peft(gpu, &FAMILY_FIXTURES).await
}

/// [`model_families_lora_matches_peft`] on the fixtures `list`.
async fn lora_matches_peft(gpu: &Gpu, list: &[FamilyFixture]) -> CheckResult {
    let mut out = Vec::new();
    for f in list {
        let fx = family_fixture(f, true)?;
        let what = fx.cfg.family.display();
        let mut m = fx.model(gpu, CLASSIFY)?;
        m.params.set_trainable(gpu, lora_trains)?;
        let batch = fx.batch(gpu, false, false, true)?;
        run_forward(gpu, &mut m, &batch, Mode::Eval).await?;
        let d = within(&format!("{what} + LoRA: logits"), &read(gpu, m.cls_logits().unwrap()).await?, &fx.f32("out.cls_logits")?, 1e-5)?;
        grads_step(gpu, &mut m, &batch, Mode::Eval).await?;
        let (n, worst) = family_grads(gpu, &fx, &m, "grad_cls", &format!("{what} + LoRA")).await?;
        let trained = m.params.params.iter().filter(|p| lora_trains(p)).count();
        if n != trained {
            return Err(Error::Check(format!("{what} + LoRA: peft trains {n} tensors, BERT Lab {trained}")));
        }
        out.push(format!("{what}: logits {d:.1e}, {n} gradients within {worst:.1e}·max"));
    }
    Ok(out.join("; "))
}

/// 10 AdamW steps over each family's adapters and head against peft's.
pub async fn model_families_lora_adamw_10_steps_match_peft(_shared: &Gpu) -> CheckResult {
    fixtures_adamw_10_steps(&FAMILY_FIXTURES, true, CLASSIFY, (false, false, true)).await
}

/// Each family's tokenizer.json (WordPiece with BERT's template, byte-level BPE with RoBERTa's
/// post-processor, Unigram with XLM-R's template) frames texts and pairs with the ids transformers'
/// AutoTokenizer gives, and names its own mask token.
pub async fn model_family_tokenizers_frame_as_transformers(_gpu: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for f in &FAMILY_FIXTURES {
        let r = safetensors::parse(f.reference)?;
        let tok = crate::text::tokenizer::Tokenizer::from_tokenizer_json(f.tokenizer)?;
        let meta = |k: &str| r.metadata.get(k).cloned().ok_or_else(|| Error::Check(format!("fixture metadata lacks {k}")));
        let texts: Vec<String> = serde_json::from_str(&meta("texts")?)?;
        let pairs: Vec<(String, String)> = serde_json::from_str(&meta("pairs")?)?;
        let want = |k: &str| -> Result<Vec<u32>> { Ok(r.tensors.get(k).ok_or_else(|| Error::Check(format!("fixture lacks {k}")))?.to_i64().into_iter().map(|x| x as u32).collect()) };
        for (i, t) in texts.iter().enumerate() {
            let got = tok.encode(t, None, 512)?.ids;
            if got != want(&format!("tok.single.{i}"))? {
                return Err(Error::Check(format!("{}: {t:?} framed as {got:?}, transformers {:?}", f.family, want(&format!("tok.single.{i}"))?)));
            }
        }
        for (i, (a, b)) in pairs.iter().enumerate() {
            let e = tok.encode(a, Some(b), 512)?;
            if e.ids != want(&format!("tok.pair.{i}"))? {
                return Err(Error::Check(format!("{}: the pair ({a:?}, {b:?}) framed as {:?}, transformers {:?}", f.family, e.ids, want(&format!("tok.pair.{i}"))?)));
            }
            if let Some(types) = r.tensors.get(&format!("tok.pair_types.{i}")) {
                let tw: Vec<u32> = types.to_i64().into_iter().map(|x| x as u32).collect();
                if e.type_ids != tw {
                    return Err(Error::Check(format!("{}: the pair's token types {:?}, transformers {tw:?}", f.family, e.type_ids)));
                }
            }
        }
        if vec![tok.mask] != want("tok.mask_id")? {
            return Err(Error::Check(format!("{}: mask token {} ({}), transformers' is {:?}", f.family, tok.mask, tok.mask_token(), want("tok.mask_id")?)));
        }
        // "[MASK]" typed in a text is the model's own mask token
        let typed = tok.encode("the [MASK] fell", None, 64)?;
        if !typed.ids.contains(&tok.mask) {
            return Err(Error::Check(format!("{}: \"[MASK]\" in a text did not become its mask token {}", f.family, tok.mask_token())));
        }
        out.push(format!("{}: {} texts and {} pairs as AutoTokenizer, mask {}", f.family, texts.len(), pairs.len(), tok.mask_token()));
    }
    Ok(out.join("; "))
}

/// The Llama-shaped decoders against transformers: next-word logits (at the predicted rows), the
/// last hidden state (after the final norm, at the texts' tokens), layer 0's attention and the
/// loss within 1e-5, every gradient of the next-word loss within 1e-4 of its largest reference
/// value; the same for the last-token classifier (XForSequenceClassification's `score` on the last
/// token that is not padding).
pub async fn model_decoders_match_transformers(gpu: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for f in &DECODER_FIXTURES {
        let fx = family_fixture(f, false)?;
        let v = fx.cfg.vocab_size;
        let what = fx.cfg.family.display();
        let mut m = fx.model(gpu, LM)?;
        m.params.set_trainable(gpu, |_| true)?;
        let batch = fx.batch(gpu, true, false, false)?;
        let losses = run_forward(gpu, &mut m, &batch, Mode::Eval).await?;
        let all = fx.f32("out.mlm_logits")?;
        let want: Vec<f32> = batch.lm_row_ids.iter().flat_map(|&r| all[r as usize * v..(r as usize + 1) * v].to_vec()).collect();
        let keep: Vec<bool> = fx.ints("input.attention_mask")?.iter().flat_map(|&m| std::iter::repeat_n(m != 0, fx.cfg.hidden_size)).collect();
        let real = |v: Vec<f32>| -> Vec<f32> { v.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(x, _)| x).collect() };
        let d_h = within(&format!("{what}: last hidden state"), &real(read(gpu, m.last_hidden().unwrap()).await?), &real(fx.f32("out.last_hidden_state")?), 1e-5)?;
        let d_lm = within(&format!("{what}: next-word logits"), &read(gpu, m.lm_logits().unwrap()).await?, &want, 1e-5)?;
        within(&format!("{what}: layer-0 attention"), &read(gpu, m.attention_probs(0).unwrap()).await?, &fx.f32("out.attentions0")?, 1e-5)?;
        within(&format!("{what}: next-word loss"), &[losses.lm], &fx.f32("out.mlm_loss")?, 1e-5)?;
        grads_step(gpu, &mut m, &batch, Mode::Eval).await?;
        let (n_lm, w_lm) = family_grads(gpu, &fx, &m, "grad_lm", &format!("{what} next word")).await?;
        let mut c = fx.model(gpu, CLASSIFY)?;
        if c.pooling != Pooling::Last {
            return Err(Error::Check(format!("{what}: the classifier reads {:?}, not the last token", c.pooling)));
        }
        c.params.set_trainable(gpu, |_| true)?;
        let cb = fx.batch(gpu, false, false, true)?;
        let cl = run_forward(gpu, &mut c, &cb, Mode::Eval).await?;
        let d_cls = within(&format!("{what}: classifier logits"), &read(gpu, c.cls_logits().unwrap()).await?, &fx.f32("out.cls_logits")?, 1e-5)?;
        within(&format!("{what}: classifier loss"), &[cl.cls], &fx.f32("out.cls_loss")?, 1e-5)?;
        grads_step(gpu, &mut c, &cb, Mode::Eval).await?;
        let (n_cls, w_cls) = family_grads(gpu, &fx, &c, "grad_cls", &format!("{what} classifier")).await?;
        if n_lm != m.params.params.len() || n_cls != c.params.params.len() {
            return Err(Error::Check(format!("{what}: {n_lm} of {} and {n_cls} of {} tensors had a reference gradient", m.params.params.len(), c.params.params.len())));
        }
        out.push(format!("{what}: next-word logits {d_lm:.1e}, hidden {d_h:.1e}, {n_lm} gradients within {w_lm:.1e}·max; classifier logits {d_cls:.1e}, {n_cls} gradients within {w_cls:.1e}·max"));
    }
    Ok(out.join("; "))
}

/// Greedy decoding (the key-value cache, one submit a token) gives transformers' `generate` tokens,
/// 12 after each of three prompts framed by the model's own tokenizer.
pub async fn model_decoders_generate_as_transformers(gpu: &Gpu) -> CheckResult {
    use crate::train::generate::{generate_ids, GenerateConfig};
    let mut out = Vec::new();
    for f in &DECODER_FIXTURES {
        let fx = family_fixture(f, false)?;
        let what = fx.cfg.family.display();
        let mut m = fx.model(gpu, LM)?;
        let mut n = 0;
        while fx.r.tensors.contains_key(&format!("gen.prompt.{n}")) {
            let prompt: Vec<u32> = fx.ints(&format!("gen.prompt.{n}"))?.into_iter().map(|x| x as u32).collect();
            let want: Vec<u32> = fx.ints(&format!("gen.greedy.{n}"))?.into_iter().map(|x| x as u32).collect();
            let greedy = GenerateConfig { max_new: want.len(), top_k: 1, temperature: 1.0, seed: 0 };
            let (got, _) = generate_ids(gpu, &mut m, &prompt, None, &greedy, &mut |_| {}).await?;
            if got != want {
                return Err(Error::Check(format!("{what}: greedy decoding after {prompt:?} gave {got:?}; transformers gave {want:?}")));
            }
            n += 1;
        }
        if n < 3 {
            return Err(Error::Check(format!("{what}: the fixture has {n} prompts")));
        }
        out.push(format!("{what}: {n} prompts x 12 tokens as transformers"));
    }
    Ok(out.join("; "))
}

/// Next-word training of the whole model, 10 AdamW steps: losses within 1e-5 of transformers',
/// final weights within 1e-4.
pub async fn model_decoders_adamw_10_steps_match_transformers(_shared: &Gpu) -> CheckResult {
    fixtures_adamw_10_steps(&DECODER_FIXTURES, false, LM, (true, false, false)).await
}

/// peft's LoRA (q_proj, v_proj) on each decoder's classifier: logits within 1e-5, the adapters' and
/// score's gradients within 1e-4 of their largest reference value, nothing else with a gradient.
pub async fn model_decoders_lora_matches_peft(gpu: &Gpu) -> CheckResult {
    lora_matches_peft(gpu, &DECODER_FIXTURES).await
}

/// 10 AdamW steps over each decoder's adapters and score against peft's.
pub async fn model_decoders_lora_adamw_10_steps_match_peft(_shared: &Gpu) -> CheckResult {
    fixtures_adamw_10_steps(&DECODER_FIXTURES, true, CLASSIFY, (false, false, true)).await
}

/// The Llama-shaped decoders' files as the hub keeps them: the weights in bf16 and f16 (each value
/// the rounding of the original), split into shards with model.safetensors.index.json (the same
/// model as from one file), a missing shard named; the tokenizer frames each prompt as
/// AutoTokenizer does (Llama 3's BOS, nothing for Qwen) and generation ends at the end tokens
/// generation_config.json names.
pub async fn model_decoders_load_as_the_hub_stores_them(gpu: &Gpu) -> CheckResult {
    use crate::io::model_dir;
    let mut out = Vec::new();
    for f in &DECODER_FIXTURES {
        let fx = family_fixture(f, false)?;
        let what = fx.cfg.family.display();
        // the checkpoint as saved (the fixture's weights also carry the reference's head)
        let original: Vec<(String, Vec<usize>, Vec<f32>)> = safetensors::parse(f.weights)?.tensors.iter().map(|(n, v)| (n.clone(), v.shape.clone(), v.to_f32())).collect();
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        files.insert("config.json".into(), f.config.as_bytes().to_vec());
        files.insert("tokenizer.json".into(), f.tokenizer.to_vec());
        let generation = serde_json::json!({"eos_token_id": [3, 5]});
        files.insert("generation_config.json".into(), generation.to_string().into_bytes());
        for (dtype, round) in [(safetensors::Dtype::BF16, (|x: f32| half::bf16::from_f32(x).to_f32()) as fn(f32) -> f32), (safetensors::Dtype::F16, |x: f32| half::f16::from_f32(x).to_f32())] {
            // two shards, the tensors split between them, and the index
            let (a, b) = original.split_at(original.len() / 2);
            let mut sharded = files.clone();
            let mut map = serde_json::Map::new();
            for (shard, part) in [("model-00001-of-00002.safetensors", a), ("model-00002-of-00002.safetensors", b)] {
                sharded.insert(shard.into(), safetensors::serialize_as(part, &BTreeMap::new(), dtype));
                for (n, _, _) in part {
                    map.insert(n.clone(), shard.into());
                }
            }
            sharded.insert(crate::io::export::WEIGHTS_INDEX.into(), serde_json::json!({"metadata": {}, "weight_map": map}).to_string().into_bytes());
            let lm = model_dir::load(gpu, &sharded, Some(LM), 0)?;
            if !lm.report.initialised.is_empty() || !lm.report.unused.is_empty() {
                return Err(Error::Check(format!("{what} {dtype:?} in shards: initialised {:?}, unused {:?}", lm.report.initialised, lm.report.unused)));
            }
            for (name, _, vals) in &original {
                let ours = name.strip_prefix("model.").unwrap_or(name);
                let p = lm.model.params.get(ours).ok_or_else(|| Error::Check(format!("{what}: no {ours}")))?;
                let got = read(gpu, &p.value).await?;
                if vals.iter().zip(&got).any(|(v, g)| round(*v) != *g) {
                    return Err(Error::Check(format!("{what} {dtype:?} in shards: {name} is not the rounding of the original")));
                }
            }
            if lm.tokenizer.end_ids() != [3, 5] {
                return Err(Error::Check(format!("{what}: generation ends at {:?}, not generation_config.json's [3, 5]", lm.tokenizer.end_ids())));
            }
            // a shard missing: named, with how many there are
            sharded.remove("model-00002-of-00002.safetensors");
            match model_dir::load(gpu, &sharded, Some(LM), 0) {
                Err(e) if e.to_string().contains("model-00002-of-00002.safetensors") && e.to_string().contains("2 shards") => {}
                Err(e) => return Err(Error::Check(format!("{what}: a missing shard gave \"{e}\""))),
                Ok(_) => return Err(Error::Check(format!("{what}: a checkpoint without one of its shards loaded"))),
            }
        }
        // the tokenizer frames each prompt as AutoTokenizer does (gen.prompt.i)
        files.insert("model.safetensors".into(), f.weights.to_vec());
        let lm = model_dir::load(gpu, &files, Some(LM), 0)?;
        let prompts: Vec<String> = serde_json::from_str(fx.r.metadata.get("prompts").ok_or_else(|| Error::Check("fixture metadata lacks prompts".into()))?)?;
        for (i, text) in prompts.iter().enumerate() {
            let want: Vec<u32> = fx.ints(&format!("gen.prompt.{i}"))?.into_iter().map(|x| x as u32).collect();
            let got = lm.tokenizer.encode(text, None, 64)?.ids;
            if got != want {
                return Err(Error::Check(format!("{what}: \"{text}\" framed as {got:?}; AutoTokenizer gives {want:?}")));
            }
        }
        out.push(what.to_string());
    }
    // a model larger than the device allows, refused before anything is allocated with both sizes:
    // weights over the device's memory budget, a tensor over its largest buffer
    let fx = family_fixture(&DECODER_FIXTURES[0], false)?;
    let mut small = own_gpu().await?;
    small.info.memory_budget = Some(100_000);
    match Model::new(&small, fx.cfg.clone(), LM, Some(&fx.weights), 0) {
        Err(e) if e.to_string().contains("0.10 MB") && e.to_string().contains("larger than this device allows") => {}
        Err(e) => return Err(Error::Check(format!("weights over the memory budget gave \"{e}\""))),
        Ok(_) => return Err(Error::Check("a model over the device's memory budget loaded".into())),
    }
    small.info.memory_budget = None;
    small.info.max_buffer_size = 40_000;
    match Model::new(&small, fx.cfg.clone(), LM, Some(&fx.weights), 0) {
        Err(e) if e.to_string().contains("embed_tokens") && e.to_string().contains("one buffer") => {}
        Err(e) => return Err(Error::Check(format!("a tensor over the largest buffer gave \"{e}\""))),
        Ok(_) => return Err(Error::Check("a tensor over the device's largest buffer loaded".into())),
    }
    Ok(format!("{}: bf16 and f16 in two shards load as the rounding of each value, a missing shard is named, generation_config.json's end tokens end a text, prompts framed as AutoTokenizer frames them; a model over the device's memory or buffer limit refused with both sizes", out.join(", ")))
}
