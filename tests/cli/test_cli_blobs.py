"""``mgattest sign-blob`` / ``verify-blob`` against the real peers.

* openssl (EC and RSA): ``openssl dgst -sha256 -sign`` → ``verify-blob --signature``;
  ``sign-blob --raw`` → ``openssl dgst -sha256 -verify``; tampers exit 1 naming the cause.
* sigstore-python, with a private keyless stack (OIDC issuer, `mgattest ca`, `mgattest
  log` on 127.0.0.1) and its ClientTrustConfig: ``sigstore verify identity`` accepts our
  keyless blob bundles, and ``verify-blob`` accepts the bundles sigstore-python's own
  signer (``SigningContext.signer().sign_artifact``) makes against the same services.
* sigstore-js (``@sigstore/verify``) on our keyless blob bundle, when node is set up.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from tests.helpers.cli_runner import mg
from tests.helpers.openssl_tool import (KEYS, OPENSSL_MISSING, make_keypair, openssl_sign,
                                        openssl_verifies)

needs_openssl = pytest.mark.skipif(OPENSSL_MISSING, reason="needs the openssl binary")
EMAIL = "alice@example.com"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    base = tmp_path_factory.mktemp("keys")
    return {name: make_keypair(base, name, KEYS[name.removesuffix("-other")][0])
            for name in ("ec-p256", "rsa-2048", "ec-p256-other", "rsa-2048-other")}


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(os.urandom(40_000))
    return path


# --------------------------------------------------------------------------- raw + openssl

@needs_openssl
@pytest.mark.parametrize("kind", ["ec-p256", "rsa-2048"])
def test_openssl_signature_verifies_and_says_not_logged(kind, keys, blob, tmp_path):
    private, public = keys[kind]
    sig = openssl_sign(kind, private, blob, tmp_path / "model.onnx.sig")
    result = mg("verify-blob", blob, "--signature", sig, "--key", public)
    assert result.exit_code == 0, result.output
    assert f"verified raw signature {sig}" in result.output
    assert KEYS[kind][2] in result.output
    assert "not logged" in result.output and "log index" not in result.output
    result = mg("verify-blob", blob, "--signature", sig, "--key", public, "--json")
    doc = json.loads(result.output)
    assert doc["ok"] is True and doc["logged"] is False and doc["log_entries"] == []
    assert doc["scheme"] == KEYS[kind][2]


@needs_openssl
@pytest.mark.parametrize("kind", ["ec-p256", "rsa-2048"])
def test_sign_blob_raw_is_what_openssl_verifies(kind, keys, blob, tmp_path):
    private, public = keys[kind]
    result = mg("sign-blob", blob, "--key", private, "--raw")
    assert result.exit_code == 0, result.output
    sig = blob.with_name(blob.name + ".sig")
    assert "not logged" in result.output
    assert openssl_verifies(kind, public, blob, sig)
    # an existing signature file is not replaced without --force
    result = mg("sign-blob", blob, "--key", private, "--raw", "--output", sig)
    assert result.exit_code == 2 and "already exists" in result.output
    result = mg("sign-blob", blob, "--key", private, "--raw", "--output", sig, "--force",
                "--json")
    assert result.exit_code == 0 and json.loads(result.output)["logged"] is False
    assert openssl_verifies(kind, public, blob, sig)


@needs_openssl
@pytest.mark.parametrize("kind", ["ec-p256", "rsa-2048"])
def test_raw_tampers_exit_1_with_the_cause(kind, keys, blob, tmp_path):
    private, public = keys[kind]
    sig = openssl_sign(kind, private, blob, tmp_path / "sig")
    good = sig.read_bytes()
    changed = tmp_path / "changed.onnx"
    changed.write_bytes(blob.read_bytes()[:-1] + bytes([blob.read_bytes()[-1] ^ 1]))
    flipped = tmp_path / "flipped.sig"
    flipped.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    truncated = tmp_path / "truncated.sig"
    truncated.write_bytes(good[:-4])
    cases = {
        "file byte flipped": (changed, sig, public, "does not verify over"),
        "signature byte flipped": (blob, flipped, public, "does not verify over"),
        "another key": (blob, sig, keys[kind + "-other"][1], "does not verify over"),
        "truncated signature": (blob, truncated, public, "truncated"),
    }
    for case, (file, signature, key, cause) in cases.items():
        result = mg("verify-blob", file, "--signature", signature, "--key", key)
        assert result.exit_code == 1, (case, result.output)
        assert result.output.startswith("rejected: ") and cause in result.output, case
        assert not openssl_verifies(kind, key, file, signature), case
        doc = json.loads(mg("verify-blob", file, "--signature", signature, "--key", key,
                            "--json").output)
        assert doc["ok"] is False and doc["what"] == "signature", case
    assert mg("verify-blob", blob, "--signature", sig, "--key", public).exit_code == 0


@needs_openssl
def test_usage_errors_exit_2(keys, blob, tmp_path):
    private, public = keys["ec-p256"]
    sig = openssl_sign("ec-p256", private, blob, tmp_path / "sig")
    cases = [
        (["verify-blob", blob, "--key", public], "exactly one of --bundle"),
        (["verify-blob", blob, "--signature", sig, "--bundle", sig, "--key", public],
         "exactly one of --bundle"),
        (["verify-blob", blob, "--signature", sig], "exactly one --key"),
        (["verify-blob", blob, "--signature", sig, "--key", public, "--identity", EMAIL,
          "--issuer", "https://issuer.example"], "apply to bundles"),
        (["verify-blob", tmp_path, "--signature", sig, "--key", public], "is a directory"),
        (["verify-blob", tmp_path / "nope", "--signature", sig, "--key", public],
         "does not exist"),
        (["sign-blob", blob, "--keyless", "--raw"], "--raw signs with a private key"),
        (["sign-blob", blob, "--key", private, "--raw", "--no-log"], "never logged"),
        (["sign-blob", blob, "--key", private, "--output", sig], "--output names a raw"),
        (["sign-blob", blob], "exactly one of --key"),
    ]
    for args, message in cases:
        result = mg(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


# --------------------------------------------------------------------------- key bundles

@needs_openssl
@pytest.mark.parametrize("kind", ["ec-p256", "rsa-2048"])
def test_key_blob_bundle_round_trip(kind, keys, blob, tmp_path):
    private, public = keys[kind]
    result = mg("sign-blob", blob, "--key", private)
    assert result.exit_code == 0, result.output
    assert "logged at index" in result.output
    bundle = blob.with_name(blob.name + ".sigstore.json")
    doc = json.loads(bundle.read_text())
    assert "messageSignature" in doc and "dsseEnvelope" not in doc
    # the signature inside the bundle is the one openssl verifies
    sig = tmp_path / "inner.sig"
    sig.write_bytes(base64.b64decode(doc["messageSignature"]["signature"]))
    assert openssl_verifies(kind, public, blob, sig)
    result = mg("verify-blob", blob, "--bundle", bundle, "--key", public)
    assert result.exit_code == 0, result.output
    assert "inclusion proven" in result.output and "message signature" in result.output
    # `verify` takes the same bundle for the same file: one pipeline
    assert mg("verify", blob, "--bundle", bundle, "--key", public).exit_code == 0
    changed = tmp_path / "changed.onnx"
    changed.write_bytes(blob.read_bytes() + b"\x00")
    result = mg("verify-blob", changed, "--bundle", bundle, "--key", public)
    assert result.exit_code == 1 and "messageDigest" in result.output, result.output
    result = mg("verify-blob", blob, "--bundle", bundle, "--key", keys[kind + "-other"][1])
    assert result.exit_code == 1 and "does not verify" in result.output, result.output


def test_unlogged_key_blob_bundle(keypair, blob):
    private, public = keypair
    bundle = blob.with_name("b.json")
    result = mg("sign-blob", blob, "--key", private, "--no-log", "--bundle", bundle, "--json")
    assert result.exit_code == 0 and json.loads(result.output)["logged"] is False
    result = mg("verify-blob", blob, "--bundle", bundle, "--key", public)
    assert result.exit_code == 1 and "no transparency-log entry" in result.output
    result = mg("verify-blob", blob, "--bundle", bundle, "--key", public, "--allow-unlogged")
    assert result.exit_code == 0 and "not logged" in result.output, result.output


def test_ed25519_bundle_is_refused_and_raw_is_offered(tmp_path, blob):
    assert mg("keygen", "--out", tmp_path / "ed", "--type", "ed25519").exit_code == 0
    result = mg("sign-blob", blob, "--key", tmp_path / "ed.key")
    assert result.exit_code == 2 and "sign-blob --raw" in result.output
    assert not blob.with_name(blob.name + ".sigstore.json").exists()
    assert mg("sign-blob", blob, "--key", tmp_path / "ed.key", "--raw").exit_code == 0
    result = mg("verify-blob", blob, "--signature", blob.with_name(blob.name + ".sig"),
                "--key", tmp_path / "ed.pub")
    assert result.exit_code == 0 and "ed25519" in result.output, result.output


# --------------------------------------------------------------------------- keyless peers

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.helpers.servers import private_keyless_stack

    with private_keyless_stack(tmp_path_factory.mktemp("blob-keyless")) as made:
        yield made


def _keyless_verify_args(stack, file: Path, bundle: Path, identity: str = EMAIL) -> list:
    return ["verify-blob", file, "--bundle", bundle, "--trust-config", stack["ctc"],
            "--identity", identity, "--issuer", stack["issuer"].issuer_url]


@pytest.mark.network
@pytest.mark.interop
def test_our_keyless_blob_bundle_verifies_with_sigstore_python(stack):
    from tests.helpers.peers import js_unavailable, sigstore_js_verify, sigstore_python_verify

    blob = stack["base"] / "ours.bin"
    blob.write_bytes(b"blob bytes " * 300)
    bundle = stack["base"] / "ours.sigstore.json"
    result = mg("sign-blob", blob, "--keyless", "--identity-token",
                stack["issuer"].mint(EMAIL), "--trust-config", stack["ctc"], "--bundle", bundle)
    assert result.exit_code == 0, result.output
    doc = json.loads(bundle.read_text())
    assert "messageSignature" in doc and "certificate" in doc["verificationMaterial"]
    (entry,) = doc["verificationMaterial"]["tlogEntries"]
    assert entry["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.1"}
    issuer = stack["issuer"].issuer_url
    assert sigstore_python_verify(bundle=bundle, artifact=blob, trust_config=stack["ctc"],
                                  identity=EMAIL, issuer=issuer) == "pass"
    assert mg(*_keyless_verify_args(stack, blob, bundle)).exit_code == 0
    # both refuse another identity and other bytes
    assert sigstore_python_verify(bundle=bundle, artifact=blob, trust_config=stack["ctc"],
                                  identity="bob@example.com", issuer=issuer) != "pass"
    result = mg(*_keyless_verify_args(stack, blob, bundle, identity="bob@example.com"))
    assert result.exit_code == 1 and "not the expected" in result.output, result.output
    other = stack["base"] / "other.bin"
    other.write_bytes(b"other bytes")
    assert sigstore_python_verify(bundle=bundle, artifact=other, trust_config=stack["ctc"],
                                  identity=EMAIL, issuer=issuer) != "pass"
    assert mg(*_keyless_verify_args(stack, other, bundle)).exit_code == 1
    if js_unavailable() is None:
        assert sigstore_js_verify(bundle=bundle, artifact=blob, trusted_root=stack["ctc"],
                                  identity=EMAIL, issuer=issuer) == "pass"


@pytest.mark.network
@pytest.mark.interop
def test_sigstore_python_blob_bundle_verifies_with_verify_blob(stack):
    """sigstore-python's own signer (its API, pointed at our CA and log by the trust
    config) signs a file; verify-blob accepts the bundle and refuses changed bytes."""
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    blob = stack["base"] / "theirs.bin"
    blob.write_bytes(b"their bytes " * 300)
    context = SigningContext.from_trust_config(
        ClientTrustConfig.from_json(stack["ctc"].read_text()))
    with context.signer(IdentityToken(stack["issuer"].mint(EMAIL))) as signer:
        signed = signer.sign_artifact(blob.read_bytes())
    bundle = stack["base"] / "theirs.sigstore.json"
    bundle.write_text(signed.to_json())
    assert "messageSignature" in json.loads(bundle.read_text())
    result = mg(*_keyless_verify_args(stack, blob, bundle))
    assert result.exit_code == 0, result.output
    assert EMAIL in result.output and "inclusion proven" in result.output
    changed = stack["base"] / "theirs-changed.bin"
    changed.write_bytes(blob.read_bytes() + b"!")
    result = mg(*_keyless_verify_args(stack, changed, bundle))
    assert result.exit_code == 1 and "messageDigest" in result.output, result.output


# --------------------------------------------------------------------------- public-good

def _message_signature_cases() -> list[dict]:
    """The sigstore-conformance cases that verify a message-signature bundle (public-good
    Sigstore and Rekor v2 bundles from sigstore clients, keyless and managed-key)."""
    from tests.helpers.paths import CONFORMANCE_DIR

    cases = json.loads((CONFORMANCE_DIR / "cases.json").read_text())
    return [c for c in cases if c["expected"] == "pass" and "messageSignature" in
            json.loads((CONFORMANCE_DIR / c["bundle"]).read_text())]


@pytest.mark.parametrize("case", _message_signature_cases(), ids=lambda c: c["id"])
def test_verify_blob_accepts_public_message_signature_bundles(case, tmp_path):
    """What sigstore clients wrote for the public-good instance (offline, with the
    case's trusted root): verify-blob accepts the artifact and refuses one changed byte."""
    from tests.helpers.conformance import verify_args

    args = verify_args(case)
    assert args[0] == "verify"
    result = mg("verify-blob", *args[1:])
    assert result.exit_code == 0, result.output
    changed = tmp_path / "a.txt"
    data = Path(args[1]).read_bytes()
    changed.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    result = mg("verify-blob", changed, *args[2:])
    assert result.exit_code == 1 and "messageDigest" in result.output, result.output
