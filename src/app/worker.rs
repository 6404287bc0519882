//! The training worker: a dedicated Web Worker that owns the WebGPU device, the model, the data
//! and the training loops, so the page never freezes. It receives `{cmd, data, files?}` messages
//! and answers with `{ev, data, ...}` events (see `protocol`). Snapshots go to IndexedDB through
//! the small functions www/worker.js defines (`bertlabSave`, `bertlabLoad`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::protocol::{self, AdapterSummary, AdoptMode, BesideView, Command, FillView, KernelCounts, KernelProfile, EpochReport, Event, ModelSummary, PretrainSettings, PretrainStep, SavedSession, ScratchSettings, SnapshotNote, TrainSettings, TrainStep};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::io::export::{self, ModelCard};
use crate::io::{model_dir, safetensors};
use crate::model::{Batch, Model, ModelConfig, Heads, Pooling};
use crate::text::dataset::{self, Dataset};
use crate::text::tokenizer::Tokenizer;
use crate::train::checkpoint;
use crate::train::trainer::{self, Control, Event as RunEvent, Mode, PretrainConfig, TrainConfig};

struct Loaded {
    model: Model,
    tok: Tokenizer,
    labels: Vec<String>,
    tokenizer_files: Vec<(String, Vec<u8>)>,
    source: String,
}

#[derive(Default)]
struct Session {
    gpu: Option<Rc<Gpu>>,
    /// Init has run (with or without a GPU): commands that came before it waited for it.
    init_done: bool,
    /// The page asked the generation under way to stop.
    stop_generating: bool,
    /// None while a run has it (the training future owns it between awaits).
    loaded: Option<Loaded>,
    /// The last model of the other kind (masked when `loaded` is causal, causal when it is masked),
    /// kept when a new model replaced it, so the masked-words panel shows the two side by side.
    companion: Option<Loaded>,
    busy: bool,
    /// What holds the model while it is out of `loaded` (a command between its awaits).
    held_by: Option<&'static str>,
    /// The data in use: its name, its text (kept for snapshots and plain-text pretraining) and the
    /// parsed rows, shared with a run rather than copied.
    data: Option<(String, Rc<str>, Rc<Dataset>)>,
    control: Control,
    /// Everything the page drew (curves, runs), saved with each snapshot and given back on restore.
    curves: Value,
    settings: Value,
    step: usize,
    /// The last fine-tuning run's settings, written into an export's train_hf.py.
    last_run: Option<export::RunSettings>,
    /// Why snapshots are off (browser storage refused or full): training goes on without them.
    snapshots_off: Option<String>,
}

thread_local! {
    static S: RefCell<Session> = RefCell::new(Session::default());
}

fn scope() -> web_sys::DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn set(o: &js_sys::Object, k: &str, v: &JsValue) {
    let _ = js_sys::Reflect::set(o, &k.into(), v);
}

/// Sends `ev` to the page, with `extra` fields beside it (an export's files).
fn post_with(ev: &Event, extra: &[(&str, JsValue)]) {
    let (name, data) = ev.to_parts();
    let o = js_sys::Object::new();
    set(&o, "ev", &name.into());
    if let Some(d) = data {
        set(&o, "data", &d.into());
    }
    for (k, v) in extra {
        set(&o, k, v);
    }
    let _ = scope().post_message(&o);
}

fn post(ev: Event) {
    post_with(&ev, &[]);
}

fn js_err(e: &JsValue) -> String {
    e.as_string().or_else(|| js_sys::Reflect::get(e, &"message".into()).ok().and_then(|m| m.as_string())).unwrap_or_else(|| format!("{e:?}"))
}

fn gpu() -> Result<Rc<Gpu>, String> {
    S.with(|s| s.borrow().gpu.clone()).ok_or_else(|| "the GPU is not ready yet".to_string())
}

/// The model, taken out of the worker's state by the command `what` until `put_model` gives it back;
/// a command that finds it taken is told what holds it, not that no model is loaded.
fn take_model(what: &'static str) -> Result<Loaded, String> {
    S.with(|s| {
        let mut s = s.borrow_mut();
        if s.busy {
            return Err("a run is in progress; pause or stop it first".to_string());
        }
        if let Some(holder) = s.held_by {
            if s.loaded.is_none() {
                return Err(format!("busy: {holder}; wait for it to finish{}", if holder == GENERATING { ", or press Stop" } else { "" }));
            }
        }
        let l = s.loaded.take().ok_or_else(|| "no model is loaded: load the default model, one from the hub or your files, or make one from scratch".to_string())?;
        s.held_by = Some(what);
        Ok(l)
    })
}

const GENERATING: &str = "the model is continuing a text";

fn put_model(l: Loaded) {
    S.with(|s| {
        let mut s = s.borrow_mut();
        s.loaded = Some(l);
        s.held_by = None;
    });
}

/// Makes `l` the model in use and tells the page. The model it replaces is kept as the companion
/// when it is of the other kind (masked vs causal); a model of the same kind is let go.
/// Makes `l` the model in use; refused while a command holds the current one (it would put that
/// one back over `l` when it ends).
fn install_model(l: Loaded, notes: Vec<String>) -> Result<(), String> {
    S.with(|s| {
        let mut s = s.borrow_mut();
        if let (Some(holder), None) = (s.held_by, &s.loaded) {
            return Err(format!("busy: {holder}; load or make the new model when it has finished"));
        }
        if let Some(old) = s.loaded.take() {
            if old.model.cfg.is_decoder != l.model.cfg.is_decoder {
                s.companion = Some(old);
            }
        }
        Ok(())
    })?;
    post_model(&l, notes);
    put_model(l);
    Ok(())
}

/// What the page says about the companion model.
fn describe_companion() -> Option<String> {
    S.with(|s| s.borrow().companion.as_ref().map(|c| format!("{} ({})", c.source, if c.model.cfg.is_decoder { "reads left to right" } else { "reads both ways" })))
}

fn summary(l: &Loaded, notes: Vec<String>) -> ModelSummary {
    let c = &l.model.cfg;
    let params = l.model.params.total_params();
    ModelSummary {
        source: l.source.clone(),
        layers: c.num_hidden_layers,
        hidden: c.hidden_size,
        heads: c.num_attention_heads,
        vocab: c.vocab_size,
        max_len: c.max_position_embeddings,
        params,
        train_bytes: protocol::train_memory_bytes(params, c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size, 16, 128.min(c.max_position_embeddings)),
        has_mlm: l.model.heads.lm,
        has_sop: l.model.heads.sop,
        labels: l.labels.clone(),
        mean_pooling: l.model.pooling == Pooling::Mean,
        causal: c.is_decoder,
        gpt2: c.body == crate::model::config::Body::Gpt2,
        beside: describe_companion(),
        notes,
    }
}

fn post_model(l: &Loaded, notes: Vec<String>) {
    post(Event::Model(summary(l, notes)));
}

