#!/usr/bin/env bash
# Lays out the two images' file trees under OUT, from the static binaries and
# browser assets already built in the cargo target directory:
#   OUT/sidecar/root   files owned by root      (the binary)
#   OUT/sidecar/state  directories for uid 65532 (audit log, audit key, secrets, /tmp)
#   OUT/web/root       the binary and site/pkg (wasm, JS, CSS and .gz copies)
#   OUT/web/state      directories for uid 65532 (users file, /tmp)
# Used by the Dockerfile's build stage and by scripts/build-images.sh alike.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: stage-images.sh OUT}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
sidecar_bin="$target/$(uname -m)-unknown-linux-musl/sidecar/dockward-sidecar"
web_bin="$target/$(uname -m)-unknown-linux-gnu/release/dockward-web"
site="${SITE:-$target/site}"

for f in "$sidecar_bin" "$web_bin" "$site/pkg/dockward_bg.wasm" "$site/pkg/dockward.js" "$site/pkg/dockward.css" "$site/pkg/pages.css"; do
  [ -f "$f" ] || { echo "stage-images: missing $f (build it first: scripts/build-static.sh, scripts/build-web.sh)" >&2; exit 1; }
done

rm -rf "$out/sidecar" "$out/web"
mkdir -p "$out/sidecar/root" "$out/web/root/site"
install -m 0555 "$sidecar_bin" "$out/sidecar/root/dockward-sidecar"
install -m 0555 "$web_bin" "$out/web/root/dockward-web"
cp -R "$site/pkg" "$out/web/root/site/pkg"
chmod -R a=rX "$out/web/root/site"

# The named volumes mounted on these directories take their owner and mode on first use.
install -d -m 0700 "$out/sidecar/state/var/lib/dockward" "$out/sidecar/state/var/lib/dockward-key" "$out/sidecar/state/run/secrets"
install -d -m 0700 "$out/web/state/var/lib/dockward-web" "$out/web/state/run/secrets"
install -d -m 1777 "$out/sidecar/state/tmp" "$out/web/state/tmp"
