// Starts scripts/serve.py on a free port (for the end-to-end test and the browser benchmarks) and
// resolves to the URL it prints, with the child process to kill when done.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export async function serveApp(extraArgs = []) {
  const server = spawn("python3", [path.join(ROOT, "scripts/serve.py"), "--port", "0", ...extraArgs], { env: { ...process.env, BERTLAB_QUIET: "1" } });
  const url = await new Promise((resolve, reject) => {
    let buf = "";
    server.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (m) resolve(m[0]);
    });
    server.on("exit", (c) => reject(new Error(`serve.py exited with ${c}`)));
    setTimeout(() => reject(new Error("serve.py did not print its URL")), 20_000);
  });
  return { url, server };
}