/// Fetches `url`, posting progress; Ok(None) on 404.
async fn fetch_bytes(url: &str, label: &str) -> Result<Option<Vec<u8>>, String> {
    let resp = JsFuture::from(scope().fetch_with_str(url)).await.map_err(|e| format!("{url}: {} (is the address right, and are you online?)", js_err(&e)))?;
    let resp: web_sys::Response = resp.unchecked_into();
    if resp.status() == 404 {
        return Ok(None);
    }
    if !resp.ok() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let total = resp.headers().get("content-length").ok().flatten().and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let body = resp.body().ok_or_else(|| format!("{url}: empty response"))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out: Vec<u8> = Vec::new();
    let mut told = 0usize;
    loop {
        let r = JsFuture::from(reader.read()).await.map_err(|e| format!("{url}: {}", js_err(&e)))?;
        let done = js_sys::Reflect::get(&r, &"done".into()).ok().and_then(|v| v.as_bool()).unwrap_or(true);
        if done {
            break;
        }
        let v: js_sys::Uint8Array = js_sys::Reflect::get(&r, &"value".into()).map_err(|e| js_err(&e))?.unchecked_into();
        out.extend(v.to_vec());
        if out.len() - told > 1 << 20 {
            told = out.len();
            post(Event::Progress { file: label.to_string(), loaded: out.len() as f64, total: total as f64 });
        }
    }
    post(Event::Progress { file: label.to_string(), loaded: out.len() as f64, total: out.len() as f64 });
    Ok(Some(out))
}

/// Loads a model directory from `base` (ending in '/'): config.json, model.safetensors (or the
/// reason there is none), the tokenizer, and a mean-pooling head when present.
async fn fetch_model(base: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut files = BTreeMap::new();
    let config = fetch_bytes(&format!("{base}config.json"), "config.json").await?.ok_or_else(|| format!("{base}config.json was not found: check the model id (and the hub address)"))?;
    let cfg_text = String::from_utf8_lossy(&config).to_string();
    ModelConfig::from_json(&cfg_text)?;
    files.insert("config.json".to_string(), config);
    match fetch_bytes(&format!("{base}model.safetensors"), "model.safetensors").await? {
        Some(b) => {
            files.insert("model.safetensors".into(), b);
        }
        None => {
            // name what is there instead, so the message can say what to do
            let resp = JsFuture::from(scope().fetch_with_str(&format!("{base}pytorch_model.bin"))).await.ok();
            let has_bin = resp.map(|r| r.unchecked_into::<web_sys::Response>().ok()).unwrap_or(false);
            let names: Vec<&str> = if has_bin { vec!["config.json", "pytorch_model.bin"] } else { vec!["config.json"] };
            export::pick_weights_file(&names)?;
        }
    }
    for f in ["tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", export::HEAD_JSON, export::HEAD_FILE] {
        // the older tokenizer files only where there is no tokenizer.json (nor, for GPT-2's, a vocab.txt)
        let older = matches!(f, "vocab.txt" | "vocab.json" | "merges.txt");
        if older && (files.contains_key("tokenizer.json") || (f != "vocab.txt" && files.contains_key("vocab.txt"))) {
            continue;
        }
        if f == export::HEAD_FILE && !files.contains_key(export::HEAD_JSON) {
            continue;
        }
        if let Some(b) = fetch_bytes(&format!("{base}{f}"), f).await? {
            files.insert(f.to_string(), b);
        }
    }
    Ok(files)
}

fn install(files: &BTreeMap<String, Vec<u8>>, source: String) -> Result<(), Error> {
    let g = gpu()?;
    S.with(|s| if s.borrow().busy { Err("a run is in progress; stop it before loading another model".to_string()) } else { Ok(()) })?;
    let lm = model_dir::load(&g, files, None, 42)?;
    let mut notes = Vec::new();
    if !lm.model.heads.lm {
        notes.push("This model has no masked-LM head (cls.predictions), so it cannot fill in [MASK] yet: pretrain with MLM on your text to train one.".to_string());
    }
    if !lm.report.unused.is_empty() {
        notes.push(format!("{} tensors in the checkpoint are not used: {}", lm.report.unused.len(), lm.report.unused.iter().take(6).cloned().collect::<Vec<_>>().join(", ")));
    }
    let l = Loaded { model: lm.model, tok: lm.tokenizer, labels: lm.labels, tokenizer_files: lm.tokenizer_files, source };
    Ok(install_model(l, notes)?)
}

/// Reads the File objects the page sent.
async fn read_files(files: &js_sys::Array) -> Result<BTreeMap<String, Vec<u8>>, String> {
    // read in slices, with progress: a checkpoint of several hundred MB is held once (in the
    // worker's memory) plus one slice, not twice, and the page shows how far it got
    const SLICE: f64 = 16.0 * 1024.0 * 1024.0;
    let mut out = BTreeMap::new();
    for f in files.iter() {
        let f: web_sys::File = f.unchecked_into();
        let (name, size) = (f.name(), f.size());
        let mut bytes = Vec::with_capacity(size as usize);
        let mut at = 0.0;
        while at < size {
            let end = (at + SLICE).min(size);
            let part = f.slice_with_f64_and_f64(at, end).map_err(|e| js_err(&e))?;
            let buf = JsFuture::from(part.array_buffer()).await.map_err(|e| format!("reading {name}: {}", js_err(&e)))?;
            let arr = js_sys::Uint8Array::new(&buf);
            let start = bytes.len();
            bytes.resize(start + arr.length() as usize, 0);
            arr.copy_to(&mut bytes[start..]);
            at = end;
            if size > SLICE {
                post(Event::Progress { file: name.clone(), loaded: at, total: size });
            }
        }
        out.insert(name, bytes);
    }
    Ok(out)
}

/// Rebuilds the model with other heads, keeping every weight it has (a fresh head starts from
/// BERT's initialisation).
/// The model with `heads`, its other tensors kept; with `fresh_classifier`, a new classification head
/// (for other labels) in place of the one it had.
async fn with_heads(g: &Gpu, l: Loaded, heads: Heads, fresh_classifier: bool) -> Result<Loaded, (Loaded, Error)> {
    if l.model.heads == heads && !fresh_classifier {
        return Ok(l);
    }
    let mut tensors = match l.model.params.read_all(g).await {
        Ok(t) => t,
        Err(e) => return Err((l, e.into())),
    };
    if fresh_classifier {
        tensors.retain(|(n, _, _)| !(n.starts_with("classifier.") || n.starts_with("score.")));
    }
    let bytes = safetensors::serialize(&tensors, &BTreeMap::new());
    let st = match safetensors::parse(&bytes) {
        Ok(s) => s,
        Err(e) => return Err((l, e.into())),
    };
    match Model::new(g, l.model.cfg.clone(), heads, Some(&st), 7) {
        Ok((mut m, _)) => {
            m.pooling = l.model.pooling;
            Ok(Loaded { model: m, ..l })
        }
        Err(e) => Err((l, e)),
    }
}

/// What a snapshot records of the model besides its tensors (cloned before a run, so a snapshot
/// can be written while the run holds the model).
#[derive(Clone)]
struct SnapInfo {
    source: String,
    config: Value,
    heads: Value,
    labels: Vec<String>,
    mean_pooling: bool,
    tokenizer_files: Vec<(String, Vec<u8>)>,
}

fn snap_info(l: &Loaded) -> SnapInfo {
    SnapInfo {
        source: l.source.clone(),
        config: serde_json::to_value(&l.model.cfg).unwrap_or_default(),
        heads: json!({"mlm": l.model.heads.lm, "sop": l.model.heads.sop, "num_labels": l.model.heads.num_labels}),
        labels: l.labels.clone(),
        mean_pooling: l.model.pooling == Pooling::Mean,
        tokenizer_files: l.tokenizer_files.clone(),
    }
}

