//! The page's adapter to the session core: a dedicated Web Worker that owns the WebGPU device and
//! a [`Session`] (model, data, runs), so the page never freezes. It receives `{cmd, data, files?}`
//! messages and answers with `{ev, data, ...}` events (see `protocol`); what it adds to the session
//! is the browser's side: fetching and reading files, IndexedDB snapshots through the small
//! functions www/worker.js defines (`bertlabSave`, `bertlabLoad`, `bertlabDiscard`), and the views
//! the page draws.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::protocol::{self, DEFAULT_MODEL_ID, DEFAULT_MODEL_LABEL, DEFAULT_MODEL_URL, FIRST_MODEL, AdapterSummary, Command, EpochReport, Event, KernelCounts, ModelSummary, PageRun, PretrainSettings, PretrainStep, Restored, SavedSession, SnapshotNote, TrainSettings, TrainStep};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::session::{export, ModelCard, Loaded, Outcome, Session, Snapshot, SnapshotMeta, Store};
use crate::session::Event as RunEvent;

/// The worker's state beside the session: what the page drew and the run it asked for (saved with
/// each snapshot), and whether snapshots can be written.
#[derive(Default)]
struct Page {
    session: Option<Rc<Session>>,
    /// Init has run (with or without a GPU): commands that came before it waited for it.
    init_done: bool,
    /// Everything the page drew (curves, runs), saved with each snapshot and given back on restore.
    curves: serde_json::Value,
    /// The run the page last asked for, and the step a restored snapshot of it was taken at.
    run: Option<PageRun>,
    step: usize,
    /// Why snapshots are off (browser storage refused or full): training goes on without them.
    snapshots_off: Option<String>,
    /// Snapshots being written: a run's end waits for them before it says it is done.
    pending: usize,
    /// How many model loads were asked for: a load that a later one overtook is not installed.
    loads: u64,
    /// The model in use as its files describe it: the hub id (or folder) it came from, and the
    /// pooling its own files ask for.
    base_id: Option<String>,
    pooling: Option<(crate::session::Pooling, String)>,
    /// The next model summary continues the model before it (adapters merged).
    continues: bool,
}

thread_local! {
    static P: RefCell<Page> = RefCell::new(Page::default());
}

