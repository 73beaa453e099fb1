"""A private stack set up with defaults signs and verifies with every client.

`log init` without `--origin`, `log serve`, `ca serve`, `oidc serve`, `trust private`:
mgattest, sigstore-python and sigstore-js each sign, and each verifies every other's
bundle. All servers are the real `mgattest` processes on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.servers import free_port, stop_processes, wait_for_server
from tests.helpers.peers import (
    js_unavailable,
    sigstore_js_parse_config,
    sigstore_js_sign,
    sigstore_js_verify,
    sigstore_python_verify,
)

pytestmark = [pytest.mark.network, pytest.mark.interop, pytest.mark.slow]
EXE = [sys.executable, "-m", "mgattest"]
BIN = Path(sys.executable).parent
EMAIL = "alice@example.com"
TIMEOUT = 120


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("defaults")
    procs: list[subprocess.Popen] = []

    def start(args: list[str]) -> subprocess.Popen:
        procs.append(subprocess.Popen(EXE + args, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
        return procs[-1]

    try:
        oidc_port, ca_port, log_port = free_port(), free_port(), free_port()
        oidc_url = f"http://127.0.0.1:{oidc_port}"
        ca_url, log_url = f"http://127.0.0.1:{ca_port}", f"http://127.0.0.1:{log_port}"
        oidc = start(["oidc", "serve", "--dir", str(base / "oidc"), "--port", str(oidc_port)])
        assert _run(EXE + ["ca", "init", "--dir", str(base / "ca")]).returncode == 0
        ca = start(["ca", "serve", "--dir", str(base / "ca"), "--oidc-issuer", oidc_url,
                    "--port", str(ca_port)])
        # Defaults: no --origin (the origin is "<hostname>/mgattest-log"), no --hostname.
        r = _run(EXE + ["log", "init", "--db", str(base / "log.db"), "--key-out",
                        str(base / "log.key")])
        assert r.returncode == 0, r.stderr
        log = start(["log", "serve", "--db", str(base / "log.db"), "--key",
                     str(base / "log.key"), "--port", str(log_port)])
        wait_for_server(oidc, oidc_url + "/keys")
        wait_for_server(ca, ca_url + "/healthz")
        wait_for_server(log, log_url + "/api/v1/log")
        ctc = base / "ctc.json"
        r = _run(EXE + ["trust", "private", "--log", log_url, "--ca", ca_url, "--oidc",
                        oidc_url, "--out", str(ctc)])
        assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
        yield {"base": base, "ctc": ctc, "issuer": oidc_url}
    finally:
        stop_processes(procs)


def _token(stack) -> str:
    r = _run(EXE + ["oidc", "token", "--dir", str(stack["base"] / "oidc"), "--subject", EMAIL])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _artifact(stack, name: str) -> Path:
    path = stack["base"] / name
    path.write_bytes(name.encode() * 500)
    return path


def _mgattest_verify(stack, artifact: Path, bundle: Path, identity: str = EMAIL) -> str:
    r = _run(EXE + ["verify", str(artifact), "--bundle", str(bundle), "--trusted-root",
                    str(stack["ctc"]), "--identity", identity, "--issuer", stack["issuer"]])
    return "pass" if r.returncode == 0 else f"fail ({r.returncode}): {r.stdout}{r.stderr}"


def _verdicts(stack, artifact: Path, bundle: Path) -> dict[str, str]:
    verdicts = {
        "mgattest": _mgattest_verify(stack, artifact, bundle),
        "sigstore-python": sigstore_python_verify(
            bundle=bundle, artifact=artifact, trust_config=stack["ctc"], identity=EMAIL,
            issuer=stack["issuer"]),
    }
    if js_unavailable() is None:
        verdicts["sigstore-js"] = sigstore_js_verify(
            bundle=bundle, artifact=artifact, trusted_root=stack["ctc"], identity=EMAIL,
            issuer=stack["issuer"])
    return verdicts


def _all_pass(verdicts: dict[str, str]) -> bool:
    return all(v == "pass" for v in verdicts.values())


def test_trust_config_parses_in_every_client(stack):
    """Item 10: no tsaConfig selecting from an empty tsaUrls (sigstore-js refuses it)."""
    from sigstore.models import ClientTrustConfig
    from sigstore.sign import SigningContext

    doc = json.loads(stack["ctc"].read_text())
    signing = doc["signingConfig"]
    assert "tsaConfig" not in signing or signing.get("tsaUrls")
    assert all(value != [] for value in signing.values())
    SigningContext.from_trust_config(ClientTrustConfig.from_json(stack["ctc"].read_text()))
    if js_unavailable() is None:
        assert sigstore_js_parse_config(stack["ctc"]) == "pass"


def test_mgattest_keyless_bundle_verifies_everywhere(stack):
    """Item 11: with defaults, our own verify accepts what `sign --keyless` writes."""
    artifact = _artifact(stack, "mg.bin")
    bundle = stack["base"] / "mg.bundle.json"
    r = _run(EXE + ["sign", str(artifact), "--keyless", "--identity-token", _token(stack),
                    "--trust-config", str(stack["ctc"]), "--out", str(bundle)])
    assert r.returncode == 0, r.stdout + r.stderr
    verdicts = _verdicts(stack, artifact, bundle)
    assert _all_pass(verdicts), verdicts
    assert _mgattest_verify(stack, artifact, bundle, identity="bob@example.com") != "pass"


def test_sigstore_python_bundle_verifies_everywhere(stack):
    artifact = _artifact(stack, "py.bin")
    r = _run([str(BIN / "sigstore"), "--trust-config", str(stack["ctc"]), "sign",
              "--identity-token", _token(stack), str(artifact)])
    assert r.returncode == 0, r.stderr
    verdicts = _verdicts(stack, artifact, artifact.with_name("py.bin.sigstore.json"))
    assert _all_pass(verdicts), verdicts


def test_sigstore_js_bundle_verifies_everywhere(stack):
    reason = js_unavailable()
    if reason:
        pytest.skip(f"sigstore-js: {reason}")
    artifact = _artifact(stack, "js.bin")
    bundle = stack["base"] / "js.bundle.json"
    assert sigstore_js_sign(trust_config=stack["ctc"], token=_token(stack), artifact=artifact,
                            out=bundle) == "pass"
    verdicts = _verdicts(stack, artifact, bundle)
    assert _all_pass(verdicts), verdicts


def test_keyless_signing_refuses_a_bundle_its_verify_rejects(stack, tmp_path):
    """A trust config whose trusted root does not cover the log: signing succeeds at
    the services, but the bundle is not written."""
    doc = json.loads(stack["ctc"].read_text())
    doc["trustedRoot"]["tlogs"][0]["publicKey"]["validFor"]["start"] = "2100-01-01T00:00:00Z"
    ctc = tmp_path / "future-log.json"
    ctc.write_text(json.dumps(doc))
    artifact = _artifact(stack, "self.bin")
    bundle = tmp_path / "self.bundle.json"
    r = _run(EXE + ["sign", str(artifact), "--keyless", "--identity-token", _token(stack),
                    "--trust-config", str(ctc), "--out", str(bundle)])
    assert r.returncode == 2, r.stdout + r.stderr
    assert "would reject" in r.stderr and "not valid at integrated time" in r.stderr, r.stderr
    assert not bundle.exists()


def test_v02_bundle_with_intermediate_and_root_verifies_everywhere(stack):
    """Item 6: a v0.2 bundle whose x509CertificateChain carries leaf, intermediate and
    root (as slsa-github-generator's bundles do) — extra certificates decide nothing."""
    artifact = _artifact(stack, "chain.bin")
    bundle = stack["base"] / "chain.bundle.json"
    r = _run(EXE + ["sign", str(artifact), "--keyless", "--identity-token", _token(stack),
                    "--trust-config", str(stack["ctc"]), "--out", str(bundle)])
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(bundle.read_text())
    ca_chain = json.loads(stack["ctc"].read_text())["trustedRoot"]["certificateAuthorities"][0]
    leaf = doc["verificationMaterial"].pop("certificate")
    doc["verificationMaterial"]["x509CertificateChain"] = {
        "certificates": [leaf] + ca_chain["certChain"]["certificates"]}
    doc["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"
    chained = stack["base"] / "chain.v02.json"
    chained.write_text(json.dumps(doc))
    verdicts = _verdicts(stack, artifact, chained)
    assert _all_pass(verdicts), verdicts
