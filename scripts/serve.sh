#!/usr/bin/env bash
# Builds the app (wasm into www/pkg) and serves www/ on 127.0.0.1, printing the URL to open in Chrome.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
PORT=${PORT:-8080}
wasm-pack build --release --target web --out-dir www/pkg --no-typescript --no-pack
echo
echo "BERT Lab is at  http://127.0.0.1:${PORT}/   (open it in Chrome; Ctrl-C stops the server)"
exec python3 -m http.server "$PORT" --bind 127.0.0.1 --directory www
