#!/usr/bin/env bash
# Runs every test: set-up (idempotent), then the native suite on wgpu/Vulkan (lavapipe without a
# GPU), then the browser suite in headless Chromium's WebGPU (SwiftShader without a GPU), then the
# end-to-end test of the app (tests/e2e/e2e.mjs). Each stage prints its time.
# No test skips: without an adapter the suites fail and say how to get one.
#
# One wasm build serves both browser stages: `wasm-pack test` compiles the dependencies for wasm32 in
# the dev profile, and the app for the end-to-end test is built in that same profile (`--dev`), so
# only BERT Lab itself is compiled again (`scripts/serve.sh` builds the release app).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

t0=$(date +%s)
last=$t0
stage_done() {
  local now
  now=$(date +%s)
  echo "== $1: $((now - last)) s (total $((now - t0)) s)"
  last=$now
}

bash scripts/setup.sh
stage_done "set-up"

echo "== layers (scripts/check_layers.py: imports run one way, as src/lib.rs lists the layers)"
python3 scripts/check_layers.py
stage_done "layers"

echo "== native tests (cargo test)"
cargo test --tests 2>&1 | grep -v "XDG_RUNTIME_DIR" | tee /tmp/bertlab-native-tests.log
stage_done "native suite"

echo "== browser tests (wasm-pack test --headless --chrome)"
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-600}
export CHROMEDRIVER=/usr/bin/chromedriver
wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver -- --test web 2>&1 | tee /tmp/bertlab-web-tests.log
stage_done "browser suite"

echo "== end-to-end test of the app (playwright-core driving headless Chromium; screenshots in target/e2e)"
wasm-pack build --dev --target web --out-dir www/pkg --no-typescript --no-pack
cargo build --bin bertlab 2>&1 | grep -v "XDG_RUNTIME_DIR" || true
node tests/e2e/e2e.mjs 2>&1 | tee /tmp/bertlab-e2e.log
stage_done "end-to-end"

passed=$(grep -hoE "test result: ok\. [0-9]+ passed" /tmp/bertlab-native-tests.log /tmp/bertlab-web-tests.log | awk '{s+=$4} END {print s+0}')
echo "all suites: ${passed} passed, 0 failed; end-to-end passed; $(( $(date +%s) - t0 )) s in all"
