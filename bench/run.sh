#!/usr/bin/env bash
# The benchmark command: builds the release binaries, the browser assets and
# the images if needed, then runs every scenario on the local dockerd and
# rewrites the figures in BENCHMARKS.md and bench/results.json.
#   bash bench/run.sh [all|stats|cost|footprint|verbs|console|fleet|tls|tunnel|recreate|kernel|history|alerts] [--quick] [--sizes 50,100,200]
#   (alerts: issue 18, rule evaluation at 5 000 containers, a killed container to its webhook; ~6 min alone)
#   (history: issue 17, console CPU ingesting 5 000 containers, a 30-day chart, disk per container; ~10 min alone)
#   (kernel: issue 16, engine cost by stats source at 100 containers, then 200 and 1 000; ~12 min alone)
#   (fleet: issue 13, 50 hosts × 100 containers then 500 stand-in hosts; ~15 min alone;
#   --fleet-real, --fleet-hosts, --fleet-big change its sizes)
# Installs what is missing and starts dockerd (scripts/prepare.sh, as root). Takes ~20 min.
#   bash bench/run.sh mutants [all|shared|sidecar]
# Opt-in, separate: mutation testing of the pure code (bench/mutants.sh; no
# Docker, no release build; ~50 min at the lowest CPU priority).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == mutants ]]; then
  shift
  exec bash bench/mutants.sh "$@"
fi
target="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$target"
ulimit -n 16384 2>/dev/null || ulimit -n 8192 2>/dev/null || true   # 1 000 live clients and 500 hosts need their sockets

bash scripts/prepare.sh
rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

bash scripts/build-web.sh >/dev/null
bash scripts/build-images.sh >/dev/null   # the footprint figures are of the current code
cargo build -q --release -p dockward-bench

# Measure what ships: the static binaries inside the images.
bins="$target/bench-bin"
mkdir -p "$bins"
ln -sf "$target/$(uname -m)-unknown-linux-musl/sidecar/dockward-sidecar" "$bins/dockward-sidecar"
ln -sf "$target/$(uname -m)-unknown-linux-gnu/release/dockward-web" "$bins/dockward-web"
export DOCKWARD_BENCH_BIN_DIR="$bins"
figures=$(mktemp)
"$target/release/dockward-bench" --markdown "$figures" --site-root "$target/site" \
  --command "bash bench/run.sh${*:+ $*}" "$@"
# Keep the hand-written analysis: only the generated part between the markers changes.
python3 - "$figures" <<'PY'
import re, sys
new = open(sys.argv[1]).read()
path = "BENCHMARKS.md"
try:
    old = open(path).read()
except FileNotFoundError:
    old = "# Benchmarks\n\n<!-- figures -->\n<!-- /figures -->\n"
block = "<!-- figures -->\n" + new + "<!-- /figures -->"
out, n = re.subn(r"<!-- figures -->.*?<!-- /figures -->", lambda m: block, old, flags=re.S)
if n == 0:
    out = old.rstrip() + "\n\n" + block + "\n"
open(path, "w").write(out)
PY
rm -f "$figures"
echo "BENCHMARKS.md and bench/results.json updated"
