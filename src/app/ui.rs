//! The page, in Leptos (client-side rendering). It owns no GPU: every model operation is a message
//! to the worker (www/worker.js -> `worker_main`), and every event it sends back updates signals.
//! Everything the user typed or uploaded is rendered as text (Leptos escapes it), never as HTML.

use std::cell::RefCell;

use leptos::prelude::*;
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::protocol::{self, DEFAULT_MODEL_ID, DEFAULT_MODEL_LABEL, DEFAULT_MODEL_URL, FIRST_MODEL, AdapterSummary, Bar, Command, FillView, NextWords, KernelCounts, KernelProfile, DataPreview, Event, FieldError, ModelBounds, ModelSummary, PageRun, PretrainSettings, PretrainStep, SavedSession, SnapshotNote, TrainStep};
use crate::session::MEMORY_BATCH;

const DEFAULT_HUB: &str = "https://huggingface.co";

/// The hub this page's server lets it reach (scripts/serve.py answers /hub.json), or the public one.
async fn server_hub() -> String {
    // a link may name the hub (?hub=...): the page then fetches from it (where its server allows)
    let asked = web_sys::window().and_then(|w| w.location().search().ok()).and_then(|q| web_sys::UrlSearchParams::new_with_str(&q).ok()).and_then(|p| p.get("hub"));
    if let Some(h) = asked.filter(|h| h.starts_with("http")) {
        return h;
    }
    let hub = fetch_text("hub.json").await.ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()).and_then(|v| v["hub"].as_str().map(str::to_string));
    hub.filter(|h| h.starts_with("http")).unwrap_or_else(|| DEFAULT_HUB.to_string())
}

pub const DEMO_TEXT: &str = "The curious kitten deftly [MASK] the bookshelf.";

thread_local! {
    static WORKER: RefCell<Option<web_sys::Worker>> = const { RefCell::new(None) };
    /// How many workers this page has started: events of a replaced worker are ignored.
    static GENERATION: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A worker that fails this many times is not restarted again: the page asks for a reload.
const MAX_RESTARTS: u32 = 3;

thread_local! {
    /// How many commands the page has sent (what the component tests read).
    static SENT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many commands the page has sent so far.
pub fn commands_sent() -> usize {
    SENT.with(|s| s.get())
}

thread_local! {
    /// The page's state, for what runs outside a component (sending a command from a task).
    static STATE: std::cell::Cell<Option<St>> = const { std::cell::Cell::new(None) };
    /// The panel whose command was sent last: where its error is shown.
    static PANEL: std::cell::Cell<&'static str> = const { std::cell::Cell::new("") };
}

/// The panel a command comes from ("" for the page's own housekeeping).
fn panel_of(cmd: &Command) -> Option<&'static str> {
    Some(match cmd {
        Command::LoadUrl { .. } | Command::LoadFiles | Command::Scratch(_) | Command::FirstModel { .. } => "model",
        Command::Merge => "finetune",
        Command::Data { .. } | Command::DataFile { .. } => "data",
        Command::Pretrain(_) => "pretrain",
        Command::Train(_) | Command::Continue => "finetune",
        Command::FillMask { .. } | Command::Generate { .. } => "mask",
        Command::Classify { .. } | Command::Similarity { .. } => "classify",
        Command::Export { .. } => "export",
        _ => return None,
    })
}

/// Sends a command (as JSON in `msg`, and `files`, File objects, when given) to the worker; its
/// error is shown in the panel it comes from.
fn send(cmd: Command, files: Option<JsValue>) {
    match panel_of(&cmd) {
        Some(p) => send_from(p, cmd, files),
        None => post_command(cmd, files),
    }
}

/// Sends a command from the panel `panel` (where its error is shown): a new run or load there
/// makes that panel's earlier status and messages stale, so they go.
fn send_from(panel: &'static str, cmd: Command, files: Option<JsValue>) {
    PANEL.with(|c| c.set(panel));
    if let Some(st) = STATE.with(|s| s.get()) {
        if matches!(cmd, Command::Pretrain(_) | Command::Train(_) | Command::LoadUrl { .. } | Command::LoadFiles | Command::Scratch(_) | Command::Merge) {
            st.messages.update(|m| m.retain(|(p, _)| *p != panel));
        }
    }
    post_command(cmd, files)
}

fn post_command(cmd: Command, files: Option<JsValue>) {
    SENT.with(|s| s.set(s.get() + 1));
    WORKER.with(|w| {
        if let Some(w) = w.borrow().as_ref() {
            let o = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&o, &"msg".into(), &cmd.to_json().into());
            if let Some(f) = files {
                let _ = js_sys::Reflect::set(&o, &"files".into(), &f);
            }
            let _ = w.post_message(&o);
        }
    });
}

/// One fine-tuning run's curves.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Run {
    pub name: String,
    pub total: usize,
    /// (step, training loss)
    pub steps: Vec<(f64, f64)>,
    /// (step at the epoch's end, train loss, validation loss, validation accuracy)
    pub epochs: Vec<(f64, f64, f64, f64)>,
}

