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

say "cargo deny: sources, licences, bans and duplicate versions (deny.toml)"
target="${CARGO_TARGET_DIR:-$PWD/target}"
deny="$target/tools/bin/cargo-deny"
deny_version=0.20.2
if ! "$deny" --version 2>/dev/null | grep -qx "cargo-deny $deny_version"; then
  echo "installing cargo-deny $deny_version (once; cached in $target/tools)"
  CARGO_TARGET_DIR="$target/tools-build" cargo install -q cargo-deny --version "=$deny_version" --locked --root "$target/tools"
fi
# --offline: the advisory database lives on GitHub, which CI cannot reach
# (SECURITY.md); so the crates it reads must be here first (a fresh machine
# has none until a build fetches them).
cargo fetch --locked -q
"$deny" --offline check bans licenses sources

say "base images are pinned by digest"
if grep -E '^FROM ' Dockerfile | grep -v -E '^FROM scratch( |$)' | grep -v -E '@sha256:[0-9a-f]{64}( |$)'; then
  echo "Dockerfile: the FROM lines above are not pinned by digest" >&2
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

say "the test OpenID provider (npm's oidc-provider, testkit/oidc)"
node_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || true)
if [ -z "$node_major" ] || [ "$node_major" -lt 20 ]; then
  echo "the sign-in tests need Node.js 20 or later and npm (found: ${node_major:-none})" >&2
  exit 1
fi
(cd testkit/oidc && npm ci --no-audit --no-fund --silent)

say "cargo test"
cargo test --workspace
