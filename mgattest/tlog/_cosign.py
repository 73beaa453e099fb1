"""Witness cosignatures on checkpoints (https://c2sp.org/tlog-cosignature, Ed25519 v1).

A witness states "as of time T, this is the largest consistent tree I have seen for
this origin" by adding a signature line to the checkpoint's signed note::

    — <witness name> base64(key ID ‖ u64 big-endian timestamp ‖ Ed25519 signature)

The key ID is ``SHA-256(name ‖ "\\n" ‖ 0x04 ‖ public key)[:4]`` and the signature covers
``"cosignature/v1\\ntime <T>\\n" ‖ checkpoint body``. Witness public keys travel as
signed-note verifier keys (*vkeys*): ``<name>+<hex key ID>+base64(0x04 ‖ public key)``.

:func:`verify_cosignatures` counts the witnesses whose cosignature verifies over the
exact body of a note; lines from unknown keys are ignored, and a line that claims a
known witness but does not verify (or carries a malformed or future timestamp) is not
counted and is reported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mgattest._files import read_bounded
from mgattest.errors import InputError
from mgattest.tlog._checkpoint import SIG_PREFIX, Checkpoint, split_signed_note

COSIGNATURE_TYPE = 0x04  # signed-note signature type: timestamped Ed25519 cosignature
COSIGNATURE_HEADER = "cosignature/v1\n"
MAX_TIMESTAMP = (1 << 63) - 1
# A cosignature time this far past the verifier's clock is refused (clock skew allowance).
FUTURE_SKEW_SECONDS = 60
_SIG_LEN = 8 + 64
_VKEY_NAME = re.compile(r"[^\s+]{1,256}")
_HEX8 = re.compile(r"[0-9a-f]{8}")


def cosignature_key_id(name: str, public_key: ed25519.Ed25519PublicKey) -> bytes:
    """The 4-byte key ID of an Ed25519 cosigner: ``SHA-256(name ‖ "\\n" ‖ 0x04 ‖ key)[:4]``."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_TYPE]) + raw
                          ).digest()[:4]


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What an Ed25519 v1 cosignature signs: header, time line, then the note body."""
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{body}".encode("utf-8")


@dataclass(frozen=True)
class WitnessKey:
    """A witness's name and Ed25519 public key (what a policy or a log trusts)."""

    name: str
    public_key: ed25519.Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes this witness's signature lines."""
        return cosignature_key_id(self.name, self.public_key)

    def vkey(self) -> str:
        """The signed-note verifier key: ``<name>+<hex key ID>+base64(0x04 ‖ key)``."""
        raw = self.public_key.public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
        material = base64.b64encode(bytes([COSIGNATURE_TYPE]) + raw).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"


