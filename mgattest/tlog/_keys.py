"""Log signing keys: ECDSA P-256 (Rekor v1 style) or Ed25519 (Rekor v2 / C2SP style).

The log ID is SHA-256 of the DER SubjectPublicKeyInfo of the log's public key. ECDSA
signs with SHA-256 and produces DER signatures; Ed25519 signs the message itself.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mgattest import _keys
from mgattest._encodings import spki_der
from mgattest._files import read_bounded
from mgattest.errors import InputError, VerificationError
from mgattest.tlog.errors import LogError

PrivateKey = Union[ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey]
PublicKey = Union[ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, rsa.RSAPublicKey]

KEY_TYPES = ("ecdsa-p256", "ed25519")
MAX_PEM_SIZE = 64 * 1024


class LogSignatureError(VerificationError):
    """A signature made by (or claimed to be made by) a log key does not verify."""


class KeyParameterError(InputError):
    """A public key whose parameters mgattest refuses (e.g. a weak or oversized RSA key)."""


def check_rsa_parameters(public_key: object, *, what: str = "RSA key",
                         error: type[InputError] = KeyParameterError) -> None:
    """:func:`mgattest._keys.check_rsa_parameters` (e = 65537, 2048–4096-bit modulus)
    raising :class:`KeyParameterError` by default: the one RSA rule of every package."""
    _keys.check_rsa_parameters(public_key, what=what, error=error)


def log_id_of(public_key: PublicKey) -> bytes:
    """The 32-byte log ID: SHA-256 of the DER SPKI."""
    return hashlib.sha256(spki_der(public_key)).digest()


def c2sp_key_id(name: str, public_key: ed25519.Ed25519PublicKey) -> bytes:
    """The C2SP signed-note key ID of an Ed25519 key: ``SHA-256(name ‖ "\n" ‖ 0x01 ‖ key)``.

    Its first four bytes are the note key hint. Rekor v2 uses it as the log ID.
    """
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode("utf-8") + b"\n\x01" + raw).digest()


def log_id_for(public_key: PublicKey, name: str) -> bytes:
    """The log ID entries of a log named ``name`` carry.

    ECDSA/RSA (Rekor v1 style): SHA-256 of the DER SPKI. Ed25519 (Rekor v2 style): the
    C2SP key ID, so that the checkpoint key hint is the log ID's first four bytes — which
    is what sigstore-python checks.
    """
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return c2sp_key_id(name, public_key)
    return log_id_of(public_key)


def note_key_hint(name: str, public_key: PublicKey) -> bytes:
    """The 4-byte key hint that prefixes a signature line of a C2SP signed note.

    ECDSA (and RSA), as Rekor v1 does: ``SHA-256(SPKI)[:4]``. Ed25519, per C2SP
    signed-note: ``SHA-256(name ‖ "\\n" ‖ 0x01 ‖ raw public key)[:4]``.
    """
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return c2sp_key_id(name, public_key)[:4]
    return hashlib.sha256(spki_der(public_key)).digest()[:4]


def _check_pem(data: bytes | str, label: str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray)):
        raise InputError(f"{label} must be PEM bytes or text")
    if len(data) > MAX_PEM_SIZE:
        raise InputError(f"{label} is larger than {MAX_PEM_SIZE} bytes")
    return bytes(data)


_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,64})-----")


def pem_kind_problem(data: bytes | str, wanted: str) -> str | None:
    """Why PEM ``data`` is the wrong kind of object for ``wanted`` (``"public key"`` or
    ``"private key"``), naming what it is instead; None when it may be right.

    The message a parser gives for the wrong block ("no BEGIN CERTIFICATE delimiters")
    names what it looked for last, not the mistake: a private key passed where a
    public key belongs.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    labels = [m.group(1).decode() for m in _PEM_BEGIN.finditer(data[:MAX_PEM_SIZE])]
    if not labels:
        return None
    private = any(label.endswith("PRIVATE KEY") for label in labels)
    if wanted == "public key" and private:
        return (f"is a private key ({labels[0]}), not a public key: give the public half "
                "(a PUBLIC KEY PEM, e.g. the .pub file), and keep the private key secret")
    if wanted == "private key" and not private:
        return f"is a {labels[0].lower()}, not a private key"
    return None


