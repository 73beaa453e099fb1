"""Run an ASGI app with uvicorn on a socket we bind ourselves.

Binding first lets ``--port 0`` pick a free port whose URL we know before serving, and
lets tests run servers in a thread and stop them deterministically.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # the server stack loads only when a server starts (see _server)
    import uvicorn
    from starlette.types import ASGIApp

    from mgattest._httpguard import ConnectionLimits

MAX_START_SECONDS = 10.0


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind and return a listening TCP socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _server(app: ASGIApp, limits: ConnectionLimits | None = None) -> uvicorn.Server:
    """A uvicorn server behind the guarded connection front (header, body and send
    deadlines, per-client and total connection caps: :mod:`mgattest._httpguard`), as
    ``log serve`` runs: a handful of half-sent connections must not starve the CA."""
    import uvicorn  # noqa: PLC0415 - server stack, loaded only when a server starts

    # uvicorn subclass: the server stack loads only when a server starts
    from mgattest._httpguard import (ConnectionLimits, fit_to_fd_limit, guarded_protocol,  # noqa: PLC0415 - see above
                                     raise_fd_limit)

    fitted = fit_to_fd_limit(limits or ConnectionLimits(), raise_fd_limit())
    protocol, _ = guarded_protocol(fitted)
    config = uvicorn.Config(app, log_level="warning", lifespan="auto", access_log=False,
                            http=protocol, limit_concurrency=None)
    return uvicorn.Server(config)


def serve_forever(app: ASGIApp, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until interrupted (used by the CLI)."""
    _server(app).run(sockets=[sock])


class ServerThread:
    """Serve an ASGI app in a background thread; use as a context manager."""

    def __init__(self, app: ASGIApp | None = None, host: str = "127.0.0.1", port: int = 0, *,
                 app_factory: Callable[[str], ASGIApp] | None = None,
                 limits: ConnectionLimits | None = None) -> None:
        """Bind now; ``app_factory(url)`` builds an app that must know its own URL
        (an OIDC issuer, a log whose origin names its address). ``limits``: the
        connection front's :class:`mgattest._httpguard.ConnectionLimits`."""
        if (app is None) == (app_factory is None):
            raise TypeError("give exactly one of app and app_factory")
        self._sock = bind(host, port)
        self.url = url_of(self._sock)
        if app_factory is not None:
            try:
                app = app_factory(self.url)
            except BaseException:
                self._sock.close()
                raise
        if app is None:  # cannot happen (checked above); tells the type checker so
            raise TypeError("give exactly one of app and app_factory")
        self._server = _server(app, limits)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> "ServerThread":
        """Start serving; wait until the server accepts requests."""
        self._thread.start()
        deadline = time.monotonic() + MAX_START_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask the server to exit and wait for its thread (bounded)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=MAX_START_SECONDS)
        self._sock.close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
