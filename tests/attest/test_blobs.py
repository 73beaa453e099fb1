"""Blobs: raw detached signatures with the real ``openssl`` as the independent checker
both ways, and message-signature bundles through the sign and verify pipelines.

openssl signs → mgattest accepts; mgattest signs → openssl verifies; every tamper
(a flipped file byte, a flipped signature byte, another key, a truncated signature) is
refused by both, mgattest naming the cause.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from mgattest.attest import (hash_blob, load_signer, load_verifier, read_signature_file,
                             sign_blob, sign_blob_raw, verify_bundle, verify_raw_signature)
from mgattest.attest import KeySigner, LogTarget, PendingBundleFile
from mgattest.attest.errors import (ArtifactMismatchError, KeyFileError,
                                    MalformedSignatureError, RawSignatureMismatchError,
                                    SignatureFileError)
from mgattest.errors import InputError, VerificationError

from tests.helpers.openssl_tool import (KEYS, OPENSSL_MISSING, make_keypair, openssl,
                                        openssl_sign, openssl_verifies)

pytestmark = pytest.mark.skipif(OPENSSL_MISSING, reason="needs the openssl binary")
DIGEST_KEYS = [k for k, (_, how, _) in KEYS.items() if how == "dgst"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (private PEM, public PEM), made by openssl; "-other" twins for wrong keys."""
    base = tmp_path_factory.mktemp("keys")
    return {name + suffix: make_keypair(base, name + suffix, genargs)
            for name, (genargs, _, _) in KEYS.items() for suffix in ("", "-other")}


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    path = tmp_path / "weights.bin"
    path.write_bytes(os.urandom(70_000) + b"\x00end")
    return path


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------- openssl → us

@pytest.mark.parametrize("name", sorted(KEYS))
def test_openssl_signature_is_accepted(name, keys, blob, tmp_path):
    private, public = keys[name]
    sig = openssl_sign(name, private, blob, tmp_path / "sig")
    checked = verify_raw_signature(blob, read_signature_file(sig), load_verifier(public))
    assert checked.scheme == KEYS[name][2]
    assert checked.blob.text == "sha256:" + hash_blob(blob).digest.hex()
    assert checked.logged is False


def test_base64_signature_files_are_decoded(keys, blob, tmp_path):
    """openssl base64 wraps at 64 columns; a one-line base64 file (cosign) works too."""
    private, public = keys["rsa-2048"]
    sig = openssl_sign("rsa-2048", private, blob, tmp_path / "sig")
    wrapped = tmp_path / "sig.b64"
    openssl("base64", "-in", sig, "-out", wrapped)
    assert len(wrapped.read_text().splitlines()) > 1
    one_line = tmp_path / "sig.txt"
    one_line.write_text(base64.b64encode(sig.read_bytes()).decode() + "\n")
    for path in (wrapped, one_line):
        assert read_signature_file(path) == sig.read_bytes()
        verify_raw_signature(blob, read_signature_file(path), load_verifier(public))


def test_rsa_pss_from_openssl_is_accepted(keys, blob, tmp_path):
    private, public = keys["rsa-2048"]
    sig = tmp_path / "pss.sig"
    openssl("dgst", "-sha256", "-sign", private, "-sigopt", "rsa_padding_mode:pss",
             "-out", sig, blob)
    checked = verify_raw_signature(blob, read_signature_file(sig), load_verifier(public))
    assert checked.scheme == "rsa-pss-sha256"


# --------------------------------------------------------------------------- us → openssl

@pytest.mark.parametrize("name", sorted(KEYS))
def test_our_raw_signature_verifies_withopenssl(name, keys, blob, tmp_path):
    private, public = keys[name]
    made = sign_blob_raw(blob, load_signer(private))
    assert made.scheme == KEYS[name][2]
    sig = tmp_path / "ours.sig"
    sig.write_bytes(made.signature)
    assert openssl_verifies(name, public, blob, sig)
    # ... and openssl refuses it over other bytes or with another key: it is not a
    # signature that verifies with anything.
    other = tmp_path / "other.bin"
    other.write_bytes(blob.read_bytes()[:-1] + b"X")
    assert not openssl_verifies(name, public, other, sig)
    assert not openssl_verifies(name, keys[name + "-other"][1], blob, sig)


