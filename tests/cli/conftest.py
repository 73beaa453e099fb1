"""Fixtures of the CLI tests: a key pair made by ``mgattest keygen``."""

from __future__ import annotations

import pytest

from tests.helpers.cli_runner import mg


@pytest.fixture
def keypair(tmp_path):
    result = mg("keygen", "--out", tmp_path / "k")
    assert result.exit_code == 0, result.output
    return tmp_path / "k.key", tmp_path / "k.pub"
