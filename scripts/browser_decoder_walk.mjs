// A real-size Llama-shaped decoder in the page, as a person would use it (#30): headless Chromium
// (WebGPU; SwiftShader without a GPU) loads a model folder from the picker, continues a text (greedy,
// the page's tokens/s), continues a long one until Stop, and fine-tunes a LoRA classifier (r 8 on
// q_proj and v_proj) for a few steps on 24 pasted lines, reloads the page and restores the session
// it saved (the whole model, in IndexedDB). Prints one JSON line per stage; screenshots
// in target/browser-walk/.
//
//   python3 scripts/make_random_decoder.py smollm2-135m /tmp/smollm2-shape
//   cp tests/fixtures/tiny_llama/tokenizer.json /tmp/smollm2-shape/    # any byte-level tokenizer.json
//   node scripts/browser_decoder_walk.mjs /tmp/smollm2-shape
//
// Serves www/ with scripts/serve.py (build it first: scripts/serve.sh builds the release wasm;
// scripts/test.sh leaves a dev build). Run by a developer; the CI's end-to-end test walks the same
// panels with the tiny fixtures.
import { chromium } from "playwright-core";
import { serveApp } from "./serve_app.mjs";
import fs from "node:fs";
import path from "node:path";

const dir = process.argv[2];
if (!dir || !fs.existsSync(path.join(dir, "config.json"))) {
  console.error("usage: node scripts/browser_decoder_walk.mjs MODEL_DIR");
  process.exit(2);
}
const OUT = path.resolve("target/browser-walk");
fs.mkdirSync(OUT, { recursive: true });
const { url, server } = await serveApp();
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-angle=swiftshader", "--disable-gpu-sandbox"],
});
const TIMEOUT = 3_600_000;
const t0 = Date.now();
const say = (stage, o) => console.log(JSON.stringify({ stage, at_s: (Date.now() - t0) / 1000, ...o }));
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  // the page's and its workers' console (a worker's panic or failure shows here first)
  const log = (m) => console.log(JSON.stringify({ console: m.type(), at_s: (Date.now() - t0) / 1000, text: m.text().slice(0, 400) }));
  page.on("console", log);
  page.on("worker", (w) => w.on("console", log));
  const snap = (name) => page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
  await page.goto(url);
  await page.waitForSelector("#adapter", { timeout: TIMEOUT });
  const files = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"].filter((f) => fs.existsSync(path.join(dir, f)));
  await page.setInputFiles("#model-files", files.map((f) => path.join(dir, f)));
  await page.waitForFunction(() => /your files/.test(document.querySelector("#model-summary")?.textContent ?? ""), null, { timeout: TIMEOUT, polling: 250 });
  say("loaded", { adapter: await page.locator("#adapter").first().textContent(), family: await page.locator("#model-family").textContent(), attention: await page.locator("#model-attention").textContent(), memory: await page.locator("#model-memory").textContent() });
  await snap("1-loaded");
  // greedy continuation, the page's own tokens/s
  await page.fill("#gen-top-k", "1");
  await page.fill("#gen-prompt", "the curious kitten");
  await page.fill("#gen-max-new", "20");
  await page.click("#gen-run");
  await page.waitForSelector("#gen-done", { timeout: TIMEOUT });
  say("continued", { done: await page.locator("#gen-done").textContent(), tokens: await page.$$eval("#gen-output .gen-token", (t) => t.map((x) => x.textContent)) });
  await snap("2-continued");
  // a long continuation, stopped after a few tokens
  await page.fill("#gen-max-new", "1000");
  await page.click("#gen-run");
  await page.waitForFunction(() => document.querySelectorAll("#gen-output .gen-token").length >= 3, null, { timeout: TIMEOUT, polling: 200 });
  await page.click("#gen-stop");
  await page.waitForSelector("#gen-done", { timeout: TIMEOUT });
  say("stopped", { done: await page.locator("#gen-done").textContent() });
  await snap("3-stopped");
  // a LoRA classifier on 24 pasted lines: 3 steps of 8
  const good = ["a wonderful film", "i loved the soup", "great service", "what a lovely day", "the bread was warm and good", "a kind and funny story"];
  const bad = ["an awful film", "the soup was bland", "terrible service", "a dreadful day", "the bread was stale", "a dull and cruel story"];
  const lines = [];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 6; j++) lines.push(`positive\t${good[j]}${i ? " indeed" : ""}`, `negative\t${bad[j]}${i ? " indeed" : ""}`);
  await page.fill("#data-text", "label\ttext\n" + lines.join("\n") + "\n");
  await page.click("#use-data");
  await page.waitForFunction(() => /pasted text/.test(document.querySelector("#data-panel .summary")?.textContent ?? ""), null, { timeout: 60_000, polling: 250 });
  say("data", { summary: await page.locator("#data-panel .summary").first().textContent() });
  await page.selectOption("#ft-mode", "lora");
  await page.fill("#ft-lora-r", "8");
  for (const [id, v] of Object.entries({ "ft-lr": "0.002", "ft-epochs": "1", "ft-batch": "8", "ft-maxlen": "32" })) await page.fill(`#${id}`, v);
  const t1 = Date.now();
  await page.click("#ft-start");
  await page.waitForFunction(() => /step \d+ of/.test(document.querySelector("#ft-status")?.textContent ?? "") || document.querySelector("#error"), null, { timeout: 900_000, polling: 1000 });
  if (await page.locator("#error").count()) throw new Error(`the page says: ${await page.locator("#error").first().textContent()}`);
  say("first step", { seconds: (Date.now() - t1) / 1000, status: await page.locator("#ft-status").textContent() });
  // what the page shows while the run goes on, every 30 s
  const watch = setInterval(async () => say("running", { status: await page.locator("#ft-status").textContent().catch(() => null), error: await page.locator("#error").first().textContent({ timeout: 100 }).catch(() => null) }), 30_000);
  await page.waitForFunction(() => /run finished/.test(document.querySelector("#finetune-status")?.textContent ?? "") || document.querySelector("#error"), null, { timeout: TIMEOUT, polling: 1000 }).finally(() => clearInterval(watch));
  if (await page.locator("#error").count()) throw new Error(`the page says: ${await page.locator("#error").first().textContent()}`);
  say("fine-tuned", { seconds: (Date.now() - t1) / 1000, status: await page.locator("#finetune-status").textContent() });
  await page.fill("#cls-text", "a wonderful film");
  await page.click("#cls-run");
  await page.waitForSelector("#cls-result .bar-row", { timeout: TIMEOUT });
  const classified = await page.locator("#cls-result").textContent();
  say("classified", { result: classified, snapshot: await page.locator("#snapshot-status").textContent() });
  await snap("4-fine-tuned-lora");
  // the session saved in this browser (the whole model: over Chrome's 127 MiB for one value) comes
  // back after a reload and classifies as before
  const t2 = Date.now();
  await page.reload();
  await page.waitForSelector("#restore-offer", { timeout: TIMEOUT });
  await page.click("#restore");
  await page.waitForFunction(() => /session restored/.test(document.querySelector("#status")?.textContent ?? "") || document.querySelector("#error"), null, { timeout: TIMEOUT, polling: 500 });
  if (await page.locator("#error").count()) throw new Error(`the page says: ${await page.locator("#error").first().textContent()}`);
  await page.fill("#cls-text", "a wonderful film");
  await page.click("#cls-run");
  await page.waitForSelector("#cls-result .bar-row", { timeout: TIMEOUT });
  const again = await page.locator("#cls-result").textContent();
  say("restored", { seconds: (Date.now() - t2) / 1000, status: await page.locator("#status").textContent(), result: again, same: again === classified });
  await snap("5-restored");
  if (again !== classified) throw new Error(`the restored session classifies "${again}", before the reload "${classified}"`);
} catch (e) {
  console.error(e);
  const [page] = browser.contexts().flatMap((c) => c.pages());
  if (page) {
    await page.screenshot({ path: path.join(OUT, "failure.png"), fullPage: true }).catch(() => {});
    console.error(JSON.stringify(await page.$$eval("#error, .status", (els) => els.map((x) => x.textContent.slice(0, 300))).catch(() => [])));
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  server.kill();
}
