# dockward images: two small static images on `scratch`.
#   docker build --target sidecar -t dockward-sidecar:local .
#   docker build --target web     -t dockward-web:local .
# (`docker compose up -d` does both.) The `build` stage compiles the static
# binaries (sidecar: musl; web: glibc, crt-static) and the browser assets; the
# final stages hold nothing else.
#
# CI has no registry to pull `rust` from: scripts/build-images.sh compiles the
# same binaries on the host, stages them with the same script, and builds the
# two final stages below from this file (only `--from=build /out/` is dropped).

# Pinned by digest (the multi-arch index of rust:1.95.0-bookworm): a tag can be
# moved, a digest cannot. To update: `docker buildx imagetools inspect rust:<v>-bookworm`
# on a machine that reaches Docker Hub, then change both here. The test script
# refuses a FROM line without a digest.
FROM rust:1.95.0-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
# musl-tools: the C compiler for ring (rustls' crypto) in the musl sidecar.
RUN apt-get update && apt-get install -y --no-install-recommends brotli musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ENV CARGO_TARGET_DIR=/src/target
RUN bash scripts/build-web.sh \
 && bash scripts/build-static.sh \
 && bash scripts/stage-images.sh /out

# The sidecar: the only image that is given the Docker socket.
FROM scratch AS sidecar
COPY --from=build /out/sidecar/root/ /
COPY --from=build --chown=65532:65532 /out/sidecar/state/ /
USER 65532:65532
ENV DOCKWARD_AUDIT_LOG=/var/lib/dockward/audit.jsonl
EXPOSE 7700
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["/dockward-sidecar", "healthcheck"]
ENTRYPOINT ["/dockward-sidecar"]

# The web console: no socket, no Docker client; its binary and browser assets.
FROM scratch AS web
COPY --from=build /out/web/root/ /
COPY --from=build --chown=65532:65532 /out/web/state/ /
USER 65532:65532
ENV DOCKWARD_SITE_ROOT=/site DOCKWARD_USERS_FILE=/var/lib/dockward-web/users.json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["/dockward-web", "healthcheck"]
ENTRYPOINT ["/dockward-web"]
