#!/usr/bin/env bash
# Prepares a Debian machine that has the Rust toolchain (as root): installs the
# packages the tests and benchmarks need if they are missing, and starts
# dockerd if it is not running. Used by scripts/test.sh and bench/run.sh.
set -euo pipefail

say() { printf '\n== %s\n' "$*"; }

# -- system packages --------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v brotli >/dev/null 2>&1 || need+=(brotli)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# The outbound-agent test isolates a sidecar in a network namespace behind a firewall.
command -v iptables >/dev/null 2>&1 || need+=(iptables)
# ring (rustls' crypto) has C and assembly: the musl sidecar needs musl's gcc wrapper.
command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # With recommends: chromium needs its fonts for readable screenshots.
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Packages whose services must not start here (invoke-rc.d and
# deb-systemd-invoke ask policy-rc.d, so a temporary one that answers 101
# keeps them from starting; on a systemd host they are left disabled),
# installed without recommends:
# - promtool (the metrics tests check /metrics with it) comes only in Debian's
#   prometheus package (~23 MB; its server would listen on 9090);
# - PostgreSQL: the store's tests start a private server of their own
#   (testkit::postgres) from its binaries; the packaged cluster stays stopped.
quiet=()
command -v promtool >/dev/null 2>&1 || quiet+=(prometheus)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || quiet+=(postgresql)
if [ ${#quiet[@]} -gt 0 ]; then
  say "installing ${quiet[*]} (their services are not started)"
  export DEBIAN_FRONTEND=noninteractive
  [ ${#need[@]} -gt 0 ] || apt-get update -qq
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${quiet[@]}" >/dev/null
  if [ -d /run/systemd/system ]; then
    for unit in prometheus postgresql; do
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
  fi
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

