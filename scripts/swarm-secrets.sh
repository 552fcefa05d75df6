#!/usr/bin/env bash
# The secrets stack.yaml reads, made once in DIR (default ./swarm, mode 0700):
#   sidecar, sidecar.pin    the sidecars' shared secret and their identity's fingerprint
#   tls.crt, tls.key        the sidecars' TLS identity (one for the whole service)
#   session.key             the console replicas' session key
#   users.json              the console's users: an admin, its password read from stdin
# Existing files are kept (run it again after removing one to replace it, then
# `docker secret rm` the old secret and deploy again). Needs the images
# (scripts/build-images.sh or `docker compose build`).
set -euo pipefail
dir="${1:-swarm}"
mkdir -p "$dir"
chmod 700 "$dir"
abs="$(cd "$dir" && pwd)"
# As the invoking user: the files stay theirs (mode 0600), for `docker stack deploy` to read.
me="$(id -u):$(id -g)"
docker run --rm -u "$me" --network none -v "$abs:/out" dockward-sidecar:local \
  secret init /out/sidecar --tls-cert-file /out/tls.crt --tls-key-file /out/tls.key
if [ ! -s "$dir/session.key" ]; then
  (umask 077 && head -c 48 /dev/urandom | base64 -w0 > "$dir/session.key")
fi
if [ ! -s "$dir/users.json" ]; then
  user="${DOCKWARD_ADMIN:-admin}"
  echo "a password for $user (12 characters or more), then Enter:" >&2
  docker run --rm -i -u "$me" --network none -v "$abs:/out" dockward-web:local \
    user add "$user" --role admin --users-file /out/users.json
fi
echo "secrets ready in $dir: docker stack deploy -c stack.yaml dockward" >&2
