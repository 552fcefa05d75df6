#!/usr/bin/env bash
# Builds the web console's browser assets into $SITE (default: <target>/site):
#   pkg/dockward.js, pkg/dockward_bg.wasm (wasm-bindgen, --target web), pkg/dockward.css
#   and pkg/pages.css (the server-rendered pages' own styles).
# Everything comes from crates.io, built from committed lockfiles: the
# wasm-bindgen step is tools/wasm-bindgen (wasm-bindgen-cli-support pinned to
# the exact wasm-bindgen version in Cargo.lock). No tool is downloaded prebuilt
# (only the wasm32 standard library, by rustup).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
site="${SITE:-$target/site}"

rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

# wasm-bindgen: our own thin front end to wasm-bindgen-cli-support, built from
# its committed lockfile (tools/wasm-bindgen). Its version must be the one the
# wasm was compiled against.
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
tool_version=$(awk '/^name = "wasm-bindgen-cli-support"$/ { getline; gsub(/"/, "", $3); print $3; exit }' tools/wasm-bindgen/Cargo.lock)
[ -n "$version" ] || { echo "wasm-bindgen is not in Cargo.lock" >&2; exit 1; }
if [ "$version" != "$tool_version" ]; then
  echo "wasm-bindgen $version in Cargo.lock but tools/wasm-bindgen uses $tool_version: update tools/wasm-bindgen (Cargo.toml and Cargo.lock)" >&2
  exit 1
fi
cargo build -q --release --locked --manifest-path tools/wasm-bindgen/Cargo.toml
bindgen="$target/release/dockward-wasm-bindgen"

cargo build -q -p dockward-frontend --lib --target wasm32-unknown-unknown \
  --no-default-features --features hydrate --profile wasm-release

mkdir -p "$site/pkg"
"$bindgen" "$target/wasm32-unknown-unknown/wasm-release/dockward_frontend.wasm" "$site/pkg" dockward
cp frontend/style/dockward.css "$site/pkg/dockward.css"
# The server-rendered pages' own styles (not part of the live pages' first load).
cp frontend/style/pages.css "$site/pkg/pages.css"
# Pre-compressed copies: the asset service sends brotli or gzip, whichever the
# browser accepts (brotli is ~25% smaller for the wasm). brotli comes from
# Debian's `brotli` package; without it only gzip copies are made.
for f in "$site/pkg/dockward.js" "$site/pkg/dockward_bg.wasm" "$site/pkg/dockward.css" "$site/pkg/pages.css"; do
  gzip -9 -k -f "$f"
  if command -v brotli >/dev/null 2>&1; then
    brotli -q 11 -k -f "$f"
  else
    rm -f "$f.br"
  fi
done
ls -l "$site/pkg" | awk 'NR > 1 { printf "  %-22s %8d bytes\n", $9, $5 }'
