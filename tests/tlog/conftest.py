"""Fixtures of the log tests: a fresh log served on a free loopback port."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.helpers.log_server import make_log, running_server


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """(URL, TransparencyLog) of a fresh log served in a thread; stopped afterwards."""
    log, _, _ = make_log(tmp_path)
    with running_server(log) as url:
        yield url, log
