#!/usr/bin/env bash
# Local development (`make dev`): three demo origins (a, b, c on 127.0.0.1:8081-8083,
# nothing shared between them) behind `wrangler dev` on 127.0.0.1:8787, which spreads
# requests over them round-robin, with local KV and the secrets of .dev.vars.
#   MODE=edge   (default) the worker owns sessions: the demo site sends login/logout signals
#   MODE=attach the demo site owns sessions (its own `sid` cookie, kept in one JSON file
#               that the three instances share) and the worker uses its lookup endpoint
# Other knobs (PORT, ORIGIN_PORT, IDLE_TIMEOUT, TICKET_TTL, ...): see scripts/dev-stack.mjs.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
MODE=${MODE:-edge}
case "$MODE" in edge | attach) ;; *) echo "MODE must be edge or attach, not '$MODE'" >&2; exit 2 ;; esac
export MODE
bash scripts/build.sh
exec node scripts/dev-stack.mjs
