#!/usr/bin/env bash
# The project's one test command (see README): installs what is missing on a
# Debian machine that has the Rust toolchain, starts dockerd if it is not
# running, then checks formatting and lints, builds the browser assets and the
# two images, and runs every test: unit, against the real Docker engine, in
# headless Chromium, and the compose stack itself. Needs root for apt and dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

# -- system packages --------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v brotli >/dev/null 2>&1 || need+=(brotli)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # With recommends: chromium needs its fonts for readable screenshots.
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# -- the Docker engine ------------------------------------------------------
if ! docker version >/dev/null 2>&1; then
  say "starting dockerd"
  (dockerd >/tmp/dockward-dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do
    docker version >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! docker version >/dev/null 2>&1; then
    echo "dockerd did not come up; its log:" >&2
    tail -n 30 /tmp/dockward-dockerd.log >&2 || true
    exit 1
  fi
fi
docker version --format 'Docker engine {{.Server.Version}} (API {{.Server.APIVersion}})'

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