/// Stores a snapshot (weights, optimizer, tokenizer, data, settings, curves) in IndexedDB via
/// worker.js.
async fn save_snapshot(info: &SnapInfo, step: usize, weights: Vec<u8>, optimizer: Vec<u8>, kind: &str) -> Result<(), Error> {
    if S.with(|s| s.borrow().snapshots_off.is_some()) {
        return Ok(());
    }
    let r = write_snapshot(info, step, weights, optimizer, kind).await;
    if let Err(e) = &r {
        // storage refused (private mode) or full (quota): say so once, keep training without
        S.with(|s| s.borrow_mut().snapshots_off = Some(e.to_string()));
        post(Event::Snapshot(SnapshotNote { off: Some(format!("Snapshots are off: {e}. Training goes on; export the model to keep it.")), ..Default::default() }));
    }
    Ok(())
}

async fn write_snapshot(info: &SnapInfo, step: usize, weights: Vec<u8>, optimizer: Vec<u8>, kind: &str) -> Result<(), Error> {
    let meta = S.with(|s| {
        let s = s.borrow();
        json!({
            "step": step,
            "kind": kind,
            "saved_at": js_sys::Date::new_0().to_iso_string().as_string(),
            "source": info.source,
            "config": info.config,
            "heads": info.heads,
            "labels": info.labels,
            "mean_pooling": info.mean_pooling,
            // the data's text travels beside the metadata (`data_text`), not inside its JSON
            "data": s.data.as_ref().map(|(n, _, _)| json!({"name": n})),
            "curves": s.curves,
            "settings": s.settings,
        })
    });
    let o = js_sys::Object::new();
    set(&o, "meta", &meta.to_string().into());
    if let Some(t) = S.with(|s| s.borrow().data.as_ref().map(|(_, t, _)| t.clone())) {
        set(&o, "data_text", &JsValue::from_str(&t));
    }
    set(&o, "weights", &js_sys::Uint8Array::from(&weights[..]).into());
    set(&o, "optimizer", &js_sys::Uint8Array::from(&optimizer[..]).into());
    let toks = js_sys::Array::new();
    for (n, b) in &info.tokenizer_files {
        let pair = js_sys::Array::new();
        pair.push(&n.into());
        pair.push(&js_sys::Uint8Array::from(&b[..]).into());
        toks.push(&pair);
    }
    set(&o, "tokenizer", &toks);
    let f = js_sys::Reflect::get(&js_sys::global(), &"bertlabSave".into()).map_err(|e| js_err(&e))?;
    let f: js_sys::Function = f.dyn_into().map_err(|_| "worker.js did not define bertlabSave".to_string())?;
    let p: js_sys::Promise = f.call1(&JsValue::NULL, &o).map_err(|e| js_err(&e))?.dyn_into().map_err(|_| "bertlabSave did not return a promise".to_string())?;
    JsFuture::from(p).await.map_err(|e| format!("the session could not be stored ({})", js_err(&e)))?;
    post(Event::Snapshot(SnapshotNote { off: None, step, kind: kind.to_string(), saved_at: meta["saved_at"].as_str().unwrap_or_default().to_string() }));
    Ok(())
}

/// Writes a snapshot in the background (from inside a run's event callback).
fn spawn_save(info: &SnapInfo, step: usize, weights: Vec<u8>, optimizer: Vec<u8>, kind: &'static str) {
    let info = info.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = save_snapshot(&info, step, weights, optimizer, kind).await {
            post(Event::Message { text: e.to_string() });
        }
    });
}

/// The end-of-run snapshot: the weights and optimizer now.
async fn save_now(g: &Gpu, l: &Loaded, step: usize) {
    let r = async {
        let w = checkpoint::weights_bytes(g, &l.model).await?;
        let o = checkpoint::optimizer_bytes(g, &l.model, step).await?;
        save_snapshot(&snap_info(l), step, w, o, "end of run").await
    }
    .await;
    if let Err(e) = r {
        post(Event::Message { text: e.to_string() });
    }
}

async fn load_snapshot() -> Result<Option<js_sys::Object>, String> {
    let f = js_sys::Reflect::get(&js_sys::global(), &"bertlabLoad".into()).map_err(|e| js_err(&e))?;
    let f: js_sys::Function = f.dyn_into().map_err(|_| "worker.js did not define bertlabLoad".to_string())?;
    let p: js_sys::Promise = f.call0(&JsValue::NULL).map_err(|e| js_err(&e))?.dyn_into().map_err(|_| "bertlabLoad did not return a promise".to_string())?;
    let v = JsFuture::from(p).await.map_err(|e| js_err(&e))?;
    Ok(if v.is_null() || v.is_undefined() { None } else { Some(v.unchecked_into()) })
}

fn bytes_of(o: &js_sys::Object, k: &str) -> Vec<u8> {
    js_sys::Reflect::get(o, &k.into()).ok().filter(|v| !v.is_undefined()).map(|v| js_sys::Uint8Array::new(&v).to_vec()).unwrap_or_default()
}

