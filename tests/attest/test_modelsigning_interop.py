"""Interop both ways with OpenSSF model_signing 1.1.1 (its Python API and its CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mgattest.attest._keys import generate_signer, write_keypair
from mgattest.attest._sign import DigestOptions, SignOptions, sign_model, write_bundle_file
from mgattest.attest._verify import verify_model
from mgattest.errors import MgattestError, VerificationError
from tests.helpers.bundles import ca_files_for_model_signing
from tests.helpers.trees import RandomBytes
from mgattest.attest._options import TrustOptions

pytestmark = pytest.mark.interop

MODEL_SIGNING_CLI = Path(sys.executable).parent / "model_signing"


MODEL_FILES = {"config.json": b'{"hidden": 64}', "layers/0.bin": RandomBytes(5000),
               "layers/1.bin": RandomBytes(12000)}


@pytest.fixture(scope="module")
def ec_keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    signer = generate_signer("ecdsa-p256")
    key, pub = write_keypair(signer, d / "k")
    return signer, key, pub


def _flip(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------- ours → theirs

def test_model_signing_cli_accepts_our_bundle(model, ec_keys, tmp_path):
    signer, _, pub = ec_keys
    result = sign_model(model, signer, SignOptions(format="model-signing"))
    sig = write_bundle_file(result.bundle, tmp_path / "model.sig")
    assert result.bundle["verificationMaterial"]["tlogEntries"]  # logged, and still accepted
    run = subprocess.run([str(MODEL_SIGNING_CLI), "verify", "key", str(model), "--signature",
                          str(sig), "--public_key", str(pub)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    _flip(model / "layers" / "1.bin")
    run = subprocess.run([str(MODEL_SIGNING_CLI), "verify", "key", str(model), "--signature",
                          str(sig), "--public_key", str(pub)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0


def test_model_signing_api_accepts_our_shard_bundle(model, ec_keys, tmp_path):
    from model_signing import hashing, verifying

    signer, _, pub = ec_keys
    bundle = sign_model(model, signer, SignOptions(format="model-signing",
                                                   digests=DigestOptions(shard_size=4096))).bundle
    sig = write_bundle_file(bundle, tmp_path / "model.sig")
    config = verifying.Config().use_elliptic_key_verifier(public_key=pub)
    config.set_hashing_config(hashing.Config().use_shard_serialization(shard_size=4096))
    config.verify(model, sig)


# --------------------------------------------------------------------------- theirs → ours

def _ms_sign_key(model, key, sig, *, shard_size=None):
    from model_signing import hashing, signing

    config = signing.Config().use_elliptic_key_signer(private_key=key)
    if shard_size:
        config.set_hashing_config(hashing.Config().use_shard_serialization(
            shard_size=shard_size))
    config.sign(model, sig)


@pytest.mark.parametrize("shard_size", [None, 4096], ids=["files", "shards"])
def test_we_verify_model_signing_key_signatures(model, ec_keys, tmp_path, shard_size):
    signer, key, pub = ec_keys
    sig = tmp_path / "model.sig"
    _ms_sign_key(model, key, sig, shard_size=shard_size)
    with pytest.raises(VerificationError, match="no transparency-log entry"):
        verify_model(model, [sig], trust=TrustOptions(keys=[pub]))
    atts, check = verify_model(model, [sig], trust=TrustOptions(keys=[pub]), allow_unlogged=True)
    assert atts[0].predicate_type == "https://model_signing/signature/v1.0"
    assert check.ok
    _flip(model / "layers" / "1.bin", 9000)
    with pytest.raises(VerificationError, match="layers/1.bin") as info:
        verify_model(model, [sig], trust=TrustOptions(keys=[pub]), allow_unlogged=True)
    if shard_size:
        assert "shard 2" in str(info.value)
    with pytest.raises(VerificationError, match="any trusted key"):
        verify_model(model, [sig], trust=TrustOptions(keys=[generate_signer().public_key]),
                     allow_unlogged=True)


def test_we_verify_model_signing_certificate_signatures(model, tmp_path):
    from model_signing import signing

    paths = ca_files_for_model_signing(tmp_path)
    sig = tmp_path / "model.sig"
    signing.Config().use_certificate_signer(
        private_key=paths["key"], signing_certificate=paths["leaf"],
        certificate_chain=[paths["ca"]]).sign(model, sig)
    atts, check = verify_model(model, [sig],
                               TrustOptions(certificate_chain=paths["ca"].read_bytes()),
                               allow_unlogged=True)
    assert check.ok and atts[0].signer.kind == "certificate"
    assert atts[0].signer.identity == "ml@example.com"
    verify_model(model, [sig], TrustOptions(certificate_chain=paths["ca"].read_bytes(),
                                            identity={"identity": "ml@example.com"}),
                 allow_unlogged=True)
    with pytest.raises(VerificationError, match="identity"):
        verify_model(model, [sig], TrustOptions(certificate_chain=paths["ca"].read_bytes(),
                                                identity={"identity": "other@example.com"}),
                     allow_unlogged=True)
    (tmp_path / "other").mkdir()
    other = ca_files_for_model_signing(tmp_path / "other")
    with pytest.raises(VerificationError, match="does not chain"):
        verify_model(model, [sig], trust=TrustOptions(certificate_chain=other["ca"].read_bytes()),
                     allow_unlogged=True)
    (model / "config.json").write_text('{"hidden": 65}')
    with pytest.raises(MgattestError, match="config.json"):
        verify_model(model, [sig], trust=TrustOptions(certificate_chain=paths["ca"].read_bytes()),
                     allow_unlogged=True)


def test_signing_same_model_twice_gives_same_statement(model, ec_keys):
    import base64

    signer = ec_keys[0]
    options = SignOptions(format="model-signing")
    a = sign_model(model, signer, options).bundle["dsseEnvelope"]["payload"]
    b = sign_model(model, signer, options).bundle["dsseEnvelope"]["payload"]
    assert base64.b64decode(a) == base64.b64decode(b)


def test_ca_certificate_as_signer_rejected(model, tmp_path):
    from model_signing import signing

    paths = ca_files_for_model_signing(tmp_path)
    sig = tmp_path / "model.sig"
    signing.Config().use_certificate_signer(
        private_key=paths["ca_key"], signing_certificate=paths["ca"],
        certificate_chain=[paths["ca"]]).sign(model, sig)
    with pytest.raises(VerificationError, match="CA certificate|does not chain"):
        verify_model(model, [sig], trust=TrustOptions(certificate_chain=paths["ca"].read_bytes()),
                     allow_unlogged=True)


def test_our_certificate_bundles_verify_with_the_ca(model, tmp_path):
    from mgattest.attest._keys import load_signer
    from mgattest.attest._sign import LogTarget, sign_statement
    from mgattest.attest._statement import make_statement
    from mgattest.attest._digests import hash_model

    paths = ca_files_for_model_signing(tmp_path)
    statement = make_statement(hash_model(model).subjects(), "https://x.example/p", {})
    bundle = sign_statement(statement, load_signer(paths["key"]), log=LogTarget(),
                            certificate_pem=paths["leaf"].read_bytes())
    assert "certificate" in bundle["verificationMaterial"]
    atts, check = verify_model(model, [bundle],
                               trust=TrustOptions(certificate_chain=paths["ca"].read_bytes()))
    assert check.ok and atts[0].log_entries and atts[0].signer.identity == "ml@example.com"
    with pytest.raises(MgattestError):  # without the CA, nothing vouches for the key
        verify_model(model, [bundle])