def test_mgattest_rsa_pss_key_still_signs_what_openssl_dgst_verifies(blob, tmp_path):
    """A key file whose scheme line says rsa-pss: raw signatures are PKCS#1 v1.5 (the
    padding `openssl dgst -verify` checks without -sigopt)."""
    from mgattest.attest import generate_signer, write_keypair

    private, public = write_keypair(generate_signer("rsa-pss-2048"), tmp_path / "k")
    sig = tmp_path / "sig"
    sig.write_bytes(sign_blob_raw(blob, load_signer(private)).signature)
    assert openssl_verifies("rsa-2048", public, blob, sig)


# --------------------------------------------------------------------------- tampering

@pytest.mark.parametrize("name", sorted(KEYS))
def test_every_tamper_is_refused_by_us_and_byopenssl(name, keys, blob, tmp_path):
    private, public = keys[name]
    verifier = load_verifier(public)
    sig = openssl_sign(name, private, blob, tmp_path / "sig")
    good = sig.read_bytes()

    # flipped file byte
    changed = tmp_path / "changed.bin"
    changed.write_bytes(blob.read_bytes())
    _flip(changed, 1000)
    with pytest.raises(RawSignatureMismatchError) as exc:
        verify_raw_signature(changed, good, verifier)
    assert "does not verify over" in exc.value.message and hash_blob(changed).digest.hex() \
        in exc.value.message and exc.value.what == "signature"
    assert not openssl_verifies(name, public, changed, sig)

    # flipped signature byte (in the last byte: the value, not the DER framing)
    flipped = tmp_path / "flipped.sig"
    flipped.write_bytes(good[:-1] + bytes([good[-1] ^ 0x01]))
    with pytest.raises(RawSignatureMismatchError):
        verify_raw_signature(blob, flipped.read_bytes(), verifier)
    assert not openssl_verifies(name, public, blob, flipped)

    # another key of the same type
    other_public = keys[name + "-other"][1]
    with pytest.raises(RawSignatureMismatchError) as exc:
        verify_raw_signature(blob, good, load_verifier(other_public))
    assert load_verifier(other_public).fingerprint[:16] in exc.value.message
    assert not openssl_verifies(name, other_public, blob, sig)

    # truncated signature
    truncated = tmp_path / "truncated.sig"
    truncated.write_bytes(good[:-3])
    with pytest.raises(MalformedSignatureError) as exc:
        verify_raw_signature(blob, truncated.read_bytes(), verifier)
    assert "truncated" in exc.value.message
    assert not openssl_verifies(name, public, blob, truncated)

    # and the untouched inputs still verify (no false alarm)
    verify_raw_signature(blob, good, verifier)


def test_signature_of_another_key_type_is_named_malformed(keys, blob, tmp_path):
    sig = openssl_sign("ec-p256", keys["ec-p256"][0], blob, tmp_path / "sig")
    with pytest.raises(MalformedSignatureError, match="2048-bit RSA key"):
        verify_raw_signature(blob, sig.read_bytes(), load_verifier(keys["rsa-2048"][1]))


def test_weak_rsa_keys_are_refused(blob, tmp_path):
    private, public = tmp_path / "weak.pem", tmp_path / "weak.pub"
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", private)
    openssl("pkey", "-in", private, "-pubout", "-out", public)
    with pytest.raises(KeyFileError, match="1024 bits refused"):
        load_signer(private)
    with pytest.raises(KeyFileError, match="1024 bits refused"):
        load_verifier(public)


