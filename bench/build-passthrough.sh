#!/usr/bin/env bash
# Builds the bare workers-rs passthrough (bench/passthrough-rs) the way a workers-rs
# project is built: with worker-build (and its generated entry), which only the bench
# needs, so it is installed here on first use (scripts/install-tool.sh, a few minutes),
# and the same toolchain and wasm-bindgen CLI as scripts/build.sh. Skipped when nothing
# it reads has changed since the last build.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"
WORKER_BUILD_VERSION=0.8.7
if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$WORKER_BUILD_VERSION" ]; then
  echo "[bench] cargo install worker-build@$WORKER_BUILD_VERSION (only the bench uses it; a few minutes, once)"
  bash "$ROOT/scripts/install-tool.sh" worker-build "$WORKER_BUILD_VERSION" --locked
  rm -rf "$ROOT/.tmp/cargo-tools"
fi
cd "$ROOT/bench/passthrough-rs"
# worker-build runs the wasm-bindgen CLI that setup installed for edge-session's
# Cargo.lock; the crate's own wasm-bindgen must be that exact version or the build fails late.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")
have=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$want" != "$have" ]; then
  echo "[bench] bench/passthrough-rs/Cargo.lock has wasm-bindgen $have, edge-session's has $want:" >&2
  echo "[bench]   (cd bench/passthrough-rs && cargo update -p wasm-bindgen --precise $want)" >&2
  exit 1
fi
stamp() { (cat Cargo.toml Cargo.lock "$ROOT/.cargo/config.toml" "$ROOT/.toolchain.env" "$ROOT/bench/build-passthrough.sh"; find src -type f -print0 | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1; }
if [ -f build/index.js ] && [ -f build/index_bg.wasm ] && [ "$(cat build/.stamp 2>/dev/null)" = "$(stamp)" ]; then
  echo "[bench] passthrough-rs: up to date"
  exit 0
fi
echo "[bench] building bench/passthrough-rs (a minute or two the first time)"
worker-build --release
# The same post-processing as edge-session's scripts/build.sh: the name section dropped.
wasm-opt build/index_bg.wasm -Oz --strip-debug --strip-producers -o build/index_bg.wasm
stamp >build/.stamp # after the build: cargo may have pruned Cargo.lock
