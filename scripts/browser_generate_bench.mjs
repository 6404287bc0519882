// The page's "Continue the text" timed in headless Chromium (WebGPU; SwiftShader without a GPU): a
// model folder is chosen in the model picker, then greedy generation of each count of new tokens,
// after one warm-up run. Prints one JSON line per run with the page's own tokens/s (its "N tokens in
// S s" line: prefill included) and the wall clock from the click to the last token.
//
//   node scripts/browser_generate_bench.mjs MODEL_DIR [64,200]
//
// Serves www/ with scripts/serve.py (build it first: scripts/serve.sh builds the release wasm;
// scripts/test.sh leaves a dev build). MODEL_DIR holds config.json, model.safetensors and
// tokenizer.json (scripts/bench_generate_torch.py's shapes can be saved by transformers'
// save_pretrained, with any GPT-2 tokenizer.json beside them).
import { chromium } from "playwright-core";
import { serveApp } from "./serve_app.mjs";
import fs from "node:fs";
import path from "node:path";

const dir = process.argv[2];
const counts = (process.argv[3] || "64,200").split(",").map(Number);
if (!dir || !fs.existsSync(path.join(dir, "config.json"))) {
  console.error("usage: node scripts/browser_generate_bench.mjs MODEL_DIR [64,200]");
  process.exit(2);
}
const { url, server } = await serveApp();
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-angle=swiftshader", "--disable-gpu-sandbox"],
});
const TIMEOUT = 1_800_000;
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForSelector("#adapter", { timeout: TIMEOUT });
  const adapter = await page.locator("#adapter").first().textContent();
  await page.setInputFiles("#model-files", ["config.json", "model.safetensors", "tokenizer.json"].map((f) => path.join(dir, f)));
  await page.waitForFunction(() => /your files/.test(document.querySelector("#model-summary")?.textContent ?? ""), null, { timeout: TIMEOUT, polling: 250 });
  await page.fill("#gen-top-k", "1");
  await page.fill("#gen-prompt", "the curious kitten");
  const run = async (n) => {
    await page.fill("#gen-max-new", String(n));
    const t0 = Date.now();
    await page.click("#gen-run");
    await page.waitForSelector("#gen-done", { state: "detached", timeout: TIMEOUT }).catch(() => {});
    await page.waitForSelector("#gen-done", { timeout: TIMEOUT });
    const wall = (Date.now() - t0) / 1000;
    const line = await page.locator("#gen-done").first().textContent();
    const m = line.match(/(\d+) tokens in ([0-9.]+) s \(([0-9.]+) tokens\/s\)/);
    return { new_tokens: n, tokens: m && Number(m[1]), seconds: m && Number(m[2]), tokens_per_s: m && Number(m[3]), wall_s: wall, line };
  };
  await run(4);
  for (const n of counts) console.log(JSON.stringify({ adapter, model: dir, ...(await run(n)) }));
} finally {
  await browser.close();
  server.kill();
}