#[derive(Clone, Copy)]
pub struct St {
    pub gpu: RwSignal<Option<AdapterSummary>>,
    pub nogpu: RwSignal<Option<String>>,
    pub model: RwSignal<Option<ModelSummary>>,
    pub progress: RwSignal<Option<(String, f64, f64)>>,
    pub data: RwSignal<Option<DataPreview>>,
    pub busy: RwSignal<bool>,
    pub paused: RwSignal<bool>,
    /// The status line, and the panel it is about ("" for the page): shown in that panel.
    pub status: RwSignal<(&'static str, String)>,
    pub error: RwSignal<Option<String>>,
    /// What the worker said about a run or a load, each in its panel.
    pub messages: RwSignal<Vec<(&'static str, String)>>,
    /// The data in use was brought by the person (pasted, a file), not a sample: it is not replaced
    /// without a question.
    pub data_mine: RwSignal<bool>,
    /// (step, MLM loss, SOP loss)
    pub pcurve: RwSignal<Vec<(f64, f64, f64)>>,
    /// (step, MLM accuracy, SOP accuracy) of each batch
    pub pacc: RwSignal<Vec<(f64, f64, f64)>>,
    pub pstep: RwSignal<Option<PretrainStep>>,
    /// The demo sentence's [MASK] predictions during pretraining: (step, top-k per [MASK]).
    pub probe: RwSignal<Option<(usize, Vec<Vec<(String, f32)>>)>>,
    pub runs: RwSignal<Vec<Run>>,
    pub step: RwSignal<Option<TrainStep>>,
    pub confusion: RwSignal<Option<(Vec<String>, Vec<Vec<usize>>)>>,
    pub fill: RwSignal<Option<FillView>>,
    pub classified: RwSignal<Option<Vec<Vec<Bar>>>>,
    pub similarity: RwSignal<Option<f64>>,
    pub exports: RwSignal<Vec<(String, String, usize)>>,
    pub saved: RwSignal<Option<SavedSession>>,
    pub snapshot: RwSignal<Option<SnapshotNote>>,
    pub counters: RwSignal<Option<KernelCounts>>,
    pub profile: RwSignal<Option<KernelProfile>>,
    pub last_step_ms: RwSignal<f64>,
    /// "pretrain" or "train": which panel's controls drive the current run.
    pub run_kind: RwSignal<&'static str>,
    /// The step of a restored, unfinished fine-tuning run that can be continued.
    pub continuable: RwSignal<Option<u64>>,
    /// Earlier pretraining runs' loss curves (label, (step, loss)), kept on the chart beside the
    /// current one, so a causal and a masked model trained on the same text can be compared.
    pub phistory: RwSignal<Vec<(String, Vec<(f64, f64)>)>>,
    /// The label of the current pretraining run's curve.
    pub plabel: RwSignal<String>,
    /// Whether the current pretraining run trains a causal model (next words, not [MASK]s).
    pub pcausal: RwSignal<bool>,
    /// The model in use has been trained in this page (a step ran since it was loaded or made).
    pub trained_here: RwSignal<bool>,
    /// A generation: the prompt, the tokens so far, and how it ended once it has.
    pub gen: RwSignal<Option<(String, Vec<String>, Option<String>)>>,
    /// The panel whose command failed ("" for the page): where `error` is shown.
    pub error_at: RwSignal<&'static str>,
    /// The masked-words panel's sentence, which the live view during pretraining follows.
    pub mask_text: RwSignal<String>,
    /// The sentence the live view during pretraining shows.
    pub probe_text: RwSignal<String>,
    /// A restored, unfinished pretraining run: its step and settings.
    pub pt_continuable: RwSignal<Option<(u64, PretrainSettings)>>,
    /// A model is being loaded or made: runs wait for it (the page would label them for the old one).
    pub loading: RwSignal<bool>,
    /// The model hub the page fetches from (the one its server allows).
    pub hub: RwSignal<String>,
}

/// The page's state, from the context the app provides.
fn use_st() -> St {
    expect_context::<St>()
}

impl St {
    pub fn new() -> St {
        St {
            gpu: RwSignal::new(None),
            nogpu: RwSignal::new(None),
            model: RwSignal::new(None),
            progress: RwSignal::new(None),
            data: RwSignal::new(None),
            busy: RwSignal::new(false),
            paused: RwSignal::new(false),
            status: RwSignal::new(("", String::new())),
            error: RwSignal::new(None),
            messages: RwSignal::new(Vec::new()),
            data_mine: RwSignal::new(false),
            pcurve: RwSignal::new(Vec::new()),
            pacc: RwSignal::new(Vec::new()),
            pstep: RwSignal::new(None),
            probe: RwSignal::new(None),
            runs: RwSignal::new(Vec::new()),
            step: RwSignal::new(None),
            confusion: RwSignal::new(None),
            fill: RwSignal::new(None),
            classified: RwSignal::new(None),
            similarity: RwSignal::new(None),
            exports: RwSignal::new(Vec::new()),
            saved: RwSignal::new(None),
            snapshot: RwSignal::new(None),
            counters: RwSignal::new(None),
            profile: RwSignal::new(None),
            last_step_ms: RwSignal::new(0.0),
            run_kind: RwSignal::new(""),
            continuable: RwSignal::new(None),
            phistory: RwSignal::new(Vec::new()),
            plabel: RwSignal::new(String::new()),
            pcausal: RwSignal::new(false),
            trained_here: RwSignal::new(false),
            gen: RwSignal::new(None),
            error_at: RwSignal::new(""),
            mask_text: RwSignal::new(DEMO_TEXT.to_string()),
            probe_text: RwSignal::new(DEMO_TEXT.to_string()),
            pt_continuable: RwSignal::new(None),
            loading: RwSignal::new(false),
            hub: RwSignal::new(DEFAULT_HUB.to_string()),
        }
    }
}

impl St {
    /// Sets the status line of `panel`.
    fn say(&self, panel: &'static str, text: impl Into<String>) {
        self.status.set((panel, text.into()));
    }

    /// The panel of the run under way (or of the last one).
    fn run_panel(&self) -> &'static str {
        if self.run_kind.get_untracked() == "pretrain" { "pretrain" } else { "finetune" }
    }

    /// The status line says `what` (at its start).
    fn status_is(&self, what: &[&str]) -> bool {
        self.status.with_untracked(|(_, s)| what.iter().any(|p| s.starts_with(p)))
    }
}

/// How a run ended, for the status line: finished, or stopped early and why (no rate when no step ran).
fn run_ended(what: &str, steps: usize, ms_per_step: f64, stopped: Option<String>) -> String {
    let rate = if steps > 0 { format!(", {ms_per_step:.0} ms/step") } else { String::new() };
    match stopped {
        Some(why) => format!("{what} stopped after {steps} steps ({why}){rate}"),
        None => format!("{what} finished: {steps} steps{rate}"),
    }
}

/// Predictions made with the weights before a run: gone when it ends (press Predict or Classify again).
fn stale_results(st: St) {
    st.fill.set(None);
    st.classified.set(None);
    st.similarity.set(None);
}

fn save_curves(st: St) {
    let runs = st.runs.get_untracked();
    let p = st.pcurve.get_untracked();
    let curves = json!({"runs": runs, "pretrain": p, "pacc": st.pacc.get_untracked(), "phistory": st.phistory.get_untracked(), "plabel": st.plabel.get_untracked(), "pcausal": st.pcausal.get_untracked()});
    send(Command::Curves(curves), None);
}

/// "2026-12-05T03:17:22.720Z" as "2026-12-05 03:17 UTC".
fn readable_time(iso: &str) -> String {
    match (iso.get(..10), iso.get(11..16)) {
        (Some(d), Some(t)) if iso.ends_with('Z') => format!("{d} {t} UTC"),
        _ => iso.to_string(),
    }
}

fn on_event(st: St, ev: Event, raw: &JsValue) {
    match ev {
        Event::Gpu(d) => st.gpu.set(Some(d)),
        Event::NoGpu { reason } => st.nogpu.set(Some(reason)),
        Event::Model(m) => {
            st.progress.set(None);
            st.loading.set(false);
            // results of the previous model no longer apply (a run's own model update keeps them)
            if !m.continues && !st.busy.get_untracked() && st.model.with_untracked(|old| old.as_ref().map(|o| o.source.clone())) != Some(m.source.clone()) {
                // what was said about the model before, its runs and its exports no longer hold
                st.trained_here.set(false);
                st.exports.set(Vec::new());
                st.messages.update(|v| v.retain(|(p, _)| *p == "model"));
                if !st.status_is(&["fetching", "loading"]) {
                    st.say("", "");
                }
                st.confusion.set(None);
                st.gen.set(None);
                st.pstep.set(None);
                st.step.set(None);
                st.fill.set(None);
                st.classified.set(None);
                st.probe.set(None);
                st.similarity.set(None);
            }
            if st.status_is(&["fetching", "loading"]) {
                st.say("model", "model ready");
            }
            st.model.set(Some(m));
        }
        // a pass over many texts: frozen features, validation predictions
        Event::Texts { task, done, total, per_s, eta } => st.say(st.run_panel(), format!("{task}: {done} of {total} texts, {per_s:.1} texts/s, about {eta:.0} s left")),
        Event::Progress { file, loaded, total } => st.progress.set(Some((file, loaded, total))),
        Event::Data(p) => st.data.set(Some(p)),
        Event::Busy { busy } => {
            st.busy.set(busy);
            st.paused.set(false);
        }
        Event::Paused { step } => {
            st.paused.set(true);
            st.say(st.run_panel(), format!("paused at step {step}"));
        }
        Event::Resumed {} => {
            st.paused.set(false);
            st.say(st.run_panel(), "running");
        }
        Event::PretrainStep(d) => {
            st.trained_here.set(true);
            st.pcurve.update(|c| c.push((d.step as f64, d.lm as f64, d.sop as f64)));
            st.pacc.update(|c| c.push((d.step as f64, d.lm_acc as f64, d.sop_acc as f64)));
            st.last_step_ms.set(d.ms);
            // the curves travel with the next snapshot (every CHECKPOINT_EVERY steps)
            if d.step % 5 == 0 {
                save_curves(st);
            }
            st.pstep.set(Some(d));
        }
        Event::Probe { step, predictions } => st.probe.set(Some((step, predictions))),
        Event::Plan { run, total, train, val, truncated, max_len } => {
            st.runs.update(|r| {
                r.retain(|x| x.name != run);
                r.push(Run { name: run.clone(), total, ..Default::default() });
            });
            st.say("finetune", format!("{train} training and {val} validation examples, {total} steps; {truncated} texts truncated to {max_len} tokens"));
        }
        Event::Step(d) => {
            st.trained_here.set(true);
            st.runs.update(|r| {
                if let Some(run) = r.iter_mut().find(|x| x.name == d.run) {
                    run.steps.push((d.step as f64, d.loss as f64));
                }
            });
            st.last_step_ms.set(d.ms);
            st.step.set(Some(d));
        }
        Event::Epoch(d) => {
            let last_step = st.step.get_untracked().map(|s| s.step as f64).unwrap_or(0.0);
            st.runs.update(|r| {
                if let Some(run) = r.iter_mut().find(|x| x.name == d.run) {
                    run.epochs.push((last_step, d.train_loss as f64, d.val_loss.unwrap_or(0.0) as f64, d.val_acc.unwrap_or(0.0)));
                }
            });
            st.confusion.set(Some((d.labels, d.confusion)));
            save_curves(st);
        }
        Event::Done { steps, ms_per_step, stopped, .. } => {
            stale_results(st);
            st.say("finetune", run_ended("run", steps, ms_per_step, stopped));
        }
        Event::PretrainDone { steps, ms_per_step, stopped, held_out } => {
            stale_results(st);
            let ended = run_ended("pretraining", steps, ms_per_step, stopped);
            st.say("pretrain", match held_out {
                Some(h) => format!("{ended}; {h}"),
                None => ended,
            });
        }
        Event::Stopped { step, reason, nonfinite } => {
            st.paused.set(false);
            if nonfinite {
                st.error_at.set(if st.run_kind.get_untracked() == "pretrain" { "pretrain" } else { "finetune" });
                st.error.set(Some(reason));
            }
            st.say(st.run_panel(), format!("stopped at step {step}"));
        }
        Event::Fill(d) => st.fill.set(Some(d)),
        Event::Classified { bars } => st.classified.set(Some(bars)),
        Event::Similarity { cosine } => st.similarity.set(Some(cosine)),
        // about the run under way, or else about the command sent last
        Event::Message { text } => {
            let panel = if st.busy.get_untracked() { st.run_panel() } else { PANEL.with(|c| c.get()) };
            st.messages.update(|m| m.push((panel, text)))
        }
        Event::Snapshot(d) => st.snapshot.set(Some(d)),
        Event::Saved(d) => st.saved.set(Some(d)),
        Event::Counters(d) => st.counters.set(Some(d)),
        Event::Profile(d) => st.profile.set(Some(d)),
        Event::Restored(d) => {
            st.saved.set(None);
            // a snapshot holds a model trained here
            st.trained_here.set(true);
            let c = &d.curves;
            if let Ok(runs) = serde_json::from_value::<Vec<Run>>(c["runs"].clone()) {
                st.runs.set(runs);
            }
            if let Ok(p) = serde_json::from_value::<Vec<(f64, f64, f64)>>(c["pretrain"].clone()) {
                st.pcurve.set(p);
            }
            if let Ok(p) = serde_json::from_value::<Vec<(f64, f64, f64)>>(c["pacc"].clone()) {
                st.pacc.set(p);
            }
            if let Ok(h) = serde_json::from_value::<Vec<(String, Vec<(f64, f64)>)>>(c["phistory"].clone()) {
                st.phistory.set(h);
            }
            if let Some(l) = c["plabel"].as_str() {
                st.plabel.set(l.to_string());
            }
            st.pcausal.set(c["pcausal"].as_bool().unwrap_or(false));
            st.say("", format!("session restored (step {}, saved {})", d.step, readable_time(&d.saved_at)));
            // a snapshot from the middle of a run: its settings back in the panel, and the offer to
            // finish it
            let unfinished = d.step > 0 && !d.finished;
            st.pt_continuable.set(match &d.run {
                Some(PageRun::Pretrain(p)) if unfinished && d.step < p.steps => Some((d.step as u64, p.clone())),
                _ => None,
            });
            st.continuable.set((unfinished && matches!(d.run, Some(PageRun::Train(_)))).then_some(d.step as u64));
        }
        Event::Export { .. } => {
            let files = js_sys::Reflect::get(raw, &"files".into()).unwrap_or(JsValue::UNDEFINED);
            let mut links = Vec::new();
            for pair in js_sys::Array::from(&files).iter() {
                let pair = js_sys::Array::from(&pair);
                let name = pair.get(0).as_string().unwrap_or_default();
                let bytes = pair.get(1);
                let len = js_sys::Uint8Array::new(&bytes).length() as usize;
                let parts = js_sys::Array::of1(&bytes);
                if let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence(&parts) {
                    if let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) {
                        links.push((name, url, len));
                    }
                }
            }
            st.exports.set(links);
        }
        Event::Error { message, .. } => {
            st.progress.set(None);
            st.loading.set(false);
            // next to the button that caused it; a status line about the failed work goes
            st.error_at.set(PANEL.with(|c| c.get()));
            if st.status_is(&["fetching", "loading", "pretraining:"]) {
                st.say("", "");
            }
            st.error.set(Some(message));
        }
        Event::Ready {} => {
            send(Command::Init, None);
            // the first model, from the hub this page's server allows (unless one was asked for)
            leptos::task::spawn_local(async move {
                let hub = server_hub().await;
                st.hub.set(hub.clone());
                send(Command::FirstModel { hub }, None);
            });
        }
        Event::GenStart { prompt } => st.gen.set(Some((prompt, Vec::new(), None))),
        // how the token continues the text (its space, or none), as the worker says
        Event::GenToken { text, .. } => st.gen.update(|g| {
            if let Some(g) = g {
                g.1.push(text);
            }
        }),
        Event::GenDone { tokens, stopped_at, ms, .. } => st.gen.update(|g| {
            if let Some(g) = g {
                let rate = if ms > 0.0 { tokens as f64 / (ms / 1e3) } else { 0.0 };
                g.2 = Some(format!("{tokens} tokens in {:.1} s ({rate:.1} tokens/s); stopped at {stopped_at}", ms / 1e3));
            }
        }),
        Event::Crashed { message } => worker_failed(st, message),
    }
}

/// The worker failed in a way its own error handling did not catch (a panic, an exception thrown by
/// the browser in the middle of a step): its state cannot be trusted, so it is replaced by a fresh
/// one, which offers the last snapshot. The page keeps everything the user typed.
fn worker_failed(st: St, message: String) {
    WORKER.with(|w| {
        if let Some(w) = w.borrow_mut().take() {
            w.terminate();
        }
    });
    let during = if st.busy.get_untracked() { st.step.get_untracked().map(|s| format!(" at step {}", s.step)).unwrap_or_default() } else { String::new() };
    st.busy.set(false);
    st.paused.set(false);
    st.progress.set(None);
    st.model.set(None);
    st.data.set(None);
    st.continuable.set(None);
    st.saved.set(None);
    // every worker started so far has failed
    let failures = GENERATION.with(|g| g.get());
    if failures > MAX_RESTARTS {
        st.error_at.set("");
        st.error.set(Some(format!("The training worker failed{during}: {message}. It has failed {failures} times in this page, so it was not restarted: reload the page; your last snapshot is kept in this browser.")));
        return;
    }
    st.error_at.set("");
    st.error.set(Some(format!(
        "The training worker failed{during}: {message}. A fresh worker was started: restore the last snapshot (taken at most {} steps before the failure) to continue, or load a model again.", protocol::CHECKPOINT_EVERY
    )));
    st.say("", "training worker restarted");
    if let Err(e) = start_worker(st) {
        st.error_at.set("");
        st.error.set(Some(format!("The training worker failed ({message}) and could not be restarted: {e}. Reload the page.")));
    }
}

