#!/usr/bin/env bash
# The project's one test command (see README): installs what is missing on a
# Debian machine that has the Rust toolchain, starts dockerd if it is not
# running, then checks formatting and lints, builds the browser assets and the
# two images, and runs every test: unit, against the real Docker engine, in
# headless Chromium, and the compose stack itself. Needs root for apt and dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

# -- packages and the Docker engine (scripts/prepare.sh) -----------------------
bash scripts/prepare.sh

# -- Rust components ----------------------------------------------------------
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

# -- checks ----------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all --check

say "the web console links no Docker client"
if cargo tree -p dockward-frontend -e normal,build --target all 2>/dev/null | grep -qE '(^|[^a-z_-])(bollard|docker-api|shiplift|dockworker) v'; then
  echo "frontend depends on a Docker client; only the sidecar may" >&2
  exit 1
fi

say "shared builds for wasm32"
cargo build -q -p dockward-shared --target wasm32-unknown-unknown

say "cargo clippy (server and browser builds)"
cargo clippy -q --workspace --all-targets -- -D warnings
cargo clippy -q -p dockward-frontend --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

say "browser assets (wasm + JS + CSS)"
bash scripts/build-web.sh

say "compose files are valid (docker-compose $(docker-compose version --short))"
docker-compose -f compose.yaml config -q
DOCKWARD_SIDECAR_BIND=10.0.0.2 docker-compose -f compose.sidecar.yaml config -q

say "images: static binaries on scratch (scripts/build-images.sh)"
bash scripts/build-images.sh

say "cargo test"
cargo test --workspace
