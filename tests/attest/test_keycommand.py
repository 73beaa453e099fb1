"""Signing keys held elsewhere: ``CommandKey`` (``--key-command``) and KMS key URIs.

The key commands are real processes signing with real keys (tests/helpers/keycommand.py):
a Python script using ``cryptography`` and a shell script using ``openssl pkeyutl``.
"""

from __future__ import annotations

import ast
import hashlib
import subprocess
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mgattest._encodings import pae
from mgattest.attest import (CommandKey, KeyCommandError, KMSUnavailableError, KeySigner,
                             kms_scheme, open_kms_key, register_kms_provider)
from mgattest.attest._dsse import IN_TOTO_PAYLOAD_TYPE
from mgattest.attest._blobs import sign_blob, sign_blob_raw
from mgattest.attest._keys import generate_signer, write_keypair
from mgattest.attest._locallog import open_local_log
from mgattest.attest._options import TrustOptions
from mgattest.attest._sign import (LogTarget, PendingBundleFile, SignOptions, sign_model,
                                   write_bundle_file)
from mgattest.attest._statement import serialize_statement
from mgattest.attest._verify import verify_bundle, verify_model
from mgattest.attest._walk import default_bundle_path
from mgattest.errors import InputError
from tests.helpers.keycommand import (hanging_key_command, openssl_key_command,
                                      python_key_command)

MODEL_FILES = {"config.json": b'{"layers": 2}', "weights.bin": bytes(range(256)) * 64}
KEY_TYPES = ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-pkcs1-2048"]


def _keypair(tmp_path, key_type="ecdsa-p256", name="k"):
    signer = generate_signer(key_type)
    key, pub = write_keypair(signer, tmp_path / name)
    return signer, key, pub


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_key_command_signs_a_model_that_verifies(model, tmp_path, key_type):
    signer, key, pub = _keypair(tmp_path, key_type)
    command_key = CommandKey.open(python_key_command(tmp_path, key), pub)
    result = sign_model(model, command_key)
    write_bundle_file(result.bundle, default_bundle_path(model))
    atts, check = verify_model(model, trust=TrustOptions(keys=[signer.public_key]))
    assert check.ok and atts[0].signer.kind == "key"
    assert atts[0].log_entries[0].inclusion_proof_verified  # logged like a file key
    # another trusted key does not verify it: the signature really is this key's
    with pytest.raises(Exception, match="does not verify|no trusted key"):
        verify_model(model, trust=TrustOptions(keys=[generate_signer(key_type).public_key]))


def test_command_receives_the_digest_of_the_pae_for_ecdsa(model, tmp_path, monkeypatch):
    _, key, pub = _keypair(tmp_path, "ecdsa-p384")
    record = tmp_path / "requests.txt"
    monkeypatch.setenv("KEYCMD_RECORD", str(record))
    result = sign_model(model, CommandKey.open(python_key_command(tmp_path, key), pub),
                        SignOptions())
    (kind, hash_name, scheme, data_hex), = [ast.literal_eval(line) for line in
                                            record.read_text().splitlines()]
    payload = serialize_statement(result.statement)
    assert (kind, hash_name, scheme) == ("digest", "sha384", "ecdsa")
    assert bytes.fromhex(data_hex) == hashlib.sha384(pae(IN_TOTO_PAYLOAD_TYPE,
                                                         payload)).digest()


def test_ed25519_command_receives_the_whole_pae(model, tmp_path, monkeypatch):
    _, key, pub = _keypair(tmp_path, "ed25519")
    record = tmp_path / "requests.txt"
    monkeypatch.setenv("KEYCMD_RECORD", str(record))
    result = sign_model(model, CommandKey.open(python_key_command(tmp_path, key), pub))
    (kind, hash_name, scheme, data_hex), = [ast.literal_eval(line) for line in
                                            record.read_text().splitlines()]
    assert (kind, hash_name, scheme) == ("message", None, "ed25519")
    assert bytes.fromhex(data_hex) == pae(IN_TOTO_PAYLOAD_TYPE,
                                          serialize_statement(result.statement))


