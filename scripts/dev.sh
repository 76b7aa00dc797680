#!/usr/bin/env bash
# Local development: the demo origin on 127.0.0.1:$ORIGIN_PORT and `wrangler dev`
# in front of it on 127.0.0.1:8787, with local KV and the secrets of .dev.vars.
#   MODE=edge   (default) the worker owns sessions: the demo site sends login/logout signals
#   MODE=attach the demo site owns sessions (its own `sid` cookie) and the worker uses its lookup endpoint
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
MODE=${MODE:-edge}
ORIGIN_PORT=${ORIGIN_PORT:-8081}
PORT=${PORT:-8787}
case "$MODE" in edge | attach) ;; *) echo "MODE must be edge or attach, not '$MODE'" >&2; exit 2 ;; esac

bash scripts/build.sh

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "edge-session dev: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The demo origin trusts only requests that carry a valid assertion from this worker.
node www/server.mjs --name a --mode "$MODE" --port "$ORIGIN_PORT" \
  --jwks-url "http://127.0.0.1:$PORT/.edge-session/jwks.json" --audience "http://127.0.0.1:$PORT" --require-assertion &
pids+=($!)

vars=(--var "ORIGIN_URL:http://127.0.0.1:$ORIGIN_PORT")
[ "$MODE" = attach ] && vars+=(--var "LOOKUP_URL:/api/session-lookup")

cat <<MSG

  edge-session ($MODE mode) is starting on  http://127.0.0.1:$PORT/
  demo users: alice / wonderland, bob / builder, 김철수 / 비밀번호
  health:     http://127.0.0.1:$PORT/.edge-session/health
  Ctrl-C stops both the worker and the demo origin.

MSG
# The build above is current, so wrangler's own [build] step finds nothing to do.
wrangler dev --ip 127.0.0.1 --port "$PORT" --show-interactive-dev-session=false "${vars[@]}" &
pids+=($!)
wait -n "${pids[@]}"
