"""Blobs: one file signed as itself (``mgattest sign-blob`` / ``verify-blob``).

Two forms, both over the file's exact bytes:

* **Sigstore message-signature bundles** — what ``sigstore sign FILE`` and ``cosign
  sign-blob --bundle`` write: ``messageSignature`` (SHA-256 ``messageDigest`` and a
  signature over it) and a hashedrekord 0.0.1 log entry. :func:`sign_blob` hashes the
  file and hands the digest to the sign pipeline's signers (``KeySigner`` and
  ``KeylessSigner`` are both :class:`~mgattest.attest._sign.BlobSigner` s); such a bundle
  is verified by the one verify pipeline like any single-file bundle.
* **Raw detached signatures** — what ``openssl dgst -sha256 -sign key.pem -out sig FILE``
  makes: DER ECDSA or RSA PKCS#1 v1.5 over the file's SHA-256 (Ed25519: over the whole
  file, ``openssl pkeyutl -sign -rawin``). :func:`sign_blob_raw` makes them,
  :func:`verify_raw_signature` checks them. A raw signature is a bare key's claim: it
  carries no time and is never logged in a transparency log.

Signature files (:func:`read_signature_file`): a file that, without ASCII whitespace, is
entirely standard base64 (``A-Z a-z 0-9 + /``, ``=`` padding, a length divisible by 4)
is decoded (cosign's ``--output-signature``, ``openssl base64``); any other file is the
signature bytes themselves (``openssl dgst -sign``). A DER ECDSA signature is never all
base64 text (its INTEGER tag 0x02 is not a base64 character), nor in practice is a
random RSA or Ed25519 signature, so the rule does not misread what openssl writes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mmap
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mgattest._files import open_regular, read_bounded
from mgattest.attest._bundle import BundleJSON
from mgattest.attest._sign import BlobSigner, KeySigner, PendingBundleFile
from mgattest.attest._signers import SigningKey, Verifier, describe_key, key_fingerprint
from mgattest.attest.errors import (MalformedSignatureError, RawSignatureMismatchError,
                                    SignatureFileError)
from mgattest.errors import InputError

BLOB_DIGEST = "sha256"  # what message-signature bundles and raw signatures sign
MAX_SIGNATURE_FILE_BYTES = 64 * 1024
_CHUNK = 1 << 20
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_WHITESPACE = re.compile(rb"[ \t\r\n\v\f]+")

RawScheme = Literal["ecdsa-sha256", "rsa-pkcs1v15-sha256", "rsa-pss-sha256", "ed25519"]


@dataclass(frozen=True)
class BlobDigest:
    """A file and the SHA-256 digest of its bytes."""

    path: str
    algorithm: str
    digest: bytes

    @property
    def text(self) -> str:
        """``ALG:HEX``, as ``verify`` takes digests."""
        return f"{self.algorithm}:{self.digest.hex()}"


@contextmanager
def _blob_file(path: str | Path) -> Iterator[int]:
    """A descriptor of the regular file ``path`` (a FIFO or device is refused at once)."""
    fd = open_regular(path, what="file")
    try:
        yield fd
    finally:
        os.close(fd)


def hash_blob(path: str | Path) -> BlobDigest:
    """The SHA-256 of the regular file at ``path``, read in chunks."""
    h = hashlib.sha256()
    with _blob_file(path) as fd:
        while chunk := os.read(fd, _CHUNK):
            h.update(chunk)
    return BlobDigest(str(path), BLOB_DIGEST, h.digest())


@contextmanager
def _blob_bytes(path: str | Path) -> Iterator[tuple[BlobDigest, bytes | memoryview]]:
    """The file's digest and its bytes (mapped, not copied): Ed25519 signs and verifies
    whole messages, and the digest reported must be of the same bytes."""
    with _blob_file(path) as fd:
        if os.fstat(fd).st_size == 0:
            yield BlobDigest(str(path), BLOB_DIGEST, hashlib.sha256(b"").digest()), b""
            return
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as data:
            yield BlobDigest(str(path), BLOB_DIGEST, hashlib.sha256(data).digest()), data


# --------------------------------------------------------------------------- bundles

@dataclass(frozen=True)
class BlobSignResult:
    """A signed blob: the message-signature bundle and the digest it signs."""

    bundle: BundleJSON
    blob: BlobDigest

    @property
    def log_indexes(self) -> list[int]:
        """The log indexes of the bundle's entries (empty: not logged)."""
        return [int(e["logIndex"]) for e in
                self.bundle["verificationMaterial"].get("tlogEntries") or []]


