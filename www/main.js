// Boots the Leptos page (src/app/ui.rs). The Content-Security-Policy comes with every response
// from scripts/serve.py (connect-src: this origin and the configured model hub only).
import init, { start_app } from "./pkg/bertlab.js";

try {
  await init();
  document.getElementById("boot").remove();
  start_app();
} catch (e) {
  const p = document.getElementById("boot");
  p.className = "error";
  p.textContent = `Could not start BERT Lab: ${e}. Rebuild with ./scripts/serve.sh.`;
}