/// A snapshot's metadata as the page stores it: the session's record and the page's own.
#[derive(Serialize, Deserialize)]
struct PageMeta {
    #[serde(flatten)]
    meta: SnapshotMeta,
    #[serde(default)]
    curves: serde_json::Value,
    #[serde(default)]
    page_run: Option<PageRun>,
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

/// A JavaScript exception, in words.
fn js_err(e: &JsValue) -> Error {
    Error::Other(e.as_string().or_else(|| js_sys::Reflect::get(e, &"message".into()).ok().and_then(|m| m.as_string())).unwrap_or_else(|| format!("{e:?}")))
}

/// Calls the function `name` that worker.js defines, and awaits the promise it returns.
async fn call_js(name: &str, arg: Option<&JsValue>) -> Result<JsValue> {
    let f = js_sys::Reflect::get(&js_sys::global(), &name.into()).map_err(|e| js_err(&e))?;
    let f: js_sys::Function = f.dyn_into().map_err(|_| Error::Internal(format!("worker.js did not define {name}")))?;
    let r = match arg {
        Some(a) => f.call1(&JsValue::NULL, a),
        None => f.call0(&JsValue::NULL),
    };
    let p: js_sys::Promise = r.map_err(|e| js_err(&e))?.dyn_into().map_err(|_| Error::Internal(format!("{name} did not return a promise")))?;
    JsFuture::from(p).await.map_err(|e| js_err(&e))
}

fn session() -> Result<Rc<Session>> {
    P.with(|p| p.borrow().session.clone()).ok_or_else(|| Error::Usage("the GPU is not ready yet".into()))
}

fn summary(s: &Session, l: &Loaded, notes: Vec<String>) -> ModelSummary {
    let c = &l.model.cfg;
    let params = l.model.params.total_params();
    let modes = l.mode_costs();
    let info = l.describe();
    ModelSummary {
        source: l.source.clone(),
        family: format!("{} ({}), as transformers' {}", info.family, info.model_type, info.architecture),
        layer: format!("{} × [{}]{}", info.layers, info.layer, info.embedding_size.map(|e| format!("; embeddings {e} wide, projected to {}", info.hidden)).unwrap_or_default()),
        mask_token: info.mask_token.clone(),
        layers: c.num_hidden_layers,
        hidden: c.hidden_size,
        heads: c.num_attention_heads,
        vocab: c.vocab_size,
        max_len: c.max_tokens(),
        params,
        train_bytes: l.train_bytes(),
        has_lm: l.model.heads.lm,
        has_sop: l.model.heads.sop,
        labels: l.labels.clone(),
        pooling: l.model.pooling,
        modes,
        lora: c.lora.as_ref().map(|lo| format!("r = {}, alpha = {} on {}", lo.r, lo.alpha, lo.targets.join(", "))),
        causal: c.is_decoder,
        gpt2: c.body == crate::session::Body::Gpt2,
        llama: c.body == crate::session::Body::Llama,
        attention: info.attention.clone(),
        memory: info.memory.clone(),
        beside: s.peek_companion(|c| format!("{} ({})", c.source, if c.model.cfg.is_decoder { "reads left to right" } else { "reads both ways" })),
        notes,
        default_pooling: P.with(|p| p.borrow().pooling.clone()),
        base_id: P.with(|p| p.borrow().base_id.clone()),
        continues: P.with(|p| std::mem::take(&mut p.borrow_mut().continues)),
    }
}

/// A model load is asked for: its number, which it must still be when it installs.
fn new_load() -> u64 {
    P.with(|p| {
        let mut p = p.borrow_mut();
        p.loads += 1;
        p.loads
    })
}

/// What the model in use came from: the hub id (or folder) that loads it elsewhere, and the
/// pooling its own files ask for (both None for a model made or restored here).
fn set_origin(base_id: Option<String>, pooling: Option<(crate::session::Pooling, String)>) {
    P.with(|p| {
        let mut p = p.borrow_mut();
        p.base_id = base_id;
        p.pooling = pooling;
    });
}

/// No load was asked for after load `n`.
fn latest_load(n: u64) -> bool {
    P.with(|p| p.borrow().loads == n)
}

/// Tells the page about the model in use.
fn post_model(s: &Session, notes: Vec<String>) {
    if let Some(m) = s.peek(|l| summary(s, l, notes)) {
        post(Event::Model(m));
    }
}

/// Makes the model in `files` the one in use, unless load `load` was overtaken by a later one
/// (whose model is the one the person asked for last). `base_id` loads it elsewhere (a hub id).
fn install(files: &BTreeMap<String, Vec<u8>>, source: String, base_id: Option<String>, load: u64) -> Result<()> {
    if !latest_load(load) {
        return Ok(());
    }
    let s = session()?;
    let mut notes = s.load(files, None, source)?;
    if s.peek(|l| !l.model.heads.lm) == Some(true) {
        notes.insert(0, "This model has no masked-LM head (cls.predictions), so it cannot fill in [MASK] yet: pretrain with MLM on your text to train one.".to_string());
    }
    set_origin(base_id, crate::session::model_dir::sentence_pooling(files));
    post_model(&s, notes);
    Ok(())
}

/// The page's first model: a small pretrained BERT with its masked-LM head from the hub, so that
/// the masked-words demo answers at once; where the hub cannot be reached, the served default model
/// (an encoder without that head), with one line that says so. Nothing happens where a model was
/// asked for already (files chosen as the page opened, a restore).
async fn first_model(hub: &str) -> Result<()> {
    if P.with(|p| p.borrow().loads) > 0 {
        return Ok(());
    }
    let load = new_load();
    let base = format!("{}/{FIRST_MODEL}/resolve/main/", hub.trim_end_matches('/'));
    let why = match fetch_model(&base).await {
        Ok(files) => return install(&files, FIRST_MODEL.to_string(), Some(FIRST_MODEL.to_string()), load),
        Err(e) => e.to_string(),
    };
    if !latest_load(load) {
        return Ok(());
    }
    let files = fetch_model(DEFAULT_MODEL_URL).await?;
    install(&files, DEFAULT_MODEL_LABEL.to_string(), Some(DEFAULT_MODEL_ID.to_string()), load)?;
    post(Event::Message { text: format!("The hub could not be reached ({why}), so the first model is the one served with the page, {DEFAULT_MODEL_LABEL}: it has no masked-LM head, so the masked-words demo needs one trained first (panel 5).") });
    Ok(())
}


/// The model's LoRA adapters folded into its weights, in place: the plain model that the other
/// ways of fine-tuning adopt (its classifier and labels kept).
async fn merge() -> Result<()> {
    let s = session()?;
    let (source, has) = s.peek(|l| (l.source.clone(), l.model.cfg.lora.is_some())).ok_or_else(|| Error::Usage("no model is loaded".into()))?;
    if !has {
        return Err(Error::Usage("the model in use carries no LoRA adapters: there is nothing to merge".into()));
    }
    let files: BTreeMap<String, Vec<u8>> = s.export(ModelCard::default(), true).await?.into_iter().collect();
    let notes = s.load(&files, None, format!("{source}, adapters merged"))?;
    P.with(|p| p.borrow_mut().continues = true);
    post_model(&s, notes);
    Ok(())
}

/// Fetches `url`, posting progress; Ok(None) on 404.
async fn fetch_bytes(url: &str, label: &str) -> Result<Option<Vec<u8>>> {
    let resp = JsFuture::from(scope().fetch_with_str(url)).await.map_err(|e| Error::io(url, format!("{} (is the address right, and are you online?)", js_err(&e))))?;
    let resp: web_sys::Response = resp.unchecked_into();
    if resp.status() == 404 {
        return Ok(None);
    }
    if !resp.ok() {
        return Err(Error::io(url, format!("HTTP {}", resp.status())));
    }
    let total = resp.headers().get("content-length").ok().flatten().and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let body = resp.body().ok_or_else(|| Error::io(url, "empty response"))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out: Vec<u8> = Vec::new();
    let mut told = 0usize;
    loop {
        let r = JsFuture::from(reader.read()).await.map_err(|e| Error::io(url, js_err(&e)))?;
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
async fn fetch_model(base: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let config = fetch_bytes(&format!("{base}config.json"), "config.json").await?.ok_or_else(|| Error::io(format!("{base}config.json"), "not found: check the model id (and the hub address)"))?;
    let cfg_text = String::from_utf8_lossy(&config).to_string();
    crate::session::ModelConfig::from_json(&cfg_text)?;
    files.insert("config.json".to_string(), config);
    match fetch_bytes(&format!("{base}model.safetensors"), "model.safetensors").await? {
        Some(b) => {
            files.insert("model.safetensors".into(), b);
        }
        None if let Some(index) = fetch_bytes(&format!("{base}{}", export::WEIGHTS_INDEX), export::WEIGHTS_INDEX).await? => {
            // a sharded checkpoint: its index, then every shard it names
            for shard in export::shards_of(&index)? {
                let b = fetch_bytes(&format!("{base}{shard}"), &shard).await?.ok_or_else(|| Error::io(format!("{base}{shard}"), format!("not found: {} names this shard", export::WEIGHTS_INDEX)))?;
                files.insert(shard, b);
            }
            files.insert(export::WEIGHTS_INDEX.to_string(), index);
        }
        None => {
            // name what is there instead, so the message can say what to do
            let resp = JsFuture::from(scope().fetch_with_str(&format!("{base}pytorch_model.bin"))).await.ok();
            let has_bin = resp.map(|r| r.unchecked_into::<web_sys::Response>().ok()).unwrap_or(false);
            let names: Vec<&str> = if has_bin { vec!["config.json", "pytorch_model.bin"] } else { vec!["config.json"] };
            export::pick_weights_file(&names)?;
        }
    }
    let pooling = crate::session::model_dir::POOLING_CONFIG;
    for f in ["tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", export::HEAD_JSON, export::HEAD_FILE, pooling] {
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

/// Reads the File objects the page sent.
async fn read_files(files: &js_sys::Array) -> Result<BTreeMap<String, Vec<u8>>> {
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
            let buf = JsFuture::from(part.array_buffer()).await.map_err(|e| Error::io(&name, js_err(&e)))?;
            let arr = js_sys::Uint8Array::new(&buf);
            let start = bytes.len();
            bytes.resize(start + arr.length() as usize, 0);
            arr.copy_to(&mut bytes[start..]);
            at = end;
            if size > SLICE {
                post(Event::Progress { file: name.clone(), loaded: at, total: size });
            }
        }
        // a sentence-transformers folder has two files called config.json: the pooling module's is
        // told apart by what it holds
        let name = if name == "config.json" && crate::session::model_dir::is_pooling_config(&bytes) { crate::session::model_dir::POOLING_CONFIG.to_string() } else { name };
        out.insert(name, bytes);
    }
    Ok(out)
}

/// IndexedDB, through worker.js: each snapshot is written in the background (a run's checkpoint
/// events come between its steps), and the end of a run is kept too.
struct PageStore;

impl Store for PageStore {
    fn save(&self, snap: Snapshot) -> Result<()> {
        if P.with(|p| p.borrow().snapshots_off.is_some()) {
            return Ok(());
        }
        P.with(|p| p.borrow_mut().pending += 1);
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = write_snapshot(snap).await {
                // storage refused (private mode) or full (quota): say so once, keep training without
                P.with(|p| p.borrow_mut().snapshots_off = Some(e.to_string()));
                post(Event::Snapshot(SnapshotNote { off: Some(format!("Snapshots are off: {e}. Training goes on; export the model to keep it.")), ..Default::default() }));
            }
            P.with(|p| p.borrow_mut().pending -= 1);
        });
        Ok(())
    }

    fn keeps_end_of_run(&self) -> bool {
        true
    }
}

/// Waits until the snapshots being written are stored.
async fn saved() {
    while P.with(|p| p.borrow().pending) > 0 {
        crate::gpu::sleep_ms(10).await;
    }
}

/// Stores a snapshot (weights, optimizer, tokenizer, data, curves and the page's run) in IndexedDB.
async fn write_snapshot(snap: Snapshot) -> Result<()> {
    let mut meta = snap.meta;
    meta.saved_at = js_sys::Date::new_0().to_iso_string().as_string().unwrap_or_default();
    let (step, kind, saved_at) = (meta.step, meta.kind.to_string(), meta.saved_at.clone());
    let (curves, page_run) = P.with(|p| (p.borrow().curves.clone(), p.borrow().run.clone()));
    let o = js_sys::Object::new();
    set(&o, "meta", &serde_json::to_string(&PageMeta { meta, curves, page_run })?.into());
    // the data's text travels beside the metadata, not inside its JSON
    if let Some(t) = session().ok().and_then(|s| s.data(|d| d.map(|d| d.text.clone()))) {
        set(&o, "data_text", &JsValue::from_str(&t));
    }
    set(&o, "weights", &js_sys::Uint8Array::from(&snap.weights[..]).into());
    set(&o, "optimizer", &js_sys::Uint8Array::from(&snap.optimizer[..]).into());
    let toks = js_sys::Array::new();
    for (n, b) in &snap.tokenizer_files {
        toks.push(&js_sys::Array::of2(&n.into(), &js_sys::Uint8Array::from(&b[..]).into()));
    }
    set(&o, "tokenizer", &toks);
    call_js("bertlabSave", Some(&o)).await.map_err(|e| Error::io("IndexedDB", format!("the session could not be stored ({e})")))?;
    post(Event::Snapshot(SnapshotNote { off: None, step, kind, saved_at }));
    Ok(())
}

/// The snapshot stored in this browser, if any: its metadata (parsed and checked) and the object,
/// with its weights and optimizer bytes when `full` (else they stay Blobs in the browser's store).
async fn load_snapshot(full: bool) -> Result<Option<(PageMeta, js_sys::Object)>> {
    let v = call_js("bertlabLoad", Some(&JsValue::from_bool(full))).await?;
    if v.is_null() || v.is_undefined() {
        return Ok(None);
    }
    let o: js_sys::Object = v.unchecked_into();
    let text = js_sys::Reflect::get(&o, &"meta".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
    let meta = SnapshotMeta::parse(&text)?;
    let page: PageMeta = serde_json::from_str(&text)?;
    Ok(Some((PageMeta { meta, ..page }, o)))
}

fn bytes_of(o: &js_sys::Object, k: &str) -> Vec<u8> {
    js_sys::Reflect::get(o, &k.into()).ok().filter(|v| !v.is_undefined()).map(|v| js_sys::Uint8Array::new(&v).to_vec()).unwrap_or_default()
}

async fn restore() -> Result<()> {
    let s = session()?;
    let (page, o) = load_snapshot(true).await?.ok_or_else(|| Error::Usage("there is no saved session in this browser".into()))?;
    let mut tokenizer_files = Vec::new();
    if let Ok(arr) = js_sys::Reflect::get(&o, &"tokenizer".into()) {
        for pair in js_sys::Array::from(&arr).iter() {
            let pair = js_sys::Array::from(&pair);
            tokenizer_files.push((pair.get(0).as_string().unwrap_or_default(), js_sys::Uint8Array::new(&pair.get(1)).to_vec()));
        }
    }
    let snap = Snapshot { meta: page.meta, weights: bytes_of(&o, "weights"), optimizer: bytes_of(&o, "optimizer"), tokenizer_files };
    // a model being fetched as the page opened does not replace the restored one
    new_load();
    let step = s.restore(&snap)?;
    set_origin(None, None);
    let m = snap.meta;
    if let Some(name) = &m.data {
        let text = js_sys::Reflect::get(&o, &"data_text".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
        set_data(&s, name.clone(), text.into_bytes())?;
    }
    P.with(|p| {
        let mut p = p.borrow_mut();
        p.curves = page.curves.clone();
        p.run = page.page_run.clone();
        p.step = if m.finished { 0 } else { step };
    });
    post_model(&s, vec![format!("restored from the snapshot of {} (step {})", m.saved_at, m.step)]);
    post(Event::Restored(Restored { step: m.step, saved_at: m.saved_at, curves: page.curves, run: page.page_run, finished: m.finished }));
    Ok(())
}

/// Makes `bytes` the data in use and shows the page its preview; input that is no data at all is refused,
/// and the data in use (and its preview) stays.
fn set_data(s: &Session, name: String, bytes: Vec<u8>) -> Result<()> {
    let ds = s.set_data(name.clone(), bytes)?;
    let lines = s.data(|d| d.map(|d| d.lines).unwrap_or(0));
    post(Event::Data(protocol::preview(&name, &ds, lines)));
    Ok(())
}

/// A file the page did not read (too large to show): read here, once.
async fn set_data_file(files: &JsValue) -> Result<()> {
    let s = session()?;
    let f: web_sys::File = js_sys::Array::from(files).get(0).dyn_into().map_err(|_| Error::Internal("no file was sent".into()))?;
    let name = f.name();
    crate::session::dataset::check_size(f.size() as u64).map_err(|e| Error::Limit(format!("{name}: {e}")))?;
    let buf = JsFuture::from(f.array_buffer()).await.map_err(|e| Error::io(&name, format!("it could not be read: {}", js_err(&e))))?;
    let bytes = js_sys::Uint8Array::new(&buf).to_vec();
    drop(buf);
    set_data(&s, name, bytes)
}

fn set_busy(b: bool) {
    post(Event::Busy { busy: b });
}

fn kernel_counts(g: &Gpu) -> KernelCounts {
    let c = g.counters();
    KernelCounts { submits: c.submits, bytes_read_back: c.bytes_read_back, dispatches: c.dispatches.iter().map(|(k, v)| (k.to_string(), *v as u64)).collect() }
}

/// What either kind of run says when it pauses or stops.
fn post_control(e: RunEvent) {
    match e {
        RunEvent::Paused { step } => post(Event::Paused { step }),
        RunEvent::Cancelled { step } => post(Event::Stopped { step, reason: "stopped".into(), nonfinite: false }),
        _ => {}
    }
}

/// A run's end in the page: its counters, its snapshots stored, the model shown again, not busy.
async fn run_over(s: &Session) {
    post(Event::Counters(kernel_counts(s.gpu())));
    saved().await;
    post_model(s, vec![]);
    set_busy(false);
}

/// Says how a run that went non-finite ended: stopped, and its weights back where they were.
fn rolled_back(step: usize) {
    post(Event::Stopped { step, nonfinite: true, reason: format!("{}. The weights are back to where they were before this run.", Error::non_finite(step)) });
}

async fn pretrain(d: PretrainSettings, start_step: usize) -> Result<()> {
    let s = session()?;
    let texts = s.pretrain_texts()?;
    s.free()?;
    let (tok, family) = s.peek(|l| (l.tok.clone(), l.model.cfg.family)).ok_or_else(|| Error::Usage("no model is loaded".into()))?;
    let spec = crate::session::PretrainConfig { lora: d.lora_spec(family), ..d.spec(start_step) };
    P.with(|p| p.borrow_mut().run = Some(PageRun::Pretrain(d.clone())));
    set_busy(true);
    let g = s.gpu();
    g.reset_counters();
    let mut last_counts = 0;
    let r = s
        .pretrain(spec, &texts, &PageStore, &mut |e| match e {
            RunEvent::Pretrain { step, total_steps, lm_loss, sop_loss, lm_acc, sop_acc, lr, ms_per_step, eta_s, batch_outcomes, first_sequence } => {
                // the first sequence of the batch, token by token: what the model saw, what masking
                // did to it, and the original where one is predicted
                let seq = first_sequence.iter().zip(&batch_outcomes).map(|((id, label), o)| (tok.piece(*id), o.name().to_string(), if *label >= 0 { tok.piece(*label as u32) } else { String::new() })).collect();
                let count = |w: Outcome| batch_outcomes.iter().filter(|&&o| o == w).count();
                let chosen = batch_outcomes.len() - count(Outcome::NotChosen);
                let (masked, random, unchanged) = (count(Outcome::Masked), count(Outcome::Random), count(Outcome::Unchanged));
                post(Event::PretrainStep(PretrainStep { step, total: total_steps, lm: lm_loss, sop: sop_loss, lm_acc, sop_acc, lr, ms: ms_per_step, eta: eta_s, seq, chosen, masked, random, unchanged }));
                if step - last_counts >= 10 {
                    last_counts = step;
                    post(Event::Counters(kernel_counts(g)));
                }
            }
            RunEvent::Probe { step, predictions } => post(Event::Probe { step, predictions }),
            e => post_control(e),
        })
        .await;
    run_over(&s).await;
    let ran = r?;
    for m in &ran.report.messages {
        post(Event::Message { text: m.clone() });
    }
    if let Some(step) = ran.rolled_back {
        rolled_back(step);
    }
    // only now: a command sent on hearing it finds the model back in place
    post(Event::PretrainDone { steps: ran.report.lm_losses.len(), ms_per_step: ran.report.ms_per_step, stopped: ran.report.stopped.clone(), held_out: ran.report.held_out.map(|h| format!("next-word accuracy on {} lines held out of the run {:.3} (always guessing the most frequent token: {:.3})", h.texts, h.accuracy, h.unigram)) });
    Ok(())
}

async fn train(d: TrainSettings, start_step: usize) -> Result<()> {
    let s = session()?;
    s.free()?;
    P.with(|p| p.borrow_mut().run = Some(PageRun::Train(d.clone())));
    set_busy(true);
    let g = s.gpu();
    g.reset_counters();
    let (run, max_len) = (d.run.clone(), d.max_len);
    let labels = s.data(|d| d.map(|d| d.ds.labels.clone())).unwrap_or_default();
    let r = s
        .train(d.spec(start_step), &PageStore, &mut |e| match e {
            RunEvent::Plan { total_steps, train_examples, val_examples, truncated } => post(Event::Plan { run: run.clone(), total: total_steps, train: train_examples, val: val_examples, truncated, max_len }),
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
                labels: labels.clone(),
            })),
            e => post_control(e),
        })
        .await;
    run_over(&s).await;
    let ran = r?.ran;
    match ran.rolled_back {
        Some(step) => rolled_back(step),
        None => post(Event::Done { run: d.run, steps: ran.report.steps, ms_per_step: ran.report.ms_per_step, stopped: ran.report.stopped.clone() }),
    }
    Ok(())
}