fn start_worker(st: St) -> Result<(), String> {
    let opts = web_sys::WorkerOptions::new();
    opts.set_type(web_sys::WorkerType::Module);
    let w = web_sys::Worker::new_with_options("./worker.js", &opts).map_err(|e| format!("{e:?}"))?;
    let generation = GENERATION.with(|g| {
        g.set(g.get() + 1);
        g.get()
    });
    let current = move || GENERATION.with(|g| g.get()) == generation;
    let cb = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
        if !current() {
            return;
        }
        let m = e.data();
        let ev = js_sys::Reflect::get(&m, &"ev".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
        let data = js_sys::Reflect::get(&m, &"data".into()).ok().and_then(|v| v.as_string());
        match Event::from_parts(&ev, data.as_deref()) {
            Ok(ev) => on_event(st, ev, &m),
            Err(e) => {
                st.error_at.set("");
                st.error.set(Some(e))
            }
        }
    });
    w.set_onmessage(Some(cb.as_ref().unchecked_ref()));
    cb.forget();
    // an error that escaped the worker's own handlers (worker.js reports most of them as "crashed")
    let err = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        if !current() {
            return;
        }
        let message = e.dyn_ref::<web_sys::ErrorEvent>().map(|e| e.message()).filter(|m| !m.is_empty()).unwrap_or_else(|| "the worker script could not run".into());
        worker_failed(st, message);
    });
    w.set_onerror(Some(err.as_ref().unchecked_ref()));
    err.forget();
    WORKER.with(|x| *x.borrow_mut() = Some(w));
    Ok(())
}

/// Does this browser offer WebGPU at all? (The worker finds out whether an adapter exists.)
fn has_webgpu() -> bool {
    let nav = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    js_sys::Reflect::get(&nav, &"gpu".into()).map(|g| !g.is_undefined() && !g.is_null()).unwrap_or(false)
}

/// What the model picker does with a LoRA adapter's files.
const ADAPTER_HINT: &str = "A LoRA adapter's folder (adapter_config.json, adapter_model.safetensors, from BERT Lab or PEFT) goes onto the model in use: load its base model first, then choose the adapter's files.";

pub const NO_WEBGPU: &str = "This browser does not offer WebGPU, which BERT Lab needs to train on your GPU. Use a recent Chrome or Edge \
(on Linux, start Chrome with --enable-unsafe-webgpu --enable-features=Vulkan), or check chrome://gpu that WebGPU is not disabled. \
Nothing was lost: your data never left this page.";

// ---------- small presentational components (also tested in the browser) ----------

/// A form's parsed settings, or None with each bad field's message shown next to it.
fn checked<T>(errors: RwSignal<Vec<FieldError>>, parsed: Result<T, Vec<FieldError>>) -> Option<T> {
    match parsed {
        Ok(v) => {
            errors.set(Vec::new());
            Some(v)
        }
        Err(e) => {
            errors.set(e);
            None
        }
    }
}

/// What the page knows of the loaded model's size, for the form ranges that depend on it.
fn bounds(st: St) -> Option<ModelBounds> {
    st.model.with_untracked(|m| m.as_ref().map(|m| ModelBounds { layers: m.layers, positions: m.max_len }))
}

/// A labelled text input whose value is checked when its form is submitted: a refused value is
/// marked, with the message (naming the field and its range) next to it, until it is edited.
#[component]
pub fn Field(label: &'static str, id: &'static str, size: u32, value: RwSignal<String>, errors: RwSignal<Vec<FieldError>>) -> impl IntoView {
    let bad = move || errors.with(|e| e.iter().find(|x| x.field == id).map(|x| x.message.clone()));
    view! {
        <label class="field">{label}" "
            <input id=id size=size class:invalid=move || bad().is_some() prop:value=move || value.get()
                on:input=move |ev| { value.set(event_target_value(&ev)); errors.update(|e| e.retain(|x| x.field != id)) }/>
        </label>
        {move || bad().map(|m| view! { <span class="field-error" id=format!("{id}-error")>{m}</span> })}
    }
}

/// The error of a command this panel sent, shown in the panel (next to its buttons).
#[component]
fn PanelError(at: &'static str) -> impl IntoView {
    let st = use_st();
    move || st.error.get().filter(|_| st.error_at.get() == at).map(|e| view! { <p class="error" id="error">{e}</p> })
}

/// The status line and the messages about this panel's last run or load, shown in the panel (the
/// page's own, "", at its top); they go when a newer run or load of the panel starts, or the model
/// changes.
#[component]
fn PanelStatus(at: &'static str) -> impl IntoView {
    let st = use_st();
    let id = if at.is_empty() { "status".to_string() } else { format!("{at}-status") };
    view! {
        <p class="status" id=id role="status">{move || st.status.with(|(p, s)| if *p == at { s.clone() } else { String::new() })}</p>
        {move || {
            let said: Vec<String> = st.messages.with(|m| m.iter().filter(|(p, _)| *p == at).map(|(_, t)| t.clone()).collect());
            (!said.is_empty()).then(|| view! { <ul class="messages run-messages">{said.into_iter().map(|t| view! { <li>{t}</li> }).collect_view()}</ul> })
        }}
    }
}