def test_signature_files_that_cannot_be_used(tmp_path):
    empty = tmp_path / "empty.sig"
    empty.write_bytes(b" \n")
    with pytest.raises(SignatureFileError, match="is empty"):
        read_signature_file(empty)
    huge = tmp_path / "huge.sig"
    huge.write_bytes(b"A" * (64 * 1024 + 4))
    with pytest.raises(SignatureFileError, match="larger than"):
        read_signature_file(huge)
    fifo = tmp_path / "fifo.sig"
    os.mkfifo(fifo)
    with pytest.raises(SignatureFileError, match="FIFO"):
        read_signature_file(fifo)


def test_a_fifo_is_not_a_blob(keys, tmp_path):
    fifo = tmp_path / "fifo.bin"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        verify_raw_signature(fifo, b"\x30\x00", load_verifier(keys["ec-p256"][1]))
    with pytest.raises(InputError, match="FIFO"):
        sign_blob_raw(fifo, load_signer(keys["ec-p256"][0]))


def _one_byte(tmp_path: Path) -> Path:
    path = tmp_path / "one.bin"
    path.write_bytes(b"\x00")
    return path


def test_empty_file_signs_and_verifies(keys, tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    for name in ("ec-p256", "ed25519"):
        private, public = keys[name]
        sig = tmp_path / f"{name}.sig"
        sig.write_bytes(sign_blob_raw(empty, load_signer(private)).signature)
        if name != "ed25519":  # openssl 3.0's `pkeyutl -rawin` cannot read 0 bytes
            assert openssl_verifies(name, public, empty, sig)
        verify_raw_signature(empty, sig.read_bytes(), load_verifier(public))
        with pytest.raises(RawSignatureMismatchError):
            verify_raw_signature(_one_byte(tmp_path), sig.read_bytes(), load_verifier(public))


# --------------------------------------------------------------------------- bundles

def _bundle(keys, name: str, blob: Path, tmp_path: Path, log=LogTarget()) -> dict:
    out = PendingBundleFile(tmp_path / f"{name}.sigstore.json").check()
    result = sign_blob(blob, KeySigner(load_signer(keys[name][0]), log), output=out)
    assert json.loads(out.path.read_text()) == result.bundle
    return json.loads(out.path.read_text())


@pytest.mark.parametrize("name", DIGEST_KEYS)
def test_key_blob_bundle_is_a_logged_message_signature(name, keys, blob, tmp_path):
    bundle = _bundle(keys, name, blob, tmp_path)
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    digest = hash_blob(blob).digest
    ms = bundle["messageSignature"]
    assert ms["messageDigest"] == {"algorithm": "SHA2_256",
                                   "digest": base64.b64encode(digest).decode()}
    (entry,) = bundle["verificationMaterial"]["tlogEntries"]
    assert entry["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.1"}
    body = json.loads(base64.b64decode(entry["canonicalizedBody"]))
    assert body["spec"]["data"]["hash"] == {"algorithm": "sha256", "value": digest.hex()}
    assert body["spec"]["signature"]["content"] == ms["signature"]
    # The bundle's signature is exactly what `openssl dgst -sha256 -verify` checks.
    sig = tmp_path / "from-bundle.sig"
    sig.write_bytes(base64.b64decode(ms["signature"]))
    assert openssl_verifies(name, keys[name][1], blob, sig)
    att = verify_bundle(tmp_path / f"{name}.sigstore.json",
                        _trust(keys[name][1]), artifact_digest=blob)
    assert att.message_digest == {"sha256": digest.hex()}
    assert att.log_entries and att.log_entries[0].inclusion_proof_verified


def _trust(public: Path):
    from mgattest.attest import TrustOptions

    return TrustOptions(keys=(str(public),))


def test_openssl_signature_wrapped_in_a_bundle_verifies(keys, blob, tmp_path):
    """A message-signature bundle around openssl's own signature (logged in our log):
    the bundle signature format and openssl's are one and the same."""
    from mgattest.attest import make_bundle
    from mgattest.attest._bundle import MessageSignature
    from mgattest.attest._sign import hashedrekord_proposed_entry, record_in_log

    private, public = keys["ec-p256"]
    sig = openssl_sign("ec-p256", private, blob, tmp_path / "sig").read_bytes()
    digest = hash_blob(blob).digest
    entry = record_in_log(hashedrekord_proposed_entry("sha256", digest, sig,
                                                      public.read_bytes()), LogTarget())
    bundle = make_bundle(message_signature=MessageSignature("sha256", digest, sig),
                         tlog_entries=[entry])
    verify_bundle(bundle, _trust(public), artifact_digest=blob)


def test_key_blob_bundle_tampers_are_refused(keys, blob, tmp_path):
    bundle = _bundle(keys, "ec-p256", blob, tmp_path)
    trust = _trust(keys["ec-p256"][1])
    changed = tmp_path / "changed.bin"
    changed.write_bytes(blob.read_bytes()[:-1] + b"?")
    with pytest.raises(ArtifactMismatchError, match="messageDigest"):
        verify_bundle(bundle, trust, artifact_digest=changed)
    with pytest.raises(VerificationError, match="does not verify"):
        verify_bundle(bundle, _trust(keys["ec-p256-other"][1]), artifact_digest=blob)
    forged = json.loads(json.dumps(bundle))
    sig = bytearray(base64.b64decode(forged["messageSignature"]["signature"]))
    sig[-1] ^= 1
    forged["messageSignature"]["signature"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(VerificationError, match="does not verify"):
        verify_bundle(forged, trust, artifact_digest=blob)
    # A digest and signature of other bytes, validly signed, but not what was logged.
    other = tmp_path / "o" / "other.bin"
    other.parent.mkdir()
    other.write_bytes(b"other bytes")
    swapped = json.loads(json.dumps(bundle))
    swapped["messageSignature"] = _bundle(keys, "ec-p256", other,
                                          other.parent)["messageSignature"]
    with pytest.raises(VerificationError, match="log entry"):
        verify_bundle(swapped, trust, artifact_digest=other)
    verify_bundle(bundle, trust, artifact_digest=blob)  # untouched: accepted


def test_unlogged_blob_bundle_needs_allow_unlogged(keys, blob, tmp_path):
    bundle = _bundle(keys, "rsa-2048", blob, tmp_path, log=LogTarget("none"))
    assert bundle["verificationMaterial"]["tlogEntries"] == []
    trust = _trust(keys["rsa-2048"][1])
    with pytest.raises(VerificationError, match="no transparency-log entry"):
        verify_bundle(bundle, trust, artifact_digest=blob)
    verify_bundle(bundle, trust, artifact_digest=blob, allow_unlogged=True)


def test_ed25519_blob_bundle_is_refused_before_logging(keys, blob, tmp_path):
    from mgattest.attest import local_log_info

    out = PendingBundleFile(tmp_path / "ed.sigstore.json").check()
    with pytest.raises(InputError, match="Ed25519"):
        sign_blob(blob, load_signer(keys["ed25519"][0]), output=out)
    assert not out.path.exists()
    assert local_log_info() is None  # nothing was logged: the embedded log was never made


def test_sha384_message_signature_bundle_verifies(keys, blob, tmp_path):
    """sigstore-go signs with a P-384 key over SHA-384 (messageDigest SHA2_384): the file
    is hashed with the bundle's algorithm, and openssl agrees on the signature."""
    private, public = keys["ec-p384"]
    digest = hashlib.sha384(blob.read_bytes()).digest()
    bundle = KeySigner(load_signer(private)).sign_digest("sha384", digest)
    assert bundle["messageSignature"]["messageDigest"]["algorithm"] == "SHA2_384"
    att = verify_bundle(bundle, _trust(public), artifact_digest=blob)
    assert att.message_digest == {"sha384": digest.hex()}
    sig = tmp_path / "sig"
    sig.write_bytes(base64.b64decode(bundle["messageSignature"]["signature"]))
    assert openssl("dgst", "-sha384", "-verify", public, "-signature", sig, blob,
                   check=False).returncode == 0
    changed = tmp_path / "changed.bin"
    changed.write_bytes(blob.read_bytes() + b"\n")
    with pytest.raises(ArtifactMismatchError):
        verify_bundle(bundle, _trust(public), artifact_digest=changed)
