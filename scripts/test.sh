#!/usr/bin/env bash
# The whole test suite: lints, host unit tests, then end-to-end tests that drive
# the real wasm (built once) in workerd through Miniflare against the demo origin and
# the framework examples.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/lint.sh
cargo test --quiet --all-targets
cargo test --quiet --doc
# a short fuzz run of each target in fuzz/ (skipped, with a message, without nightly)
bash scripts/fuzz.sh smoke
bash scripts/build.sh
# the origin libraries: their own tests, then what would be published (dist/), which
# tests/packages.test.mjs installs into fresh projects
node --test --test-reporter=dot packages/node/test/
.tmp/django-venv/bin/python -m pytest -q -p no:cacheprovider packages/python/tests
bash scripts/pack.sh
node --test --test-concurrency=1 --test-reporter=spec tests/