def test_openssl_key_command_model_and_raw_blob(model, tmp_path):
    """An independent signer (openssl) behind the command; openssl checks the raw one."""
    signer, key, pub = _keypair(tmp_path)
    command_key = CommandKey.open(openssl_key_command(tmp_path, key), pub)
    write_bundle_file(sign_model(model, command_key).bundle, default_bundle_path(model))
    assert verify_model(model, trust=TrustOptions(keys=[signer.public_key]))[1].ok
    raw = sign_blob_raw(model / "weights.bin", command_key)
    sig = tmp_path / "weights.sig"
    sig.write_bytes(raw.signature)
    run = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature",
                          str(sig), str(model / "weights.bin")], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and "Verified OK" in run.stdout, run.stderr
    (model / "weights.bin").write_bytes(b"changed")
    run = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature",
                          str(sig), str(model / "weights.bin")], capture_output=True,
                         timeout=60)
    assert run.returncode != 0


def test_key_command_signs_a_message_signature_bundle(model, tmp_path):
    signer, key, pub = _keypair(tmp_path)
    command_key = CommandKey.open(python_key_command(tmp_path, key, "base64"), pub)
    result = sign_blob(model / "config.json", KeySigner(command_key, LogTarget()))
    assert result.log_indexes
    blob = model / "config.json"
    att = verify_bundle(result.bundle, trust=TrustOptions(keys=[signer.public_key]),
                        artifact_digest=blob)
    assert att.signer.kind == "key"
    with pytest.raises(Exception, match="is not the artifact.s"):
        verify_bundle(result.bundle, trust=TrustOptions(keys=[signer.public_key]),
                      artifact_digest=b"other bytes")


def test_public_key_asked_of_the_command(tmp_path):
    signer, key, _ = _keypair(tmp_path)
    command_key = CommandKey.open(python_key_command(tmp_path, key))
    assert command_key.public_key.public_numbers() == signer.public_key.public_numbers()
    with pytest.raises(KeyCommandError, match="did not print a PEM public key"):
        CommandKey.open(python_key_command(tmp_path, key, "bad-public-key"))


# --------------------------------------------------------------------------- fails closed

@pytest.mark.parametrize("mode, message", [
    ("garbage", "does not verify with the ecdsa-p256 public key"),
    ("empty", "printed no signature"),
    ("fail", "exited with status 3: access denied by key service"),
    ("flood", "printed more than 65536 bytes"),
])
def test_misbehaving_command_fails_closed(model, tmp_path, mode, message):
    _, key, pub = _keypair(tmp_path)
    pending = PendingBundleFile(default_bundle_path(model)).check()
    started = time.monotonic()
    with pytest.raises(KeyCommandError, match=message):
        sign_model(model, CommandKey.open(python_key_command(tmp_path, key, mode), pub,
                                          timeout=30), output=pending)
    assert time.monotonic() - started < 20  # a flood is stopped at the limit, not the timeout
    assert not default_bundle_path(model).exists()


def test_another_keys_signature_is_refused_and_nothing_is_logged(model, tmp_path):
    _, key, pub = _keypair(tmp_path)
    _, other, _ = _keypair(tmp_path, name="other")
    db = tmp_path / "log.db"
    open_local_log(db)
    log = LogTarget.from_options(db=str(db))
    cmd = CommandKey.open(python_key_command(tmp_path, key, f"other={other}"), pub)
    with pytest.raises(KeyCommandError, match="does not verify"):
        sign_model(model, KeySigner(cmd, log),
                   output=PendingBundleFile(default_bundle_path(model)).check())
    assert not default_bundle_path(model).exists()
    assert open_local_log(db).size == 0
    with pytest.raises(KeyCommandError, match="does not verify"):
        cmd.sign_digest(hashlib.sha256(b"x").digest())


