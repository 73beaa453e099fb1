"""The connection front of every mgattest server (``log serve``, ``ca serve``,
``oidc serve``): deadlines and per-client caps.

uvicorn alone has no deadline for a request's headers or body (a client that sends
one header byte every few seconds holds its connection forever), and its
``limit_concurrency`` counts such idle connections, answering every other client 503
while they stay open. This module plugs a guarded HTTP protocol into uvicorn that,
before a request reaches the app:

* closes a connection whose request line and headers are not complete within
  ``header_timeout`` seconds of the request's first byte (or of the connection's
  opening), answering 408;
* closes a connection whose body is not complete within ``body_timeout`` seconds
  after its headers (also 408);
* closes a connection that does not read its answer (the socket's send buffer stays
  full) for ``send_timeout`` seconds, so slow readers cannot pin response bytes;
* refuses (503, then close) connections beyond ``max_connections`` in total or
  ``max_per_client`` from one client address (one IPv4 address, or one IPv6 /64).

Idle keep-alive connections are closed by uvicorn's ``timeout_keep_alive``. Request
concurrency is not limited here: the log admits work per class (see
:mod:`mgattest.tlog._server`), so a crowd of idle connections never turns into 503s.
A leaf module (uvicorn and the standard library only), so the log and the private CA
share it without the ``ca`` package importing ``tlog``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import resource
from collections import Counter
from dataclasses import dataclass, field

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FD_RESERVE = 128  # descriptors kept free for SQLite, logs and worker threads


@dataclass
class ConnectionLimits:
    """Deadlines (seconds) and connection caps of the guarded front."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    send_timeout: float = 30.0
    max_connections: int = 4096
    max_per_client: int = 64


@dataclass
class _GuardState:
    limits: ConnectionLimits
    per_client: Counter[str] = field(default_factory=Counter)
    total: int = 0
    refused: int = 0
    timed_out: int = 0


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit in force.

    Beyond the descriptor limit ``accept()`` fails with EMFILE and asyncio stops
    accepting *every* client for a second; the connection cap must stay below it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def fit_to_fd_limit(limits: ConnectionLimits, fd_limit: int) -> ConnectionLimits:
    """``limits`` with ``max_connections`` lowered to fit ``fd_limit`` descriptors."""
    usable = max(16, fd_limit - FD_RESERVE)
    if limits.max_connections <= usable:
        return limits
    return ConnectionLimits(limits.header_timeout, limits.body_timeout, limits.send_timeout,
                            usable, min(limits.max_per_client, usable))


def client_key(host: str | None) -> str:
    """The address a per-client cap counts: the IPv4 address or the IPv6 /64."""
    if not host:
        return "?"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _answer(status: bytes, code: int, message: str, extra: bytes = b"") -> bytes:
    """A complete Rekor-style JSON error answer that closes the connection."""
    body = b'{"code":%d,"message":"%s"}\n' % (code, message.encode())
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n" + extra
            + b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body) + body)


_REFUSED = _answer(b"503 Service Unavailable", 503, "too many connections",
                   b"retry-after: 1\r\n")
_TIMED_OUT = _answer(b"408 Request Timeout", 408, "request not received in time")


def guarded_protocol(limits: ConnectionLimits) -> tuple[type[asyncio.Protocol], _GuardState]:
    """A uvicorn HTTP protocol class enforcing ``limits``, and the state it counts in."""
    state = _GuardState(limits)

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """httptools protocol with read/send deadlines and connection caps."""

        _client_key: str | None = None
        _timer: asyncio.TimerHandle | None = None
        _send_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's own override (asyncio declares BaseTransport)
            super().connection_made(transport)
            key = client_key(self.client[0] if self.client else None)
            if (state.total >= limits.max_connections
                    or state.per_client[key] >= limits.max_per_client):
                state.refused += 1
                transport.write(_REFUSED)
                transport.close()
                return
            self._client_key = key
            state.total += 1
            state.per_client[key] += 1
            self._arm(limits.header_timeout)  # a connection that never sends a byte

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._send_timer is not None:
                self._send_timer.cancel()
                self._send_timer = None
            if self._client_key is not None:
                state.total -= 1
                state.per_client[self._client_key] -= 1
                if state.per_client[self._client_key] <= 0:
                    del state.per_client[self._client_key]
                self._client_key = None
            super().connection_lost(exc)

        # --- read deadlines ------------------------------------------------------
        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            state.timed_out += 1
            if self.cycle is None or self.cycle.response_complete \
                    or not self.cycle.response_started:
                self.transport.write(_TIMED_OUT)  # no answer under way: say why
            self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm(limits.header_timeout)

        def on_headers_complete(self) -> None:
            self._arm(limits.body_timeout)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        # --- send deadline -------------------------------------------------------
        def pause_writing(self) -> None:
            super().pause_writing()
            if self._send_timer is None:
                self._send_timer = self.loop.call_later(limits.send_timeout,
                                                        self._send_expired)

        def resume_writing(self) -> None:
            super().resume_writing()
            if self._send_timer is not None:
                self._send_timer.cancel()
                self._send_timer = None

        def _send_expired(self) -> None:
            self._send_timer = None
            state.timed_out += 1
            self.transport.abort()  # drop the unread answer: it holds memory

    return GuardedHttpToolsProtocol, state