def sign_blob(path: str | Path, signer: BlobSigner | SigningKey, *,
              output: PendingBundleFile | None = None) -> BlobSignResult:
    """Hash the file at ``path`` and sign its digest as a message-signature bundle.

    ``signer``: a :class:`BlobSigner` (``KeySigner`` logs in its ``LogTarget``,
    ``KeylessSigner`` in its trust config's log), or a bare key :class:`Signer`
    (recorded in the embedded local log). With ``output`` the bundle is written there,
    reserved before anything is logged and committed after (as ``sign_model`` does).
    """
    blob_signer = KeySigner(signer) if isinstance(signer, SigningKey) else signer
    if isinstance(blob_signer, KeySigner) and isinstance(blob_signer.key.public_key,
                                                         ed25519.Ed25519PublicKey):
        raise InputError("an Ed25519 key cannot sign a message-signature bundle (its "
                         "hashedrekord log entry signs a digest; Ed25519 signs whole "
                         "messages): use an ECDSA or RSA key, or sign-blob --raw",
                         what="key")
    blob = hash_blob(path)
    if output is None:
        return BlobSignResult(blob_signer.sign_digest(blob.algorithm, blob.digest), blob)
    with output:
        output.reserve()
        bundle = blob_signer.sign_digest(blob.algorithm, blob.digest)
        output.commit(bundle)
    return BlobSignResult(bundle, blob)


# --------------------------------------------------------------------------- raw

@dataclass(frozen=True)
class RawSignature:
    """A raw detached signature over a file, and how it was made."""

    signature: bytes
    blob: BlobDigest
    scheme: RawScheme


def sign_blob_raw(path: str | Path, signer: SigningKey) -> RawSignature:
    """Sign the file at ``path`` as ``openssl dgst -sha256 -sign`` does (ECDSA: DER over
    the SHA-256; RSA: PKCS#1 v1.5 with SHA-256, whatever scheme the key file names) or,
    for Ed25519, as ``openssl pkeyutl -sign -rawin`` does (over the whole file)."""
    key = signer.public_key
    if isinstance(key, ed25519.Ed25519PublicKey):
        with _blob_bytes(path) as (blob, data):
            return RawSignature(signer.sign(bytes(data)), blob, "ed25519")
    blob = hash_blob(path)
    scheme: RawScheme = "rsa-pkcs1v15-sha256" if isinstance(key, rsa.RSAPublicKey) \
        else "ecdsa-sha256"
    return RawSignature(signer.sign_digest(blob.digest, blob.algorithm), blob, scheme)


def read_signature_file(path: str | Path) -> bytes:
    """The signature in the file at ``path``: base64 text decoded, else the raw bytes
    (the rule in this module's docstring)."""
    data = read_bounded(path, MAX_SIGNATURE_FILE_BYTES, what="signature file",
                        error=SignatureFileError)
    if not _WHITESPACE.sub(b"", data):
        raise SignatureFileError(f"signature file {path} is empty", what="signature file",
                                 where=str(path))
    return decode_signature_bytes(data)


def decode_signature_bytes(data: bytes) -> bytes:
    """A signature given as base64 text (whitespace ignored) decoded, else ``data`` itself
    (raw bytes), the rule in this module's docstring."""
    text = _WHITESPACE.sub(b"", data)
    if text and _BASE64_TEXT.fullmatch(text) and len(text) % 4 == 0:
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            pass  # not base64 after all: the bytes are the signature
    return data


