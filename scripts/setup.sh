#!/usr/bin/env bash
# Create ./.venv and install mgattest with everything the tests and walkthrough need.
# Idempotent: a second run only checks that the install is current.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.mgattest-setup
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test,ml,hf]"
  # PyTorch is optional; the CPU wheel 2.13.0 is on this kind of machine's disk.
  if [ "${MGATTEST_SKIP_TORCH:-0}" != "1" ]; then
    .venv/bin/python -m pip install -q "torch==2.13.0" || echo "note: torch not installed; torch tests will be skipped" >&2
  fi
  echo "$want" > "$stamp"
fi
# Byte-compile once: an editable install otherwise recompiles mgattest on every CLI start
# when PYTHONDONTWRITEBYTECODE is set (about 40 ms of each `mgattest` run).
.venv/bin/python -m compileall -q mgattest >/dev/null
# sigstore-js, the third reference verifier of tests/realworld (skipped there without node).
if command -v npm >/dev/null 2>&1; then
  js=tests/realworld/js
  if [ ! -d "$js/node_modules/@sigstore/verify" ] || [ "$js/package-lock.json" -nt "$js/node_modules" ]; then
    (cd "$js" && npm ci --no-audit --no-fund --silent) || echo "note: npm ci failed; sigstore-js differential tests will be skipped" >&2
  fi
fi
# Mermaid's own parser, the independent check of `provenance --format mermaid` (tests/cli).
if command -v npm >/dev/null 2>&1; then
  js=tests/lineage/js
  if [ ! -d "$js/node_modules/mermaid" ] || [ "$js/package-lock.json" -nt "$js/node_modules" ]; then
    (cd "$js" && npm ci --no-audit --no-fund --silent --ignore-scripts) || echo "note: npm ci failed; the Mermaid parser check will be skipped" >&2
  fi
fi
