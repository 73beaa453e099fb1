"""Key-based signers and verifiers over raw bytes (DSSE PAE, artifact bytes).

Supported schemes (the scheme follows from the key, except RSA which needs a padding):
ECDSA P-256/SHA-256, ECDSA P-384/SHA-384, ECDSA P-521/SHA-512 (verify only), Ed25519,
RSA-PSS/SHA-256 (MGF1 SHA-256, salt = digest length) and RSA PKCS#1 v1.5/SHA-256,
RSA keys with e = 65537 and a 2048–4096-bit modulus.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from mgattest._encodings import spki_der
from mgattest.errors import InputError, VerificationError
from mgattest.tlog import check_rsa_parameters

RSA_SCHEMES = ("rsa-pss", "rsa-pkcs1")
DIGEST_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


class UnsupportedKeyError(InputError):
    """A key of a type or size mgattest refuses to use."""


class SignatureMismatchError(VerificationError):
    """A signature does not verify under the given key."""


def _ec_hash(curve: ec.EllipticCurve) -> hashes.HashAlgorithm:
    if isinstance(curve, ec.SECP256R1):
        return hashes.SHA256()
    if isinstance(curve, ec.SECP384R1):
        return hashes.SHA384()
    if isinstance(curve, ec.SECP521R1):
        return hashes.SHA512()
    raise UnsupportedKeyError(f"unsupported elliptic curve {curve.name}", what="key")


def spki_pem(public_key: PublicKeyTypes) -> bytes:
    """PEM SubjectPublicKeyInfo of a public key."""
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def key_fingerprint(public_key: PublicKeyTypes) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo (also the Rekor log-ID rule)."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def describe_key(public_key: PublicKeyTypes) -> str:
    """A short name of the key type, e.g. ``ecdsa-p256``, ``ed25519``, ``rsa-3072``."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384",
                "secp521r1": "ecdsa-p521"}.get(public_key.curve.name,
                                                f"ecdsa-{public_key.curve.name}")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa-{public_key.key_size}"
    return type(public_key).__name__


def check_public_key(public_key: PublicKeyTypes) -> None:
    """Refuse key types and sizes that mgattest does not sign or verify with."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        _ec_hash(public_key.curve)
    elif isinstance(public_key, rsa.RSAPublicKey):
        check_rsa_parameters(public_key, what="key", error=UnsupportedKeyError)
    elif not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise UnsupportedKeyError(f"unsupported key type {type(public_key).__name__}",
                                  what="key")


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)


@runtime_checkable
class SigningKey(Protocol):
    """What signing needs from a key, wherever it is held: a key file (:class:`Signer`)
    or a key service reached through a command (``attest._keycommand.CommandKey``)."""

    @property
    def public_key(self) -> PublicKeyTypes:
        """The public key that verifies this key's signatures."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Sign the message ``data`` (DSSE PAE) with the key's scheme."""
        ...

    def sign_digest(self, digest: bytes, algorithm: str = "sha256") -> bytes:
        """Sign an artifact's ``algorithm`` digest (ECDSA or RSA PKCS#1 v1.5)."""
        ...


def ec_hash_name(curve: ec.EllipticCurve) -> str:
    """The digest ECDSA uses on ``curve`` here: sha256 (P-256), sha384 (P-384), sha512."""
    return _ec_hash(curve).name


