#!/usr/bin/env bash
# Builds what would be published, into dist/: the Node package as `npm pack` makes it
# and the Python wheel as `python -m build` makes it. tests/packages.test.mjs installs
# both into fresh projects, as a new user would.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
PY=${EDGE_SESSION_PYTHON:-$ROOT/.tmp/django-venv/bin/python}
dist=$ROOT/dist
mkdir -p "$dist"
rm -f "$dist"/edge-session-*.tgz "$dist"/edge_session-*.whl
npm pack --silent --pack-destination "$dist" ./packages/node >/dev/null
# setuptools builds inside the source tree and never empties build/: a module removed from
# the package would still ship. Both are removed before and after.
rm -rf packages/python/build packages/python/*.egg-info
"$PY" -m build --wheel --no-isolation --outdir "$dist" packages/python >"$ROOT/.tmp/wheel-build.log" 2>&1 || { cat "$ROOT/.tmp/wheel-build.log" >&2; exit 1; }
rm -rf packages/python/build packages/python/*.egg-info
for f in "$dist"/edge-session-*.tgz "$dist"/edge_session-*.whl; do
  echo "[pack] ${f#"$ROOT"/}: $(stat -c %s "$f") bytes"
done
