"""Real C2SP witnesses for tests: a fresh Ed25519 witness key and SQLite state, served by
uvicorn in a thread on a free loopback port."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from mgattest.tlog._cosign import WitnessSigner
from mgattest.tlog._witness import Witness, WitnessState
from mgattest.tlog._witness_server import create_witness_app
from tests.helpers.servers import free_port


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn in a thread on a free loopback port; yield its
    URL; always stopped."""
    import uvicorn

    from mgattest.tlog._server import uvicorn_config

    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


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