/// The restored snapshot's unfinished run (fine-tuning or pretraining), continued at its step.
async fn continue_run() -> Result<()> {
    let (run, step) = P.with(|p| (p.borrow().run.clone(), p.borrow().step));
    match run.filter(|_| step > 0) {
        Some(PageRun::Train(d)) => train(d, step).await,
        Some(PageRun::Pretrain(d)) if step < d.steps => pretrain(d, step).await,
        _ => Err(Error::Usage("there is no interrupted run to continue: restore a snapshot taken during one".into())),
    }
}

async fn fill_mask(text: &str, k: usize, layer: usize, head: usize) -> Result<()> {
    let s = session()?;
    post(Event::Fill(s.fill_view(text, k, layer, head).await?));
    Ok(())
}

/// Times every kernel of one training step on a batch of the current data ([`Session::profile_kernels`]).
async fn profile() -> Result<()> {
    let s = session()?;
    post(Event::Profile(s.profile_kernels().await?));
    Ok(())
}

async fn classify(texts: Vec<String>, max_len: usize) -> Result<()> {
    let s = session()?;
    let pairs: Vec<(String, Option<String>)> = texts.into_iter().map(|t| (t, None)).collect();
    let probs = s.predict(&pairs, max_len, &mut |_| {}).await?;
    let labels = s.peek(|l| l.labels.clone()).unwrap_or_default();
    post(Event::Classified { bars: probs.iter().map(|p| protocol::bars(&labels, p)).collect() });
    Ok(())
}

