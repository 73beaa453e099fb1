"""Servers for tests: a free loopback port, waiting for a subprocess server to answer,
stopping the ones a test started, and the private keyless stack (OIDC issuer, CA, log)."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(proc, url: str, deadline: float = 30.0) -> None:
    """Poll ``url`` until the server process ``proc`` answers (fail if it exits)."""
    import time

    import requests

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def stop_processes(procs) -> None:
    """Terminate server processes we started (kill those that do not exit in 10 s)."""
    import subprocess

    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def private_keyless_stack(base: Path, issuer_type: str | None = None):
    """A local OIDC issuer, a `mgattest ca` and a `mgattest log` on 127.0.0.1 (real
    servers, in-process threads) and the ClientTrustConfig `trust private` writes.
    ``issuer_type`` configures the CA's type for the local issuer (default: email), e.g.
    ``github-workflow`` for tests that mint Actions-shaped tokens.

    Yields ``{"base", "issuer", "ctc", "ca_url", "log_url", "ca"}``.
    """
    from typer.testing import CliRunner

    from mgattest.ca import _authority as authority
    from mgattest.ca._authority import CertificateAuthority
    from mgattest.ca._identity import IssuerConfig
    from mgattest.ca._oidc_issuer import LocalOIDCIssuer
    from mgattest.ca._oidc_issuer import create_app as oidc_app
    from mgattest.ca._server import create_app as ca_app
    from mgattest.ca._serving import ServerThread
    from mgattest.ca._tokens import TokenVerifier
    from mgattest.cli.app import app
    from mgattest.tlog._log import TransparencyLog
    from mgattest.tlog._server import create_app as log_app

    authority.init(base / "ca")
    ca = CertificateAuthority.load(base / "ca")
    made: dict = {}

    def issuer_app(url: str):
        made["issuer"] = LocalOIDCIssuer.open(base / "oidc", url)
        return oidc_app(made["issuer"])

    def log_factory(url: str):
        # Named after its address, so the same stack also verifies on older mgattest.
        made["log"] = TransparencyLog.init(base / "log.db", base / "log.key", origin=url[7:])
        return log_app(made["log"])

    servers = []
    try:
        servers.append(ServerThread(app_factory=issuer_app).start())
        issuer, issuer_url = made["issuer"], servers[0].url
        trusted = IssuerConfig(issuer_url, issuer_type) if issuer_type else issuer_url
        servers.append(ServerThread(ca_app(ca, TokenVerifier([trusted]))).start())
        servers.append(ServerThread(app_factory=log_factory).start())
        ctc = base / "ctc.json"
        result = CliRunner().invoke(app, ["trust", "private", "--log", servers[2].url, "--ca",
                                          servers[1].url, "--oidc", issuer_url, "--out",
                                          str(ctc)])
        assert result.exit_code == 0 and "warning" not in result.output, result.output
        yield {"base": base, "issuer": issuer, "ctc": ctc, "ca_url": servers[1].url,
               "log_url": servers[2].url, "ca": ca}
    finally:
        for server in reversed(servers):
            server.stop()
        if "log" in made:
            made["log"].close()
