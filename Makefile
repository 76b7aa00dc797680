# The two commands a newcomer needs: `make dev` (run it) and `make test` (test it).
# Every target runs setup first; setup takes a few seconds when everything is present.
.PHONY: setup build dev test lint pack bench deploy-check fuzz clean

setup:
	@bash scripts/setup.sh

build: setup
	@bash scripts/build.sh

dev: setup
	@bash scripts/dev.sh

lint: setup
	@bash scripts/lint.sh

# Setup does not wait for its cargo tools here: the tests that need none start at once
# (scripts/test.sh), and the wasm build and the fuzz run wait for theirs.
test:
	@SETUP_TOOLS=background bash scripts/setup.sh
	@bash scripts/test.sh

# The origin libraries as they would be published (docs/ATTACH.md): dist/edge-session-<v>.tgz
# (npm pack of packages/node) and dist/edge_session-<v>-py3-none-any.whl (packages/python).
pack: setup
	@bash scripts/pack.sh

# What `wrangler deploy --env production` would upload, checked offline: refuses the
# placeholder KV namespace id, reports the bundle size (docs/DEPLOY.md).
deploy-check: build
	@bash scripts/check-deploy.sh

# edge-session side by side with passthrough Workers and a JS peer under wrk, in one
# run (a few minutes; not part of make test). Writes bench/RESULTS.md and bench/chart.svg.
bench: build
	@bash bench/ensure-wrk.sh
	@bash bench/build-passthrough.sh
	@node bench/run.mjs

# A fuzzing campaign over fuzz/'s targets (cargo-fuzz, nightly): FUZZ_SECONDS per
# target, 300 by default. make test runs each target for a few seconds only.
fuzz: setup
	@bash scripts/fuzz.sh campaign

clean:
	rm -rf build dist target .wrangler .tmp