/// The data preview: counts per label, every validation message with its line, the first rows.
#[component]
pub fn DataPreviewView(preview: DataPreview) -> impl IntoView {
    let counts = preview.label_counts.iter().map(|(l, n)| format!("{l}: {n}")).collect::<Vec<_>>().join(", ");
    let problem = preview.problem.clone();
    if preview.plain {
        // a corpus: what it is good for, and what a classifier needs instead
        return view! {
            <div class="preview">
                <p class="summary">{format!("{}: plain text, {} lines: ready for pretraining (panel 3)", preview.name, preview.text_lines)}</p>
                <p class="note" id="plain-note">"To fine-tune a classifier (panel 4), bring labeled rows instead: label<TAB>text, CSV with label and text columns, or JSON lines {\"text\", \"label\"}."</p>
            </div>
        }
        .into_any();
    }
    view! {
        <div class="preview">
            <p class="summary">{format!("{}: {} examples; labels: {}; {} lines of text", preview.name, preview.examples, if counts.is_empty() { "none".to_string() } else { counts }, preview.text_lines)}</p>
            {problem.map(|p| view! { <p class="error problem">{format!("Cannot fine-tune on this: {p}")}</p> })}
            <ul class="messages">
                {preview.messages.iter().map(|m| view! { <li class=if m.error { "error" } else { "warning" }>{m.text.clone()}</li> }).collect_view()}
            </ul>
            // (it scrolls: a keyboard reaches it)
            <table class="rows" tabindex="0" aria-label="the first rows of the data">
                <thead><tr><th>"line"</th><th>"label"</th><th>"text"</th></tr></thead>
                <tbody>
                    {preview.rows.iter().map(|r| view! {
                        <tr><td>{r.line}</td><td>{r.label.clone()}</td><td>{match &r.text_b { Some(b) => format!("{} ⟂ {}", r.text, b), None => r.text.clone() }}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// Probability bars, highest first.
/// A causal model's next-word guesses at each position of a sentence: each token, then the words it
/// expects next with their probabilities, most likely first.
#[component]
fn NextWords(rows: Vec<NextWords>) -> impl IntoView {
    view! {
        <table class="next-words">
            <tr><th>"after"</th><th>"the next word, most likely first"</th></tr>
            {rows.into_iter().map(|(token, guesses)| view! {
                <tr>
                    <td class="tok">{token}</td>
                    <td>{guesses.into_iter().map(|(w, p)| view! { <span class="guess" data-p=p.to_string()>{format!("{w} {p:.2}")}</span> }).collect_view()}</td>
                </tr>
            }).collect_view()}
        </table>
    }
}

/// Bars of (label, p) pairs, in their order.
fn bars_of(row: Vec<(String, f32)>) -> Vec<Bar> {
    row.into_iter().map(|(label, p)| Bar { label, p }).collect()
}

/// Top-k bars at each [MASK].
fn mask_predictions(preds: Vec<Vec<(String, f32)>>) -> impl IntoView {
    preds.into_iter().enumerate().map(|(i, row)| view! { <div class="mask-preds"><p>{format!("[MASK] #{}", i + 1)}</p><PredictionBars bars=bars_of(row)/></div> }).collect_view()
}

#[component]
pub fn PredictionBars(bars: Vec<Bar>) -> impl IntoView {
    view! {
        <div class="bars">
            {bars.into_iter().map(|b| view! {
                <div class="bar-row">
                    <span class="bar-label">{b.label.clone()}</span>
                    <span class="bar-track"><span class="bar-fill" style=format!("width: {:.1}%", 100.0 * b.p.clamp(0.0, 1.0))></span></span>
                    <span class="bar-value" data-p=b.p.to_string()>{format!("{:.3}", b.p)}</span>
                </div>
            }).collect_view()}
        </div>
    }
}

/// A line chart of several series: (name, css class, points). Every point has a marker, so a
/// series of one point (a one-epoch run's validation figures) shows. `y_range` fixes the vertical
/// axis (accuracy: 0 to 1); without it the axis spans the data and 0.
#[component]
pub fn Chart(series: Vec<(String, String, Vec<(f64, f64)>)>, #[prop(into)] title: String, #[prop(optional)] y_range: Option<(f64, f64)>) -> impl IntoView {
    let (w, h, pad) = (480.0, 200.0, 30.0);
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.iter().cloned()).filter(|p| p.1.is_finite()).collect();
    let (x0, x1) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    let (lo, hi) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| (a.0.min(p.1), a.1.max(p.1)));
    let (x0, x1) = if pts.is_empty() { (0.0, 1.0) } else { (x0, if x1 > x0 { x1 } else { x0 + 1.0 }) };
    let (y0, y1) = match y_range {
        Some(r) => r,
        None if pts.is_empty() => (0.0, 1.0),
        None => {
            let y0 = lo.min(0.0);
            (y0, if hi > y0 { hi } else { y0 + 1.0 })
        }
    };
    let sx = move |x: f64| pad + (x - x0) / (x1 - x0) * (w - 2.0 * pad);
    let sy = move |y: f64| h - pad - (y.clamp(y0, y1) - y0) / (y1 - y0) * (h - 2.0 * pad);
    // a long curve (a step per point) is a line; a short one (an epoch per point) has markers too
    let marked = |p: &[(f64, f64)]| p.len() <= 40;
    view! {
        <figure class="chart">
            <figcaption>{title.clone()}</figcaption>
            <svg viewBox=format!("0 0 {w} {h}") width="480" height="200" role="img" aria-label=title>
                <line x1=pad y1=h - pad x2=w - pad y2=h - pad class="axis"></line>
                <line x1=pad y1=pad x2=pad y2=h - pad class="axis"></line>
                <text x=2 y=pad class="tick">{format!("{y1:.2}")}</text>
                <text x=2 y=h - pad class="tick">{format!("{y0:.2}")}</text>
                <text x=w - pad y=h - 8.0 class="tick">{format!("{x1:.0}")}</text>
                {series.iter().map(|(_, class, p)| {
                    let shown: Vec<(f64, f64)> = p.iter().filter(|q| q.1.is_finite()).cloned().collect();
                    let points = shown.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect::<Vec<_>>().join(" ");
                    let markers = if marked(&shown) { shown.clone() } else { Vec::new() };
                    view! {
                        <polyline points=points class=format!("series {class}") fill="none"></polyline>
                        {markers.into_iter().map(|(x, y)| view! { <circle cx=format!("{:.1}", sx(x)) cy=format!("{:.1}", sy(y)) r="3" class=format!("marker {class}")></circle> }).collect_view()}
                    }
                }).collect_view()}
            </svg>
            <div class="legend">{series.iter().map(|(n, class, _)| view! { <span class=format!("key {class}")>{n.clone()}</span> }).collect_view()}</div>
        </figure>
    }
}

#[component]
fn Confusion(labels: Vec<String>, m: Vec<Vec<usize>>) -> impl IntoView {
    view! {
        <div class="table-wrap" tabindex="0" role="region" aria-label="confusion matrix">
        <table class="confusion">
            <caption>"Confusion matrix (rows: true label, columns: predicted)"</caption>
            <thead><tr><th scope="col">"true \\ predicted"</th>{labels.iter().map(|l| view! { <th scope="col">{l.clone()}</th> }).collect_view()}</tr></thead>
            <tbody>
                {m.iter().enumerate().map(|(i, row)| view! {
                    <tr><th scope="row">{labels.get(i).cloned().unwrap_or_default()}</th>{row.iter().enumerate().map(|(j, n)| view! { <td class=if i == j { "diag" } else { "" }>{*n}</td> }).collect_view()}</tr>
                }).collect_view()}
            </tbody>
        </table>
        </div>
    }
}

/// Attention of one head: row i = how token i attends over the tokens (the first `att.len()` of
/// `tokens`: the worker sends at most `HEATMAP_MAX`), with its colour scale.
#[component]
fn Heatmap(tokens: Vec<String>, att: Vec<Vec<f64>>) -> impl IntoView {
    let shown = att.len();
    let cut = tokens.len().saturating_sub(shown);
    view! {
        <p class="legend heat-scale" id="heat-scale">"attention: 0 "<span class="scale"></span>" 1"{(cut > 0).then(|| format!(" · the first {shown} of {} tokens", tokens.len()))}</p>
        <div class="heat-wrap" tabindex="0" role="region" aria-label="attention heatmap">
        <table class="heatmap">
            <thead><tr><th class="tok" scope="col">"↓ attends to →"</th>{tokens.iter().take(shown).map(|t| view! { <th class="tok" scope="col">{t.clone()}</th> }).collect_view()}</tr></thead>
            <tbody>
                {att.iter().enumerate().map(|(i, row)| view! {
                    <tr>
                        <th class="tok">{tokens.get(i).cloned().unwrap_or_default()}</th>
                        {row.iter().map(|&p| view! { <td style=format!("background: rgba(37, 99, 235, {:.3})", p.clamp(0.0, 1.0)) title=format!("{p:.3}") data-p=p.to_string()></td> }).collect_view()}
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        </div>
    }
}

/// Scrolls the element `id` into view (the panel a button's work shows in).
fn scroll_to(id: &str) {
    if let Some(e) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(id)) {
        e.scroll_into_view();
    }
}

/// Empties a file input (so that choosing the same file again is a change).
fn clear_input(id: &str) {
    if let Some(e) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(id)).and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok()) {
        e.set_value("");
    }
}

fn input_files(id: &str) -> Option<js_sys::Array> {
    let doc = web_sys::window()?.document()?;
    let el: web_sys::HtmlInputElement = doc.get_element_by_id(id)?.dyn_into().ok()?;
    let files = el.files()?;
    let arr = js_sys::Array::new();
    for i in 0..files.length() {
        if let Some(f) = files.get(i) {
            arr.push(&f);
        }
    }
    Some(arr)
}

async fn read_text(file: web_sys::File) -> Option<String> {
    wasm_bindgen_futures::JsFuture::from(file.text()).await.ok()?.as_string()
}

const SAMPLES: [(&str, &str); 3] = [("sentiment", "samples/sentiment.tsv"), ("topics", "samples/topics.tsv"), ("corpus", "samples/corpus.txt")];

async fn fetch_text(url: &str) -> Result<String, String> {
    let w = web_sys::window().ok_or("no window")?;
    let r = wasm_bindgen_futures::JsFuture::from(w.fetch_with_str(url)).await.map_err(|e| format!("{e:?}"))?;
    let r: web_sys::Response = r.unchecked_into();
    if !r.ok() {
        return Err(format!("{url}: HTTP {}", r.status()));
    }
    let t = wasm_bindgen_futures::JsFuture::from(r.text().map_err(|e| format!("{e:?}"))?).await.map_err(|e| format!("{e:?}"))?;
    t.as_string().ok_or_else(|| "not text".into())
}

#[component]
fn GpuPanel() -> impl IntoView {
    let st = use_st();
    view! {
        <section id="gpu-panel">
            <h2>"GPU"</h2>
            {move || match (st.gpu.get(), st.nogpu.get()) {
                (Some(g), _) => view! {
                    <div>
                        <p id="adapter">{g.summary.clone()}</p>
                        {g.software.then(|| view! { <p class="warning" id="software-warning">"This is a software (CPU) adapter: everything works, but slowly. Keep models small, or use a machine with a GPU."</p> })}
                        <details><summary>"Limits"</summary><pre>{g.limits.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n")}</pre></details>
                    </div>
                }.into_any(),
                (None, Some(r)) => view! { <p class="error" id="no-adapter">{format!("No WebGPU adapter: {r}")}</p><p>{NO_WEBGPU}</p> }.into_any(),
                _ => view! { <p>"Looking for a WebGPU adapter…"</p> }.into_any(),
            }}
            {move || st.counters.get().map(|c| {
                let mut rows = c.dispatches.clone();
                rows.sort_by(|a, b| b.1.cmp(&a.1));
                view! {
                    <details>
                        <summary>{format!("Kernels of the last run: {} submits, {} bytes read back, {:.0} ms per step", c.submits, c.bytes_read_back, st.last_step_ms.get())}</summary>
                        <p class="note">"Dispatches per kernel in the last run."</p>
                        <table>{rows.into_iter().take(20).map(|(k, n)| view! { <tr><td>{k}</td><td>{n}</td></tr> }).collect_view()}</table>
                    </details>
                }
            })}
            <p><button id="profile-run" disabled=move || st.busy.get() on:click=move |_| { st.profile.set(None); st.error.set(None); send(Command::Profile, None) }>"Time each kernel of one training step"</button></p>
            {move || st.profile.get().map(|p| view! {
                <div id="kernel-times">
                    <p class="note">{format!("One step of the current model on a {}×{} batch of your data ({}; AdamW is left out, since running it would change the weights), each kernel submitted alone and timed: {:.1} ms in all",
                        p.batch.0, p.batch.1, if p.backward { "forward and backward of what the last run trained" } else { "forward only: nothing trained yet" }, p.total)}</p>
                    <table>
                        <thead><tr><th>"kernel"</th><th>"ms"</th><th>"dispatches"</th><th>"ms per dispatch"</th></tr></thead>
                        <tbody>{p.rows.into_iter().map(|(k, ms, n)| {
                            view! { <tr><td>{k}</td><td>{format!("{ms:.2}")}</td><td>{n}</td><td>{format!("{:.3}", ms / n.max(1) as f64)}</td></tr> }
                        }).collect_view()}</tbody>
                    </table>
                </div>
            })}
        </section>
    }
}

/// What replaces the model in use, asked about first when that model was trained on the page.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Replace {
    Default,
    Hub,
    Files,
    Dropped,
    Scratch,
}

thread_local! {
    /// Files dropped on the model panel, kept while the page asks whether they may replace the model.
    static DROPPED: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

#[component]
fn ModelPanel() -> impl IntoView {
    let st = use_st();
    let hub = st.hub;
    let repo = RwSignal::new(FIRST_MODEL.to_string());
    let hidden = RwSignal::new("128".to_string());
    let layers = RwSignal::new("2".to_string());
    let heads = RwSignal::new("4".to_string());
    let vocab = RwSignal::new("2000".to_string());
    // "bert", "causal" (BERT's body, causal) or "gpt2"
    let kind = RwSignal::new("bert".to_string());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    // a model trained here (a classifier, or pretrained in this session) is not replaced without a
    // yes: what it is, and what would replace it
    let confirm = RwSignal::new(None::<(String, Replace)>);
    let replace_now = move |r: Replace| {
        confirm.set(None);
        st.error.set(None);
        match r {
            Replace::Default => {
                st.say("model", "loading all-MiniLM-L6-v2");
                st.loading.set(true);
                send(Command::LoadUrl { base: DEFAULT_MODEL_URL.into(), label: DEFAULT_MODEL_LABEL.into(), id: Some(DEFAULT_MODEL_ID.into()) }, None)
            }
            Replace::Hub => {
                let id = repo.get_untracked().trim().to_string();
                let base = format!("{}/{id}/resolve/main/", hub.get_untracked().trim_end_matches('/'));
                st.say("model", format!("fetching {id}"));
                st.loading.set(true);
                send(Command::LoadUrl { base, label: id.clone(), id: Some(id) }, None);
            }
            Replace::Files => {
                if let Some(a) = input_files("model-files") {
                    st.loading.set(true);
                    send(Command::LoadFiles, Some(a.into()));
                }
            }
            Replace::Dropped => {
                if let Some(a) = DROPPED.with(|d| d.borrow_mut().take()) {
                    st.loading.set(true);
                    send(Command::LoadFiles, Some(a));
                }
            }
            Replace::Scratch => {
                let form = protocol::ScratchForm { hidden: hidden.get_untracked(), layers: layers.get_untracked(), heads: heads.get_untracked(), vocab: vocab.get_untracked(), causal: kind.get_untracked() == "causal", gpt2: kind.get_untracked() == "gpt2", llama: kind.get_untracked() == "llama" };
                if let Some(d) = checked(errors, form.parse()) {
                    st.loading.set(true);
                    send(Command::Scratch(d), None)
                }
            }
        }
    };
    let ask = move |r: Replace| {
        st.error.set(None);
        let trained = st.trained_here.get_untracked().then(|| {
            st.model.with_untracked(|m| m.as_ref().map(|m| if m.labels.is_empty() { "a model trained on this page".to_string() } else { format!("a classifier for {}, trained on this page", m.labels.join(", ")) }).unwrap_or_default())
        });
        match trained {
            Some(what) => confirm.set(Some((what, r))),
            None => replace_now(r),
        }
    };
    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        if let Some(files) = ev.data_transfer().and_then(|d| d.files()) {
            let arr = js_sys::Array::new();
            for i in 0..files.length() {
                if let Some(f) = files.get(i) {
                    arr.push(&f);
                }
            }
            DROPPED.with(|d| *d.borrow_mut() = Some(arr.into()));
            ask(Replace::Dropped);
        }
    };
    view! {
        <section id="model-panel">
            <h2>"1. Model"</h2>
            <PanelError at="model"/>
            <PanelStatus at="model"/>
            <div class="row">
                <button id="load-default" on:click=move |_| ask(Replace::Default)>"Load the default model (all-MiniLM-L6-v2)"</button>
            </div>
            <div class="row">
                <label>"Hub " <input id="hub-url" prop:value=move || hub.get() on:input=move |ev| hub.set(event_target_value(&ev)) size="28"/></label>
                <label>"Model id " <input id="hub-id" prop:value=move || repo.get() on:input=move |ev| repo.set(event_target_value(&ev)) size="34"/></label>
                <button id="load-hub" on:click=move |_| ask(Replace::Hub)>"Fetch"</button>
            </div>
            // (one line: an adapter's files go onto the model in use, which the title says in full)
            <div class="row drop" id="model-drop" title=ADAPTER_HINT on:dragover=move |ev: web_sys::DragEvent| ev.prevent_default() on:drop=on_drop>
                <label for="model-files">"Your files, or drop them here (config.json, model.safetensors, tokenizer.json or vocab.txt; or a LoRA adapter's): "</label>
                <input type="file" id="model-files" title=ADAPTER_HINT multiple on:change=move |_| ask(Replace::Files)/>
            </div>
            <div class="row">
                <label for="scratch-kind">"From scratch: "</label>
                <select id="scratch-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                    <option value="bert" selected>"a BERT (reads both ways)"</option>
                    <option value="causal">"a GPT-style model (reads left to right; BERT's layers)"</option>
                    <option value="gpt2">"a GPT-2 (reads left to right; GPT-2's pre-LN layers)"</option>
                    <option value="llama">"a Llama / SmolLM2 (reads left to right; RMSNorm, rotary positions, SwiGLU, grouped-query attention)"</option>
                </select>
                <Field label="hidden" id="scratch-hidden" size=4 value=hidden errors=errors/>
                <Field label="layers" id="scratch-layers" size=2 value=layers errors=errors/>
                <Field label="heads" id="scratch-heads" size=2 value=heads errors=errors/>
                <Field label="vocabulary" id="scratch-vocab" size=5 value=vocab errors=errors/>
                <button id="make-scratch" on:click=move |_| ask(Replace::Scratch)>"Make it (vocabulary from your text)"</button>
            </div>
            {move || confirm.get().map(|(what, r)| {
                let new = match r {
                    Replace::Default => "Loading the default model",
                    Replace::Hub => "Fetching that model",
                    Replace::Files | Replace::Dropped => "Loading your files",
                    Replace::Scratch => "A new model",
                };
                view! {
                    <p class="confirm" id="model-confirm">{format!("The model in use is {what}. {new} replaces it, and the trained weights are gone unless you export them first (panel 7). ")}
                        <button id="model-confirm-yes" on:click=move |_| replace_now(r)>"Replace it"</button>" "
                        <button id="model-confirm-export" on:click=move |_| {
                            st.exports.set(Vec::new());
                            st.error.set(None);
                            send(Command::Export { merge: false }, None);
                            scroll_to("export-panel");
                        }>"Export first"</button>" "
                        <button id="model-confirm-no" on:click=move |_| {
                            confirm.set(None);
                            DROPPED.with(|d| d.borrow_mut().take());
                            clear_input("model-files");
                        }>"Keep it"</button>
                    </p>
                }
            })}
            {move || st.progress.get().map(|(file, a, b)| view! {
                <div class="progress"><span>{format!("{file}: {:.1} MB{}", a / 1e6, if b > 0.0 { format!(" of {:.1} MB", b / 1e6) } else { String::new() })}</span><progress max=b.max(1.0) value=a></progress></div>
            })}
            {move || st.model.get().map(|m| view! {
                <div id="model-summary">
                    <p><b>{m.source.clone()}</b></p>
                    <p class="kind">{if m.llama {
                        "a Llama-shaped decoder: pre-RMSNorm layers reading left to right, rotary positions, SwiGLU, grouped-query attention"
                    } else if m.gpt2 {
                        "GPT-2: pre-LN layers reading left to right (transformers' GPT2LMHeadModel)"
                    } else if m.causal {
                        "GPT-style: BERT's layers reading left to right (transformers' BertLMHeadModel)"
                    } else {
                        "an encoder: reads both ways"
                    }}</p>
                    <p id="model-family">{format!("{}; layers: {}{}", m.family, m.layer, m.mask_token.as_ref().map(|t| format!("; its mask token is {t}{}", if t == "[MASK]" { "" } else { " ([MASK] works too)" })).unwrap_or_default())}</p>
                    {(!m.attention.is_empty()).then(|| view! { <p id="model-attention">{format!("attention: {}", m.attention)}</p> })}
                    {(!m.memory.is_empty()).then(|| view! { <p id="model-memory">{format!("GPU memory: {}", m.memory)}</p> })}
                    <p>{format!("{} layers, hidden {}, {} heads, vocabulary {}, up to {} tokens; {:.1} M parameters; training at batch {} × {} needs about {:.0} MB of GPU memory",
                        m.layers, m.hidden, m.heads, m.vocab, m.max_len, m.params as f64 / 1e6, MEMORY_BATCH.0, MEMORY_BATCH.1.min(m.max_len), m.train_bytes as f64 / 1e6)}</p>
                    <p>{if !m.has_lm && !m.has_sop && m.labels.is_empty() { "heads: none (an encoder: pretraining with MLM adds a masked-LM head, fine-tuning a classifier)".to_string() } else { format!("heads: {}{}{}", match (m.has_lm, m.causal) { (true, true) => "next-word ", (true, false) => "masked-LM ", _ => "" }, if m.has_sop { "sentence-order " } else { "" }, if m.labels.is_empty() { "".to_string() } else { format!("classifier ({}){}", m.labels.join(", "), if m.pooling == crate::session::Pooling::Mean { ", mean pooling" } else if m.causal { ", on the last token" } else { "" }) }) }}</p>
                    {(!m.modes.is_empty()).then(|| view! {
                        <table id="mode-costs">
                            <caption>{format!("what fine-tuning trains, and the GPU memory it needs at batch {} × {}", MEMORY_BATCH.0, MEMORY_BATCH.1.min(m.max_len))}</caption>
                            <thead><tr><th>"by"</th><th>"trains"</th><th>"memory"</th></tr></thead>
                            <tbody>{m.modes.iter().map(|c| view! { <tr><td>{c.mode.clone()}</td><td>{format!("{:.2} M", c.trainable as f64 / 1e6)}</td><td>{format!("{:.0} MB", c.train_bytes as f64 / 1e6)}</td></tr> }).collect_view()}</tbody>
                        </table>
                    })}
                    {m.lora.clone().map(|l| view! { <p id="model-lora">{format!("LoRA adapters: {l}; the export writes them in PEFT's format (adapter_config.json, adapter_model.safetensors)")}</p> })}
                    {m.beside.clone().map(|b| view! { <p class="note" id="beside-model">{format!("Kept beside it, for the masked-words panel: {b}")}</p> })}
                    {m.notes.iter().map(|n| view! { <p class="note">{n.clone()}</p> }).collect_view()}
                </div>
            })}
        </section>
    }
}

/// An uploaded file larger than this is not shown in the text box (nor held by the page): the worker
/// reads it directly.
const SHOW_MAX_BYTES: f64 = 256.0 * 1024.0;

/// What replaces the data in use, asked about first when the person brought that data.
#[derive(Clone, Copy, Debug, PartialEq)]
enum NewData {
    Sample(&'static str, &'static str),
    File,
}

#[component]
fn DataPanel() -> impl IntoView {
    let st = use_st();
    let text = RwSignal::new(String::new());
    let big_file = RwSignal::new(None::<String>);
    // data sent and not yet taken: (its name, the text to show once it is, or None for a file too
    // large to show, with its note). A refused input changes nothing here.
    let pending = RwSignal::new(None::<(String, Option<String>, String)>);
    Effect::new(move |_| {
        let Some(p) = st.data.get() else { return };
        if let Some((name, shown, note)) = pending.get_untracked() {
            if name == p.name {
                pending.set(None);
                match shown {
                    Some(t) => {
                        big_file.set(None);
                        text.set(t);
                    }
                    None => {
                        text.set(String::new());
                        big_file.set(Some(note));
                    }
                }
            }
        }
        st.data_mine.set(!SAMPLES.iter().any(|(n, _)| *n == p.name));
    });
    let send_text = move |name: String, t: String| {
        pending.set(Some((name.clone(), Some(t.clone()), String::new())));
        send(Command::Data { name, text: t }, None);
    };
    let fail = move |e: String| {
        st.error_at.set("data");
        st.error.set(Some(e))
    };
    let take = move |what: NewData| {
        st.error.set(None);
        match what {
            NewData::Sample(name, url) => leptos::task::spawn_local(async move {
                match fetch_text(url).await {
                    Ok(t) => send_text(name.into(), t),
                    Err(e) => fail(e),
                }
            }),
            NewData::File => {
                let Some(f) = input_files("data-file").and_then(|a| a.get(0).dyn_into::<web_sys::File>().ok()) else { return };
                let name = f.name();
                // refused before it is read: nothing is allocated for a file over the limit
                if let Err(e) = crate::session::dataset::check_size(f.size() as u64) {
                    return fail(format!("{name}: {e}"));
                }
                if f.size() > SHOW_MAX_BYTES {
                    // too large to show and edit here: the worker reads the file itself, so the
                    // page holds no copy of it
                    let note = format!("{name} ({:.1} MB) is in use. It is too large to show here; the summary below describes it. Paste text here and press “Use this text” to use that instead.", f.size() / 1e6);
                    pending.set(Some((name.clone(), None, note)));
                    send(Command::DataFile { name }, Some(js_sys::Array::of1(&f).into()));
                    return;
                }
                leptos::task::spawn_local(async move {
                    match read_text(f).await {
                        Some(t) => send_text(name, t),
                        None => fail(format!("{name} could not be read as text")),
                    }
                });
            }
        }
    };
    // data the person brought is not replaced without a yes
    let confirm = RwSignal::new(None::<(String, NewData)>);
    let ask = move |what: NewData| {
        st.error.set(None);
        // a file over the size limit is refused at once, before any question: nothing changes
        if what == NewData::File {
            if let Some(f) = input_files("data-file").and_then(|a| a.get(0).dyn_into::<web_sys::File>().ok()) {
                if let Err(e) = crate::session::dataset::check_size(f.size() as u64) {
                    clear_input("data-file");
                    return fail(format!("{}: {e}", f.name()));
                }
            }
        }
        let theirs = st.data_mine.get_untracked().then(|| st.data.with_untracked(|d| d.as_ref().map(|d| if d.plain { format!("{} ({} lines of text)", d.name, d.text_lines) } else { format!("{} ({} examples)", d.name, d.examples) }))).flatten();
        match theirs {
            Some(old) => confirm.set(Some((old, what))),
            None => take(what),
        }
    };
    view! {
        <section id="data-panel">
            <h2>"2. Data"</h2>
            <PanelError at="data"/>
            <p>"Labeled text (TSV or CSV: label, text[, second text]; or JSON lines {\"text\", \"label\"}), or plain text (one document per line) for pretraining."</p>
            <div class="row">
                {SAMPLES.iter().map(|&(n, u)| view! { <button class="sample" id=format!("sample-{n}") on:click=move |_| ask(NewData::Sample(n, u))>{format!("Try the {n} sample")}</button> }).collect_view()}
                <label for="data-file">"or a file: "</label>
                <input type="file" id="data-file" on:change=move |_| ask(NewData::File)/>
            </div>
            {move || confirm.get().map(|(old, what)| {
                let new = match what { NewData::Sample(n, _) => format!("The {n} sample"), NewData::File => "The file you chose".to_string() };
                view! {
                    <p class="confirm" id="data-confirm">{format!("The data in use is yours: {old}. {new} replaces it; the text box keeps a copy only of text that fits it. ")}
                        <button id="data-confirm-yes" on:click=move |_| { confirm.set(None); take(what) }>"Replace it"</button>" "
                        <button id="data-confirm-no" on:click=move |_| { confirm.set(None); clear_input("data-file"); }>"Keep it"</button>
                    </p>
                }
            })}
            <label for="data-text" class="visually-hidden">"Your data: labeled rows or plain text"</label>
            <textarea id="data-text" rows="6" cols="90" placeholder="positive\tI loved it\nnegative\tthe soup was bland" prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            {move || big_file.get().map(|n| view! { <p class="note" id="big-file">{n}</p> })}
            <div><button id="use-data" on:click=move |_| { st.error.set(None); send_text("pasted text".into(), text.get()) }>"Use this text"</button></div>
            {move || st.data.get().map(|p| view! { <DataPreviewView preview=p/> })}
        </section>
    }
}

fn controls(st: St, kind: &'static str) -> impl IntoView {
    let mine = move || st.busy.get() && st.run_kind.get() == kind;
    view! {
        <span class="controls">
            <button class="pause" disabled=move || !mine() || st.paused.get() on:click=move |_| send(Command::Pause, None)>"Pause"</button>
            <button class="resume" disabled=move || !mine() || !st.paused.get() on:click=move |_| send(Command::Resume, None)>"Resume"</button>
            <button class="stop" disabled=move || !mine() on:click=move |_| send(Command::Cancel, None)>"Stop"</button>
        </span>
    }
}

/// Moves the last pretraining run's loss curve to the chart's history and labels the next run by the
/// kind of model it trains.
fn keep_pretrain_curve(st: St) {
    let last = st.pcurve.get_untracked();
    if !last.is_empty() {
        let label = st.plabel.get_untracked();
        st.phistory.update(|h| h.push((label, last.iter().map(|p| (p.0, p.1)).collect())));
    }
    st.pcurve.set(Vec::new());
    let n = st.phistory.with_untracked(|h| h.len()) + 1;
    let (causal, gpt2, llama) = st.model.with_untracked(|m| m.as_ref().map(|m| (m.causal, m.gpt2, m.llama)).unwrap_or_default());
    let what = match (causal, gpt2, llama) {
        (_, _, true) => "next-word loss (Llama-shaped)",
        (_, true, _) => "next-word loss (GPT-2)",
        (true, false, _) => "next-word loss (GPT-style)",
        _ => "MLM loss (BERT)",
    };
    st.plabel.set(format!("run {n}: {what}"));
    st.pcausal.set(causal);
}

#[component]
pub fn PretrainPanel() -> impl IntoView {
    let st = use_st();
    let mlm = RwSignal::new(true);
    let sop = RwSignal::new(true);
    let steps = RwSignal::new("100".to_string());
    let lr = RwSignal::new("0.001".to_string());
    let batch = RwSignal::new("16".to_string());
    let mode = RwSignal::new("full".to_string());
    let lora_r = RwSignal::new("8".to_string());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let start = move |_| {
        st.error.set(None);
        let form = protocol::PretrainForm { mlm: mlm.get(), sop: sop.get(), steps: steps.get(), lr: lr.get(), batch: batch.get(), mode: mode.get(), lora_r: lora_r.get() };
        // the live view reads the masked-words panel's sentence (the demo one when it has no [MASK])
        let probe = st.mask_text.with_untracked(|t| if t.contains("[MASK]") { t.clone() } else { DEMO_TEXT.to_string() });
        st.probe_text.set(probe.clone());
        let Some(settings) = checked(errors, form.parse(bounds(st), Some(probe))) else { return };
        st.continuable.set(None);
        keep_pretrain_curve(st);
        st.pacc.set(Vec::new());
        st.run_kind.set("pretrain");
        st.say("pretrain", match settings.lora_r {
            Some(r) => format!("pretraining: {} steps, LoRA adapters of rank {r} (the weights stay)", settings.steps),
            None => format!("pretraining: {} steps", settings.steps),
        });
        st.pt_continuable.set(None);
        send(Command::Pretrain(settings), None);
    };
    // a restored, unfinished run: its settings back in the fields
    Effect::new(move |_| {
        if let Some((_, d)) = st.pt_continuable.get() {
            mlm.set(d.mlm);
            sop.set(d.sop);
            steps.set(d.steps.to_string());
            lr.set(format!("{}", d.lr));
            batch.set(d.batch.to_string());
            mode.set(if d.lora_r.is_some() { "lora" } else { "full" }.to_string());
            lora_r.set(d.lora_r.unwrap_or(8).to_string());
        }
    });
    // continue it: the curve goes on where it stopped (it is not moved to the history)
    let resume_run = move |_| {
        st.error.set(None);
        if let Some((step, d)) = st.pt_continuable.get_untracked() {
            st.pt_continuable.set(None);
            st.run_kind.set("pretrain");
            st.say("pretrain", format!("pretraining: continuing from step {step} of {}", d.steps));
            send(Command::Continue, None);
        }
    };
    view! {
        <section id="pretrain-panel">
            <h2>"3. Pretrain (self-supervised)"</h2>
            <PanelError at="pretrain"/>
            <PanelStatus at="pretrain"/>
            // what this model learns from the text: a causal model has one objective
            {move || if st.model.with(|m| m.as_ref().map(|m| m.causal).unwrap_or(false)) {
                view! { <p id="pt-explain">"This model reads left to right: pretraining predicts every next word of your text from the words before it; nothing is masked, and there is no sentence order to learn. A BERT (make one from scratch in panel 1) learns differently on the same text, by masked words; earlier runs stay on the chart, so the two kinds can be compared."</p> }.into_any()
            } else {
                view! {
                    <p id="pt-explain">"Masked-LM: 15% of the tokens are chosen; of those 80% become [MASK], 10% a random token, 10% stay; the model predicts the originals. Sentence order: [CLS] A [SEP] B [SEP], and whether B really follows A."</p>
                    <p>"A GPT-style model (make one from scratch in panel 1) learns differently on the same text: it reads left to right and predicts every next word; nothing is masked. Earlier runs stay on the chart, so the two kinds can be compared."</p>
                }.into_any()
            }}
            <div class="row">
                // a causal model has one objective, the next word: no masked-LM or sentence-order boxes
                {move || if st.model.with(|m| m.as_ref().map(|m| m.causal).unwrap_or(false)) {
                    view! { <span id="pt-objective">"objective: the next word (this model reads left to right)"</span> }.into_any()
                } else {
                    view! {
                        <label><input type="checkbox" id="pt-mlm" prop:checked=move || mlm.get() on:change=move |ev| mlm.set(event_target_checked(&ev))/>" masked LM"</label>
                        <label><input type="checkbox" id="pt-sop" prop:checked=move || sop.get() on:change=move |ev| sop.set(event_target_checked(&ev))/>" sentence order"</label>
                    }.into_any()
                }}
                {move || errors.with(|e| e.iter().find(|x| x.field == "pt-mlm").map(|x| view! { <span class="field-error" id="pt-mlm-error">{x.message.clone()}</span> }))}
                <Field label="steps" id="pt-steps" size=5 value=steps errors=errors/>
                <Field label="learning rate" id="pt-lr" size=7 value=lr errors=errors/>
                <Field label="batch" id="pt-batch" size=3 value=batch errors=errors/>
                <label>"train " <select id="pt-mode" prop:value=move || mode.get() on:change=move |ev| mode.set(event_target_value(&ev))>
                    <option value="full">"every weight"</option>
                    <option value="lora">"LoRA adapters (rank r)"</option>
                </select></label>
                {move || (mode.get() == "lora").then(|| view! { <Field label="r" id="pt-lora-r" size=2 value=lora_r errors=errors/> })}
                <button id="pt-start" disabled=move || st.busy.get() || st.loading.get() on:click=start>"Pretrain"</button>
                {controls(st, "pretrain")}
            </div>
            {move || st.pt_continuable.get().map(|(step, d)| view! {
                <p><button id="pt-continue" disabled=move || st.busy.get() || st.loading.get() on:click=resume_run>{format!("Continue the restored pretraining from step {step} of {}", d.steps)}</button></p>
            })}
            {move || st.pstep.get().map(|d| view! {
                <p id="pt-status">{if st.pcausal.get() {
                    format!("step {} of {}: next-word loss {:.3} (accuracy on this batch's next words {:.3}), {:.0} ms/step, ETA {:.0} s", d.step, d.total, d.lm, d.lm_acc, d.ms, d.eta)
                } else {
                    format!("step {} of {}: MLM loss {:.3} (accuracy on this batch's masked tokens {:.3}), SOP loss {:.3} (accuracy {:.3}), {:.0} ms/step, ETA {:.0} s",
                        d.step, d.total, d.lm, d.lm_acc, d.sop, d.sop_acc, d.ms, d.eta)
                }}</p>
                <p class="note" id="pt-batch-line">{if st.pcausal.get() {
                    "this batch: every token is the target of the one before it (nothing is masked)".to_string()
                } else {
                    format!("this batch: {} tokens chosen — {} → [MASK], {} → random, {} unchanged", d.chosen, d.masked, d.random, d.unchanged)
                }}</p>
                <div class="tokens" id="pt-tokens">
                    {d.seq.into_iter().map(|(shown, outcome, orig)| {
                        let title = if orig.is_empty() { outcome.clone() } else { format!("{outcome}; original: {orig}") };
                        view! { <span class=format!("tok {}", outcome.to_lowercase()) title=title>{shown}</span> }
                    }).collect_view()}
                </div>
                {(!st.pcausal.get()).then(|| view! { <p class="legend"><span class="tok masked">"[MASK]"</span><span class="tok random">"random"</span><span class="tok unchanged">"unchanged"</span><span class="tok notchosen">"not chosen"</span></p> })}
            })}
            {move || {
                let c = st.pcurve.get();
                let history = st.phistory.get();
                let classes = ["c", "d", "a", "b"];
                let mut series: Vec<(String, String, Vec<(f64, f64)>)> = history.into_iter().enumerate().map(|(i, (l, pts))| (l, classes[i % 4].to_string(), pts)).collect();
                if !c.is_empty() {
                    let causal = st.pcausal.get();
                    series.push((st.plabel.get(), "mlm".to_string(), c.iter().map(|p| (p.0, p.1)).collect()));
                    // sentence order, when it ran (on texts of one sentence it is unavailable: no flat 0)
                    if !causal && c.iter().any(|p| p.2 != 0.0) {
                        series.push(("SOP loss".to_string(), "sop".to_string(), c.iter().map(|p| (p.0, p.2)).collect()));
                    }
                }
                (!series.is_empty()).then(|| view! { <Chart title="Pretraining loss" series=series/> })
            }}
            {move || {
                let c = st.pacc.get();
                let series = if st.pcausal.get() {
                    vec![("next-word accuracy".to_string(), "mlm".to_string(), c.iter().map(|p| (p.0, p.1)).collect())]
                } else {
                    let mut v = vec![("MLM accuracy".to_string(), "mlm".to_string(), c.iter().map(|p| (p.0, p.1)).collect())];
                    if c.iter().any(|p| p.2 != 0.0) {
                        v.push(("SOP accuracy".to_string(), "sop".to_string(), c.iter().map(|p| (p.0, p.2)).collect()));
                    }
                    v
                };
                (!c.is_empty()).then(|| view! { <Chart title="Pretraining accuracy (per batch)" series=series y_range=(0.0, 1.0)/> })
            }}
        </section>
    }
}

#[component]
pub fn FinetunePanel() -> impl IntoView {
    let st = use_st();
    let mode = RwSignal::new("full".to_string());
    let last_n = RwSignal::new("2".to_string());
    let lora_r = RwSignal::new("8".to_string());
    let lr = RwSignal::new(String::new());
    let epochs = RwSignal::new("3".to_string());
    let batch = RwSignal::new("16".to_string());
    let max_len = RwSignal::new("64".to_string());
    let pooling = RwSignal::new("cls".to_string());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    // the learning rate that suits the model in use and the mode: a model trained from scratch on
    // little data needs a rate far above a pretrained one's; the head alone learns fast
    let suggest = move || {
        let scratch = st.model.with(|m| m.as_ref().map(|m| m.source.starts_with("from scratch")).unwrap_or(false));
        match (scratch, mode.get().as_str()) {
            (_, "feature") => "0.001",
            (_, "lora") => "0.002",
            (true, _) => "0.002",
            (false, _) => "0.00005",
        }
    };
    // the field follows the suggestion until the person types a rate of their own
    let lr_auto = RwSignal::new(String::new());
    Effect::new(move |_| {
        let s = suggest().to_string();
        if lr.get_untracked() == lr_auto.get_untracked() {
            lr.set(s.clone());
        }
        lr_auto.set(s);
    });
    // the head's pooling: what the model's own files ask for, else [CLS] (a causal model: its last
    // token)
    Effect::new(move |_| {
        let p = st.model.with(|m| m.as_ref().and_then(|m| m.default_pooling.as_ref().map(|d| d.0)));
        pooling.set(if p == Some(crate::session::Pooling::Mean) { "mean" } else { "cls" }.to_string());
    });
    let start = move |_| {
        st.error.set(None);
        let n = st.runs.get_untracked().len() + 1;
        // the model's kind in the run's name: a BERT and a GPT fine-tuned on the same data share the charts
        let kind = st.model.with_untracked(|m| m.as_ref().map(|m| if m.llama { "Llama-shaped" } else if m.gpt2 { "GPT-2" } else if m.causal { "GPT-style" } else { "BERT" })).unwrap_or("model");
        let name = format!("run {n}: {kind}, {}", match mode.get().as_str() { "feature" => "feature-based".to_string(), "last" => format!("last {} layers", last_n.get().trim()), "lora" => format!("LoRA r={}", lora_r.get().trim()), _ => "all layers".to_string() });
        let form = protocol::TrainForm { mode: mode.get(), last_n: last_n.get(), lora_r: lora_r.get(), lr: lr.get(), epochs: epochs.get(), batch: batch.get(), max_len: max_len.get(), pooling: pooling.get() };
        let Some(settings) = checked(errors, form.parse(bounds(st), name)) else { return };
        st.continuable.set(None);
        st.step.set(None);
        st.run_kind.set("train");
        send(Command::Train(settings), None);
    };
    view! {
        <section id="finetune-panel">
            <h2>"4. Fine-tune a classifier"</h2>
            <PanelError at="finetune"/>
            <PanelStatus at="finetune"/>
            <div class="row">
                <label>"adopt the encoder by " <select id="ft-mode" on:change=move |ev| mode.set(event_target_value(&ev))>
                    <option value="full" selected>"fine-tuning all layers"</option>
                    <option value="last">"fine-tuning the last N layers"</option>
                    <option value="feature">"features (frozen encoder, head only)"</option>
                    <option value="lora">"LoRA adapters (rank r)"</option>
                </select></label>
                {move || (mode.get() == "last").then(|| view! { <Field label="N" id="ft-last" size=2 value=last_n errors=errors/> })}
                {move || (mode.get() == "lora").then(|| view! { <Field label="r" id="ft-lora-r" size=2 value=lora_r errors=errors/> })}
                // a causal model's [CLS] sees only itself: its head reads the last token (GPT-2's
                // only that, as transformers' GPT2ForSequenceClassification)
                {move || {
                    // GPT-2's and the Llama-shaped decoders' classes read the last token only
                    let (causal, gpt2) = st.model.with(|m| m.as_ref().map(|m| (m.causal, m.gpt2 || m.llama)).unwrap_or_default());
                    view! {
                        <label>"head on " <select id="ft-pooling" prop:value=move || pooling.get() on:change=move |ev| pooling.set(event_target_value(&ev))>
                            <option value="cls">{if causal { "the last token" } else { "[CLS] pooler" }}</option>
                            {(!gpt2).then(|| view! { <option value="mean">"mean of tokens"</option> })}
                        </select></label>
                    }
                }}
            </div>
            <div class="row">
                <Field label="learning rate" id="ft-lr" size=8 value=lr errors=errors/>
                // what suits the model in use and the mode: a model trained from scratch on little
                // data needs a rate far above a pretrained one's; the head alone learns fast
                {move || {
                    let suggest = suggest();
                    (lr.get().trim() != suggest).then(|| view! {
                        <button class="hint" id="ft-lr-hint" title="from scratch: about 2e-3; a pretrained model: 2e-5 to 5e-5; the head alone: about 1e-3; LoRA's adapters: about 2e-3" on:click=move |_| lr.set(suggest.to_string())>{format!("use {suggest} (suits this model and mode)")}</button>
                    })
                }}
                <Field label="epochs" id="ft-epochs" size=3 value=epochs errors=errors/>
                <Field label="batch" id="ft-batch" size=3 value=batch errors=errors/>
                <Field label="max length" id="ft-maxlen" size=4 value=max_len errors=errors/>
                <button id="ft-start" disabled=move || st.busy.get() || st.loading.get() on:click=start>"Fine-tune"</button>
                {controls(st, "train")}
            </div>
            // where each default came from
            {move || st.model.with(|m| m.as_ref().map(|m| {
                let head = match &m.default_pooling {
                    Some((_, from)) => format!("head on {from}"),
                    None if m.causal => "head on the last token (a causal model's only summary of the text)".to_string(),
                    None => "head on the [CLS] pooler (the model's files name no pooling)".to_string(),
                };
                let labels = if m.labels.is_empty() { String::new() } else { format!("; labels {} from its config.json (a run on other labels gets a fresh head)", m.labels.join(", ")) };
                format!("Defaults for {}: {head}{labels}; learning rate {} for this mode.", m.source, suggest())
            })).map(|t| view! { <p class="note" id="ft-defaults">{t}</p> })}
            // a model with adapters is adopted another way once they are merged: offered here, where
            // the refusal is
            {move || (st.error_at.get() == "finetune" && st.error.with(|e| e.as_ref().is_some_and(|e| e.starts_with(crate::session::ADAPTERS_CARRIED)))).then(|| view! {
                <p><button id="ft-merge" disabled=move || st.busy.get() on:click=move |_| {
                    st.error.set(None);
                    send(Command::Merge, None);
                }>"Merge the adapters into the weights (then any way of fine-tuning adopts it; export the adapter first to keep it)"</button></p>
            })}
            {move || st.continuable.get().map(|step| view! {
                <p><button id="ft-continue" disabled=move || st.busy.get() || st.loading.get() on:click=move |_| {
                    st.error.set(None);
                    st.continuable.set(None);
                    st.step.set(None);
                    st.run_kind.set("train");
                    send(Command::Continue, None);
                }>{format!("Continue the restored run from step {step}")}</button></p>
            })}
            {move || st.step.get().map(|d| view! {
                <p id="ft-status">{format!("step {} of {}: loss {:.4}, {:.2} steps/s{}", d.step, d.total, d.loss, 1e3 / d.ms.max(1e-3), if st.busy.get() { format!(", ETA {:.0} s", d.eta) } else { String::new() })}</p>
            })}
            {move || {
                let runs = st.runs.get();
                (!runs.is_empty()).then(|| {
                    let classes = ["a", "b", "c", "d", "e", "f", "g", "h"];
                    let mut loss = Vec::new();
                    let mut acc = Vec::new();
                    for (i, r) in runs.iter().enumerate() {
                        let c = classes[i % classes.len()];
                        loss.push((format!("{}: train loss", r.name), format!("{c} train"), r.steps.clone()));
                        loss.push((format!("{}: validation loss", r.name), format!("{c} val"), r.epochs.iter().map(|e| (e.0, e.2)).collect()));
                        acc.push((format!("{}: validation accuracy", r.name), format!("{c} val"), r.epochs.iter().map(|e| (e.0, e.3)).collect()));
                    }
                    // each run's last validation accuracy, as a number
                    let figures: Vec<String> = runs.iter().filter_map(|r| r.epochs.last().map(|e| format!("{}: {:.3} after {} epoch{}", r.name, e.3, r.epochs.len(), if r.epochs.len() == 1 { "" } else { "s" }))).collect();
                    view! {
                        <div class="charts">
                            <Chart title="Loss (all runs)" series=loss/>
                            <Chart title="Validation accuracy (all runs)" series=acc y_range=(0.0, 1.0)/>
                        </div>
                        {(!figures.is_empty()).then(|| view! { <p id="ft-accuracy">{format!("validation accuracy: {}", figures.join("; "))}</p> })}
                    }
                })
            }}
            {move || st.confusion.get().map(|(l, m)| view! { <Confusion labels=l m=m/> })}
        </section>
    }
}

#[component]
fn MaskPanel() -> impl IntoView {
    let st = use_st();
    let text = st.mask_text;
    let layer = RwSignal::new("0".to_string());
    let head = RwSignal::new("0".to_string());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let prompt = RwSignal::new("The curious kitten".to_string());
    // words, top-k, temperature, seed: greedy by default
    let gen_form = (RwSignal::new("20".to_string()), RwSignal::new("1".to_string()), RwSignal::new("1.0".to_string()), RwSignal::new("42".to_string()));
    let gen_errors = RwSignal::new(Vec::<FieldError>::new());
    let gen_stopping = RwSignal::new(false);
    let run = move || {
        // the layer and head exist in the loaded model (or are refused next to their fields)
        let (layers, heads) = st.model.with_untracked(|m| m.as_ref().map(|m| (m.layers, m.heads))).unwrap_or((64, 64));
        let l = protocol::whole("att-layer", "the layer", &layer.get_untracked(), 0, layers.saturating_sub(1));
        let h = protocol::whole("att-head", "the head", &head.get_untracked(), 0, heads.saturating_sub(1));
        match (l, h) {
            (Ok(layer), Ok(head)) => {
                errors.set(Vec::new());
                send(Command::FillMask { text: text.get_untracked(), k: 5, layer, head }, None)
            }
            (l, h) => errors.set(l.err().into_iter().chain(h.err()).collect()),
        }
    };
    view! {
        <section id="mask-panel">
            <h2>"5. Masked words"</h2>
            <PanelError at="mask"/>
            <PanelStatus at="mask"/>
            <div class="row">
                <input id="mask-text" aria-label="A sentence with [MASK] where a word is hidden" size="60" prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))/>
                <Field label="layer" id="att-layer" size=2 value=layer errors=errors/>
                <Field label="head" id="att-head" size=2 value=head errors=errors/>
                <button id="mask-run" on:click=move |_| { st.fill.set(None); st.error.set(None); run() }>"Predict"</button>
            </div>
            {move || st.model.get().filter(|m| m.causal).map(|_| view! {
                <div id="gen-panel">
                    <p class="note">"This model is GPT-style: it continues a text one word at a time, each drawn from its prediction of the next word given the words before it. With top-k 1 that is always the most likely word (greedy); with a larger k, one of the k most likely, picked at random with the temperature sharpening (below 1) or flattening (above 1) the odds. The same seed gives the same text."</p>
                    <div class="row">
                        <input id="gen-prompt" aria-label="The text to continue" size="40" prop:value=move || prompt.get() on:input=move |ev| prompt.set(event_target_value(&ev))/>
                        <Field label="words" id="gen-max-new" size=3 value=gen_form.0 errors=gen_errors/>
                        <Field label="top-k" id="gen-top-k" size=3 value=gen_form.1 errors=gen_errors/>
                        <Field label="temperature" id="gen-temperature" size=4 value=gen_form.2 errors=gen_errors/>
                        <Field label="seed" id="gen-seed" size=6 value=gen_form.3 errors=gen_errors/>
                        <button id="gen-run" disabled=move || st.busy.get() || st.gen.with(|g| matches!(g, Some((_, _, None)))) on:click=move |_| {
                            st.error.set(None);
                            let form = protocol::GenerateForm { max_new: gen_form.0.get_untracked(), top_k: gen_form.1.get_untracked(), temperature: gen_form.2.get_untracked(), seed: gen_form.3.get_untracked() };
                            if let Some(c) = checked(gen_errors, form.parse()) {
                                st.gen.set(None);
                                gen_stopping.set(false);
                                send(Command::Generate { prompt: prompt.get_untracked(), max_new: c.max_new, top_k: c.top_k, temperature: c.temperature, seed: c.seed }, None)
                            }
                        }>"Continue the text"</button>
                    </div>
                </div>
            })}
            {move || st.gen.get().map(|(p, toks, done)| view! {
                <p id="gen-output"><span class="prompt">{p}</span>
                    {toks.into_iter().map(|t| view! { <span class="gen-token">{t}</span> }).collect_view()}
                </p>
                {match done {
                    Some(d) => view! { <p class="note" id="gen-done">{d}</p> }.into_any(),
                    // while it runs: Stop (pressed, it says so and cannot be pressed again)
                    None => view! {
                        <button id="gen-stop" disabled=move || gen_stopping.get() on:click=move |_| {
                            gen_stopping.set(true);
                            send(Command::StopGenerate, None)
                        }>{move || if gen_stopping.get() { "Stopping after this word…" } else { "Stop" }}</button>
                    }.into_any(),
                }}
            })}
            {move || st.probe.get().map(|(step, predictions)| view! {
                <div id="probe"><p class="note">{format!("live, during pretraining (step {step}): \"{}\"", st.probe_text.get())}</p>
                {predictions.into_iter().map(|row| {
                    let bars: Vec<Bar> = row.into_iter().map(|(label, p)| Bar { label, p }).collect();
                    view! { <PredictionBars bars=bars/> }
                }).collect_view()}</div>
            })}
            {move || st.fill.get().map(|d| {
                let att: Vec<Vec<f64>> = d.attention.iter().map(|r| r.iter().map(|&x| x as f64).collect()).collect();
                let tokens = d.tokens.clone();
                view! {
                    <div id="fill-result">
                        {d.note.clone().map(|n| view! { <p class="warning" id="no-mlm">{n}</p> })}
                        {st.model.get_untracked().filter(|m| !m.has_lm).map(|_| view! {
                            <p><button id="train-mlm-head" disabled=move || st.busy.get() on:click=move |_| {
                                st.error.set(None);
                                keep_pretrain_curve(st);
                                st.pacc.set(Vec::new());
                                st.run_kind.set("pretrain");
                                // its error (no data, say) is shown here, beside the button
                                send_from("mask", Command::Pretrain(PretrainSettings { mlm: true, sop: false, steps: 100, lr: 0.001, batch: 16, max_len: 64, probe: Some(DEMO_TEXT.into()), probe_every: 5, lora_r: None }), None);
                            }>"Train a masked-LM head on my text (100 steps; the data panel's text)"</button></p>
                        })}
                        {mask_predictions(d.predictions.clone())}
                        {d.next.clone().map(|rows| view! {
                            <div id="next-view"><p class="note">"Next word at each position, from the words before it only (the sentence up to its [MASK]; the last row is the guess for the [MASK])."</p><NextWords rows=rows/></div>
                        })}
                        {d.beside.clone().map(|b| view! {
                            <div id="beside">
                                <p><b>{format!("Beside it, the other kind of model: {}", b.source)}</b></p>
                                <p class="note">{if b.causal {
                                    "It reads left to right: at each position it guesses the next word from the words before it only."
                                } else {
                                    "It reads both ways: it fills the [MASK] from the words on both sides."
                                }}</p>
                                {b.error.map(|e| view! { <p class="warning">{e}</p> })}
                                {b.note.map(|n| view! { <p class="note">{n}</p> })}
                                {b.next.map(|rows| view! { <NextWords rows=rows/> })}
                                {mask_predictions(b.predictions)}
                            </div>
                        })}
                        <p>{format!("Attention of layer {} head {} (of {} layers × {} heads); each row sums to 1", d.layer, d.head, d.layers, d.heads)}</p>
                        {d.causal.then(|| view! { <p class="note" id="causal-note">"Causal attention: each token looks only at itself and the tokens before it, so everything above the diagonal is 0 (the triangle). A BERT's attention fills the whole square."</p> })}
                        <Heatmap tokens=tokens att=att/>
                    </div>
                }
            })}
        </section>
    }
}

#[component]
fn ClassifyPanel() -> impl IntoView {
    let st = use_st();
    let text = RwSignal::new("the soup was not bland at all, I loved it".to_string());
    let a = RwSignal::new("A kitten is sleeping on the shelf.".to_string());
    let b = RwSignal::new("A small cat naps on the bookcase.".to_string());
    view! {
        <section id="classify-panel">
            <h2>"6. Classify"</h2>
            <PanelError at="classify"/>
            <PanelStatus at="classify"/>
            <div class="row">
                <input id="cls-text" aria-label="A text to classify" size="60" prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))/>
                <button id="cls-run" on:click=move |_| { st.classified.set(None); st.error.set(None); send(Command::Classify { texts: vec![text.get()], max_len: 128 }, None) }>"Classify"</button>
            </div>
            {move || st.classified.get().map(|rows| {
                let bars = rows.into_iter().next().unwrap_or_default();
                view! { <div id="cls-result"><PredictionBars bars=bars/></div> }
            })}
            <div class="row">
                "Any encoder, even without heads: how similar are two sentences (cosine of mean-pooled embeddings)? "
                <input id="sim-a" aria-label="First sentence to compare" size="34" prop:value=move || a.get() on:input=move |ev| a.set(event_target_value(&ev))/>
                <input id="sim-b" aria-label="Second sentence to compare" size="34" prop:value=move || b.get() on:input=move |ev| b.set(event_target_value(&ev))/>
                <button id="sim-run" on:click=move |_| { st.similarity.set(None); st.error.set(None); send(Command::Similarity { a: a.get(), b: b.get() }, None) }>"Compare"</button>
                {move || st.similarity.get().map(|c| view! { <span id="sim-result">{format!("cosine {c:.4}")}</span> })}
            </div>
        </section>
    }
}

