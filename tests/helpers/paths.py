"""Where the repository and its vendored test data are."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent

# Test data is vendored under tests/vectors (see tests/vectors/README.md): a fresh clone
# needs nothing outside the repository.
VECTORS_DIR = PROJECT_ROOT / "tests" / "vectors"
CONFORMANCE_DIR = VECTORS_DIR / "conformance"