@dataclass(frozen=True)
class Signer:
    """A private key plus the scheme it signs with."""

    private_key: PrivateKeyTypes
    rsa_scheme: str = "rsa-pss"

    def __post_init__(self) -> None:
        check_public_key(self.private_key.public_key())
        if self.rsa_scheme not in RSA_SCHEMES:
            raise UnsupportedKeyError(f"unknown RSA scheme {self.rsa_scheme!r}", what="key")

    @property
    def public_key(self) -> PublicKeyTypes:
        """The matching public key."""
        return self.private_key.public_key()

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (the hash is applied by the scheme, never pre-hashed)."""
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(_ec_hash(key.curve)))
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        if not isinstance(key, rsa.RSAPrivateKey):  # __post_init__ refused other types
            raise UnsupportedKeyError(f"unsupported key type {type(key).__name__}", what="key")
        if self.rsa_scheme == "rsa-pss":
            return key.sign(data, _pss(), hashes.SHA256())
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def sign_digest(self, digest: bytes, algorithm: str = "sha256") -> bytes:
        """Sign an artifact's ``algorithm`` digest, as ``openssl dgst -<alg> -sign`` and
        Rekor's hashedrekord entries expect: ECDSA (DER) over the digest on any curve,
        RSA PKCS#1 v1.5 whatever the key's ``rsa_scheme`` (the padding hashedrekord and
        ``openssl dgst`` use). Ed25519 signs whole messages only: refused."""
        hash_cls = DIGEST_HASHES.get(algorithm)
        if hash_cls is None or len(digest) != hash_cls().digest_size:
            raise UnsupportedKeyError(f"cannot sign a {len(digest)}-byte {algorithm} digest "
                                      f"(sha256, sha384 or sha512)", what="digest")
        key = self.private_key
        prehashed = utils.Prehashed(hash_cls())
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(digest, ec.ECDSA(prehashed))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(digest, padding.PKCS1v15(), prehashed)
        raise UnsupportedKeyError(f"{describe_key(self.public_key)} keys sign whole messages, "
                                  "not digests: use an ECDSA or RSA key", what="key")


@dataclass(frozen=True)
class Verifier:
    """A trusted public key. RSA keys accept PSS and PKCS#1 v1.5 signatures unless
    ``rsa_scheme`` pins one (both are sound with the same key; keygen does not record
    the padding in the public key file)."""

    public_key: PublicKeyTypes
    rsa_scheme: str | None = None

    def __post_init__(self) -> None:
        check_public_key(self.public_key)

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the DER SPKI."""
        return key_fingerprint(self.public_key)

    def verify(self, signature: bytes, data: bytes, *, where: str | None = None) -> None:
        """Raise :class:`SignatureMismatchError` unless ``signature`` is valid over ``data``."""
        key = self.public_key
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, data, ec.ECDSA(_ec_hash(key.curve)))
                return
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, data)
                return
            if not isinstance(key, rsa.RSAPublicKey):  # __post_init__ refused other types
                raise UnsupportedKeyError(f"unsupported key type {type(key).__name__}",
                                          what="key")
            schemes = [self.rsa_scheme] if self.rsa_scheme else list(RSA_SCHEMES)
            for scheme in schemes:
                pad = _pss() if scheme == "rsa-pss" else padding.PKCS1v15()
                try:
                    key.verify(signature, data, pad, hashes.SHA256())
                    return
                except InvalidSignature:
                    continue
            raise InvalidSignature()
        except (InvalidSignature, ValueError):
            raise SignatureMismatchError(
                f"signature does not verify with {describe_key(key)} key "
                f"{self.fingerprint[:16]}…", what="signature", where=where) from None

    def verify_digest(self, signature: bytes, digest: bytes, algorithm: str = "sha256", *,
                      where: str | None = None) -> None:
        """Raise :class:`SignatureMismatchError` unless ``signature`` is what
        :meth:`Signer.sign_digest` makes over ``digest``: ECDSA over the digest, or RSA
        PKCS#1 v1.5 (Ed25519 keys cannot sign digests)."""
        key = self.public_key
        hash_cls = DIGEST_HASHES.get(algorithm)
        if hash_cls is None or len(digest) != hash_cls().digest_size:
            raise UnsupportedKeyError(f"not a {algorithm} digest", what="digest")
        prehashed = utils.Prehashed(hash_cls())
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, digest, ec.ECDSA(prehashed))
                return
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, digest, padding.PKCS1v15(), prehashed)
                return
        except (InvalidSignature, ValueError):
            pass
        raise SignatureMismatchError(
            f"digest signature does not verify with {describe_key(key)} key "
            f"{self.fingerprint[:16]}…", what="signature", where=where)

    def matches(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` verifies; never raises for a bad signature."""
        try:
            self.verify(signature, data)
        except SignatureMismatchError:
            return False
        return True
