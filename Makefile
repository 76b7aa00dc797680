# The two commands a newcomer needs: `make dev` (run it) and `make test` (test it).
# Every target runs setup first; setup takes a few seconds when everything is present.
.PHONY: setup build dev test lint bench clean

setup:
	@bash scripts/setup.sh

build: setup
	@bash scripts/build.sh

dev: setup
	@bash scripts/dev.sh

lint: setup
	@bash scripts/lint.sh

test: setup
	@bash scripts/test.sh

# Latency of each tier, as ratios within one run (not part of make test).
bench: build
	@node bench/latency.mjs

clean:
	rm -rf build target .wrangler .tmp
