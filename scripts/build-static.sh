#!/usr/bin/env bash
# The two static binaries the images ship, into the cargo target directory:
#   dockward-sidecar  musl      <target>/<arch>-unknown-linux-musl/sidecar/ (profile `sidecar`: for size)
#   dockward-web      glibc, statically linked (crt-static)
#                               <target>/<arch>-unknown-linux-gnu/release/
# The console renders pages and pushes JSON to many clients: glibc's allocator
# renders the overview about 30% faster than musl's (BENCHMARKS.md). The
# sidecar stays on musl: smaller (its image budget is 10 MB) and lower RSS.
# Used by the Dockerfile's build stage and by scripts/build-images.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
arch="$(uname -m)"
for t in "$arch-unknown-linux-musl" "$arch-unknown-linux-gnu"; do
  rustup target list --installed 2>/dev/null | grep -qx "$t" || rustup target add "$t"
done
# ring (rustls' crypto) compiles C for the musl target with musl's gcc wrapper (Debian's musl-tools).
command -v musl-gcc >/dev/null || { echo "build-static: musl-gcc is missing (apt-get install musl-tools)" >&2; exit 1; }
env "CC_${arch}_unknown_linux_musl=musl-gcc" \
  cargo build -q --profile sidecar --locked --target "$arch-unknown-linux-musl" -p dockward-sidecar --bin dockward-sidecar
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build -q --release --locked --target "$arch-unknown-linux-gnu" -p dockward-frontend --bin dockward-web
