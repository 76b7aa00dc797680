#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer, nightly Rust) over the targets in fuzz/:
#   scripts/fuzz.sh          a campaign: FUZZ_SECONDS (default 300) per target (`make fuzz`)
#   scripts/fuzz.sh smoke    a few seconds per target (FUZZ_SMOKE_SECONDS, default 5; `make test`)
#   scripts/fuzz.sh build    only builds the targets (`make test` does it beside the wasm build)
# Without a nightly toolchain or cargo-fuzz (make setup installs both where rustup can
# reach its servers) it says so and skips, exit 0. A crash fails it, with the input kept
# under fuzz/artifacts/<target>/. New corpus entries are kept in fuzz/corpus/ (ignored by git).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
mode=${1:-campaign}
case "$mode" in
  smoke) seconds=${FUZZ_SMOKE_SECONDS:-5} ;;
  campaign) seconds=${FUZZ_SECONDS:-300} ;;
  build) ;;
  *) echo "usage: scripts/fuzz.sh [smoke|campaign|build]" >&2; exit 2 ;;
esac
# make test runs this while setup may still be installing nightly and cargo-fuzz.
wait_for_tool cargo-fuzz
if ! command -v rustup >/dev/null || ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: SKIPPED: no nightly Rust toolchain (cargo fuzz needs one; make setup installs it where rustup can reach its servers)"
  exit 0
fi
if ! rustup run nightly cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: SKIPPED: cargo-fuzz is not installed (make setup installs it: cargo install cargo-fuzz)"
  exit 0
fi
if [ "$mode" = build ]; then
  # every target at once, as `cargo fuzz run` builds each (same profile and flags)
  rustup run nightly cargo fuzz build
  exit 0
fi
logs=$ROOT/.tmp/fuzz
mkdir -p "$logs"
total=0
for target in $(rustup run nightly cargo fuzz list); do
  mkdir -p "fuzz/corpus/$target"
  log=$logs/$target.log
  t=$SECONDS
  # -print_final_stats prints stat::number_of_executed_units at the end
  if ! rustup run nightly cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $target FAILED (log: $log, input under fuzz/artifacts/$target/)"
    exit 1
  fi
  runs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log" | tail -1)
  echo "fuzz: $target: ${runs:-?} executions in ${seconds}s, no crash ($((SECONDS - t)) s with its build)"
  total=$((total + ${runs:-0}))
done
echo "fuzz: $total executions in total ($mode)"
