// BERT Lab's www/bench.html and TF.js 4.22's WebGPU backend, back to back in one headless Chromium,
// on the same matmul (Y = X Wᵀ, dX = dY W, dW = dYᵀ X) and softmax shapes. Prints both and the ratio.
//
//   (cd scripts/tfjs && npm ci) && node scripts/tfjs/compare.mjs [ROWS (512)] [REPS (1)]
//
// Needs the app built into www/pkg (scripts/serve.sh or the e2e stage of scripts/test.sh builds it),
// Debian's chromium, and playwright-core from the project's package.json. TF.js is a dev dependency of
// this script alone (scripts/tfjs/package.json); the app never loads it.
import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const ROWS = Number(process.argv[2] || 512);
const REPS = Number(process.argv[3] || 1);
const TF = path.join(HERE, "node_modules/@tensorflow");
if (!fs.existsSync(path.join(TF, "tfjs-backend-webgpu"))) throw new Error("run `npm ci` in scripts/tfjs first");
if (!fs.existsSync(path.join(ROOT, "www/pkg/bertlab.js"))) throw new Error("build the app first (scripts/serve.sh, or wasm-pack build --release --target web --out-dir www/pkg --no-typescript --no-pack)");

// The same (hidden, out) pairs as src/bench.rs, and its three products per pair.
const PAIRS = [[128, 384], [256, 1024], [384, 1536], [768, 3072]];
const TFJS_PAGE = `<!doctype html><meta charset="utf-8"><pre id="out"></pre>
<script src="/tfjs/tfjs-core/dist/tf-core.min.js"></script>
<script src="/tfjs/tfjs-backend-cpu/dist/tf-backend-cpu.min.js"></script>
<script src="/tfjs/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js"></script>
<script type="module">
const out = document.getElementById("out");
const log = (l) => { out.textContent += l + "\\n"; };
const m = ${ROWS}, reps = ${REPS};
try {
  await tf.setBackend("webgpu"); await tf.ready();
  log("backend " + tf.getBackend());
  async function time(f) {
    let y = f(); await tf.slice(y, [0, 0], [1, 1]).data(); y.dispose();           // warm-up: compiles the program
    const t0 = performance.now();
    const ys = []; for (let r = 0; r < reps; r++) ys.push(f());
    await tf.slice(ys[ys.length - 1], [0, 0], [1, 1]).data();                     // the queue is in order
    const ms = (performance.now() - t0) / reps; ys.forEach((t) => t.dispose()); return ms;
  }
  for (const [k, n] of ${JSON.stringify(PAIRS)}) {
    const x = tf.randomNormal([m, k]), w = tf.randomNormal([n, k]), dy = tf.randomNormal([m, n]);
    for (const [name, f, flops] of [
      [\`matmul Y = X W^T  \${m}x\${k} -> \${n}\`, () => tf.matMul(x, w, false, true), 2 * m * n * k],
      [\`matmul dX = dY W  \${m}x\${n} -> \${k}\`, () => tf.matMul(dy, w), 2 * m * n * k],
      [\`matmul dW = dY^T X  \${n}x\${k}, K=\${m}\`, () => tf.matMul(dy, x, true, false), 2 * m * n * k],
    ]) { const ms = await time(f); log(\`\${name}  \${(flops / ms / 1e6).toFixed(2)} GFLOP/s \${ms.toFixed(3)} ms/call\`); }
    tf.dispose([x, w, dy]);
  }
  const s = tf.randomNormal([m, 768]);
  const ms = await time(() => tf.softmax(s));
  log(\`softmax \${m}x768  \${(2 * m * 768 * 4 / ms / 1e6).toFixed(2)} GB/s \${ms.toFixed(3)} ms/call\`);
  log("done");
} catch (e) { log("error: " + e); }
</script>`;

const server = http.createServer((req, res) => {
  const url = decodeURIComponent(req.url.split("?")[0]);
  if (url === "/tfjs-bench.html") { res.setHeader("Content-Type", "text/html"); res.end(TFJS_PAGE); return; }
  const file = url.startsWith("/tfjs/") ? path.join(TF, url.slice(6)) : path.join(ROOT, "www", url === "/" ? "index.html" : url);
  if (!file.startsWith(TF) && !file.startsWith(path.join(ROOT, "www"))) { res.statusCode = 403; res.end(); return; }
  fs.readFile(file, (err, data) => {
    if (err) { res.statusCode = 404; res.end("not found"); return; }
    const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css" };
    res.setHeader("Content-Type", types[path.extname(file)] || "application/octet-stream");
    res.end(data);
  });
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;
// the flags that give WebGPU on SwiftShader, as the browser tests use them
const args = JSON.parse(fs.readFileSync(path.join(ROOT, "webdriver.json"), "utf8"))["goog:chromeOptions"].args.filter((a) => !a.startsWith("--headless"));
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args });

async function collect(url) {
  const page = await browser.newPage();
  await page.goto(url);
  const text = await page.waitForFunction(() => {
    const t = document.getElementById("out").textContent;
    return /(^|\n)(done|error.*)\n?$/.test(t) ? t : null;
  }, null, { timeout: 3_600_000, polling: 1000 }).then((h) => h.jsonValue());
  await page.close();
  return text.trim().split("\n");
}

const rate = (line) => Number((line.match(/([\d.]+) (GFLOP\/s|GB\/s)/) || [])[1]);
try {
  const ours = await collect(`${base}/bench.html?autorun=1&rows=${ROWS}&reps=${REPS}`);
  const theirs = await collect(`${base}/tfjs-bench.html`);
  console.log(`BERT Lab (www/bench.html), rows ${ROWS}, reps ${REPS}:\n  ` + ours.join("\n  "));
  console.log(`TF.js 4.22 WebGPU backend:\n  ` + theirs.join("\n  "));
  console.log("\nside by side (BERT Lab's best kernel / TF.js):");
  for (const t of theirs.filter((l) => l.startsWith("matmul") || l.startsWith("softmax"))) {
    const key = t.match(/^(.*?)\s+[\d.]+ (GFLOP\/s|GB\/s)/)[1].trim(); // the name with its shape
    const mine = ours.filter((l) => l.startsWith(key));
    const best = Math.max(...mine.map(rate));
    console.log(`  ${key.padEnd(44)} ${best.toFixed(2).padStart(7)} vs ${rate(t).toFixed(2).padStart(7)}  ${(best / rate(t)).toFixed(2)}x`);
  }
} finally {
  await browser.close();
  server.close();
}
