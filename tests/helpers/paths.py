"""Where the repository and its vendored test data are."""

from __future__ import annotations

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
PROJECT_ROOT = TESTS_DIR.parent

# Test data is vendored under tests/vectors (see tests/vectors/README.md): a fresh clone
# needs nothing outside the repository.
VECTORS_DIR = TESTS_DIR / "vectors"
CONFORMANCE_DIR = VECTORS_DIR / "conformance"
