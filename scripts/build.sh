#!/usr/bin/env bash
# Builds build/index.js and the optimised wasm with worker-build, using the
# binaries installed by setup instead of downloading them. wrangler.toml's
# [build] command runs this too, so `wrangler dev` and `wrangler deploy` build
# exactly the same way.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
# Skip the (minutes-long) build when nothing it reads has changed since the last one.
stamp=$( (cat Cargo.toml Cargo.lock .cargo/config.toml .toolchain.env scripts/build.sh; echo "${EDGE_SESSION_KEEP_NAMES:-}"; find src -type f -print0 | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1)
if [ -f build/index.js ] && [ -f build/index_bg.wasm ] && [ "$(cat build/.edge-session-stamp 2>/dev/null)" = "$stamp" ]; then
  echo "[build] up to date"
  exit 0
fi
worker-build --release
# worker-build keeps the name section (function names for stack traces, about a
# fifth of the module) and optimises with -O. Production builds drop the names
# and optimise once more for size; EDGE_SESSION_KEEP_NAMES=1 keeps both as they were.
if [ "${EDGE_SESSION_KEEP_NAMES:-}" != 1 ]; then
  wasm-opt build/index_bg.wasm -Oz --strip-debug --strip-producers -o build/index_bg.wasm
fi
echo "$stamp" >build/.edge-session-stamp
wasm=$(stat -c %s build/index_bg.wasm)
echo "[build] build/index_bg.wasm: $wasm bytes, $(gzip -9 -c build/index_bg.wasm | wc -c) gzipped"
