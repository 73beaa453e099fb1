"""Key generation and PEM key files (PKCS#8 private keys, SPKI public keys).

Passwords never come from the command line: they come from an environment variable
(``--password-env VAR``; ``MGATTEST_KEY_PASSWORD`` by default when set) or from an
interactive prompt. RSA key files carry one RFC 7468 explanatory-text line before the
PEM block, ``mgattest-signature-scheme: rsa-pss|rsa-pkcs1``, because PKCS#8 cannot say
which padding the key is meant for; PEM parsers (OpenSSL, cryptography) skip it.
"""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mgattest.attest.errors import KeyFileError
from mgattest.attest._signers import Signer, UnsupportedKeyError, Verifier, spki_pem
from mgattest._files import read_bounded
from mgattest.tlog import pem_kind_problem

DEFAULT_PASSWORD_ENV = "MGATTEST_KEY_PASSWORD"
MAX_KEY_FILE_BYTES = 1024 * 1024
KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-pss-2048", "rsa-pss-3072",
             "rsa-pss-4096", "rsa-pkcs1-2048", "rsa-pkcs1-3072", "rsa-pkcs1-4096")
_SCHEME_LINE = re.compile(rb"^mgattest-signature-scheme:\s*(rsa-pss|rsa-pkcs1)\s*$", re.M)


def generate_signer(key_type: str = "ecdsa-p256") -> Signer:
    """Generate a fresh private key of ``key_type`` (one of :data:`KEY_TYPES`)."""
    if key_type == "ecdsa-p256":
        return Signer(ec.generate_private_key(ec.SECP256R1()))
    if key_type == "ecdsa-p384":
        return Signer(ec.generate_private_key(ec.SECP384R1()))
    if key_type == "ed25519":
        return Signer(ed25519.Ed25519PrivateKey.generate())
    match = re.fullmatch(r"(rsa-pss|rsa-pkcs1)-(2048|3072|4096)", key_type)
    if match:
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(match.group(2)))
        return Signer(key, rsa_scheme=match.group(1))
    raise KeyFileError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}",
                       what="key type")


def resolve_password(password_env: str | None = None, prompt: bool = False, *,
                     confirm: bool = False,
                     ask: Callable[[str], str] | None = None) -> bytes | None:
    """The key password: from ``password_env`` (error if that variable is unset), an
    interactive prompt, or ``MGATTEST_KEY_PASSWORD`` when set; otherwise None."""
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise KeyFileError(f"environment variable {password_env} (key password) is not set",
                               what="password", where=password_env)
        return value.encode("utf-8")
    if prompt:

        reader = ask or getpass.getpass
        first = reader("Key password: ")
        if confirm and reader("Repeat key password: ") != first:
            raise KeyFileError("passwords do not match", what="password")
        return first.encode("utf-8")
    value = os.environ.get(DEFAULT_PASSWORD_ENV)
    return value.encode("utf-8") if value else None


def private_key_pem(signer: Signer, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM of the signer's key, encrypted when ``password`` is given."""
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password
        else serialization.NoEncryption())
    pem = signer.private_key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8, enc)
    return _with_scheme_line(signer, pem)


def public_key_pem(signer: Signer) -> bytes:
    """SPKI PEM of the signer's public key."""
    return _with_scheme_line(signer, spki_pem(signer.public_key))


def _with_scheme_line(signer: Signer, pem: bytes) -> bytes:
    if isinstance(signer.private_key, rsa.RSAPrivateKey):
        return b"mgattest-signature-scheme: " + signer.rsa_scheme.encode() + b"\n" + pem
    return pem


def write_keypair(signer: Signer, prefix: str | Path, password: bytes | None = None, *,
                  overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``PREFIX.key`` (mode 0600, created that way) and ``PREFIX.pub``."""
    prefix = str(prefix)
    key_path, pub_path = Path(prefix + ".key"), Path(prefix + ".pub")
    for path in (key_path, pub_path):
        if path.exists() and not overwrite:
            raise KeyFileError(f"{path} already exists (refusing to overwrite)",
                               what="key file", where=str(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(key_path, flags, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(private_key_pem(signer, password))
    pub_path.write_bytes(public_key_pem(signer))
    return key_path, pub_path


def _read_limited(path: str | os.PathLike[str]) -> bytes:
    path = Path(path)
    return read_bounded(path, MAX_KEY_FILE_BYTES, what="key file", error=KeyFileError)


def _scheme_of(data: bytes) -> str | None:
    match = _SCHEME_LINE.search(data.split(b"-----BEGIN", 1)[0])
    return match.group(1).decode() if match else None


def load_signer(path: str | os.PathLike[str], password: bytes | None = None, *,
                rsa_scheme: str | None = None) -> Signer:
    """Load a PEM private key (PKCS#8, or traditional EC/RSA) as a :class:`Signer`."""
    data = _read_limited(path)
    problem = pem_kind_problem(data, "private key")
    if problem:
        raise KeyFileError(f"{path} {problem}", what="key file", where=str(path))
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError as exc:
        if "encrypted" in str(exc) and password is None:
            raise KeyFileError(
                f"private key {path} is encrypted: set {DEFAULT_PASSWORD_ENV}, or use "
                "--password-env VAR or --password-prompt", what="password",
                where=str(path)) from None
        raise KeyFileError(f"private key {path}: {exc}", what="key file",
                           where=str(path)) from None
    except ValueError as exc:
        hint = " (wrong password?)" if password is not None else ""
        raise KeyFileError(f"cannot load private key {path}{hint}: {exc}", what="key file",
                           where=str(path)) from None
    except UnsupportedKeyError:
        raise
    scheme = rsa_scheme or _scheme_of(data) or "rsa-pss"
    try:
        return Signer(key, rsa_scheme=scheme)
    except UnsupportedKeyError as exc:
        raise KeyFileError(f"{path}: {exc.message}", what="key", where=str(path)) from None


def public_key_from_pem(data: bytes, *, where: str = "public key") -> PublicKeyTypes:
    """A public key from SPKI PEM, or the subject key of a PEM/DER certificate."""
    problem = pem_kind_problem(data, "public key")
    if problem:
        raise KeyFileError(f"{where} {problem}", what="public key", where=where)
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data).public_key()
        if b"-----BEGIN" in data:
            return serialization.load_pem_public_key(data)
        try:
            return serialization.load_der_public_key(data)
        except ValueError:
            return x509.load_der_x509_certificate(data).public_key()
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
        raise KeyFileError(f"cannot parse public key {where}: {exc}", what="public key",
                           where=where) from None


def load_verifier(path: str | Path) -> Verifier:
    """Load a trusted public key (SPKI PEM/DER or a certificate) as a :class:`Verifier`."""
    data = _read_limited(path)
    key = public_key_from_pem(data, where=str(path))
    try:
        return Verifier(key, rsa_scheme=_scheme_of(data))
    except UnsupportedKeyError as exc:
        raise KeyFileError(f"{path}: {exc.message}", what="key", where=str(path)) from None
