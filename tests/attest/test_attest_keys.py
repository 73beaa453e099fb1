"""Key generation, PEM files, passwords and every signature scheme."""

from __future__ import annotations

import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mgattest.attest import _keys as keys
from mgattest.attest._signers import (SignatureMismatchError, Signer, UnsupportedKeyError,
                                     Verifier)
from mgattest.errors import InputError

FAST_TYPES = ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-pss-2048", "rsa-pkcs1-2048"]


@pytest.fixture(scope="module")
def signers():
    return {t: keys.generate_signer(t) for t in FAST_TYPES}


@pytest.mark.parametrize("key_type", FAST_TYPES)
def test_every_key_type_round_trips_through_files(tmp_path, signers, key_type, monkeypatch):
    monkeypatch.delenv(keys.DEFAULT_PASSWORD_ENV, raising=False)
    signer = signers[key_type]
    key_path, pub_path = keys.write_keypair(signer, tmp_path / "k")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key_path.read_bytes()
    loaded = keys.load_signer(key_path)
    verifier = keys.load_verifier(pub_path)
    sig = loaded.sign(b"message")
    verifier.verify(sig, b"message")
    with pytest.raises(SignatureMismatchError):
        verifier.verify(sig, b"messagE")
    # the other keys reject it
    for other_type, other in signers.items():
        if other_type != key_type:
            assert not Verifier(other.public_key).matches(sig, b"message")


def test_rsa_scheme_is_remembered_and_pinned(tmp_path, signers):
    pkcs1 = signers["rsa-pkcs1-2048"]
    key_path, pub_path = keys.write_keypair(pkcs1, tmp_path / "r")
    assert key_path.read_bytes().startswith(b"mgattest-signature-scheme: rsa-pkcs1\n")
    loaded = keys.load_signer(key_path)
    assert loaded.rsa_scheme == "rsa-pkcs1"
    verifier = keys.load_verifier(pub_path)
    assert verifier.rsa_scheme == "rsa-pkcs1"
    pss_sig = Signer(pkcs1.private_key, rsa_scheme="rsa-pss").sign(b"m")
    with pytest.raises(SignatureMismatchError):
        verifier.verify(pss_sig, b"m")  # pinned to PKCS#1 v1.5
    # the PEM is still ordinary PKCS#8 for other tools
    serialization.load_pem_private_key(key_path.read_bytes(), None)


def test_encrypted_key_with_env_password(tmp_path, monkeypatch, signers):
    monkeypatch.setenv("MY_PW", "s3cret")
    password = keys.resolve_password("MY_PW")
    key_path, _ = keys.write_keypair(signers["ecdsa-p256"], tmp_path / "e", password)
    assert b"ENCRYPTED PRIVATE KEY" in key_path.read_bytes()
    monkeypatch.delenv(keys.DEFAULT_PASSWORD_ENV, raising=False)
    with pytest.raises(InputError, match="encrypted"):
        keys.load_signer(key_path, keys.resolve_password())
    with pytest.raises(InputError, match="wrong password"):
        keys.load_signer(key_path, b"nope")
    monkeypatch.setenv(keys.DEFAULT_PASSWORD_ENV, "s3cret")
    loaded = keys.load_signer(key_path, keys.resolve_password())
    assert loaded.public_key.public_numbers() == signers["ecdsa-p256"].public_key.public_numbers()


def test_password_env_must_exist(monkeypatch):
    monkeypatch.delenv("ABSENT_VAR", raising=False)
    with pytest.raises(InputError, match="ABSENT_VAR"):
        keys.resolve_password("ABSENT_VAR")


def test_password_prompt_confirmation():
    answers = iter(["a", "b"])
    with pytest.raises(InputError, match="do not match"):
        keys.resolve_password(prompt=True, confirm=True, ask=lambda _: next(answers))
    assert keys.resolve_password(prompt=True, ask=lambda _: "pw") == b"pw"


def test_refuses_to_overwrite(tmp_path, signers):
    keys.write_keypair(signers["ed25519"], tmp_path / "k")
    with pytest.raises(InputError, match="already exists"):
        keys.write_keypair(signers["ed25519"], tmp_path / "k")


def test_small_rsa_and_unknown_types_refused(tmp_path):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(UnsupportedKeyError, match="1024"):
        Signer(small)
    path = tmp_path / "small.pem"
    path.write_bytes(small.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    with pytest.raises(InputError, match="1024"):
        keys.load_signer(path)
    with pytest.raises(InputError, match="unknown key type"):
        keys.generate_signer("dsa-1024")


def test_garbage_key_files_are_input_errors(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InputError):
        keys.load_signer(bad)
    with pytest.raises(InputError):
        keys.load_verifier(bad)
    with pytest.raises(InputError, match="cannot read"):
        keys.load_signer(tmp_path / "missing.pem")
    huge = tmp_path / "huge.pem"
    huge.write_bytes(b"x" * (keys.MAX_KEY_FILE_BYTES + 1))
    with pytest.raises(InputError, match="1 MiB"):
        keys.load_verifier(huge)


@pytest.mark.slow
def test_rsa_3072_types(tmp_path):
    for key_type in ("rsa-pss-3072", "rsa-pkcs1-3072"):
        signer = keys.generate_signer(key_type)
        _, pub = keys.write_keypair(signer, tmp_path / key_type)
        keys.load_verifier(pub).verify(signer.sign(b"x"), b"x")
