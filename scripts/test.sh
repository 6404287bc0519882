#!/usr/bin/env bash
# Runs every test: set-up (idempotent), then the native suite on wgpu/Vulkan (lavapipe without a
# GPU), then the browser suite in headless Chromium's WebGPU (SwiftShader without a GPU).
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

passed=$(grep -hoE "test result: ok\. [0-9]+ passed" /tmp/bertlab-native-tests.log /tmp/bertlab-web-tests.log | awk '{s+=$4} END {print s+0}')
echo "native suite $((native - start)) s, browser suite $((web - native)) s"
echo "all suites: ${passed} passed, 0 failed"
