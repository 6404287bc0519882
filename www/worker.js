// The training worker: owns the WebGPU device and runs the Rust training library
// (src/app/worker.rs). It also keeps the session snapshot in IndexedDB for the Rust side.
import init, { worker_main } from "./pkg/bertlab.js";

const DB = "bertlab", STORE = "snapshots", KEY = "session";

function db() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

// Called from Rust: store the latest snapshot (replacing the previous one).
self.bertlabSave = async (snapshot) => {
  const d = await db();
  await new Promise((resolve, reject) => {
    const tx = d.transaction(STORE, "readwrite");
    tx.objectStore(STORE).put(snapshot, KEY);
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  d.close();
};

// Called from Rust: the latest snapshot, or null.
self.bertlabLoad = async () => {
  const d = await db();
  const v = await new Promise((resolve, reject) => {
    const r = d.transaction(STORE).objectStore(STORE).get(KEY);
    r.onsuccess = () => resolve(r.result ?? null);
    r.onerror = () => reject(r.error);
  });
  d.close();
  return v;
};

await init();
worker_main();
