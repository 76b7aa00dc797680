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
