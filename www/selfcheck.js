// The engine page: names the adapter (or says why there is none) and runs the self-check (kernels, then the model against PyTorch).
// All text from the engine is inserted with textContent, never as HTML.
import init, { gpu_info, self_check } from "./pkg/bertlab.js";

const $ = (id) => document.getElementById(id);

async function main() {
  try {
    await init();
  } catch (e) {
    $("adapter").textContent = `Could not load the WebAssembly module: ${e}. Rebuild with ./scripts/serve.sh.`;
    return;
  }
  try {
    const info = await gpu_info();
    $("adapter").textContent = info;
    if (info.includes("software")) {
      const w = $("adapter-warning");
      w.hidden = false;
      w.textContent = "This is a software (CPU) adapter: everything works, but slowly. A real GPU is much faster.";
    }
    $("run-check").disabled = false;
  } catch (e) {
    $("adapter").textContent = String(e);
    $("adapter").className = "error";
  }
}

$("run-check").addEventListener("click", async () => {
  $("run-check").disabled = true;
  const body = $("check-results").querySelector("tbody");
  body.replaceChildren();
  let n = 0;
  const started = performance.now();
  try {
    const failed = await self_check((name, ok, msg) => {
      n += 1;
      const tr = document.createElement("tr");
      tr.className = ok ? "pass" : "fail";
      for (const text of [name, ok ? "pass" : "FAIL", msg]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    });
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    $("check-summary").textContent = `${n - failed} passed, ${failed} failed (${secs} s)`;
    $("check-summary").className = failed ? "error" : "ok";
  } catch (e) {
    $("check-summary").textContent = String(e);
    $("check-summary").className = "error";
  }
  $("run-check").disabled = false;
});

main();