/// Continues `prompt` with a causal model, one `gen_token` event per token as it is chosen.
async fn generate(prompt: &str, cfg: crate::session::GenerateConfig) -> Result<()> {
    let s = session()?;
    s.free()?;
    post(Event::GenStart { prompt: prompt.to_string() });
    let t0 = crate::gpu::now_ms();
    let g = s.generate(prompt, &cfg, &mut |id, token, text| post(Event::GenToken { id, token: token.to_string(), text })).await?;
    post(Event::GenDone { text: g.text, tokens: g.ids.len(), stopped_at: g.stop.describe().to_string(), ms: crate::gpu::now_ms() - t0 });
    Ok(())
}

/// Cosine similarity of two texts' mean-pooled embeddings: an answer any encoder can give.
async fn similarity(a: &str, b: &str) -> Result<()> {
    let s = session()?;
    post(Event::Similarity { cosine: s.similarity(a, b).await? });
    Ok(())
}

async fn export_model(merge: bool) -> Result<()> {
    let s = session()?;
    let source = s.peek(|l| l.source.clone()).unwrap_or_default();
    // what it was trained on: the data in use (its name and counts)
    let data_summary = s.data(|d| d.map(|d| d.summary())).unwrap_or_default();
    // an adapter names its base as transformers and peft load it: the hub id (or folder) recorded
    // when the base was loaded; where there is none (your files, a model made here), the README
    // says to put the base's folder there
    let base_model = P.with(|p| p.borrow().base_id.clone()).unwrap_or_default();
    let adapter = s.peek(|l| l.model.cfg.lora.is_some()).unwrap_or(false) && !merge;
    let files = s.export(ModelCard { base_model, notes: "Exported from BERT Lab in the browser.".into(), data_summary, ..Default::default() }, merge).await?;
    // the same files in one archive, under a folder named for the model and what it holds (last in
    // the list): an adapter and the merged model are two different archives
    let folder: String = source.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect::<String>().split('-').filter(|p| !p.is_empty()).take(6).collect::<Vec<_>>().join("-");
    let folder = if folder.is_empty() { "bertlab-model".to_string() } else { format!("bertlab-{folder}") };
    let folder = if adapter { format!("{folder}-lora-adapter") } else if merge { format!("{folder}-merged") } else { folder };
    let zip = crate::session::zip::zip_stored(&folder, &files)?;
    let mut files = files;
    files.push((format!("{folder}.zip"), zip));
    let arr = js_sys::Array::new();
    for (name, bytes) in &files {
        arr.push(&js_sys::Array::of2(&name.into(), &js_sys::Uint8Array::from(&bytes[..]).into()));
    }
    post_with(&Event::Export { files: files.iter().map(|(n, b)| (n.clone(), b.len())).collect() }, &[("files", arr.into())]);
    Ok(())
}

