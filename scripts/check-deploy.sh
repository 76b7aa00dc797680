#!/usr/bin/env bash
# `make deploy-check`: what `wrangler deploy --env production` would upload, checked
# offline before a real deploy (see docs/DEPLOY.md).
#   1. `wrangler deploy --dry-run --outdir` builds and bundles exactly as a deploy would;
#   2. the SESSIONS KV namespace id must be a real one (32 hex digits), not the placeholder;
#   3. the bundle size is reported against the platform's limits;
#   4. a warning when neither a route nor ORIGIN_URL says where requests go.
# Usage: scripts/check-deploy.sh [wrangler config, default wrangler.toml]; DEPLOY_ENV (production).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
config=${1:-wrangler.toml}
envname=${DEPLOY_ENV:-production}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if ! wrangler deploy --dry-run --outdir "$out/bundle" --env "$envname" --config "$config" >"$out/log" 2>&1; then
  sed -e 's/\x1b\[[0-9;]*m//g' "$out/log" >&2
  echo "deploy-check: ✗ wrangler deploy --dry-run failed (above)" >&2
  exit 1
fi
log=$(sed -e 's/\x1b\[[0-9;]*m//g' "$out/log")

# The KV binding as wrangler resolved it: "env.SESSIONS (<id>)   KV Namespace".
id=$(sed -nE 's/^env\.SESSIONS \(([^)]*)\)[[:space:]]+KV Namespace.*/\1/p' <<<"$log" | head -1)
if [ -z "$id" ]; then
  echo "deploy-check: ✗ [env.$envname] of $config binds no KV namespace as SESSIONS" >&2
  exit 1
fi
if ! [[ $id =~ ^[0-9a-f]{32}$ ]]; then
  echo "deploy-check: ✗ the SESSIONS KV namespace id in [env.$envname] of $config is \"$id\", not a namespace id." >&2
  echo "  Create the namespace and put the id it prints there:" >&2
  echo "    npx wrangler kv namespace create SESSIONS --env $envname" >&2
  exit 1
fi
echo "deploy-check: ✓ KV namespace SESSIONS = $id"

# "Total Upload: 468.13 KiB / gzip: 183.54 KiB"
sizes=$(grep -E '^Total Upload:' <<<"$log" | head -1)
raw_kib=$(sed -nE 's/^Total Upload: ([0-9.]+) KiB.*/\1/p' <<<"$sizes")
gz_kib=$(sed -nE 's/.*gzip: ([0-9.]+) KiB.*/\1/p' <<<"$sizes")
if [ -z "$raw_kib" ] || [ -z "$gz_kib" ]; then
  echo "deploy-check: ✗ could not read the bundle size from wrangler's output: ${sizes:-none}" >&2
  exit 1
fi
# Limits: 64 MiB uncompressed on every plan since May 2026; before that 3 MB (Free) and
# 10 MB (Paid) after gzip. The bundle must fit the strictest of them.
fits=$(awk -v r="$raw_kib" -v g="$gz_kib" 'BEGIN { print (r < 64 * 1024 && g < 3 * 1000 * 1000 / 1024) ? "yes" : "no" }')
pct=$(awk -v g="$gz_kib" 'BEGIN { printf "%.0f", g / (3 * 1000 * 1000 / 1024) * 100 }')
if [ "$fits" != yes ]; then
  echo "deploy-check: ✗ bundle $raw_kib KiB ($gz_kib KiB gzipped) is over the Workers size limits" >&2
  exit 1
fi
echo "deploy-check: ✓ bundle $raw_kib KiB, $gz_kib KiB gzipped ($pct% of the 3 MB compressed limit of the Free plan; limit now 64 MiB uncompressed on every plan)"

# Where requests go: a route (ORIGIN_URL unset: on to the origin behind the route) or ORIGIN_URL.
section=$(awk -v env="$envname" '
  /^\[/ { inside = ($0 ~ "^\\[+env\\." env "([.\\]]|$)") }
  inside && !/^[[:space:]]*#/ { print }' "$config")
if ! grep -qE '^[[:space:]]*(routes?|ORIGIN_URL)[[:space:]]*=' <<<"$section" && ! grep -qE '^env\.ORIGIN_URL ' <<<"$log"; then
  echo "deploy-check: ! [env.$envname] sets neither routes nor ORIGIN_URL: the worker would only be reachable on workers.dev and answer 508 loop_detected (see docs/DEPLOY.md, step 5)"
fi
echo "deploy-check: ok ($config, --env $envname)"