def parse_vkey(text: str, *, what: str = "witness key") -> WitnessKey:
    """Parse a witness vkey strictly: type 0x04, a 32-byte key, and a key ID that matches."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be a vkey string", what=what)
    text = text.strip()
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise InputError(f"{what} {text[:80]!r} is not a vkey '<name>+<hex key ID>+<base64 "
                         "key>'", what=what)
    name, hex_id, b64 = parts
    if not _VKEY_NAME.fullmatch(name) or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InputError(f"{what}: invalid key name {name[:80]!r}", what=what)
    if not _HEX8.fullmatch(hex_id):
        raise InputError(f"{what} {name}: key ID {hex_id[:20]!r} is not 8 lowercase hex digits",
                         what=what)
    try:
        material = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{what} {name}: public key is not standard base64", what=what) from None
    if base64.b64encode(material).decode() != b64:
        raise InputError(f"{what} {name}: public key is not canonical base64", what=what)
    if len(material) != 33 or material[0] != COSIGNATURE_TYPE:
        raise InputError(f"{what} {name}: not an Ed25519 cosignature key (signature type "
                         f"0x04 and 32 key bytes expected)", what=what)
    key = WitnessKey(name, ed25519.Ed25519PublicKey.from_public_bytes(material[1:]))
    if key.key_id.hex() != hex_id:
        raise InputError(f"{what} {name}: key ID {hex_id} does not match the key "
                         f"({key.key_id.hex()})", what=what)
    return key


class WitnessSigner:
    """A witness's Ed25519 private key and name: makes cosignature lines."""

    def __init__(self, name: str, private_key: ed25519.Ed25519PrivateKey) -> None:
        if not isinstance(private_key, ed25519.Ed25519PrivateKey):
            raise InputError("a witness key must be an Ed25519 private key", what="witness key")
        if not _VKEY_NAME.fullmatch(name or ""):
            raise InputError(f"invalid witness name {name!r} (no spaces or '+')",
                             what="witness name")
        self._private_key = private_key
        self.key = WitnessKey(name, private_key.public_key())

    @classmethod
    def generate(cls, name: str) -> "WitnessSigner":
        """A fresh witness key named ``name``."""
        return cls(name, ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, name: str, path: str | os.PathLike[str]) -> "WitnessSigner":
        """Load an Ed25519 PKCS#8 PEM private key from ``path``."""
        pem = read_bounded(path, 64 * 1024, what="witness key")
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (TypeError, ValueError) as exc:
            raise InputError(f"cannot load witness key {os.fspath(path)}: {exc}",
                             what="witness key", where=os.fspath(path)) from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise InputError(f"witness key {os.fspath(path)} is not an Ed25519 key",
                             what="witness key", where=os.fspath(path))
        return cls(name, key)

    def private_pem(self) -> bytes:
        """The unencrypted PKCS#8 PEM of the key (write it with owner-only permissions)."""
        return self._private_key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())

    def cosign(self, checkpoint: Checkpoint, timestamp: int | None = None) -> str:
        """The cosignature line (ending in a newline) over ``checkpoint`` at ``timestamp``."""
        stamp = int(time.time()) if timestamp is None else timestamp
        if not 0 < stamp <= MAX_TIMESTAMP:
            raise InputError(f"cosignature timestamp {stamp} is out of range",
                             what="cosignature timestamp")
        sig = self._private_key.sign(cosigned_message(checkpoint.body(), stamp))
        raw = self.key.key_id + stamp.to_bytes(8, "big") + sig
        return f"{SIG_PREFIX}{self.key.name} {base64.b64encode(raw).decode()}\n"


@dataclass(frozen=True)
class Cosignatures:
    """The outcome of checking a note's cosignatures against a set of witnesses.

    ``verified`` maps each witness whose cosignature verified to its timestamp (one
    per witness, however many lines it has); ``rejected`` explains lines that claimed a
    known witness but were not counted.
    """

    verified: dict[str, int]
    rejected: tuple[str, ...] = ()


def verify_cosignatures(note: str, witnesses: Sequence[WitnessKey], *,
                        now: int | None = None) -> Cosignatures:
    """Check the cosignature lines of signed ``note`` over its exact body.

    The caller must already have verified the note itself (its log signature): this only
    counts witnesses. Unknown keys are ignored; a line matching a known witness's name
    and key ID that does not verify, or whose timestamp is zero, beyond 2^63-1 or in the
    future, is rejected (not counted).
    """
    text, sigs = split_signed_note(note)
    clock = int(time.time()) if now is None else now
    by_id = {(w.name, w.key_id): w for w in witnesses}
    verified: dict[str, int] = {}
    rejected: list[str] = []
    for sig in sigs:
        witness = by_id.get((sig.name, sig.key_hint))
        if witness is None:
            continue
        if len(sig.sig) != _SIG_LEN:
            rejected.append(f"{sig.name}: cosignature is {len(sig.sig)} bytes, not {_SIG_LEN}")
            continue
        stamp = int.from_bytes(sig.sig[:8], "big")
        if not 0 < stamp <= MAX_TIMESTAMP:
            rejected.append(f"{sig.name}: cosignature timestamp {stamp} is out of range")
            continue
        if stamp > clock + FUTURE_SKEW_SECONDS:
            rejected.append(f"{sig.name}: cosignature timestamp {stamp} is in the future")
            continue
        try:
            witness.public_key.verify(sig.sig[8:], cosigned_message(text, stamp))
        except InvalidSignature:
            rejected.append(f"{sig.name}: cosignature does not verify over this checkpoint")
            continue
        verified[sig.name] = max(stamp, verified.get(sig.name, 0))
    return Cosignatures(verified, tuple(rejected))


def add_signature_lines(note: str, lines: Sequence[str]) -> str:
    """``note`` with extra signature ``lines`` appended (each ``— name sig``), skipping
    lines it already carries. The result is re-parsed, so a malformed line is refused."""
    existing = set(note.splitlines())
    extra = [line.rstrip("\n") for line in lines if line.rstrip("\n") not in existing]
    combined = note + "".join(line + "\n" for line in dict.fromkeys(extra))
    split_signed_note(combined)
    return combined
