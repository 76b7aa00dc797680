#!/usr/bin/env bash
# install-tool.sh CRATE VERSION [cargo install args...]: installs a build tool from
# source, quickly. The tools' own release profiles (LTO, one codegen unit) make the
# fastest binaries and the slowest builds, and a tool that runs for a second per build
# does not need them: this builds at opt-level 1 without LTO, in parallel codegen units.
# All tools share one target directory (.tmp/cargo-tools), so that the dependencies
# they have in common are built once; setup removes it when it is done.
# INSTALL_TIMEOUT (seconds, default 1800) bounds the build. INSTALL_OPT_LEVEL (default 1)
# sets the opt-level: setup builds its tools at 0 (wasm-bindgen-cli: about 100 s and 115
# CPU-seconds on 2 cores instead of 130 s and 245; it then takes 0.55 s per build of the
# worker instead of 0.15 s, with the same output).
set -euo pipefail
crate=$1 version=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
CARGO_TARGET_DIR=$root/.tmp/cargo-tools \
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=64 CARGO_PROFILE_RELEASE_OPT_LEVEL=${INSTALL_OPT_LEVEL:-1} \
  CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true CARGO_PROFILE_RELEASE_INCREMENTAL=false \
  CARGO_PROFILE_RELEASE_PANIC=unwind \
  exec timeout "${INSTALL_TIMEOUT:-1800}" cargo install -q "$crate" --version "$version" --force "$@"
