#!/usr/bin/env bash
# Installs everything edge-session needs to build, run and test, idempotently.
#
# 1. a Rust toolchain that can build wasm32-unknown-unknown:
#    rustup's target where rustup can add it, otherwise Debian's "web" Rust
#    toolchain plus a wasm32 sysroot built once from its standard library source;
# 2. the wasm-bindgen CLI whose version equals Cargo.lock's (the build's only cargo tool)
#    and, optionally, a nightly toolchain and cargo-fuzz for `make fuzz` (skipped with a
#    message where rustup cannot install nightly): built in the background, beside 3 to 5;
# 3. the npm packages pinned by package-lock.json (wrangler, miniflare, esbuild, binaryen,
#    playwright-core);
# 4. for the end-to-end tests beyond the worker: Debian's chromium (and a Korean font,
#    for the demo's non-ASCII user), the Express example's npm packages
#    (examples/express/package-lock.json) and one Python venv (.tmp/django-venv: the
#    Python package's test and build tools, the Django and Flask examples, and the package's
#    wheel, built from packages/python and installed into it);
# 5. Debian's Rails, Puma and PHP for the Rails and PHP examples.
#
# When everything is present it finishes in a few seconds. Nothing is downloaded
# from outside the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=wasm32-unknown-unknown

say() { printf '[setup] %s\n' "$*" >&2; }
# took STEP T0: says how long STEP took since $SECONDS was T0 (each step that does work says it).
took() { say "$1: $((SECONDS - $2)) s"; }
setup_started=$SECONDS
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# apt-get install of the packages given, waiting (up to 10 min) for another apt or dpkg
# run to release its lock instead of failing at once; the package lists are updated once.
apt_updated=""
apt_install() {
  local wait=(-o DPkg::Lock::Timeout=600)
  [ -n "$apt_updated" ] || { as_root apt-get "${wait[@]}" update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" install -y -qq "$@" >/dev/null
}

# Prints the directory where `rustc` (first on PATH) keeps its wasm32 standard
# library, when that library is really there.
wasm_libdir() {
  local dir
  dir=$(rustc --target "$TARGET" --print target-libdir 2>/dev/null) || return 1
  compgen -G "$dir/libstd-*.rlib" >/dev/null || return 1
  echo "$dir"
}

# --- 0. Node.js --------------------------------------------------------------
node_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')
if [ -z "$node_major" ] || [ "$node_major" -lt 20 ]; then
  say "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none)); install it and npm, then run make again"
  exit 1
fi

# --- 1. wasm32 toolchain ----------------------------------------------------
toolchain_env=""
debian_stamp=/usr/lib/rustlib/$TARGET/lib/.edge-session-sysroot
# EDGE_SESSION_TOOLCHAIN=debian skips rustup and uses the fallback below (to test it).
# A sysroot built here before means rustup could not add the target then: not asked again.
if [ "${EDGE_SESSION_TOOLCHAIN:-}" != debian ] && wasm_libdir >/dev/null; then
  say "wasm32 target: present ($(rustc --version))"
elif [ "${EDGE_SESSION_TOOLCHAIN:-}" != debian ] && [ ! -f "$debian_stamp" ] && command -v rustup >/dev/null \
  && timeout 120 rustup target add "$TARGET" >/dev/null 2>&1 && wasm_libdir >/dev/null; then
  say "wasm32 target: added through rustup"
else
  say "wasm32 target: using Debian's web toolchain (rustup cannot add the target here, or EDGE_SESSION_TOOLCHAIN=debian)"
  toolchain_env='export PATH="/usr/bin:$PATH"'
  export PATH="/usr/bin:$PATH"
  need_apt=()
  [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library ] || need_apt+=(rustc-web cargo-web rust-web-src)
  [ -x /usr/bin/cargo-clippy ] || need_apt+=(rust-web-clippy)
  [ -x /usr/bin/rustfmt ] || need_apt+=(rustfmt-web)
  command -v rust-lld >/dev/null || [ -e /usr/bin/rust-lld ] || need_apt+=(lld-22)
  if [ ${#need_apt[@]} -gt 0 ]; then
    say "apt-get install ${need_apt[*]}"
    apt_install "${need_apt[@]}"
  fi
  libdir=/usr/lib/rustlib/$TARGET/lib
  stamp=$debian_stamp
  # `test` too: clippy --all-targets for wasm32 compiles the test harness.
  crates=std,panic_abort,panic_unwind,test
  want="$(/usr/bin/rustc --version) $crates"
  if ! wasm_libdir >/dev/null || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "building the wasm32 sysroot from /usr/lib/rustlib/src (about a minute)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/src"
    cat >"$tmp/Cargo.toml" <<'TOML'
[package]
name = "sysroot-probe"
version = "0.0.0"
edition = "2021"
[lib]
path = "src/lib.rs"
[profile.release]
opt-level = 3
codegen-units = 1
TOML
    echo '#![no_std]' >"$tmp/src/lib.rs"
    (cd "$tmp" && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Cembed-bitcode=yes" \
      /usr/bin/cargo build -q --release --target "$TARGET" "-Zbuild-std=$crates")
    as_root mkdir -p "$libdir"
    as_root rm -f "$libdir"/*.rlib
    for rlib in "$tmp/target/$TARGET/release/deps/"*.rlib; do
      case "$(basename "$rlib")" in libsysroot_probe-*) continue ;; esac
      as_root cp "$rlib" "$libdir/"
    done
    echo "$want" | as_root tee "$stamp" >/dev/null
    rm -rf "$tmp"
    trap - EXIT
  fi
  wasm_libdir >/dev/null || { say "the wasm32 sysroot is still missing after building it"; exit 1; }
fi
# Every other script sources this file so that it uses the same toolchain.
printf '%s\n' "# written by scripts/setup.sh" "$toolchain_env" >"$ROOT/.toolchain.env"

# --- 2. cargo tools (built in the background) ---------------------------------
# The wasm-bindgen CLI, and for fuzzing (optional) a nightly toolchain and cargo-fuzz,
# built from source by scripts/install-tool.sh (quickly: no LTO, opt-level 0). Building them takes
# the CPU for minutes while the steps after it mostly wait on downloads, so they run
# side by side: this step goes on in the background (its output in
# .tmp/setup-tools.log, shown at the end) and setup waits for it before it finishes.
# With SETUP_TOOLS=background (make test) setup does not wait: the tests that need no
# cargo tool (lints, host tests) start at once, and scripts/build.sh and scripts/fuzz.sh
# wait for the one they need (wait_for_tool in scripts/env.sh). Until a tool is
# installed, or has failed (.tmp/tools/<tool>.failed), the background job holds the
# lock .tmp/tools/<tool>.lock.
cargo_tools() {
  bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
  [ -n "$bindgen_version" ] || { say "Cargo.lock names no wasm-bindgen version"; exit 1; }
  if [ "$("$CARGO_BIN/wasm-bindgen" --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
    # Not --locked: one of its locked dependencies is missing from the registry mirror.
    # No default features: they are TLS for its test runner's downloads (rustls and ring),
    # which the build never uses.
    say "cargo install wasm-bindgen-cli@$bindgen_version (a few minutes, in the background)"
    t=$SECONDS
    if ! INSTALL_OPT_LEVEL=0 bash scripts/install-tool.sh wasm-bindgen-cli "$bindgen_version" --no-default-features; then
      touch "$tools/wasm-bindgen.failed"
      say "cargo install wasm-bindgen-cli failed (above)"
      exit 1
    fi
    took "cargo install wasm-bindgen-cli" "$t"
    built=1
  fi
  exec 7>&- # the wasm-bindgen CLI is ready: scripts/build.sh may go on
  # Fuzzing: `make fuzz` and the short fuzz run in `make test` need a nightly toolchain and
  # cargo-fuzz. Both are optional: where rustup cannot install nightly (no access to its
  # servers), setup says so once a day and goes on, and the fuzz run is skipped with a
  # message. EDGE_SESSION_FUZZ=off skips them.
  fuzz_note=$ROOT/.tmp/fuzz-tools-unavailable
  if [ "${EDGE_SESSION_FUZZ:-on}" != off ] && command -v rustup >/dev/null; then
    if ! rustup run nightly rustc --version >/dev/null 2>&1 && [ -z "$(find "$fuzz_note" -mmin -1440 2>/dev/null)" ]; then
      say "rustup toolchain install nightly --profile minimal (optional, for cargo fuzz)"
      if ! timeout 300 rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
        mkdir -p "$ROOT/.tmp" && date -u >"$fuzz_note"
        say "no nightly toolchain (rustup could not install one): the fuzz run will be skipped"
      fi
    fi
    if rustup run nightly rustc --version >/dev/null 2>&1 && ! rustup run nightly cargo fuzz --version >/dev/null 2>&1 \
      && [ -z "$(find "$fuzz_note" -mmin -1440 2>/dev/null)" ]; then
      say "cargo install cargo-fuzz@0.13.2 (optional)"
      built=1
      t=$SECONDS
      if ! INSTALL_TIMEOUT=900 INSTALL_OPT_LEVEL=0 bash scripts/install-tool.sh cargo-fuzz 0.13.2 --locked; then
        mkdir -p "$ROOT/.tmp" && date -u >"$fuzz_note"
        say "cargo-fuzz could not be installed: the fuzz run will be skipped"
      fi
      took "cargo install cargo-fuzz" "$t"
    fi
  fi
  # What the builds left (hundreds of MB), once they are installed.
  [ -z "${built:-}" ] || rm -rf "$ROOT/.tmp/cargo-tools"
}
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
export PATH="$PATH:$CARGO_BIN"
mkdir -p "$ROOT/.tmp"
tools=$ROOT/.tmp/tools
mkdir -p "$tools"
# The locks, taken here (after an earlier setup's background build, if one still runs)
# and handed to the background job, which keeps them until each tool is ready.
exec 7>"$tools/wasm-bindgen.lock" 8>"$tools/cargo-fuzz.lock"
if ! flock -n 7 || ! flock -n 8; then
  say "waiting for an earlier setup's cargo tools (still building in the background: .tmp/setup-tools.log)"
  flock 7
  flock 8
fi
rm -f "$tools"/*.failed
cargo_tools >"$ROOT/.tmp/setup-tools.log" 2>&1 &
tools_pid=$!
exec 7>&- 8>&-
trap 'kill "$tools_pid" 2>/dev/null' EXIT

# --- 3. npm packages ----------------------------------------------------------
# A hash of what `npm ci` installs in directory $1: its lock file and .npmrc, and the
# shipped files of the edge-session package (packages/node), which both the root (for the
# demo origin) and examples/express install packed, not linked (their .npmrc), so that a
# change to the package reinstalls it.
npm_sum() {
  (sha256sum "$1/package-lock.json" "$1/.npmrc"
    cd packages/node && find package.json index.d.ts README.md CHANGELOG.md src -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -d' ' -f1
}
lock_sum=$(npm_sum .)
if [ "$(cat node_modules/.edge-session-lock 2>/dev/null)" != "$lock_sum" ]; then
  say "npm ci"
  t=$SECONDS
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  took "npm ci" "$t"
  echo "$lock_sum" >node_modules/.edge-session-lock
fi

# --- 4. local secrets for `wrangler dev` ------------------------------------------
if [ ! -f .dev.vars ]; then
  say "generating .dev.vars (local development secrets)"
  node scripts/gen-dev-vars.mjs >.dev.vars
else
  # An older checkout's .dev.vars may lack a secret added since (ASSERTION_KEYS): append it.
  added=$(node scripts/gen-dev-vars.mjs --add-missing .dev.vars)
  [ -z "$added" ] || say "added to .dev.vars: $added"
fi
# --- 5. what the browser test and the framework examples need -----------------------
# Debian's Chromium (playwright-core drives it; it never downloads a browser of its own).
need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -d /usr/share/fonts/truetype/nanum ] || need_apt+=(fonts-nanum)
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  say "apt-get install ${need_apt[*]} (the browser test; a minute or two)"
  t=$SECONDS
  apt_install "${need_apt[@]}"
  took "apt-get install ${need_apt[*]}" "$t"
elif [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM:-}" ]; then
  # Not Debian: make dev works without it; make test's browser test needs CHROMIUM=<path to Chrome/Chromium>.
  say "no /usr/bin/chromium and no apt-get: set CHROMIUM to a Chrome or Chromium binary for the browser test"
fi
# packages/node: what its own tests use (express and express-session, dev dependencies).
pkg_sum=$(sha256sum packages/node/package-lock.json | cut -d' ' -f1)
if [ "$(cat packages/node/node_modules/.edge-session-lock 2>/dev/null)" != "$pkg_sum" ]; then
  say "npm ci in packages/node"
  t=$SECONDS
  (cd packages/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  took "npm ci in packages/node" "$t"
  echo "$pkg_sum" >packages/node/node_modules/.edge-session-lock
fi
# examples/express: express, express-session and the edge-session package, pinned by its
# own lock file.
ex_sum=$(npm_sum examples/express)
if [ "$(cat examples/express/node_modules/.edge-session-lock 2>/dev/null)" != "$ex_sum" ]; then
  say "npm ci in examples/express"
  t=$SECONDS
  (cd examples/express && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  took "npm ci in examples/express" "$t"
  echo "$ex_sum" >examples/express/node_modules/.edge-session-lock
fi
# Python: one venv (.tmp/django-venv) for everything Python here: the edge-session package's
# tests and build (packages/python/requirements-dev.txt) and the Django and Flask examples
# (their requirements.txt), all exact pins. Then the package's wheel, built and installed
# into it, so that the examples run the package as a user installs it. Its stamp hashes
# packages/python's files (not what a build or a test run leaves there): a change rebuilds.
venv=.tmp/django-venv
py_reqs=(packages/python/requirements-dev.txt examples/django/requirements.txt examples/flask/requirements.txt)
req_sum=$( (sha256sum "${py_reqs[@]}"; python3 --version) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.edge-session-req" 2>/dev/null)" != "$req_sum" ]; then
  command -v python3 >/dev/null || { say "python3 is required for the Python package and examples"; exit 1; }
  say "pip install -r ${py_reqs[*]} into $venv"
  t=$SECONDS
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    say "python3 cannot make a venv: apt-get install python3-venv"
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
  pip_args=()
  for r in "${py_reqs[@]}"; do pip_args+=(-r "$r"); done
  "$venv/bin/pip" install -q --disable-pip-version-check "${pip_args[@]}"
  echo "$req_sum" >"$venv/.edge-session-req"
  took "python venv" "$t"
fi
wheel_sum=$(cd packages/python && find . \( -name build -o -name '*.egg-info' -o -name __pycache__ -o -name .pytest_cache \) -prune \
  -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.edge-session-wheel" 2>/dev/null)" != "$wheel_sum" ]; then
  say "building the edge-session wheel (packages/python) and installing it into $venv"
  t=$SECONDS
  bash scripts/pack.sh >/dev/null
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall dist/edge_session-*.whl
  took "the wheel" "$t"
  echo "$wheel_sum" >"$venv/.edge-session-wheel"
fi
# examples/rails and examples/php: Debian's Rails 6.1 with its jwt gem and Puma, and PHP 8.2's
# CLI (its built-in server and $_SESSION). Debian packages only: no Ruby or PHP registry.
need_apt=()
for pkg in ruby-rails ruby-jwt puma php-cli; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' installed$' || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  say "apt-get install ${need_apt[*]} (the Rails and PHP examples; about 16 MB, under a minute)"
  t=$SECONDS
  apt_install "${need_apt[@]}"
  took "apt-get install ${need_apt[*]}" "$t"
elif [ ${#need_apt[@]} -gt 0 ]; then
  say "no apt-get: the Rails and PHP example tests need Debian's ${need_apt[*]}"
fi
# --- 6. the cargo tools of step 2 --------------------------------------------------
if [ "${SETUP_TOOLS:-}" = background ] && kill -0 "$tools_pid" 2>/dev/null; then
  trap - EXIT
  say "ready ($((SECONDS - setup_started)) s; the cargo tools are still building in the background: .tmp/setup-tools.log)"
  exit 0
fi
t=$SECONDS
if ! wait "$tools_pid"; then
  cat "$ROOT/.tmp/setup-tools.log" >&2
  say "installing the cargo tools failed (above)"
  exit 1
fi
trap - EXIT
cat "$ROOT/.tmp/setup-tools.log" >&2
[ $((SECONDS - t)) = 0 ] || took "waiting for the cargo tools" "$t"
say "ready ($((SECONDS - setup_started)) s)"
