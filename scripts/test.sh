#!/usr/bin/env bash
# Set up (if needed), run the static checks, then the whole test suite (slow and interop
# tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/check.sh
exec .venv/bin/python -m pytest -n "${MGATTEST_TEST_WORKERS:-2}" --dist loadgroup "$@"