def test_rsa_pss_signature_refused_where_pkcs1_is_promised(tmp_path):
    """The command must sign with the scheme it is told (RSA: PKCS#1 v1.5)."""
    _, key, pub = _keypair(tmp_path, "rsa-pss-2048")
    script = tmp_path / "pss.py"
    script.write_text(
        "import sys, os\n"
        "from cryptography.hazmat.primitives import hashes, serialization\n"
        "from cryptography.hazmat.primitives.asymmetric import padding, utils\n"
        f"k = serialization.load_pem_private_key(open({str(key)!r}, 'rb').read(), None)\n"
        "d = sys.stdin.buffer.read()\n"
        "sys.stdout.buffer.write(k.sign(d, padding.PSS(padding.MGF1(hashes.SHA256()), 32),"
        " utils.Prehashed(hashes.SHA256())))\n")
    import sys

    cmd = CommandKey.open(f"{sys.executable} {script}", pub)
    with pytest.raises(KeyCommandError, match="does not verify"):
        cmd.sign(b"message")


def test_hanging_command_is_killed_at_the_timeout(tmp_path):
    _, _, pub = _keypair(tmp_path)
    cmd = CommandKey.open(hanging_key_command(tmp_path), pub, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(KeyCommandError, match="did not finish within 1 s"):
        cmd.sign(b"message")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("command, message", [
    ("", "--key-command is empty"),
    ("'unbalanced", "cannot parse --key-command"),
    ("/nonexistent/signer --x", "cannot run key command /nonexistent/signer"),
])
def test_bad_commands_are_input_errors(tmp_path, command, message):
    _, _, pub = _keypair(tmp_path)
    with pytest.raises(KeyCommandError, match=message) as info:
        CommandKey.open(command, pub).sign(b"x")
    assert isinstance(info.value, InputError)


def test_no_shell_is_involved(tmp_path):
    """Shell syntax reaches the program as plain arguments, it is never interpreted."""
    _, _, pub = _keypair(tmp_path)
    marker = tmp_path / "pwned"
    cmd = CommandKey.open(f"true; touch {marker}", pub)
    with pytest.raises(KeyCommandError):
        cmd.sign(b"x")
    assert not marker.exists()


# --------------------------------------------------------------------------- KMS URIs

@pytest.mark.parametrize("uri, scheme", [
    ("awskms:///arn:aws:kms:us-east-1:111122223333:key/1234", "awskms"),
    ("awskms:/arn:aws:kms:us-east-1:1:key/1", "awskms"),  # what pathlib leaves of ///
    ("gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", "gcpkms"),
    ("azurekms://vault.vault.azure.net/key", "azurekms"),
    ("hashivault://transit-key", "hashivault"),
    ("release.key", None), ("s3://bucket/key", None), ("./awskms/key.pem", None),
])
def test_kms_scheme(uri, scheme):
    assert kms_scheme(uri) == scheme


def test_kms_uri_without_provider_points_to_key_command():
    with pytest.raises(KMSUnavailableError, match="not available in this build.*--key-command"):
        open_kms_key("awskms:///arn:aws:kms:us-east-1:1:key/1")


def test_registered_kms_provider_signs(model, tmp_path, monkeypatch):
    """The plug-in point: a provider registered for a scheme opens its URIs."""
    signer, key, pub = _keypair(tmp_path)
    monkeypatch.setattr("mgattest.attest._kms._PROVIDERS", {})
    seen = []

    def provider(uri):
        seen.append(uri)
        return CommandKey.open(python_key_command(tmp_path, key), pub)

    register_kms_provider("hashivault", provider)
    result = sign_model(model, open_kms_key("hashivault://release"))
    assert seen == ["hashivault://release"]
    write_bundle_file(result.bundle, default_bundle_path(model))
    assert verify_model(model, trust=TrustOptions(keys=[signer.public_key]))[1].ok
    with pytest.raises(ValueError, match="not a KMS scheme"):
        register_kms_provider("file", provider)


def test_signing_key_protocol_covers_both_key_kinds(tmp_path):
    from mgattest.attest import Signer, SigningKey

    signer, key, pub = _keypair(tmp_path)
    assert isinstance(signer, Signer) and isinstance(signer, SigningKey)
    assert isinstance(CommandKey.open(python_key_command(tmp_path, key), pub), SigningKey)
    assert not isinstance(KeySigner(signer), SigningKey)  # a bundle signer, not a key
    assert isinstance(signer.public_key, ec.EllipticCurvePublicKey)
