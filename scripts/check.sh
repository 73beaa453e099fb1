#!/usr/bin/env bash
# Static checks, run by scripts/test.sh before the tests (and so by .ci/run):
#   ruff (lint rules chosen in pyproject.toml), mypy (strict on tlog/inspect/attest),
#   the import layering of docs/architecture.md, and a reason on every noqa/type: ignore.
# The tools come from the `test` extra that scripts/setup.sh installs into ./.venv;
# set PYTHON to use another interpreter that has them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
status=0
run() {
  echo "check: $*"
  "$@" || status=1
}
run "$PY" -m ruff check --no-cache --quiet --output-format concise mgattest scripts
run "$PY" -m mypy --no-incremental --cache-dir=/dev/null
run "$PY" scripts/check_imports.py
run "$PY" scripts/check_comments.py
if [ "$status" -ne 0 ]; then
  echo "check: static checks failed (see above)" >&2
fi
exit "$status"