#[component]
fn ExportPanel() -> impl IntoView {
    let st = use_st();
    view! {
        <section id="export-panel">
            <h2>"7. Export"</h2>
            <PanelError at="export"/>
            <PanelStatus at="export"/>
            // what loads the export: a plain model alone, an adapter with peft on its base
            <p id="export-what">{move || st.model.with(|m| match m.as_ref().map(|m| (m.lora.is_some(), m.base_id.clone())) {
                Some((true, base)) => format!("The model carries LoRA adapters: “Export the model” writes the adapter in PEFT's format, which peft loads onto its base ({}) with PeftModel.from_pretrained(base, <folder>); “Export with the adapters merged” writes a plain model that transformers' from_pretrained(<folder>) loads alone.", match base { Some(b) => format!("“{b}”"), None => "the folder of the base model's files you loaded; its README says where to put it".to_string() }),
                _ => "Hugging Face format: transformers' from_pretrained(<folder>) loads the folder (AutoModelForSequenceClassification for a classifier).".to_string(),
            })}" Download the archive (one folder of every file), or the files one by one into one folder."</p>
            <button id="export-run" on:click=move |_| { st.exports.set(Vec::new()); st.error.set(None); send(Command::Export { merge: false }, None) }>"Export the model"</button>
            {move || st.model.with(|m| m.as_ref().map(|m| m.lora.is_some()).unwrap_or(false)).then(|| view! {
                <button id="export-merged" on:click=move |_| { st.exports.set(Vec::new()); st.error.set(None); send(Command::Export { merge: true }, None) }>"Export with the adapters merged"</button>
            })}
            {move || st.exports.get().into_iter().filter(|(n, _, _)| n.ends_with(".zip")).map(|(n, url, len)| view! {
                <p><a id="export-zip" href=url download=n.clone()>{format!("Download all: {n}")}</a>{format!(" ({:.1} MB)", len as f64 / 1e6)}</p>
            }).collect_view()}
            <ul id="export-files">
                {move || st.exports.get().into_iter().filter(|(n, _, _)| !n.ends_with(".zip")).map(|(n, url, len)| view! { <li><a href=url download=n.clone()>{n.clone()}</a>{format!(" ({len} bytes)")}</li> }).collect_view()}
            </ul>
            {move || st.snapshot.get().map(|s| match s.off {
                Some(off) => view! { <p class="error" id="snapshot-status">{off}</p> }.into_any(),
                None => view! { <p class="note" id="snapshot-status">{format!("session saved in this browser at step {} ({})", s.step, readable_time(&s.saved_at))}</p> }.into_any(),
            })}
        </section>
    }
}

