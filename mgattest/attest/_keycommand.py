"""Signing keys held elsewhere: a key service reached through a command (``--key-command``).

The private key never reaches mgattest. For each signature mgattest runs the command
(split like a shell would, never through a shell) with the bytes to sign on stdin and
reads the signature from stdout (raw bytes, or base64 text). What the command receives
is told in environment variables:

``MGATTEST_KEY_COMMAND_ACTION``  ``sign`` (or ``public-key``: print the PEM public key)
``MGATTEST_SIGN_INPUT``          ``digest`` (ECDSA, RSA) or ``message`` (Ed25519)
``MGATTEST_SIGN_HASH``           the digest's algorithm: ``sha256``, ``sha384``, ``sha512``
``MGATTEST_SIGN_SCHEME``         ``ecdsa``, ``rsa-pkcs1`` or ``ed25519``

ECDSA and RSA keys get the digest only, as cosign sends its KMS signers and as AWS KMS
(``--message-type DIGEST``), Google Cloud KMS, Azure Key Vault and Vault transit
(``prehashed=true``) take it: the service never sees the statement and the amount sent is
fixed. Ed25519 signs whole messages (pure EdDSA has no prehashed form), so it gets the
DSSE PAE bytes, as ``ssh-keygen -Y sign`` reads the whole message on stdin. RSA signs
with PKCS#1 v1.5 (what every KMS offers and hashedrekord entries need).

Every returned signature is verified against the public key before it is used, so a
command that answers with another key, garbage or nothing fails closed and no bundle is
written; the command is bounded in time and output.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Literal

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mgattest.attest._blobs import decode_signature_bytes
from mgattest.attest._keys import load_verifier, public_key_from_pem
from mgattest.attest._signers import (DIGEST_HASHES, SignatureMismatchError, Verifier,
                                      check_public_key, describe_key, ec_hash_name)
from mgattest.errors import InputError

DEFAULT_TIMEOUT_SECONDS = 60.0
MAX_OUTPUT_BYTES = 64 * 1024
_STDERR_SHOWN = 400

SignInput = Literal["digest", "message"]


class KeyCommandError(InputError):
    """The key command could not be run, failed, or returned no valid signature."""


@dataclass(frozen=True)
class _Request:
    """One signing request: the bytes on stdin and what they are."""

    data: bytes
    input: SignInput
    hash: str | None
    scheme: str

    def environment(self) -> dict[str, str]:
        env = {"MGATTEST_KEY_COMMAND_ACTION": "sign", "MGATTEST_SIGN_INPUT": self.input,
               "MGATTEST_SIGN_SCHEME": self.scheme}
        if self.hash:
            env["MGATTEST_SIGN_HASH"] = self.hash
        return env


def parse_key_command(command: str) -> tuple[str, ...]:
    """``command`` split into argv as a POSIX shell would (quotes), never run by one."""
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        raise KeyCommandError(f"cannot parse --key-command {command!r}: {exc}",
                              what="--key-command") from None
    if not argv:
        raise KeyCommandError("--key-command is empty", what="--key-command")
    return argv


@dataclass(frozen=True)
class CommandKey:
    """A :class:`~mgattest.attest.SigningKey` whose private half lives behind ``argv``."""

    argv: tuple[str, ...]
    public_key: PublicKeyTypes
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        check_public_key(self.public_key)

    @classmethod
    def open(cls, command: str, public_key: str | Path | None = None, *,
             timeout: float = DEFAULT_TIMEOUT_SECONDS) -> CommandKey:
        """The key behind ``command``; its public key read from the PEM file
        ``public_key``, or, without one, asked of the command (action ``public-key``)."""
        argv = parse_key_command(command)
        if public_key is not None:
            return cls(argv, load_verifier(public_key).public_key, timeout)
        pem = run_key_command(argv, b"", {"MGATTEST_KEY_COMMAND_ACTION": "public-key"},
                              timeout)
        try:
            key = public_key_from_pem(pem, where=f"public key printed by {argv[0]}")
        except InputError as exc:
            raise KeyCommandError(f"key command {argv[0]} did not print a PEM public key "
                                  f"(action public-key): {exc}", what="--key-command") from None
        return cls(argv, key, timeout)

    def sign(self, data: bytes) -> bytes:
        """Sign the message ``data``; the signature is verified before it is returned."""
        key = self.public_key
        if isinstance(key, ed25519.Ed25519PublicKey):
            signature = self._run(_Request(data, "message", None, "ed25519"))
        else:
            hash_name = ec_hash_name(key.curve) if isinstance(key, ec.EllipticCurvePublicKey) \
                else "sha256"
            digest = hashlib.new(hash_name, data).digest()
            signature = self._run(_Request(digest, "digest", hash_name, self._scheme()))
        self._check(lambda v: v.verify(signature, data))
        return signature

    def sign_digest(self, digest: bytes, algorithm: str = "sha256") -> bytes:
        """Sign an artifact's ``algorithm`` digest (ECDSA or RSA PKCS#1 v1.5, as
        :meth:`Signer.sign_digest`); verified before it is returned."""
        if isinstance(self.public_key, ed25519.Ed25519PublicKey):
            raise KeyCommandError("Ed25519 keys sign whole messages, not digests: use an "
                                  "ECDSA or RSA key", what="key")
        hash_cls = DIGEST_HASHES.get(algorithm)
        if hash_cls is None or len(digest) != hash_cls().digest_size:
            raise KeyCommandError(f"cannot sign a {len(digest)}-byte {algorithm} digest",
                                  what="digest")
        signature = self._run(_Request(digest, "digest", algorithm, self._scheme()))
        self._check(lambda v: v.verify_digest(signature, digest, algorithm))
        return signature

    def _scheme(self) -> str:
        return "rsa-pkcs1" if isinstance(self.public_key, rsa.RSAPublicKey) else "ecdsa"

    def _run(self, request: _Request) -> bytes:
        out = run_key_command(self.argv, request.data, request.environment(), self.timeout)
        signature = decode_signature_bytes(out)
        if not signature.strip():
            raise KeyCommandError(f"key command {self.argv[0]} printed no signature",
                                  what="--key-command")
        return signature

    def _check(self, verify: Callable[[Verifier], None]) -> None:
        try:
            verify(Verifier(self.public_key, rsa_scheme="rsa-pkcs1"
                            if isinstance(self.public_key, rsa.RSAPublicKey) else None))
        except SignatureMismatchError:
            raise KeyCommandError(
                f"key command {self.argv[0]} returned a signature that does not verify with "
                f"the {describe_key(self.public_key)} public key it signs for: wrong key, "
                "wrong scheme or corrupt output; nothing was signed", what="--key-command"
            ) from None


def run_key_command(argv: tuple[str, ...], stdin: bytes, extra_env: dict[str, str],
                    timeout: float) -> bytes:
    """Run ``argv`` (no shell) with ``stdin``; its stdout, at most
    :data:`MAX_OUTPUT_BYTES`. A non-zero exit, a timeout or too much output raise
    :class:`KeyCommandError` (the whole process group is killed on a timeout)."""
    name = argv[0]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, **extra_env},
                                close_fds=True, start_new_session=True)
    except OSError as exc:
        raise KeyCommandError(f"cannot run key command {name}: {exc.strerror or exc}",
                              what="--key-command", where=name) from None
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out = _Capture(proc.stdout, MAX_OUTPUT_BYTES, on_overflow=lambda: _signal_group(proc))
    err = _Capture(proc.stderr, MAX_OUTPUT_BYTES, on_overflow=lambda: _signal_group(proc))
    feeder = threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True)
    for thread in (feeder, out.thread, err.thread):
        thread.start()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise KeyCommandError(f"key command {name} did not finish within {timeout:g} s "
                              "(killed)", what="--key-command", where=name) from None
    finally:
        for thread in (feeder, out.thread, err.thread):
            thread.join(timeout=2)
        if out.thread.is_alive() or err.thread.is_alive():
            _kill_group(proc)  # a child still holds the pipes open
    if out.overflow:
        raise KeyCommandError(f"key command {name} printed more than {MAX_OUTPUT_BYTES} "
                              "bytes", what="--key-command", where=name)
    if proc.returncode != 0:
        detail = bytes(err.data[-_STDERR_SHOWN:]).decode("utf-8", "replace").strip()
        raise KeyCommandError(f"key command {name} exited with status {proc.returncode}"
                              + (f": {detail}" if detail else ""),
                              what="--key-command", where=name)
    return bytes(out.data)


class _Capture:
    """Reads a pipe in a thread, keeping at most ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int, on_overflow: Callable[[], None]) -> None:
        self.data = bytearray()
        self.overflow = False
        self._stream, self._limit, self._on_overflow = stream, limit, on_overflow
        self.thread = threading.Thread(target=self._drain, daemon=True)

    def _drain(self) -> None:
        with self._stream:
            while chunk := self._stream.read(8192):
                if len(self.data) + len(chunk) > self._limit:
                    if not self.overflow:
                        self.overflow = True
                        self._on_overflow()  # stop it now rather than at the timeout
                    continue  # keep draining so the command is not blocked on a full pipe
                self.data += chunk


def _feed(stdin: IO[bytes], data: bytes) -> None:
    try:
        with stdin:
            stdin.write(data)
    except (BrokenPipeError, OSError):
        pass  # the command need not read its input (e.g. action public-key)


def _signal_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    _signal_group(proc)
    proc.wait()
