"""The private keyless stack end to end, with unmodified peers as independent checkers.

Real servers on 127.0.0.1 (local OIDC issuer, `mgattest ca` Fulcio API, `mgattest log`
Rekor API), a ClientTrustConfig from `mgattest trust private`, then:
sigstore-python signs → mgattest verifies; mgattest signs → sigstore-python and
model_signing verify; and the negative matrix is rejected with a reason.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgattest.ca import _authority as authority
from mgattest.ca._authority import CertificateAuthority
from mgattest.ca._oidc_issuer import LocalOIDCIssuer

pytestmark = [pytest.mark.network, pytest.mark.interop]
BIN = Path(sys.executable).parent
EMAIL = "alice@example.com"
TIMEOUT = 120


def _cli(args: list[str]) -> tuple[int, str]:
    from mgattest.cli.app import app

    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.helpers.servers import private_keyless_stack

    with private_keyless_stack(tmp_path_factory.mktemp("keyless")) as made:
        yield made


def _model_file(stack, name: str, content: bytes) -> Path:
    path = stack["base"] / name
    path.write_bytes(content)
    return path


def _verify_args(stack, model: Path, bundle: Path, *, identity=EMAIL, issuer=None) -> list[str]:
    return ["verify", str(model), "--bundle", str(bundle), "--trusted-root", str(stack["ctc"]),
            "--identity", identity, "--issuer", issuer or stack["issuer"].issuer_url]


def test_trust_config_is_accepted_by_every_client(stack):
    from sigstore.models import ClientTrustConfig
    from sigstore.sign import SigningContext

    from mgattest.attest._keyless import load_sigstore_trust_config, signing_services
    from mgattest.attest._trustroot import load_client_trust_config

    raw = stack["ctc"].read_text()
    SigningContext.from_trust_config(ClientTrustConfig.from_json(raw))
    ours = load_client_trust_config(stack["ctc"])
    assert ours.trusted_root is not None
    services = signing_services(load_sigstore_trust_config(stack["ctc"]))
    assert services["ca"] == stack["ca_url"] and services["tlog"].startswith(stack["log_url"])
    assert services["oidc"] == stack["issuer"].issuer_url
    doc = json.loads(raw)
    for svc in doc["signingConfig"]["caUrls"] + doc["signingConfig"]["rekorTlogUrls"]:
        assert svc["operator"] and svc["majorApiVersion"] == 1 and svc["validFor"]["start"]


def test_sigstore_python_signs_mgattest_verifies(stack):
    artifact = _model_file(stack, "weights.bin", b"\x00model bytes\x01" * 100)
    token = stack["issuer"].mint(EMAIL)
    r = _run([str(BIN / "sigstore"), "--trust-config", str(stack["ctc"]), "sign",
              "--identity-token", token, str(artifact)])
    assert r.returncode == 0, r.stderr
    bundle = artifact.with_name(artifact.name + ".sigstore.json")
    doc = json.loads(bundle.read_text())
    leaf = doc["verificationMaterial"]["certificate"]["rawBytes"]
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    from cryptography import x509

    cert = x509.load_der_x509_certificate(base64.b64decode(leaf))
    assert cert.not_valid_before_utc.timestamp() <= int(entry["integratedTime"])
    code, output = _cli(_verify_args(stack, artifact, bundle))
    assert code == 0, output
    # Negative matrix on the same, valid bundle.
    code, output = _cli(_verify_args(stack, artifact, bundle, identity="bob@example.com"))
    assert code == 1 and "not the expected" in output, output
    code, output = _cli(_verify_args(stack, artifact, bundle, issuer="https://accounts.google.com"))
    assert code == 1 and "issuer" in output, output
    args = [a for a in _verify_args(stack, artifact, bundle) if a not in ("--identity", EMAIL)]
    code, output = _cli(args + ["--identity-regex", "alice"])
    assert code == 1 and "fully match" in output, output
    code, output = _cli(args + ["--identity-regex", r"alice@example\.com"])
    assert code == 0, output


def _sign_keyless(stack, model: Path, out: Path, *extra: str, token: str | None = None) -> tuple[int, str]:
    token = token or stack["issuer"].mint(EMAIL)
    return _cli(["sign", str(model), "--keyless", "--identity-token", token,
                 "--trust-config", str(stack["ctc"]), "--out", str(out), *extra])


def test_mgattest_signs_sigstore_python_verifies(stack):
    model = _model_file(stack, "model.safetensors", b"tensor bytes" * 50)
    bundle = stack["base"] / "model.bundle.json"
    code, output = _sign_keyless(stack, model, bundle)
    assert code == 0, output
    doc = json.loads(bundle.read_text())
    assert "dsseEnvelope" in doc and "certificate" in doc["verificationMaterial"]
    r = _run([str(BIN / "sigstore"), "--trust-config", str(stack["ctc"]), "verify", "identity",
              "--offline", "--bundle", str(bundle), "--cert-identity", EMAIL,
              "--cert-oidc-issuer", stack["issuer"].issuer_url, str(model)])
    assert r.returncode == 0, r.stderr
    code, output = _cli(_verify_args(stack, model, bundle))
    assert code == 0, output
    # The peer also rejects a wrong identity on our bundle (it is checking, not rubber-stamping).
    r = _run([str(BIN / "sigstore"), "--trust-config", str(stack["ctc"]), "verify", "identity",
              "--offline", "--bundle", str(bundle), "--cert-identity", "bob@example.com",
              "--cert-oidc-issuer", stack["issuer"].issuer_url, str(model)])
    assert r.returncode != 0


def test_model_signing_verifies_mgattest_keyless(stack):
    model = stack["base"] / "msmodel"
    model.mkdir()
    (model / "config.json").write_text('{"layers": 2}')
    (model / "weights.bin").write_bytes(b"w" * 4096)
    bundle = stack["base"] / "msmodel.sig"
    code, output = _sign_keyless(stack, model, bundle, "--format", "model-signing")
    assert code == 0, output
    r = _run([str(BIN / "model_signing"), "verify", "sigstore", "--signature", str(bundle),
              "--trust_config", str(stack["ctc"]), "--identity", EMAIL,
              "--identity_provider", stack["issuer"].issuer_url, str(model)])
    assert r.returncode == 0, r.stdout + r.stderr
    code, output = _cli(_verify_args(stack, model, bundle))
    assert code == 0, output
    (model / "weights.bin").write_bytes(b"x" * 4096)  # tampered model: both refuse
    code, output = _cli(_verify_args(stack, model, bundle))
    assert code == 1, output
    r = _run([str(BIN / "model_signing"), "verify", "sigstore", "--signature", str(bundle),
              "--trust_config", str(stack["ctc"]), "--identity", EMAIL,
              "--identity_provider", stack["issuer"].issuer_url, str(model)])
    assert r.returncode != 0


def test_untrusted_ca_rejected(stack, tmp_path):
    model = _model_file(stack, "m2.bin", b"m2")
    bundle = stack["base"] / "m2.bundle.json"
    assert _sign_keyless(stack, model, bundle)[0] == 0
    authority.init(tmp_path / "otherca")
    other = CertificateAuthority.load(tmp_path / "otherca")
    from cryptography.hazmat.primitives import serialization

    doc = json.loads(stack["ctc"].read_text())
    doc["trustedRoot"]["certificateAuthorities"][0]["certChain"]["certificates"] = [
        {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}
        for c in other.chain]
    forged = tmp_path / "other-ctc.json"
    forged.write_text(json.dumps(doc))
    args = _verify_args(stack, model, bundle)
    args[args.index("--trusted-root") + 1] = str(forged)
    code, output = _cli(args)
    assert code == 1 and "does not chain to a trusted" in output, output


def test_log_entry_of_another_signature_rejected(stack):
    a = _model_file(stack, "a.bin", b"first model")
    b = _model_file(stack, "b.bin", b"second model")
    ba, bb = stack["base"] / "a.bundle.json", stack["base"] / "b.bundle.json"
    assert _sign_keyless(stack, a, ba)[0] == 0
    assert _sign_keyless(stack, b, bb)[0] == 0
    doc_a, doc_b = json.loads(ba.read_text()), json.loads(bb.read_text())
    doc_a["verificationMaterial"]["tlogEntries"] = doc_b["verificationMaterial"]["tlogEntries"]
    swapped = stack["base"] / "swapped.bundle.json"
    swapped.write_text(json.dumps(doc_a))
    code, output = _cli(_verify_args(stack, a, swapped))
    assert code == 1 and "log entry" in output, output


def test_bad_tokens_refused_at_signing(stack):
    model = _model_file(stack, "t.bin", b"t")
    out = stack["base"] / "t.bundle.json"
    issuer = stack["issuer"]
    code, output = _sign_keyless(stack, model, out, token=issuer.mint(EMAIL, audience="other"))
    assert code == 2 and "audience" in output, output
    code, output = _sign_keyless(stack, model, out,
                                 token=issuer.mint(EMAIL, now=int(time.time()) - 4000, ttl=60))
    assert code == 2 and "expired" in output, output
    # A token the CA cannot verify (signed by another key for the same issuer URL).
    rogue = LocalOIDCIssuer.open(stack["base"] / "rogue", issuer.issuer_url)
    code, output = _sign_keyless(stack, model, out, token=rogue.mint(EMAIL))
    assert code == 2 and "401" in output, output
    assert not out.exists()


def test_cli_trust_private_needs_a_ca(stack, tmp_path):
    code, output = _cli(["trust", "private", "--log", stack["log_url"], "--ca", stack["log_url"],
                         "--out", str(tmp_path / "x.json")])
    assert code == 2 and "mgattest ca serve" in output, output


@pytest.mark.slow
def test_cli_servers_with_unmodified_sigstore_python(tmp_path):
    """The real `mgattest oidc serve`, `ca serve`, `log serve` processes, then
    `trust private`, `sigstore sign` and `mgattest verify` — all as separate processes."""
    from tests.helpers.servers import free_port, stop_processes, wait_for_server

    exe = [sys.executable, "-m", "mgattest"]
    procs: list[subprocess.Popen] = []
    try:
        oidc_port, ca_port, log_port = free_port(), free_port(), free_port()
        oidc_url = f"http://127.0.0.1:{oidc_port}"
        procs.append(subprocess.Popen(exe + ["oidc", "serve", "--dir", str(tmp_path / "oidc"),
                                             "--port", str(oidc_port)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        assert _run(exe + ["ca", "init", "--dir", str(tmp_path / "ca")]).returncode == 0
        procs.append(subprocess.Popen(exe + ["ca", "serve", "--dir", str(tmp_path / "ca"),
                                             "--oidc-issuer", oidc_url, "--port", str(ca_port)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        r = _run(exe + ["log", "init", "--db", str(tmp_path / "log.db"), "--key-out",
                        str(tmp_path / "log.key"), "--origin", f"127.0.0.1:{log_port}"])
        assert r.returncode == 0, r.stderr
        procs.append(subprocess.Popen(exe + ["log", "serve", "--db", str(tmp_path / "log.db"),
                                             "--key", str(tmp_path / "log.key"),
                                             "--port", str(log_port)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        ca_url, log_url = f"http://127.0.0.1:{ca_port}", f"http://127.0.0.1:{log_port}"
        wait_for_server(procs[0], oidc_url + "/keys")
        wait_for_server(procs[1], ca_url + "/healthz")
        wait_for_server(procs[2], log_url + "/api/v1/log")
        ctc = tmp_path / "ctc.json"
        r = _run(exe + ["trust", "private", "--log", log_url, "--ca", ca_url, "--oidc", oidc_url,
                        "--out", str(ctc)])
        assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
        r = _run(exe + ["oidc", "token", "--dir", str(tmp_path / "oidc"), "--subject", EMAIL])
        assert r.returncode == 0, r.stderr
        token = r.stdout.strip()
        artifact = tmp_path / "model.bin"
        artifact.write_bytes(b"weights" * 1000)
        r = _run([str(BIN / "sigstore"), "--trust-config", str(ctc), "sign", "--identity-token",
                  token, str(artifact)])
        assert r.returncode == 0, r.stderr
        bundle = tmp_path / "model.bin.sigstore.json"
        r = _run(exe + ["verify", str(artifact), "--bundle", str(bundle), "--trusted-root",
                        str(ctc), "--identity", EMAIL, "--issuer", oidc_url])
        assert r.returncode == 0, r.stdout + r.stderr
        r = _run(exe + ["verify", str(artifact), "--bundle", str(bundle), "--trusted-root",
                        str(ctc), "--identity", "mallory@example.com", "--issuer", oidc_url])
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    finally:
        stop_processes(procs)


def test_sct_from_unlisted_ct_log_rejected(stack, tmp_path):
    """A trust config whose ctlogs key is not the one that signed the SCT: both mgattest
    and sigstore-python refuse the (otherwise valid) bundle."""
    import hashlib

    model = _model_file(stack, "sct.bin", b"sct")
    bundle = stack["base"] / "sct.bundle.json"
    assert _sign_keyless(stack, model, bundle)[0] == 0
    authority.init(tmp_path / "ca3")
    other = CertificateAuthority.load(tmp_path / "ca3")
    doc = json.loads(stack["ctc"].read_text())
    der = other.ct_signer.public_key_der
    doc["trustedRoot"]["ctlogs"][0]["publicKey"]["rawBytes"] = base64.b64encode(der).decode()
    doc["trustedRoot"]["ctlogs"][0]["logId"]["keyId"] = base64.b64encode(
        hashlib.sha256(der).digest()).decode()
    ctc = tmp_path / "ctc-other-ct.json"
    ctc.write_text(json.dumps(doc))
    args = _verify_args(stack, model, bundle)
    args[args.index("--trusted-root") + 1] = str(ctc)
    code, output = _cli(args)
    assert code == 1 and "SCT" in output, output
    r = _run([str(BIN / "sigstore"), "--trust-config", str(ctc), "verify", "identity",
              "--offline", "--bundle", str(bundle), "--cert-identity", EMAIL,
              "--cert-oidc-issuer", stack["issuer"].issuer_url, str(model)])
    assert r.returncode != 0 and "SCT" in (r.stdout + r.stderr)
