"""Fixtures every test area needs: an isolated mgattest home, the vendored conformance
vectors and the hypothesis CI profile. Area fixtures live in each folder's conftest.py;
builders shared across areas live in tests/helpers/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import fuzz_budget
from tests.helpers.paths import CONFORMANCE_DIR
from tests.helpers.trees import DEFAULT_MODEL_FILES, make_tree

fuzz_budget.load_profile()


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


@pytest.fixture
def model(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A model directory ``tmp_path/model`` holding the test module's ``MODEL_FILES``
    (relative name -> bytes or ``RandomBytes``; default ``DEFAULT_MODEL_FILES``). A module
    may name the directory with ``MODEL_DIR``."""
    files = getattr(request.module, "MODEL_FILES", DEFAULT_MODEL_FILES)
    return make_tree(tmp_path / getattr(request.module, "MODEL_DIR", "model"), files)
