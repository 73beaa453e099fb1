"""Shared pytest fixtures: the vendored test vectors (tests/vectors) and small helpers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests with a fixed seed: a red CI is then reproducible on any
# machine (`CI=true pytest ...`), and a green one does not depend on luck. Developers'
# runs stay random and keep a local example database, so exploration goes on locally.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Fuzz depth: properties that feed attacker bytes to a parser or server ask for
# fuzz_examples(n): n locally (a few seconds), 4n in CI, 20n with MGATTEST_FUZZ=long.
_FUZZ_SCALE = 20 if os.environ.get("MGATTEST_FUZZ") == "long" else 4 if os.environ.get("CI") \
    else 1


def fuzz_examples(default: int) -> int:
    """How many hypothesis examples a fuzz property runs (see ``_FUZZ_SCALE``)."""
    return default * _FUZZ_SCALE

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# Test data is vendored under tests/vectors (see tests/vectors/README.md): a fresh clone
# needs nothing outside the repository.
VECTORS_DIR = PROJECT_ROOT / "tests" / "vectors"
CONFORMANCE_DIR = VECTORS_DIR / "conformance"


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """The sigstore-conformance bundle-verify vectors (tests/vectors/conformance)."""
    if not (CONFORMANCE_DIR / "cases.json").is_file():
        pytest.fail(f"{CONFORMANCE_DIR} is incomplete: the vendored vectors are missing")
    return CONFORMANCE_DIR


@pytest.fixture(autouse=True)
def _isolated_mgattest_home(tmp_path, monkeypatch):
    """Every test gets its own embedded-log home: none touches the user's data dir,
    and no test sees another's local log."""
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Create ``files`` (relative POSIX name → bytes) under ``root``; return ``root``."""
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root