#[component]
pub fn App() -> impl IntoView {
    let st = St::new();
    // every panel reads the page's state from context (use_st), not from a prop
    provide_context(st);
    STATE.with(|s| s.set(Some(st)));
    if !has_webgpu() {
        st.nogpu.set(Some(NO_WEBGPU.to_string()));
        return view! {
            <header><h1>"BERT Lab"</h1></header>
            <main><p class="error" id="no-webgpu">{NO_WEBGPU}</p></main>
        }
        .into_any();
    }
    if let Err(e) = start_worker(st) {
        st.error.set(Some(format!("could not start the training worker: {e}")));
    }
    view! {
        <header>
            <h1>"BERT Lab"</h1>
            <p>"Pretrain, fine-tune and probe a BERT in your browser, on your GPU. Nothing you type or upload leaves this page."</p>
        </header>
        <main>
            {move || st.saved.get().map(|s| view! {
                <div class="restore" id="restore-offer">
                    {format!("A session from {} (step {}, {}) is saved in this browser. ", readable_time(&s.saved_at), s.step, s.source)}
                    <button id="restore" on:click=move |_| send(Command::Restore, None)>"Restore it"</button>
                    <button id="start-fresh" on:click=move |_| { st.saved.set(None); send(Command::Discard, None) }>"Start fresh (delete it)"</button>
                </div>
            })}
            {move || st.error.get().filter(|_| st.error_at.get().is_empty()).map(|e| view! { <p class="error" id="error">{e}</p> })}
            <PanelStatus at=""/>
            <GpuPanel/>
            <ModelPanel/>
            <DataPanel/>
            <PretrainPanel/>
            <FinetunePanel/>
            <MaskPanel/>
            <ClassifyPanel/>
            <ExportPanel/>
            <p><a href="selfcheck.html">"Self-check"</a>" · "<a href="bench.html">"Kernel benchmark"</a></p>
        </main>
    }
    .into_any()
}

/// Entry point of the page (www/main.js).
#[wasm_bindgen]
pub fn start_app() {
    leptos::mount::mount_to_body(App);
}
