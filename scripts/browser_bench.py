#!/usr/bin/env python3
"""Runs www/bench.html in headless Chromium (WebGPU on SwiftShader without a GPU) through
ChromeDriver's HTTP API and prints the benchmark lines. Needs the app built (scripts/serve.sh builds
it) and Debian's chromium + chromium-driver. Usage: scripts/browser_bench.py [ROWS] [REPS]"""
import json, os, socket, subprocess, sys, threading, time, urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
rows = sys.argv[1] if len(sys.argv) > 1 else "4096"
reps = sys.argv[2] if len(sys.argv) > 2 else "1"

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

http_port = free_port()
server = ThreadingHTTPServer(("127.0.0.1", http_port), partial(Quiet, directory=os.path.join(ROOT, "www")))
threading.Thread(target=server.serve_forever, daemon=True).start()

wd_port = free_port()
driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={wd_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{wd_port}"

def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["value"]

try:
    for _ in range(50):
        try: call("GET", "/status"); break
        except Exception: time.sleep(0.2)
    caps = json.load(open(os.path.join(ROOT, "webdriver.json")))
    sid = call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
    call("POST", f"/session/{sid}/url", {"url": f"http://127.0.0.1:{http_port}/bench.html?autorun=1&rows={rows}&reps={reps}"})
    deadline = time.time() + 3000
    shown = 0
    while time.time() < deadline:
        text = call("POST", f"/session/{sid}/execute/sync", {"script": "return document.getElementById('out').textContent", "args": []})
        lines = text.splitlines()
        for l in lines[shown:]:
            print(l, flush=True)
        shown = len(lines)
        if lines and (lines[-1] == "done" or lines[-1].startswith("error")):
            break
        time.sleep(2)
    call("DELETE", f"/session/{sid}")
finally:
    driver.kill()
    server.shutdown()
