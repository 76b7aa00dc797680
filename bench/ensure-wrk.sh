#!/usr/bin/env bash
# Installs wrk (the HTTP load generator `make bench` drives) from Debian when it is
# missing. Only the bench needs it, so `make setup` and `make test` never call this.
set -euo pipefail
if command -v wrk >/dev/null; then
  exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
command -v apt-get >/dev/null || { echo "[bench] wrk is missing: install it with your package manager" >&2; exit 1; }
echo "[bench] apt-get install wrk" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
command -v wrk >/dev/null
