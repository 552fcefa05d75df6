#!/usr/bin/env bash
# Builds the web console's browser assets into $SITE (default: <target>/site):
#   pkg/dockward.js, pkg/dockward_bg.wasm (wasm-bindgen, --target web) and pkg/dockward.css.
# Everything comes from crates.io: wasm-bindgen-cli is installed with cargo,
# pinned to the exact wasm-bindgen version in Cargo.lock, and cached under the
# target directory. No tool downloads prebuilt binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
site="${SITE:-$target/site}"

rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
[ -n "$version" ] || { echo "wasm-bindgen is not in Cargo.lock" >&2; exit 1; }
bindgen="$target/tools/bin/wasm-bindgen"
if ! "$bindgen" --version 2>/dev/null | grep -qx "wasm-bindgen $version"; then
  echo "installing wasm-bindgen-cli $version (once; cached in $target/tools)"
  # Not --locked: its lockfile names a webpki-roots release the registry does not serve.
  cargo install -q wasm-bindgen-cli --version "=$version" --root "$target/tools"
fi

cargo build -q -p dockward-frontend --lib --target wasm32-unknown-unknown \
  --no-default-features --features hydrate --profile wasm-release

mkdir -p "$site/pkg"
"$bindgen" --target web --no-typescript --out-dir "$site/pkg" --out-name dockward \
  "$target/wasm32-unknown-unknown/wasm-release/dockward_frontend.wasm"
cp frontend/style/dockward.css "$site/pkg/dockward.css"
# Pre-compressed copies: the asset service sends brotli or gzip, whichever the
# browser accepts (brotli is ~25% smaller for the wasm). brotli comes from
# Debian's `brotli` package; without it only gzip copies are made.
for f in "$site/pkg/dockward.js" "$site/pkg/dockward_bg.wasm" "$site/pkg/dockward.css"; do
  gzip -9 -k -f "$f"
  if command -v brotli >/dev/null 2>&1; then
    brotli -q 11 -k -f "$f"
  else
    rm -f "$f.br"
  fi
done
ls -l "$site/pkg" | awk 'NR > 1 { printf "  %-22s %8d bytes\n", $9, $5 }'
