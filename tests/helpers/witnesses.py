"""Real C2SP witnesses for tests: a fresh Ed25519 witness key and SQLite state, served by
uvicorn in a thread on a free loopback port."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from mgattest.tlog._cosign import WitnessSigner
from mgattest.tlog._witness import Witness, WitnessState
from mgattest.tlog._witness_server import create_witness_app
from tests.helpers.log_server import serving


@contextlib.contextmanager
def running_witness(tmp: Path, name: str, logs: dict[str, Any]) -> Iterator[tuple[str, Witness]]:
    """A witness named ``name`` following ``logs`` (origin → LogVerifier), served on a free
    loopback port."""
    witness = Witness(WitnessSigner.generate(name), logs,
                      WitnessState(tmp / f"{name.replace('/', '_')}.db"))
    try:
        with serving(create_witness_app(witness)) as url:
            yield url, witness
    finally:
        witness.state.close()
