#!/usr/bin/env bash
# Builds the app (wasm into www/pkg), provisions the default model (models/, by setup.sh) and serves
# both on 127.0.0.1 (scripts/serve.py), printing the URL to open in Chrome.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
PORT=${PORT:-8080}
wasm-pack build --release --target web --out-dir www/pkg --no-typescript --no-pack
echo
exec python3 scripts/serve.py --port "$PORT"