async fn restore() -> Result<(), Error> {
    let g = gpu()?;
    S.with(|s| if s.borrow().busy { Err("a run is in progress; stop it before restoring a saved session".to_string()) } else { Ok(()) })?;
    let snap = load_snapshot().await?.ok_or("there is no saved session in this browser")?;
    let meta_text = js_sys::Reflect::get(&snap, &"meta".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
    let header = crate::app::protocol::snapshot_header(&meta_text)?;
    let meta: Value = serde_json::from_str(&meta_text).map_err(|e| e.to_string())?;
    let (cfg, heads) = (header.config, header.heads);
    let weights = bytes_of(&snap, "weights");
    let st = safetensors::parse(&weights).map_err(|e| format!("the saved weights: {e}"))?;
    let (mut model, _) = Model::new(&g, cfg, heads, Some(&st), 1)?;
    if header.mean_pooling {
        model.pooling = Pooling::Mean;
    }
    let opt = bytes_of(&snap, "optimizer");
    let step = if opt.is_empty() { 0 } else { checkpoint::restore_optimizer(&g, &mut model, &opt)? };
    let mut tokenizer_files = Vec::new();
    if let Ok(arr) = js_sys::Reflect::get(&snap, &"tokenizer".into()) {
        for pair in js_sys::Array::from(&arr).iter() {
            let pair = js_sys::Array::from(&pair);
            tokenizer_files.push((pair.get(0).as_string().unwrap_or_default(), js_sys::Uint8Array::new(&pair.get(1)).to_vec()));
        }
    }
    let tf: BTreeMap<String, Vec<u8>> = tokenizer_files.iter().cloned().collect();
    let tok = crate::io::model_dir::tokenizer_of(&tf).map_err(|e| format!("the saved session's tokenizer: {e}"))?;
    let labels = header.labels;
    let l = Loaded { model, tok, labels, tokenizer_files, source: meta["source"].as_str().unwrap_or("restored").to_string() };
    if let Some(d) = meta["data"].as_object() {
        let name = d.get("name").and_then(|v| v.as_str()).unwrap_or("restored").to_string();
        // beside the metadata since 2026-11-29; inside it in older snapshots
        let text = js_sys::Reflect::get(&snap, &"data_text".into()).ok().and_then(|v| v.as_string()).or_else(|| d.get("text").and_then(|v| v.as_str()).map(String::from)).unwrap_or_default();
        set_data(name, text);
    }
    S.with(|s| {
        let mut s = s.borrow_mut();
        s.curves = meta["curves"].clone();
        s.settings = meta["settings"].clone();
        s.step = step;
    });
    install_model(l, vec![format!("restored from the snapshot of {} (step {})", meta["saved_at"].as_str().unwrap_or("?"), meta["step"])])?;
    post(Event::Restored(json!({"step": meta["step"], "curves": meta["curves"], "settings": meta["settings"], "saved_at": meta["saved_at"]})));
    Ok(())
}

fn set_data(name: String, text: String) {
    set_data_bytes(name, text.into_bytes());
}

fn set_data_bytes(name: String, bytes: Vec<u8>) {
    // the previous data is let go first, so two datasets are never held at once
    S.with(|s| s.borrow_mut().data = None);
    let ds = dataset::parse(&bytes, None);
    let lines = bytes.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
    let p = protocol::preview(&name, &ds, lines);
    post(Event::Data(p));
    // invalid UTF-8 was reported per line by the parser; the kept text replaces those bytes
    let text = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    S.with(|s| s.borrow_mut().data = Some((name, Rc::from(text), Rc::new(ds))));
}

/// A file the page did not read (too large to show): read here, once.
async fn set_data_file(files: &JsValue) -> Result<(), Error> {
    let f: web_sys::File = js_sys::Array::from(files).get(0).dyn_into().map_err(|_| "no file was sent".to_string())?;
    let name = f.name();
    dataset::check_size(f.size() as u64).map_err(|e| format!("{name}: {e}"))?;
    S.with(|s| s.borrow_mut().data = None);
    let buf = JsFuture::from(f.array_buffer()).await.map_err(|e| format!("{name} could not be read: {}", js_err(&e)))?;
    let bytes = js_sys::Uint8Array::new(&buf).to_vec();
    drop(buf);
    set_data_bytes(name, bytes);
    Ok(())
}

/// Texts to pretrain on: the labeled examples' texts, or every non-empty line of plain text.
fn pretrain_texts() -> Result<Vec<String>, String> {
    S.with(|s| {
        let s = s.borrow();
        let (_, text, ds) = s.data.as_ref().ok_or("bring some text first (paste it, upload a file, or try the sample corpus)")?;
        Ok(if ds.examples.len() >= 8 { ds.examples.iter().map(|e| e.text.clone()).collect() } else { text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect() })
    })
}


fn set_busy(b: bool) {
    S.with(|s| {
        let mut s = s.borrow_mut();
        s.busy = b;
        if b {
            s.control.resume();
        }
    });
    post(Event::Busy { busy: b });
}

async fn scratch(d: &ScratchSettings) -> Result<(), Error> {
    let g = gpu()?;
    let texts = pretrain_texts()?;
    let tok = Tokenizer::train_wordpiece(&texts, d.vocab)?;
    let (hidden, layers, heads) = (d.hidden, d.layers, d.heads);
    let mut cfg = if d.gpt2 { ModelConfig::small_gpt2(tok.vocab_size, hidden, layers, heads) } else { ModelConfig::small(tok.vocab_size, hidden, layers, heads) };
    cfg.is_decoder = d.causal || d.gpt2;
    cfg.pad_token_id = tok.pad as usize;
    cfg.validate()?;
    // a causal model has no sentence-order head: its [CLS] sees only itself
    let (model, _) = Model::new(&g, cfg, Heads { lm: true, sop: !(d.causal || d.gpt2), num_labels: 0 }, None, 42)?;
    let tokenizer_files = tok.files()?;
    S.with(|s| if s.borrow().busy { Err("a run is in progress".to_string()) } else { Ok(()) })?;
    let kind = if d.gpt2 { "GPT-2 (pre-LN, causal) model" } else if d.causal { "GPT-style (causal) model" } else { "BERT" };
    let l = Loaded { model, tok, labels: Vec::new(), tokenizer_files, source: format!("from scratch: a {kind}, {layers} layers, hidden {hidden}, {heads} heads, WordPiece vocabulary trained on your text") };
    Ok(install_model(l, vec![])?)
}

fn kernel_counts(g: &Gpu) -> KernelCounts {
    let c = g.counters();
    KernelCounts { submits: c.submits, bytes_read_back: c.bytes_read_back, dispatches: c.dispatches.iter().map(|(k, v)| (k.to_string(), *v as u64)).collect() }
}

async fn pretrain(d: PretrainSettings, start_step: usize) -> Result<(), Error> {
    let g = gpu()?;
    let texts = pretrain_texts()?;
    let l = take_model("pretraining")?;
    let (mlm, sop) = (d.mlm, d.sop);
    let causal = l.model.cfg.is_decoder;
    let heads = Heads { lm: l.model.heads.lm || mlm || causal, sop: (l.model.heads.sop || sop) && !causal, num_labels: l.model.heads.num_labels };
    let mut l = match with_heads(&g, l, heads, false).await {
        Ok(l) => l,
        Err((l, e)) => {
            put_model(l);
            return Err(e.into());
        }
    };
    let pc = PretrainConfig {
        mlm: mlm || causal,
        sop: sop && !causal,
        steps: d.steps,
        batch_size: d.batch,
        lr: d.lr,
        max_len: d.max_len.min(l.model.cfg.max_position_embeddings),
        warmup: d.steps / 10,
        probe: d.probe.clone().filter(|s| s.contains("[MASK]")),
        probe_every: d.probe_every.max(1),
        checkpoint_every: 25,
        start_step,
        ..PretrainConfig::default()
    };
    S.with(|s| s.borrow_mut().settings = json!({"kind": "pretrain", "pretrain": d}));
    let info = snap_info(&l);
    set_busy(true);
    g.reset_counters();
    let control = S.with(|s| s.borrow().control.clone());
    let tok = &l.tok;
    let mut last_counts = 0;
    let r = trainer::pretrain(&g, &mut l.model, tok, &texts, &pc, &control, &mut |e| match e {
        RunEvent::Pretrain { step, total_steps, mlm_loss, sop_loss, mlm_acc, sop_acc, lr, ms_per_step, eta_s, batch_outcomes, first_sequence } => {
            // the first sequence of the batch, token by token: what the model saw, what masking
            // did to it, and the original where one is predicted
            let seq: Vec<(String, String, String)> = first_sequence
                .iter()
                .zip(&batch_outcomes)
                .map(|((id, label), o)| (tok.id_to_token(*id), format!("{o:?}"), if *label >= 0 { tok.id_to_token(*label as u32) } else { String::new() }))
                .collect();
            let n = batch_outcomes.len();
            let count = |w: crate::train::masking::Outcome| batch_outcomes.iter().filter(|&&o| o == w).count();
            let chosen = n - count(crate::train::masking::Outcome::NotChosen);
            post(Event::PretrainStep(PretrainStep {
                step,
                total: total_steps,
                mlm: mlm_loss,
                sop: sop_loss,
                mlm_acc,
                sop_acc,
                lr,
                ms: ms_per_step,
                eta: eta_s,
                seq,
                chosen,
                masked: count(crate::train::masking::Outcome::Masked),
                random: count(crate::train::masking::Outcome::Random),
                unchanged: count(crate::train::masking::Outcome::Unchanged),
            }));
            if step - last_counts >= 10 {
                last_counts = step;
                post(Event::Counters(kernel_counts(&g)));
            }
        }
        RunEvent::Probe { step, predictions } => post(Event::Probe { step, predictions }),
        RunEvent::Checkpoint { step, weights, optimizer } => spawn_save(&info, step, weights, optimizer, "checkpoint"),
        RunEvent::NonFinite { step } => post(Event::Stopped { step, nonfinite: true, reason: Error::non_finite(step).to_string() }),
        RunEvent::Paused { step } => post(Event::Paused { step }),
        RunEvent::Cancelled { step } => post(Event::Stopped { step, reason: "stopped".into(), nonfinite: false }),
        _ => {}
    })
    .await;
    post(Event::Counters(kernel_counts(&g)));
    // the run stays busy until its model is back in place (after the end-of-run snapshot), so that
    // no command finds it missing meanwhile
    match r {
        Ok(rep) => {
            for m in &rep.messages {
                post(Event::Message { text: m.clone() });
            }
            if rep.stopped.is_none() {
                save_now(&g, &l, rep.mlm_losses.len()).await;
            }
            post_model(&l, vec![]);
            put_model(l);
            set_busy(false);
            // only now: a command sent on hearing it finds the model back in place
            post(Event::PretrainDone { steps: rep.mlm_losses.len(), ms_per_step: rep.ms_per_step, stopped: rep.stopped.clone() });
            Ok(())
        }
        Err(e) => {
            put_model(l);
            set_busy(false);
            Err(e)
        }
    }
}

/// Sends the first batch of pretraining inputs as tokens (for the masking view before a run).
fn batch_tokens(l: &Loaded, ids: &[u32]) -> Vec<String> {
    ids.iter().map(|&i| l.tok.piece(i)).collect()
}

/// The restored snapshot's unfinished run (fine-tuning or pretraining), and its step.
enum Interrupted {
    Train(TrainSettings),
    Pretrain(PretrainSettings),
}

fn interrupted_run() -> Result<(Interrupted, usize), String> {
    let (settings, step) = S.with(|s| (s.borrow().settings.clone(), s.borrow().step));
    let none = || "there is no interrupted run to continue: restore a snapshot taken during one".to_string();
    if settings["finished"].as_bool() == Some(true) || step == 0 {
        return Err(none());
    }
    let unreadable = |e: serde_json::Error| format!("the restored run's settings cannot be read ({e}); start a new run");
    match settings["kind"].as_str() {
        Some("train") => Ok((Interrupted::Train(serde_json::from_value(settings["train"].clone()).map_err(unreadable)?), step)),
        Some("pretrain") => {
            let d: PretrainSettings = serde_json::from_value(settings["pretrain"].clone()).map_err(unreadable)?;
            if step >= d.steps {
                return Err(none());
            }
            Ok((Interrupted::Pretrain(d), step))
        }
        _ => Err(none()),
    }
}

async fn train(d: TrainSettings, start_step: usize) -> Result<(), Error> {
    let g = gpu()?;
    let ds = S.with(|s| s.borrow().data.as_ref().map(|(_, _, ds)| ds.clone())).ok_or("bring labeled data first (paste it, upload a file, or try a sample)")?;
    ds.trainable()?;
    let l = take_model("fine-tuning")?;
    let nl = ds.labels.len();
    // a new classification head for these labels, beside the heads the model has (its masked-LM or
    // next-word head keeps working after fine-tuning; a run does not train it)
    let heads = Heads { num_labels: nl, ..l.model.heads };
    let fresh_head = l.model.heads.num_labels != nl || l.labels != ds.labels;
    let l = if fresh_head {
        let keep = Loaded { labels: ds.labels.clone(), ..l };
        match with_heads(&g, keep, heads, true).await {
            Ok(l) => l,
            Err((l, e)) => {
                put_model(l);
                return Err(e.into());
            }
        }
    } else {
        l
    };
    let mut l = l;
    let mode = match d.mode {
        AdoptMode::Feature => Mode::FeatureBased,
        AdoptMode::Last(n) => Mode::LastLayers(n),
        AdoptMode::Full => Mode::Full,
    };
    // a causal model (GPT-2, GPT-style BERT) reads each text's last token, not its [CLS]
    let pooling = match Pooling::for_model(if d.mean_pooling { Pooling::Mean } else { Pooling::Cls }, &l.model.cfg) {
        Ok(p) => p,
        Err(e) => {
            put_model(l);
            return Err(e);
        }
    };
    let seed = 42;
    let (tr, va) = dataset::stratified_split(&ds, 0.2, seed);
    let tc = TrainConfig { mode, pooling, lr: d.lr, epochs: d.epochs, batch_size: d.batch, max_len: d.max_len, seed, checkpoint_every: 25, start_step, ..TrainConfig::default() };
    S.with(|s| {
        let mut s = s.borrow_mut();
        s.settings = json!({"kind": "train", "train": d});
        s.last_run = Some(export::RunSettings::of(&tc, &ds.labels));
    });
    // the weights before the run: a run that goes non-finite is rolled back to them
    let before = l.model.params.read_all(&g).await.map_err(|e| e.to_string());
    let before = match before {
        Ok(b) => b,
        Err(e) => {
            put_model(l);
            return Err(e.into());
        }
    };
    set_busy(true);
    g.reset_counters();
    let control = S.with(|s| s.borrow().control.clone());
    let tok = &l.tok;
    let info = snap_info(&l);
    let mut nonfinite = None;
    let run = d.run.clone();
    let r = trainer::train_classifier(&g, &mut l.model, tok, &ds, &tr, &va, &tc, &control, &mut |e| match e {
        RunEvent::Plan { total_steps, train_examples, val_examples, truncated } => post(Event::Plan { run: run.clone(), total: total_steps, train: train_examples, val: val_examples, truncated, max_len: tc.max_len }),
        RunEvent::Features { examples, ms } => post(Event::Message { text: format!("features of the frozen encoder computed once for {examples} examples in {:.1} s; the head now trains on them", ms / 1e3) }),
        RunEvent::Progress { task, done, total, per_s, eta_s } => post(Event::Texts { task: task.to_string(), done, total, per_s, eta: eta_s }),
        RunEvent::Step { step, total_steps, loss, lr, ms_per_step, eta_s } => post(Event::Step(TrainStep { run: run.clone(), step, total: total_steps, loss, lr, ms: ms_per_step, eta: eta_s })),
        RunEvent::Epoch { epoch, train_loss, val } => post(Event::Epoch(EpochReport {
            run: run.clone(),
            epoch,
            train_loss,
            val_loss: Some(val.loss).filter(|x| x.is_finite()),
            val_acc: Some(val.accuracy).filter(|x| x.is_finite()),
            val_f1: Some(val.macro_f1).filter(|x| x.is_finite()),
            confusion: val.confusion,
            labels: ds.labels.clone(),
        })),
        RunEvent::Checkpoint { step, weights, optimizer } => spawn_save(&info, step, weights, optimizer, "checkpoint"),
        RunEvent::NonFinite { step } => nonfinite = Some(step),
        RunEvent::Paused { step } => post(Event::Paused { step }),
        RunEvent::Cancelled { step } => post(Event::Stopped { step, reason: "stopped".into(), nonfinite: false }),
        _ => {}
    })
    .await;
    post(Event::Counters(kernel_counts(&g)));
    let result = match r {
        Ok(rep) => {
            if let Some(step) = nonfinite {
                for (name, _, v) in &before {
                    if let Some(p) = l.model.params.get(name) {
                        let _ = g.write(&p.value, 0, v);
                    }
                }
                l.model.opt_state = None;
                save_now(&g, &l, 0).await;
                post(Event::Stopped { step, nonfinite: true, reason: format!("{}. The weights are back to where they were before this run.", Error::non_finite(step)) });
            } else {
                if rep.stopped.is_none() {
                    // a finished run's snapshot is not offered for continuing
                    S.with(|s| s.borrow_mut().settings["finished"] = json!(true));
                    save_now(&g, &l, rep.steps).await;
                }
                post(Event::Done { run: run.clone(), steps: rep.steps, ms_per_step: rep.ms_per_step, stopped: rep.stopped.clone() });
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    post_model(&l, vec![]);
    put_model(l);
    set_busy(false);
    result
}

/// One sequence through the model, dropout off, leaving its hidden states and attention readable.
async fn encoder_forward(g: &Gpu, model: &mut Model, ids: &[u32], types: &[u32]) -> Result<(), Error> {
    let n = ids.len();
    let batch = Batch::new(g, &model.cfg, 1, n, ids, types, &vec![1; n], None, None, None)?;
    let mut step = g.begin_step("inference");
    model.forward(g, &mut step, &batch, crate::model::Mode::Eval)?;
    Ok(step.submit().await?)
}

/// A causal model's top-k next tokens at each position of `text` up to its first [MASK] (so the
/// last row is its guess for the [MASK], from the words before it): (token, [(next token, p)]).
async fn next_words(g: &Gpu, l: &mut Loaded, text: &str, k: usize) -> Result<Vec<(String, Vec<(String, f32)>)>, Error> {
    let prefix = text.split("[MASK]").next().unwrap_or("").trim_end();
    let e = l.tok.encode(prefix, None, l.model.cfg.max_position_embeddings)?;
    // without the closing [SEP] (<|endoftext|>): what comes after the last word is the question
    let ids = &e.ids[..e.ids.len() - 1];
    let positions: Vec<usize> = (0..ids.len()).collect();
    let top = l.model.fill_mask(g, ids, &vec![0; ids.len()], &positions, k).await?;
    Ok(ids.iter().zip(top).map(|(&id, row)| (l.tok.piece(id), row.into_iter().map(|(t, p)| (l.tok.piece(t), p)).collect())).collect())
}

/// The companion model's view of the same sentence: a masked model's top-k at each [MASK], or a
/// causal model's next words. None when there is no companion.
async fn companion_view(g: &Gpu, text: &str, k: usize) -> Option<BesideView> {
    let mut c = S.with(|s| s.borrow_mut().companion.take())?;
    let mut v = BesideView { source: c.source.clone(), causal: c.model.cfg.is_decoder, ..Default::default() };
    let r = async {
        if v.causal {
            v.next = Some(next_words(g, &mut c, text, k).await?);
        } else if c.model.heads.lm && text.contains("[MASK]") {
            v.predictions = trainer::probe(g, &mut c.model, &c.tok, text, k).await?;
        } else {
            v.note = Some("this model has no masked-LM head, or the sentence no [MASK]".into());
        }
        Ok::<(), Error>(())
    }
    .await;
    S.with(|s| s.borrow_mut().companion = Some(c));
    if let Err(e) = r {
        v.error = Some(e.to_string());
    }
    Some(v)
}

/// Tokens whose attention the page draws, at most: a square over 64 tokens does not read.
const HEATMAP_MAX: usize = 64;

async fn fill_mask(text: &str, k: usize, layer: usize, head: usize) -> Result<(), Error> {
    let g = gpu()?;
    let mut l = take_model("predicting masked words")?;
    let r = async {
        // a GPT-2 tokenizer has no [MASK]: <|endoftext|> stands in for it (and frames the text), so
        // the positions are the ones inside the frame
        let gpt2_tok = l.tok.end_of_text.is_some();
        let framed = if gpt2_tok { text.replace(" [MASK]", "[MASK]").replace("[MASK]", crate::text::tokenizer::END_OF_TEXT) } else { text.to_string() };
        let e = l.tok.encode(&framed, None, l.model.cfg.max_position_embeddings)?;
        let inside = |i: usize| !gpt2_tok || (i > 0 && i + 1 < e.ids.len());
        let positions: Vec<usize> = (0..e.ids.len()).filter(|&i| e.ids[i] == l.tok.mask && inside(i)).collect();
        let tokens = batch_tokens(&l, &e.ids);
        let mut preds = Vec::new();
        let causal = l.model.cfg.is_decoder;
        if causal && l.model.heads.lm && !positions.is_empty() {
            // a causal model predicts the word at [MASK] from the words before it only: its
            // prediction at the position just before
            let before = positions[0].max(1) - 1;
            let top = l.model.fill_mask(&g, &e.ids, &e.type_ids, &[before], k).await?;
            preds = top.into_iter().map(|row| row.into_iter().map(|(id, p)| (l.tok.piece(id), p)).collect()).collect();
        } else if l.model.heads.lm && !positions.is_empty() {
            preds = trainer::probe(&g, &mut l.model, &l.tok, text, k).await?;
        } else {
            // no MLM head (or no [MASK]): still run the encoder for the attention view
            encoder_forward(&g, &mut l.model, &e.ids, &e.type_ids).await?;
        }
        let (layers, heads) = (l.model.cfg.num_hidden_layers, l.model.cfg.num_attention_heads);
        if layer >= layers || head >= heads {
            return Err(format!("this model has layers 0 to {} and heads 0 to {}; layer {layer}, head {head} do not exist", layers - 1, heads - 1).into());
        }
        let t = e.ids.len();
        let probs = g.read_f32(l.model.attention_probs(layer).ok_or("no attention")?).await.map_err(|e| e.to_string())?;
        // the first HEATMAP_MAX tokens' attention among themselves: a longer square is unreadable
        let shown = t.min(HEATMAP_MAX);
        let attention: Vec<Vec<f32>> = (0..shown).map(|i| probs[(head * t + i) * t..(head * t + i) * t + shown].to_vec()).collect();
        let masks_in_text = text.matches("[MASK]").count();
        let masks_cut = masks_in_text.saturating_sub(positions.len());
        let cut = (e.truncated > 0).then(|| {
            let max = l.model.cfg.max_position_embeddings;
            let lost = match (masks_cut, positions.len()) {
                (0, _) => String::new(),
                (_, 0) => format!(", and the text's [MASK] with them: put [MASK] within the first {max} tokens"),
                (n, kept) => format!(", and {n} of its {masks_in_text} [MASK]s with them: predictions are shown for the other {kept}"),
            };
            format!("The text is {} tokens; the model reads at most {max}, so the last {} were cut{lost}.", t + e.truncated, e.truncated)
        });
        let note = if causal && !positions.is_empty() {
            Some("A causal (GPT-style) model reads left to right: it predicts the word at [MASK] from the words before it only, as the next word; a BERT uses the words on both sides.".to_string())
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
        let next = if causal && l.model.heads.lm { Some(next_words(&g, &mut l, text, 3).await?) } else { None };
        let (layers, heads) = (l.model.cfg.num_hidden_layers, l.model.cfg.num_attention_heads);
        Ok::<FillView, Error>(FillView { tokens, positions, predictions: preds, attention, layer, head, layers, heads, note, causal, next, beside: None })
    }
    .await;
    put_model(l);
    let mut v = r?;
    v.beside = companion_view(&g, text, k).await;
    post(Event::Fill(v));
    Ok(())
}

async fn classify(texts: Vec<String>, max_len: usize) -> Result<(), Error> {
    let g = gpu()?;
    let mut l = take_model("classifying")?;
    let r = async {
        if l.model.heads.num_labels == 0 {
            return Err("this model has no classification head yet: fine-tune it on labeled data first".to_string());
        }
        let max_len = max_len.clamp(2, l.model.cfg.max_position_embeddings);
        let enc: Vec<_> = texts.iter().map(|t| l.tok.encode(t, None, max_len)).collect::<Result<_, _>>()?;
        let probs = trainer::predict(&g, &mut l.model, &enc.iter().collect::<Vec<_>>(), l.tok.pad, 16).await?;
        Ok(probs.iter().map(|p| protocol::bars(&l.labels, p)).collect::<Vec<_>>())
    }
    .await;
    put_model(l);
    post(Event::Classified { bars: r? });
    Ok(())
}

/// Continues `prompt` with a causal model, one `gen_token` event per token as it is chosen.
async fn generate(prompt: &str, cfg: crate::train::generate::GenerateConfig) -> Result<(), Error> {
    use crate::train::generate::generate_until as run;
    let g = gpu()?;
    let mut l = take_model(GENERATING)?;
    S.with(|s| s.borrow_mut().stop_generating = false);
    let asked = || S.with(|s| s.borrow().stop_generating);
    post(Event::GenStart { prompt: prompt.to_string() });
    let t0 = crate::gpu::now_ms();
    let tok = &l.tok;
    let r = run(&g, &mut l.model, tok, prompt, &cfg, &asked, &mut |id, t| post(Event::GenToken { id, token: t.to_string(), text: tok.continuation(id) })).await;
    let done = r.and_then(|(ids, stop)| Ok((l.tok.decode(&ids)?, ids.len(), stop)));
    put_model(l);
    let (text, tokens, stop) = done?;
    post(Event::GenDone { text, tokens, stopped_at: stop.describe().to_string(), ms: crate::gpu::now_ms() - t0 });
    Ok(())
}

/// Cosine similarity of two texts' mean-pooled embeddings: an answer any encoder can give.
async fn similarity(a: &str, b: &str) -> Result<(), Error> {
    let g = gpu()?;
    let mut l = take_model("comparing two sentences")?;
    let r = async {
        let mut embs = Vec::new();
        for text in [a, b] {
            let e = l.tok.encode(text, None, 128)?;
            let n = e.ids.len();
            encoder_forward(&g, &mut l.model, &e.ids, &e.type_ids).await?;
            let h = g.read_f32(l.model.last_hidden().ok_or("no hidden states")?).await.map_err(|e| e.to_string())?;
            let c = l.model.cfg.hidden_size;
            embs.push((0..c).map(|j| (0..n).map(|t| h[t * c + j]).sum::<f32>() / n as f32).collect::<Vec<f32>>());
        }
        let dot: f32 = embs[0].iter().zip(&embs[1]).map(|(a, b)| a * b).sum();
        let na: f32 = embs[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = embs[1].iter().map(|x| x * x).sum::<f32>().sqrt();
        Ok::<f64, String>((dot / (na * nb).max(1e-12)) as f64)
    }
    .await;
    put_model(l);
    post(Event::Similarity { cosine: r? });
    Ok(())
}

async fn export_model() -> Result<(), Error> {
    let g = gpu()?;
    let l = take_model("exporting")?;
    let r = async {
        let tensors = l.model.params.read_all(&g).await.map_err(|e| e.to_string())?;
        // the run that trained this classifier, when its labels are the model's
        let run = S.with(|s| s.borrow().last_run.clone()).filter(|r| r.labels == l.labels);
        // what it was trained on: the data in use (its name and counts), when it was a classifier's
        let data_summary = S.with(|s| s.borrow().data.as_ref().map(|(name, text, ds)| if ds.examples.is_empty() { format!("{name} ({} lines of text)", text.lines().count()) } else { format!("{name}: {} examples, labels {}", ds.examples.len(), ds.label_counts().iter().map(|(l, n)| format!("{l} ({n})")).collect::<Vec<_>>().join(", ")) })).unwrap_or_default();
        let card = ModelCard { base_model: l.source.clone(), pooling: l.model.pooling, notes: "Exported from BERT Lab in the browser.".into(), run, data_summary, ..Default::default() };
        Ok::<_, String>(export::export_files(&l.model.cfg, l.model.heads, tensors, &l.labels, &l.tokenizer_files, &card))
    }
    .await;
    let files = r?;
    // the same files in one archive, under a folder named for the model (last in the list)
    let folder: String = l.source.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect::<String>().split('-').filter(|p| !p.is_empty()).take(6).collect::<Vec<_>>().join("-");
    let folder = if folder.is_empty() { "bertlab-model".to_string() } else { format!("bertlab-{folder}") };
    put_model(l);
    let zip = crate::io::zip::zip_stored(&folder, &files)?;
    let mut files = files;
    files.push((format!("{folder}.zip"), zip));
    let arr = js_sys::Array::new();
    for (name, bytes) in &files {
        let pair = js_sys::Array::new();
        pair.push(&name.into());
        pair.push(&js_sys::Uint8Array::from(&bytes[..]).into());
        arr.push(&pair);
    }
    post_with(&Event::Export { files: files.iter().map(|(n, b)| (n.clone(), b.len())).collect() }, &[("files", arr.into())]);
    Ok(())
}

/// Times every kernel of one training step (forward, and backward for the parameters the last run
/// trained) on a batch of the current data, with the GPU in profiling mode; weights unchanged.
async fn profile() -> Result<(), Error> {
    let g = gpu()?;
    let mut l = take_model("timing the kernels")?;
    let r = async {
        let mut texts: Vec<String> = S.with(|s| s.borrow().data.as_ref().map(|(_, _, ds)| ds.examples.iter().take(16).map(|e| e.text.clone()).collect())).unwrap_or_default();
        if texts.is_empty() {
            texts.push("The curious kitten deftly knocked the toast off the bookshelf.".to_string());
        }
        let enc: Vec<crate::text::tokenizer::Encoded> = texts.iter().map(|t| l.tok.encode(t, None, 64)).collect::<Result<_, _>>()?;
        let refs: Vec<&crate::text::tokenizer::Encoded> = enc.iter().collect();
        let nl = l.model.heads.num_labels;
        let labels: Vec<i32> = (0..refs.len()).map(|i| if nl > 0 { (i % nl) as i32 } else { 0 }).collect();
        let mut hb = crate::train::batches::classification(&refs, &labels, l.tok.pad);
        if nl == 0 {
            hb.cls_labels = None;
        }
        let batch = hb.to_gpu(&g, &l.model.cfg)?;
        let backward = l.model.params.params.iter().any(|p| p.trainable);
        g.take_kernel_times();
        g.set_profiling(true);
        let mut step = g.begin_step("profile");
        l.model.zero_grads(&mut step);
        let rec = l.model.forward(&g, &mut step, &batch, crate::model::Mode::Eval).and_then(|_| if backward { l.model.backward(&mut step, &batch, crate::model::Mode::Eval) } else { Ok(()) });
        let done = match rec {
            Ok(()) => step.submit().await.map_err(Error::from),
            Err(e) => Err(e),
        };
        g.set_profiling(false);
        done?;
        let times = g.take_kernel_times();
        Ok::<KernelProfile, String>(KernelProfile { rows: times.iter().map(|(k, ms, n)| (k.to_string(), *ms, *n as u64)).collect(), total: times.iter().map(|t| t.1).sum::<f64>(), batch: (batch.b, batch.t), backward })
    }
    .await;
    put_model(l);
    post(Event::Profile(r?));
    Ok(())
}

async fn handle(cmd: Command, files: JsValue) -> Result<(), Error> {
    match cmd {
        Command::Init => {
            match Gpu::new().await {
                Ok(g) => {
                    let i = &g.info;
                    let limits = [
                        ("max_storage_buffer_binding_size", i.max_storage_buffer_binding_size as u64),
                        ("max_buffer_size", i.max_buffer_size as u64),
                        ("max_storage_buffers_per_shader_stage", i.max_storage_buffers_per_shader_stage as u64),
                        ("max_compute_workgroup_storage_size", i.max_compute_workgroup_storage_size as u64),
                        ("max_compute_invocations_per_workgroup", i.max_compute_invocations_per_workgroup as u64),
                    ];
                    post(Event::Gpu(AdapterSummary { summary: i.summary(), software: i.is_software, limits: limits.iter().map(|(k, v)| (k.to_string(), *v)).collect() }));
                    S.with(|s| s.borrow_mut().gpu = Some(Rc::new(g)));
                }
                Err(e) => post(Event::NoGpu { reason: e.to_string() }),
            }
            S.with(|s| s.borrow_mut().init_done = true);
            let has = load_snapshot().await.ok().flatten();
            if let Some(o) = has {
                let meta: Value = serde_json::from_str(&js_sys::Reflect::get(&o, &"meta".into()).ok().and_then(|v| v.as_string()).unwrap_or_default()).unwrap_or_default();
                let text = |k: &str| meta[k].as_str().unwrap_or_default().to_string();
                post(Event::Saved(SavedSession { step: meta["step"].as_u64().unwrap_or(0) as usize, saved_at: text("saved_at"), source: text("source"), kind: text("kind") }));
            }
            Ok(())
        }
        Command::LoadUrl { base, label } => {
            let files = fetch_model(&base).await?;
            install(&files, if label.is_empty() { base } else { label })
        }
        Command::LoadFiles => {
            let files = read_files(&js_sys::Array::from(&files)).await?;
            if !files.contains_key("config.json") {
                return Err(format!("the files you chose have no config.json (got: {}); choose a model folder's config.json, model.safetensors and tokenizer.json together", files.keys().cloned().collect::<Vec<_>>().join(", ")).into());
            }
            install(&files, "your files".into())
        }
        Command::Scratch(d) => scratch(&d).await,
        Command::Data { name, text } => {
            set_data(name, text);
            Ok(())
        }
        Command::DataFile { .. } => set_data_file(&files).await,
        Command::Pretrain(d) => pretrain(d, 0).await,
        Command::Train(d) => train(d, 0).await,
        Command::Discard => {
            let f = js_sys::Reflect::get(&js_sys::global(), &"bertlabDiscard".into()).map_err(|e| js_err(&e))?;
            let f: js_sys::Function = f.dyn_into().map_err(|_| "worker.js did not define bertlabDiscard".to_string())?;
            let p: js_sys::Promise = f.call0(&JsValue::NULL).map_err(|e| js_err(&e))?.dyn_into().map_err(|_| "bertlabDiscard did not return a promise".to_string())?;
            JsFuture::from(p).await.map_err(|e| format!("the saved session could not be deleted ({})", js_err(&e)))?;
            Ok(())
        }
        Command::Continue => match interrupted_run()? {
            (Interrupted::Train(d), step) => train(d, step).await,
            (Interrupted::Pretrain(d), step) => pretrain(d, step).await,
        },
        Command::Pause => {
            S.with(|s| s.borrow().control.pause());
            // the snapshot is written by the run when it reaches the pause between steps
            Ok(())
        }
        Command::Resume => {
            S.with(|s| s.borrow().control.resume());
            post(Event::Resumed {});
            Ok(())
        }
        Command::Cancel => {
            S.with(|s| s.borrow().control.cancel());
            Ok(())
        }
        Command::FillMask { text, k, layer, head } => fill_mask(&text, k.clamp(1, 50), layer, head).await,
        Command::Classify { texts, max_len } => classify(texts, max_len).await,
        Command::Similarity { a, b } => similarity(&a, &b).await,
        Command::StopGenerate => {
            // after the token being drawn; a second Stop (or one after the end) changes nothing
            S.with(|s| s.borrow_mut().stop_generating = true);
            Ok(())
        }
        Command::Generate { prompt, max_new, top_k, temperature, seed } => generate(&prompt, crate::train::generate::GenerateConfig { max_new, top_k, temperature, seed }).await,
        Command::Export => export_model().await,
        Command::Profile => profile().await,
        Command::Restore => restore().await,
        Command::Curves(d) => {
            S.with(|s| s.borrow_mut().curves = d);
            Ok(())
        }
    }
}

/// Entry point of www/worker.js: installs the message handler.
#[wasm_bindgen]
pub fn worker_main() {
    // a panic leaves the worker unusable: the page hears of it (with the panic's message) and starts
    // a fresh worker
    std::panic::set_hook(Box::new(|info| post(Event::Crashed { message: format!("internal error ({info})") })));
    let cb = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
        let m = e.data();
        let text = js_sys::Reflect::get(&m, &"msg".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
        let files = js_sys::Reflect::get(&m, &"files".into()).unwrap_or(JsValue::UNDEFINED);
        let cmd = match Command::from_json(&text) {
            Ok(c) => c,
            Err(e) => {
                post(Event::Error { cmd: "?".into(), message: e });
                return;
            }
        };
        wasm_bindgen_futures::spawn_local(async move {
            let name = cmd.name();
            // a command sent before the page's Init has run (model files chosen as the page opens)
            // waits for the GPU instead of failing or vanishing
            if !matches!(cmd, Command::Init) {
                while !S.with(|s| s.borrow().init_done) {
                    crate::gpu::sleep_ms(20).await;
                }
            }
            if let Err(e) = handle(cmd, files).await {
                let lost = e.is_device_lost();
                let message = if lost { format!("{e}: reload the page and restore the last snapshot (taken at most 25 steps ago).") } else { e.to_string() };
                post(Event::Error { cmd: name.into(), message });
            }
        });
    });
    scope().set_onmessage(Some(cb.as_ref().unchecked_ref()));
    cb.forget();
    post(Event::Ready {});
}
