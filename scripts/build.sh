#!/usr/bin/env bash
# Builds the worker: build/index.js (the entry, src/edge/entry.mjs, bundled with
# wasm-bindgen's glue) and build/index_bg.wasm. wrangler.toml's [build] command runs
# this too, so `wrangler dev` and `wrangler deploy` build exactly the same way.
#   1. cargo builds the wasm32 library (release profile: Cargo.toml);
#   2. the wasm-bindgen CLI (the version of Cargo.lock, installed by setup) writes the glue;
#   3. wasm-opt (binaryen, from npm) optimises it for size;
#   4. esbuild (npm) bundles the entry and the glue into one module.
# EDGE_SESSION_KEEP_NAMES=1 keeps the wasm's name section (function names in stack
# traces and profiles, about a fifth of the module), optimises with -O instead of -Oz,
# and leaves index.js's identifiers unminified (function names in JS profiles too).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
mkdir -p build .tmp
# One build at a time (wrangler dev, a test run and a bench may each start one).
exec 9>.tmp/build.lock
flock 9
# Skip the build when nothing it reads has changed since the last one.
stamp=$( (cat Cargo.toml Cargo.lock .cargo/config.toml .toolchain.env scripts/build.sh; echo "${EDGE_SESSION_KEEP_NAMES:-}"; find src -type f -print0 | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1)
if [ -f build/index.js ] && [ -f build/index_bg.wasm ] && [ "$(cat build/.edge-session-stamp 2>/dev/null)" = "$stamp" ]; then
  echo "[build] up to date"
  exit 0
fi
cargo build --lib --release --target wasm32-unknown-unknown
# make test runs this while setup may still be building the wasm-bindgen CLI.
wait_for_tool wasm-bindgen
stage=build/.stage
rm -rf "$stage"
# --experimental-reset-state-function: the entry restarts the instance after a panic.
"$WASM_BINDGEN_BIN" --target module --out-dir "$stage" --out-name index --no-typescript \
  --experimental-reset-state-function target/wasm32-unknown-unknown/release/edge_session.wasm
# workerd imports a .wasm module as a compiled WebAssembly.Module: a plain import,
# not the source-phase `import source` that wasm-bindgen writes for this target.
sed -i 's/^import source /import /' "$stage/index.js"
features=(--enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-bulk-memory --enable-multivalue --enable-reference-types)
if [ "${EDGE_SESSION_KEEP_NAMES:-}" = 1 ]; then
  "$WASM_OPT_BIN" "$stage/index_bg.wasm" -O "${features[@]}" --debuginfo -o "$stage/index_bg.wasm"
else
  "$WASM_OPT_BIN" "$stage/index_bg.wasm" -Oz "${features[@]}" --strip-debug --strip-producers -o "$stage/index_bg.wasm"
fi
cp src/edge/entry.mjs src/edge/entry-core.mjs "$stage/"
# entry-core.mjs imports ./native.js: the glue's own copy of it (one module in the bundle).
native=$(cd "$stage" && ls snippets/*/src/edge/native.js)
echo "export * from \"./$native\";" >"$stage/native.js"
minify=(--minify)
[ "${EDGE_SESSION_KEEP_NAMES:-}" = 1 ] && minify=(--minify-whitespace --minify-syntax)
"$ESBUILD_BIN" "$stage/entry.mjs" --bundle --format=esm "${minify[@]}" --log-level=warning \
  --external:./index_bg.wasm '--external:cloudflare:*' --outfile="$stage/bundle.js"
mv "$stage/bundle.js" build/index.js
mv "$stage/index_bg.wasm" build/index_bg.wasm
rm -rf "$stage" build/worker
echo "$stamp" >build/.edge-session-stamp
wasm=$(stat -c %s build/index_bg.wasm)
echo "[build] build/index_bg.wasm: $wasm bytes, $(gzip -9 -c build/index_bg.wasm | wc -c) gzipped"
