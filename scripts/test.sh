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
step "end-to-end tests" node --test --test-concurrency=1 --test-reporter=spec tests/
printf '[test] all steps: %d s\n' $((SECONDS - started)) >&2
