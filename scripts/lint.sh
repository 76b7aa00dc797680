#!/usr/bin/env bash
# Formatting and clippy, for the host and for wasm32.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
cargo fmt --all -- --check
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --all-targets --target wasm32-unknown-unknown -- -D warnings
echo "lint: ok"
