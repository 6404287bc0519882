import init, { run_bench } from "./pkg/bertlab.js";

const out = document.getElementById("out");
const log = (line) => { out.textContent += line + "\n"; };

async function run() {
  const rows = Number(document.getElementById("rows").value) || 4096;
  const reps = Number(document.getElementById("reps").value) || 2;
  out.textContent = "";
  try {
    await run_bench(rows, reps, log);
    log("done");
  } catch (e) {
    log("error: " + e);
  }
  document.title = "done";
}

await init();
document.getElementById("run").addEventListener("click", run);
// ?autorun=1&rows=N runs at once (used to collect numbers headless)
const q = new URLSearchParams(location.search);
if (q.get("rows")) document.getElementById("rows").value = q.get("rows");
if (q.get("reps")) document.getElementById("reps").value = q.get("reps");
if (q.get("autorun")) run();