/// Init: the GPU and the session on it, and the offer of a snapshot saved in this browser.
async fn init() {
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
            P.with(|p| p.borrow_mut().session = Some(Rc::new(Session::new(Rc::new(g)))));
        }
        Err(e) => post(Event::NoGpu { reason: e.to_string() }),
    }
    P.with(|p| p.borrow_mut().init_done = true);
    if let Ok(Some((page, _))) = load_snapshot(false).await {
        let m = page.meta;
        post(Event::Saved(SavedSession { step: m.step, saved_at: m.saved_at, source: m.source, kind: m.kind.to_string() }));
    }
}

async fn handle(cmd: Command, files: JsValue) -> Result<()> {
    match cmd {
        Command::Init => {
            init().await;
            Ok(())
        }
        Command::LoadUrl { base, label, id } => {
            let load = new_load();
            let files = fetch_model(&base).await?;
            install(&files, if label.is_empty() { base } else { label }, id, load)
        }
        Command::FirstModel { hub } => first_model(&hub).await,
        Command::Merge => merge().await,
        Command::LoadFiles => {
            // asked for now: a load that finishes later (the first model) does not replace it
            let load = new_load();
            let files = read_files(&js_sys::Array::from(&files)).await?;
            if files.contains_key(crate::session::model_dir::ADAPTER_CONFIG) {
                // a LoRA adapter's folder: onto the model in use, its base
                let s = session()?;
                let base = s.peek(|l| l.source.clone()).ok_or_else(|| Error::Usage("these are a LoRA adapter's files (adapter_config.json): load its base model first (the default model, or the base's files), then choose the adapter's files".into()))?;
                let notes = s.adapt(&files, format!("your LoRA adapter on {base}")).await?;
                post_model(&s, notes);
                return Ok(());
            }
            if !files.contains_key("config.json") {
                return Err(Error::Data { line: 0, message: format!("the files you chose have no config.json (got: {}); choose a model folder's config.json, model.safetensors and tokenizer.json together", files.keys().cloned().collect::<Vec<_>>().join(", ")) });
            }
            install(&files, "your files".into(), None, load)
        }
        Command::Scratch(d) => {
            let s = session()?;
            new_load();
            let l = Loaded::scratch(s.gpu(), &d.spec(), &s.pretrain_texts()?)?;
            // a vocabulary is as large as the text allows: say so when it is smaller than asked
            let got = l.tok.vocab_size;
            s.install(l)?;
            set_origin(None, None);
            let notes = if got < d.vocab { vec![format!("vocabulary {got}, not the {} asked for: the data's text holds only enough distinct words and word pieces for {got} entries (a larger text gives a larger one)", d.vocab)] } else { vec![] };
            post_model(&s, notes);
            Ok(())
        }
        Command::Data { name, text } => set_data(&*session()?, name, text.into_bytes()),
        Command::DataFile { .. } => set_data_file(&files).await,
        Command::Pretrain(d) => pretrain(d, 0).await,
        Command::Train(d) => train(d, 0).await,
        Command::Discard => {
            call_js("bertlabDiscard", None).await.map_err(|e| Error::io("IndexedDB", format!("the saved session could not be deleted ({e})")))?;
            // said once it is done (the command may wait behind a model still loading)
            post(Event::Message { text: "The saved session is deleted: the next visit starts fresh.".into() });
            Ok(())
        }
        Command::Continue => continue_run().await,
        // the snapshot of a pause is written by the run when it reaches the pause between steps
        Command::Pause => Ok(session()?.control().pause()),
        Command::Resume => {
            session()?.control().resume();
            post(Event::Resumed {});
            Ok(())
        }
        Command::Cancel => Ok(session()?.control().cancel()),
        Command::FillMask { text, k, layer, head } => fill_mask(&text, k.clamp(1, 50), layer, head).await,
        Command::Classify { texts, max_len } => classify(texts, max_len).await,
        Command::Similarity { a, b } => similarity(&a, &b).await,
        // after the token being drawn; a second Stop (or one after the end) changes nothing
        Command::StopGenerate => Ok(session()?.stop_generating()),
        Command::Generate { prompt, max_new, top_k, temperature, seed } => generate(&prompt, crate::session::GenerateConfig { max_new, top_k, temperature, seed }).await,
        Command::Export { merge } => export_model(merge).await,
        Command::Profile => profile().await,
        Command::Restore => restore().await,
        Command::Curves(d) => {
            P.with(|p| p.borrow_mut().curves = d);
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
                while !P.with(|p| p.borrow().init_done) {
                    crate::gpu::sleep_ms(20).await;
                }
            }
            if let Err(e) = handle(cmd, files).await {
                let lost = e.is_device_lost();
                let message = if lost { format!("{e}: reload the page and restore the last snapshot (taken at most {} steps ago).", protocol::CHECKPOINT_EVERY) } else { e.to_string() };
                post(Event::Error { cmd: name.into(), message });
            }
        });
    });
    scope().set_onmessage(Some(cb.as_ref().unchecked_ref()));
    cb.forget();
    post(Event::Ready {});
}
