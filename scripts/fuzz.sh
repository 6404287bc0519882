#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz + libFuzzer) of every parser that takes user bytes: safetensors,
# config.json, the dataset readers, tokenizer files and the snapshot the app restores. Each target is
# one function of src/fuzzing.rs. Needs the nightly toolchain (the product and the tests stay on
# stable); installs cargo-fuzz if missing.
#
#   scripts/fuzz.sh [RUNS] [TARGET ...]      default: 10000000 runs of each target
#   scripts/fuzz.sh 3600s [TARGET ...]       one hour of each target instead (slow targets)
#
# Seeds come from tests/fixtures/fuzz/<target>/ (tests/fixtures/fuzz/make_seeds.py writes them); the
# growing corpus lives in fuzz/corpus/<target>/ (not committed). A crash is written to
# fuzz/artifacts/<target>/: fix it, then copy the input to tests/fixtures/fuzz/<target>/crash-NAME;
# ./scripts/test.sh replays every file there (tests/native/units.rs, fuzz_replay).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
runs=${1:-10000000}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors config_json dataset tokenizer snapshot)
limit="-runs=$runs"
case "$runs" in *s) limit="-max_total_time=${runs%s}" ;; esac
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  start=$(date +%s)
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "tests/fixtures/fuzz/$t" -- "$limit" -max_len=65536 -print_final_stats=1 2>&1 \
    | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done|==|SUMMARY|artifact_prefix|Test unit written)" || true
  echo "== $t: $limit, $(( $(date +%s) - start )) s, corpus $(ls "fuzz/corpus/$t" | wc -l) inputs, crashes: $(ls "fuzz/artifacts/$t" 2>/dev/null | wc -l)"
done
# Keep what the fuzzer learned: minimise each corpus to the inputs that add coverage, and pack it into
# tests/fixtures/fuzz/<target>.corpus (u32 little-endian length + bytes, repeated), which the normal
# suite replays with the seeds and crash inputs.
for t in "${targets[@]}"; do
  cargo +nightly fuzz cmin --fuzz-dir fuzz "$t" "fuzz/corpus/$t" > /dev/null 2>&1
  python3 - "$t" <<'PY'
import os, struct, sys
t = sys.argv[1]
src = f"fuzz/corpus/{t}"
with open(f"tests/fixtures/fuzz/{t}.corpus", "wb") as out:
    for name in sorted(os.listdir(src)):
        data = open(os.path.join(src, name), "rb").read()
        out.write(struct.pack("<I", len(data)) + data)
print(f"== {t}: {len(os.listdir(src))} inputs packed into tests/fixtures/fuzz/{t}.corpus")
PY
done
