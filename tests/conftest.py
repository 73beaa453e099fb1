"""Shared pytest fixtures: the vendored test vectors (tests/vectors) and small helpers."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
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

    from mgattest.ca import authority
    from mgattest.ca.authority import CertificateAuthority
    from mgattest.ca.identity import IssuerConfig
    from mgattest.ca.oidc_issuer import LocalOIDCIssuer
    from mgattest.ca.oidc_issuer import create_app as oidc_app
    from mgattest.ca.server import create_app as ca_app
    from mgattest.ca.serving import ServerThread
    from mgattest.ca.tokens import TokenVerifier
    from mgattest.cli.app import app
    from mgattest.tlog.log import TransparencyLog
    from mgattest.tlog.server import create_app as log_app

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
