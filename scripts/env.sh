# Sourced by the project's scripts: the toolchain chosen by scripts/setup.sh and the
# locally installed tools, so that every build uses the same binaries.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -f "$ROOT/.toolchain.env" ]; then
  echo "edge-session: run 'make setup' first (no .toolchain.env)" >&2
  exit 1
fi
# shellcheck disable=SC1091
. "$ROOT/.toolchain.env"
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin:$ROOT/node_modules/.bin"
export WASM_BINDGEN_BIN="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
export WRANGLER_SEND_METRICS=false

# wait_for_tool TOOL: returns once setup's background job (SETUP_TOOLS=background, as
# `make test` runs setup) is done with cargo tool TOOL (wasm-bindgen or cargo-fuzz),
# saying how long it waited and what that job said about it; fails if installing it failed.
wait_for_tool() {
  local lock=$ROOT/.tmp/tools/$1.lock t=$SECONDS
  [ -f "$lock" ] || return 0
  if ! flock -n "$lock" true; then
    echo "[$1] setup is still building it in the background: waiting" >&2
    flock "$lock" true
    grep -F "${1#cargo-}" "$ROOT/.tmp/setup-tools.log" >&2 || true
    echo "[$1] waited $((SECONDS - t)) s" >&2
  fi
  if [ -f "$ROOT/.tmp/tools/$1.failed" ]; then
    cat "$ROOT/.tmp/setup-tools.log" >&2
    echo "[$1] setup could not install it (above)" >&2
    return 1
  fi
}
