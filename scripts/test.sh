#!/usr/bin/env bash
# The whole test suite: lints, host unit tests, then end-to-end tests that drive
# the real wasm (built once) in workerd through Miniflare against the demo origin and
# the framework examples. Each step prints how long it took ("[test] <step>: N s", on
# stderr), and the whole run its total.
#
# `make test` runs setup with SETUP_TOOLS=background: on a fresh machine the cargo tools
# (wasm-bindgen CLI, cargo-fuzz) are still building while the lints and host tests run,
# and the wasm build and the fuzz run wait for the tool they need.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
started=$SECONDS
step() {
  local name=$1 t0=$SECONDS
  shift
  "$@"
  printf '[test] %s: %d s\n' "$name" $((SECONDS - t0)) >&2
}
step lint bash scripts/lint.sh
step "host tests" cargo test --quiet --all-targets
step "doc tests" cargo test --quiet --doc
# The fuzz targets build (nightly, cargo fuzz build) beside the wasm build, whose release
# profile ends in a long link-time optimisation on one core; their run comes after.
set -m # the background build in its own process group, ended with the script
t0=$SECONDS
bash scripts/fuzz.sh build >.tmp/fuzz-build.log 2>&1 &
fuzz_build=$!
set +m
trap 'kill -- -"$fuzz_build" 2>/dev/null || true' EXIT
step "wasm build" bash scripts/build.sh
if ! wait "$fuzz_build"; then
  cat .tmp/fuzz-build.log >&2
  echo "fuzz build failed (above)" >&2
  exit 1
fi
trap - EXIT
printf '[test] %s: %d s\n' "fuzz build (beside the wasm build)" $((SECONDS - t0)) >&2
# a short fuzz run of each target in fuzz/ (skipped, with a message, without nightly)
step "fuzz smoke" bash scripts/fuzz.sh smoke
# the origin libraries: their own tests, then what would be published (dist/), which
# tests/packages.test.mjs installs into fresh projects
step "node package tests" node --test --test-reporter=dot packages/node/test/
step "python package tests" .tmp/django-venv/bin/python -m pytest -q -p no:cacheprovider packages/python/tests
step pack bash scripts/pack.sh
# The end-to-end files, two at a time: most of their time is spent waiting (timeouts of a
# second or a few, a browser), and each starts its own workers and servers on ports of its
# own, with in-memory KV and temporary directories. The longest files go first (measured:
# browser 44 s, load 34 s, guests 32 s, edge-mode 22 s, session-data 19 s, the others
# under 16 s), so that the two slots end close together; every other file follows.
first=(tests/browser.test.mjs tests/load.test.mjs tests/guests.test.mjs tests/edge-mode.test.mjs tests/session-data.test.mjs)
files=()
for f in "${first[@]}"; do [ ! -f "$f" ] || files+=("$f"); done
for f in tests/*.test.mjs; do
  [[ " ${first[*]} " == *" $f "* ]] || files+=("$f")
done
step "end-to-end tests" node --test --test-concurrency=2 --test-reporter=spec "${files[@]}"
printf '[test] all steps: %d s\n' $((SECONDS - started)) >&2