class LogVerifier:
    """Verifies signatures made by one log key."""

    def __init__(self, public_key: PublicKeyTypes) -> None:
        """Accept any loaded public key; refuse (``InputError``) all but ``PublicKey``."""
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            if not isinstance(public_key.curve, (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)):
                raise InputError(f"unsupported log key curve {public_key.curve.name}")
        elif not isinstance(public_key, (ed25519.Ed25519PublicKey, rsa.RSAPublicKey)):
            raise InputError(f"unsupported log key type {type(public_key).__name__}")
        check_rsa_parameters(public_key, what="log key")
        self.public_key = public_key
        self.log_id = log_id_of(public_key)

    @classmethod
    def from_pem(cls, data: bytes | str) -> "LogVerifier":
        """Load a PEM ``PUBLIC KEY`` (or a certificate's key)."""
        pem = _check_pem(data, "log public key")
        problem = pem_kind_problem(pem, "public key")
        if problem:
            raise InputError(f"log public key {problem}", what="log public key")
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError:
            try:

                key = x509.load_pem_x509_certificate(pem).public_key()
            except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion: no ValueError
                raise InputError(f"log public key is not a PEM public key: {exc}") from None
        return cls(key)

    @classmethod
    def from_der(cls, data: bytes) -> "LogVerifier":
        """Load a DER SubjectPublicKeyInfo."""
        try:
            key = serialization.load_der_public_key(data)
        except (ValueError, TypeError) as exc:
            raise InputError(f"log public key is not a DER SubjectPublicKeyInfo: {exc}") \
                from None
        return cls(key)

    @property
    def key_type(self) -> str:
        """``ecdsa-p256`` (or other curve), ``ed25519`` or ``rsa``."""
        if isinstance(self.public_key, ed25519.Ed25519PublicKey):
            return "ed25519"
        if isinstance(self.public_key, rsa.RSAPublicKey):
            return "rsa"
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(
            self.public_key.curve.name, "ecdsa-p521")

    def public_pem(self) -> bytes:
        """PEM ``PUBLIC KEY`` of this log key."""
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`LogSignatureError` unless ``signature`` over ``data`` verifies."""
        if not isinstance(signature, (bytes, bytearray)) or not signature \
                or len(signature) > 1024:
            raise LogSignatureError("log signature is empty or oversized",
                                    what="log signature")
        key = self.public_key
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(bytes(signature), data)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                digest = {"secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}.get(
                    key.curve.name, hashes.SHA256())
                key.verify(bytes(signature), data, ec.ECDSA(digest))
            else:
                key.verify(bytes(signature), data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise LogSignatureError(
                f"signature does not verify with log key {self.log_id.hex()}",
                what="log signature", where=f"log id {self.log_id.hex()}") from None

    def __repr__(self) -> str:
        return f"LogVerifier({self.key_type}, log_id={self.log_id.hex()})"


class LogSigner:
    """The private key a log signs checkpoints and SETs with."""

    def __init__(self, private_key: PrivateKey) -> None:
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            if not isinstance(private_key.curve, ec.SECP256R1):
                raise InputError("log ECDSA keys must be on curve P-256")
        elif not isinstance(private_key, ed25519.Ed25519PrivateKey):
            raise InputError(f"unsupported log key type {type(private_key).__name__}")
        self._private_key = private_key
        self._ecdsa = ec.ECDSA(hashes.SHA256())
        self.public_key: PublicKey = private_key.public_key()
        self.verifier = LogVerifier(self.public_key)
        self.log_id: bytes = self.verifier.log_id

    @classmethod
    def generate(cls, key_type: str = "ecdsa-p256") -> "LogSigner":
        """A fresh key: ``ecdsa-p256`` (default) or ``ed25519``."""
        if key_type == "ecdsa-p256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        if key_type == "ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        raise InputError(f"unknown log key type {key_type!r}; use one of {', '.join(KEY_TYPES)}")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str],
                  password: bytes | str | None = None) -> "LogSigner":
        """Load the log's PEM private key from *path* (a bounded read, as for any key file)."""
        return cls.from_pem(read_bounded(path, 1 << 20, what="log key"), password=password)

    @classmethod
    def from_pem(cls, data: bytes | str, password: bytes | str | None = None) -> "LogSigner":
        """Load a PEM private key (PKCS#8 or SEC1), optionally encrypted."""
        pem = _check_pem(data, "log private key")
        problem = pem_kind_problem(pem, "private key")
        if problem:
            raise InputError(f"log private key {problem}", what="log private key")
        if isinstance(password, str):
            password = password.encode("utf-8")
        try:
            key = serialization.load_pem_private_key(pem, password=password)
        except TypeError as exc:
            raise InputError(f"log private key: {exc}") from None
        except ValueError as exc:
            raise InputError(f"cannot load log private key (wrong password or not a PEM "
                             f"private key): {exc}") from None
        if not isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
            raise InputError("log private key must be ECDSA P-256 or Ed25519")
        return cls(key)

    @property
    def key_type(self) -> str:
        """``ecdsa-p256`` or ``ed25519``."""
        return self.verifier.key_type

    def private_pem(self, password: bytes | str | None = None) -> bytes:
        """PKCS#8 PEM of the private key (encrypted when ``password`` is given)."""
        if isinstance(password, str):
            password = password.encode("utf-8")
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password
            else serialization.NoEncryption())
        return self._private_key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8, enc)

    def public_pem(self) -> bytes:
        """PEM ``PUBLIC KEY``."""
        return self.verifier.public_pem()

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256/SHA-256 DER signature, or Ed25519 signature, over ``data``."""
        key = self._private_key
        try:
            if isinstance(key, ed25519.Ed25519PrivateKey):
                return key.sign(data)
            return key.sign(data, self._ecdsa)
        except Exception as exc:  # pragma: no cover - a broken key is a log fault
            raise LogError(f"log key failed to sign: {exc}") from exc

    def __repr__(self) -> str:
        return f"LogSigner({self.key_type}, log_id={self.log_id.hex()})"
