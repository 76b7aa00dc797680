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
"$PY" -m build --wheel --no-isolation --outdir "$dist" packages/python >/dev/null
for f in "$dist"/edge-session-*.tgz "$dist"/edge_session-*.whl; do
  echo "[pack] ${f#"$ROOT"/}: $(stat -c %s "$f") bytes"
done
