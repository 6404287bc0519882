// The training worker: owns the WebGPU device and runs the Rust training library
// (src/app/worker.rs). It also keeps the session snapshot in IndexedDB for the Rust side.
import init, { worker_main } from "./pkg/bertlab.js";

const DB = "bertlab", STORE = "snapshots", KEY = "session", BLOBS = ["weights", "optimizer"];

function db() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

// One tab at a time keeps the session snapshot. The first tab's worker holds a Web Lock for as long
// as it lives; a second tab's worker waits for it and, until it has it, saves nothing, so neither tab
// silently overwrites the other's snapshot (the page says why snapshots are off).
let ownsSnapshot = !navigator.locks;
navigator.locks?.request("bertlab-snapshot", () => { ownsSnapshot = true; return new Promise(() => {}); });

// A write transaction's end: it completes, or fails, or is aborted by the browser (a commit over the
// storage quota aborts without an error event: without onabort the write would never end).
function written(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    // a failed request's error comes first (an aborted one's: AbortError), the transaction's after
    tx.onerror = (e) => reject(tx.error ?? e.target?.error ?? new Error("the browser refused the write"));
    tx.onabort = () => reject(tx.error ?? new Error("the browser aborted the write"));
  });
}

// Called from Rust: store the latest snapshot (replacing the previous one).
self.bertlabSave = async (snapshot) => {
  if (!ownsSnapshot) throw new Error("BERT Lab is open in another tab, which keeps its session in this browser; this tab saves no snapshot so as not to overwrite that one (close the other tab and reload this one to save here)");
  // the weights and the optimizer's moments as Blobs: Chrome refuses a value whose serialized form
  // is over 127 MiB (a model over about 32 M parameters), and stores a Blob beside it by reference
  for (const k of BLOBS) if (snapshot[k] instanceof Uint8Array) snapshot[k] = new Blob([snapshot[k]]);
  const d = await db();
  try {
    const tx = d.transaction(STORE, "readwrite");
    tx.objectStore(STORE).put(snapshot, KEY);
    await written(tx);
  } finally {
    d.close();
  }
};

// Called from Rust: the latest snapshot, or null; with `full`, its weights and optimizer read into
// Uint8Arrays (without, they stay Blobs: offering a snapshot reads only its metadata).
self.bertlabLoad = async (full) => {
  const d = await db();
  const v = await new Promise((resolve, reject) => {
    const r = d.transaction(STORE).objectStore(STORE).get(KEY);
    r.onsuccess = () => resolve(r.result ?? null);
    r.onerror = () => reject(r.error);
  });
  d.close();
  if (v && full) for (const k of BLOBS) if (v[k] instanceof Blob) v[k] = new Uint8Array(await v[k].arrayBuffer());
  return v;
};

// Called from Rust: delete the snapshot ("Start fresh"), so that it is not offered again.
self.bertlabDiscard = async () => {
  if (!ownsSnapshot) return;
  const d = await db();
  try {
    const tx = d.transaction(STORE, "readwrite");
    tx.objectStore(STORE).delete(KEY);
    await written(tx);
  } finally {
    d.close();
  }
};

// Anything that escapes the Rust side's own error handling (a panic, an exception thrown by the browser
// in the middle of a step) leaves this worker's state unusable: tell the page, which replaces the
// worker with a fresh one and offers the last snapshot.
const crashed = (message) => self.postMessage({ ev: "crashed", data: JSON.stringify({ message: String(message) }) });
self.addEventListener("unhandledrejection", (e) => { e.preventDefault(); crashed(e.reason?.message ?? e.reason); });
self.addEventListener("error", (e) => { e.preventDefault(); crashed(e.message || e.error); });

// Messages that arrive while the wasm module loads (the page can send model files the moment it
// opens) are kept and handed to the Rust side's handler once it is installed, in order.
const early = [];
const keep = (e) => early.push(e);
self.addEventListener("message", keep);
await init();
worker_main();
self.removeEventListener("message", keep);
for (const e of early) self.onmessage?.(e);
