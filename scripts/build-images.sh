#!/usr/bin/env bash
# Builds dockward-sidecar:local and dockward-web:local without pulling anything:
# the static binaries (scripts/build-static.sh) and browser assets are compiled here, staged by
# scripts/stage-images.sh, and the Dockerfile's two final stages (`FROM scratch`)
# are built from them. Only the COPY source differs from the Dockerfile's own
# path (`--from=build` is dropped and `/out/` becomes the staged context). Fails if an image is
# over its size budget (sidecar 10 MB, web 31 MB: 30 until alerts, BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$target"
[ -f "$target/site/pkg/dockward_bg.wasm" ] || bash scripts/build-web.sh
bash scripts/build-static.sh

ctx="$target/images"
bash scripts/stage-images.sh "$ctx"
sed -n '/^FROM scratch AS sidecar$/,$p' Dockerfile | sed -e 's#--from=build ##' -e 's# /out/# #' > "$ctx/Dockerfile"
! grep -q -e '--from=' -e '/out/' "$ctx/Dockerfile" && grep -q '^FROM scratch AS web$' "$ctx/Dockerfile" || { echo "build-images: Dockerfile has no final stages to build" >&2; exit 1; }

# The classic builder: it needs no buildx plugin, and the stages here pull nothing.
for image in sidecar web; do
  if ! DOCKER_BUILDKIT=0 docker build --target "$image" -t "dockward-$image:local" "$ctx" >"$ctx/build-$image.log" 2>&1; then
    cat "$ctx/build-$image.log" >&2
    exit 1
  fi
done

status=0
for spec in sidecar:10000000 web:31000000; do
  image="dockward-${spec%%:*}:local" budget="${spec##*:}"
  size=$(docker image inspect --format '{{.Size}}' "$image")
  printf '  %-22s %9d bytes (budget %d)\n' "$image" "$size" "$budget"
  if [ "$size" -gt "$budget" ]; then
    echo "build-images: $image is over its size budget" >&2
    status=1
  fi
done
exit $status