@dataclass(frozen=True)
class RawSignatureCheck:
    """A raw signature that verified: over which bytes, with which key and scheme.

    ``logged`` is always False: nothing records a raw signature in a log, so no log
    inclusion and no signing time are established.
    """

    blob: BlobDigest
    scheme: RawScheme
    key_fingerprint: str
    key_type: str
    logged: Literal[False] = False


def verify_raw_signature(path: str | Path, signature: bytes,
                         key: Verifier | PublicKeyTypes) -> RawSignatureCheck:
    """Verify a raw detached signature over the file at ``path``.

    Accepts what ``openssl dgst -sha256 -sign`` makes with an EC (DER ECDSA over the
    SHA-256, any supported curve) or RSA key (PKCS#1 v1.5, or PSS with
    ``-sigopt rsa_padding_mode:pss``, any salt length), and what ``openssl pkeyutl
    -sign -rawin`` makes with an Ed25519 key. A signature that cannot be one of the
    key's signatures raises :class:`MalformedSignatureError`; a well-formed one that
    does not verify raises :class:`RawSignatureMismatchError`, naming the file's digest
    and the key.
    """
    public_key = key.public_key if isinstance(key, Verifier) else Verifier(key).public_key
    # The file first: a missing or special file is bad input, whatever the signature.
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        with _blob_bytes(path) as (blob, data):
            _check_shape(signature, public_key, path)
            scheme = _verify_ed25519(public_key, signature, data)
    else:
        blob = hash_blob(path)
        _check_shape(signature, public_key, path)
        scheme = _verify_digest(public_key, signature, blob.digest)
    fingerprint = key_fingerprint(public_key)
    if scheme is None:
        raise RawSignatureMismatchError(
            f"raw signature does not verify over {path} ({blob.text}) with "
            f"{describe_key(public_key)} key sha256:{fingerprint[:16]}…: the file changed, "
            "or the signature is over another file or by another key",
            what="signature", where=str(path))
    return RawSignatureCheck(blob, scheme, fingerprint, describe_key(public_key))


def _check_shape(signature: bytes, public_key: PublicKeyTypes, path: str | Path) -> None:
    """Refuse a signature that cannot be one of this key's, naming why."""
    problem = None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        try:
            utils.decode_dss_signature(signature)
        except ValueError:
            problem = "is not a DER-encoded ECDSA signature (SEQUENCE of two INTEGERs)"
    elif isinstance(public_key, rsa.RSAPublicKey):
        size = (public_key.key_size + 7) // 8
        if len(signature) != size:
            problem = (f"is {len(signature)} bytes; a {public_key.key_size}-bit RSA key's "
                       f"signatures are {size} bytes")
    elif isinstance(public_key, ed25519.Ed25519PublicKey) and len(signature) != 64:
        problem = f"is {len(signature)} bytes; Ed25519 signatures are 64 bytes"
    if problem:
        raise MalformedSignatureError(f"signature {problem} (truncated, corrupted, or made "
                                      "with another kind of key?)",
                                      what="signature", where=str(path))


def _verify_digest(public_key: PublicKeyTypes, signature: bytes,
                   digest: bytes) -> RawScheme | None:
    """The scheme under which ``signature`` verifies over the SHA-256 ``digest``."""
    prehashed = utils.Prehashed(hashes.SHA256())
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, digest, ec.ECDSA(prehashed))
            return "ecdsa-sha256"
    except InvalidSignature:
        return None
    if not isinstance(public_key, rsa.RSAPublicKey):
        return None
    attempts: tuple[tuple[RawScheme, padding.AsymmetricPadding], ...] = (
        ("rsa-pkcs1v15-sha256", padding.PKCS1v15()),
        ("rsa-pss-sha256", padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO)))
    for scheme, pad in attempts:
        try:
            public_key.verify(signature, digest, pad, prehashed)
            return scheme
        except InvalidSignature:
            continue
    return None


def _verify_ed25519(public_key: ed25519.Ed25519PublicKey, signature: bytes,
                    data: bytes | memoryview) -> RawScheme | None:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return None
    return "ed25519"
