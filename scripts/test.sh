#!/usr/bin/env bash
# Runs every test: set-up (idempotent), the import-layer check, the native suite on wgpu/Vulkan
# (lavapipe without a GPU), the browser suite in headless Chromium's WebGPU (SwiftShader without a
# GPU) and the end-to-end test of the app (tests/e2e/e2e.mjs). Each stage prints its own time and
# when it ended. No test skips: without an adapter the suites fail and say how to get one.
#
# On two cores every build and suite is CPU-bound, so the stages overlap only where one leaves a
# core idle or waits on something else:
# - the set-up's network and dpkg work (Debian's packages, npm's, the model) and its two cargo
#   installs run beside the native build; each stage waits for the part it needs;
# - the native suite's test binary runs beside the wasm build (its last minute leaves a core idle,
#   and the wasm build has a long single-threaded stretch in BERT Lab's own crate);
# - the browser suite (one thread of SwiftShader most of the time) runs beside the end-to-end test,
#   from the moment the end-to-end test has passed its one timing check (the page answering within
#   1 s while its worker reads a big file), so that nothing else runs during that check.
# One wasm build serves both browser stages: the browser suite's dependencies and BERT Lab's library
# are compiled for wasm32 once, in the dev profile, and `wasm-pack build --dev` (the app for the
# end-to-end test) only links it (`scripts/serve.sh` builds the release app).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# every build here starts cold on a fresh clone: incremental compilation would only write state no
# later build of the run reads (about a tenth more of BERT Lab's own compile time)
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
LOGS=target/test-logs
mkdir -p "$LOGS"
t0=$(date +%s)

# NAME's own time (from START, seconds since the epoch) and when it ended
stage_done() {
  local now=${3:-$(date +%s)}
  echo "== $1: $((now - $2)) s (ended at $((now - t0)) s)"
}
# background jobs: their pids, their logs in target/test-logs, and the second each ended
declare -A PIDS STARTS
bg() {
  local name=$1
  shift
  STARTS[$name]=$(date +%s)
  ( set -o pipefail; rc=0; "$@" || rc=$?; date +%s > "$LOGS/$name.end"; exit $rc ) > "$LOGS/$name.log" 2>&1 &
  PIDS[$name]=$!
}
# waits for a background job, shows its output and its time, and stops the run if it failed
wait_for() {
  local name=$1 rc=0
  wait "${PIDS[$name]}" || rc=$?
  grep -v "XDG_RUNTIME_DIR" "$LOGS/$name.log" || true
  stage_done "$2" "${STARTS[$name]}" "$(cat "$LOGS/$name.end" 2>/dev/null || date +%s)"
  if [ $rc -ne 0 ]; then
    echo "== $2 failed (exit $rc); its output is above and in $LOGS/$name.log"
    exit $rc
  fi
}
trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT

s=$(date +%s)
echo "== set-up (the rustup target now; Debian's packages, npm's, the model and the cargo installs beside the builds)"
bash scripts/setup.sh target
bg system bash scripts/setup.sh system
bg tools bash scripts/setup.sh tools
stage_done "set-up: rustup target" "$s"

s=$(date +%s)
echo "== layers (scripts/check_layers.py: imports run one way, as src/lib.rs lists the layers)"
python3 scripts/check_layers.py
stage_done "layers" "$s"

s=$(date +%s)
echo "== native build (cargo test --no-run)"
cargo test --tests --no-run 2>&1 | grep -v "XDG_RUNTIME_DIR" | tee "$LOGS/native-build.log"
native_exe=$(sed -n 's/^ *Executable tests\/native\/main\.rs (\(.*\))$/\1/p' "$LOGS/native-build.log")
[ -x "$native_exe" ] || { echo "no native test binary in the build's output"; exit 1; }
stage_done "native build" "$s"

echo "== set-up: Debian's packages (lavapipe, Chromium), npm's and the default model"
wait_for system "set-up: packages, npm, model"

echo "== native suite (its test binary, beside the wasm build)"
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-600}
export CHROMEDRIVER=/usr/bin/chromedriver
bg native "$native_exe"

s=$(date +%s)
echo "== wasm build (the browser suite's test binary, then the app for the end-to-end test)"
cargo test --target wasm32-unknown-unknown --test web --no-run 2>&1 | grep -v "XDG_RUNTIME_DIR"
echo "== set-up: the cargo installs (wasm-bindgen-cli, wasm-pack)"
wait_for tools "set-up: cargo installs"
wasm-pack build --dev --target web --out-dir www/pkg --no-typescript --no-pack
stage_done "wasm build" "$s"

echo "== native suite"
wait_for native "native suite"
grep -E "^test result:" "$LOGS/native.log" > "$LOGS/results.log"

echo "== end-to-end test of the app (playwright-core driving headless Chromium; screenshots in target/e2e)"
rm -f target/e2e/timing-checked
bg e2e node tests/e2e/e2e.mjs
# the browser suite starts once the end-to-end test has passed its timing check (or has ended)
while [ ! -f target/e2e/timing-checked ] && kill -0 "${PIDS[e2e]}" 2>/dev/null; do sleep 1; done

s=$(date +%s)
echo "== browser suite (wasm-pack test --headless --chrome, beside the end-to-end test)"
wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver -- --test web 2>&1 | tee "$LOGS/web.log"
grep -E "^test result:" "$LOGS/web.log" >> "$LOGS/results.log"
stage_done "browser suite" "$s"

echo "== end-to-end test"
wait_for e2e "end-to-end"

passed=$(awk '/^test result: ok\./ {s += $4} END {print s + 0}' "$LOGS/results.log")
echo "== all suites passed, the end-to-end test too, in $(($(date +%s) - t0)) s"
echo "tests: ${passed} passed, 0 failed"
