#!/usr/bin/env bash
# Runs every test: set-up (idempotent), then the native suite on wgpu/Vulkan (lavapipe without a
# GPU), then the browser suite in headless Chromium's WebGPU (SwiftShader without a GPU), then the
# end-to-end test of the app (tests/e2e/e2e.mjs).
# No test skips: without an adapter the suites fail and say how to get one.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh

start=$(date +%s)
echo "== native tests (cargo test)"
cargo test --all-targets 2>&1 | grep -v "XDG_RUNTIME_DIR" | tee /tmp/bertlab-native-tests.log
native=$(date +%s)

echo "== browser tests (wasm-pack test --headless --chrome)"
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-600}
export CHROMEDRIVER=/usr/bin/chromedriver
wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver -- --test web 2>&1 | tee /tmp/bertlab-web-tests.log
web=$(date +%s)

echo "== end-to-end test of the app (playwright-core driving headless Chromium; screenshots in target/e2e)"
wasm-pack build --release --target web --out-dir www/pkg --no-typescript --no-pack
cargo build --bin bertlab 2>&1 | grep -v "XDG_RUNTIME_DIR" || true
node tests/e2e/e2e.mjs 2>&1 | tee /tmp/bertlab-e2e.log
e2e=$(date +%s)

passed=$(grep -hoE "test result: ok\. [0-9]+ passed" /tmp/bertlab-native-tests.log /tmp/bertlab-web-tests.log | awk '{s+=$4} END {print s+0}')
echo "native suite $((native - start)) s, browser suite $((web - native)) s, end-to-end $((e2e - web)) s"
echo "all suites: ${passed} passed, 0 failed; end-to-end passed"
