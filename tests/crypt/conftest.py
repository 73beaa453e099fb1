"""Fixtures of the encryption tests: a KEK key set and small models to encrypt."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("tink")

from mgattest.crypt import KekKeyset  # noqa: E402 - after the optional-dependency skip


@pytest.fixture(scope="session")
def kek() -> KekKeyset:
    return KekKeyset.generate()


@pytest.fixture
def model_dir(tmp_path):
    """A model directory: two 2.5 MiB weight files (three segments each), a nested
    config and an empty file."""
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(os.urandom(5 << 19))
    (root / "b.bin").write_bytes(os.urandom(5 << 19))
    (root / "sub" / "config.json").write_text('{"layers": 2}')
    (root / "empty").write_bytes(b"")
    return root
