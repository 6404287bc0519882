#!/usr/bin/env python3
"""Serves BERT Lab: www/ at /, the downloaded models at /models/, on 127.0.0.1 only, with a
Content-Security-Policy on every response whose connect-src allows this origin and the model hub
(--hub, default https://huggingface.co and its file CDNs) and nothing else."""
import argparse, functools, http.server, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def csp(hub):
    hubs = [hub.rstrip("/")]
    if "huggingface.co" in hub:
        hubs += ["https://*.huggingface.co", "https://*.hf.co"]
    return ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; worker-src 'self'; connect-src 'self' " + " ".join(hubs))

class Handler(http.server.SimpleHTTPRequestHandler):
    hub = "https://huggingface.co"
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript"}

    def translate_path(self, path):
        p = path.split("?", 1)[0].split("#", 1)[0]
        if p.startswith("/models/"):
            rel = os.path.normpath(p[len("/models/"):]).lstrip("/")
            if rel.startswith(".."):
                return os.path.join(ROOT, "www", "404")
            return os.path.join(ROOT, "models", rel)
        return super().translate_path(path)

    def do_GET(self):
        # the page asks which hub this server lets it reach (its first model comes from there)
        if self.path.split("?", 1)[0] == "/hub.json":
            body = ('{"hub": "%s"}' % self.hub.rstrip("/").replace('"', "")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def end_headers(self):
        self.send_header("Content-Security-Policy", csp(self.hub))
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, fmt, *args):
        if os.environ.get("BERTLAB_QUIET") != "1":
            super().log_message(fmt, *args)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8080)))
    ap.add_argument("--hub", default=os.environ.get("BERTLAB_HUB", "https://huggingface.co"))
    a = ap.parse_args()
    Handler.hub = a.hub
    h = functools.partial(Handler, directory=os.path.join(ROOT, "www"))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), h)
    print(f"BERT Lab is at  http://127.0.0.1:{srv.server_address[1]}/   (open it in Chrome; Ctrl-C stops the server)", flush=True)
    srv.serve_forever()

if __name__ == "__main__":
    main()
