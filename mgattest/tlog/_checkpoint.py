"""Checkpoints as C2SP signed notes (https://c2sp.org/signed-note, /tlog-checkpoint).

A signed checkpoint is::

    <origin>\\n<size>\\n<base64 root hash>\\n[<extension line>\\n ...]
    \\n
    — <key name> <base64(4-byte key hint ‖ signature)>\\n
    ...

The signature covers the note text (everything before the blank line, including its
final newline). Parsing is strict and bounded; verification needs at least one
signature by a trusted key whose hint matches, and fails closed if a signature
claiming to be from a trusted key does not verify.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from mgattest.errors import VerificationError
from mgattest.tlog.errors import CheckpointError
from mgattest.tlog._keys import LogSigner, LogVerifier, note_key_hint

MAX_NOTE_SIZE = 64 * 1024
MAX_SIGNATURES = 100
MAX_EXTENSION_LINES = 100
SIG_PREFIX = "\u2014 "  # EM DASH + space
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,19})")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin line, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extra: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin \
                or _has_control(self.origin):
            raise CheckpointError("checkpoint origin must be a non-empty single line",
                                  what="checkpoint origin")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0 \
                or self.size >= 1 << 64:
            raise CheckpointError("checkpoint size must be an unsigned 64-bit integer",
                                  what="checkpoint size")
        if not isinstance(self.root_hash, (bytes, bytearray)) or len(self.root_hash) != 32:
            raise CheckpointError("checkpoint root hash must be 32 bytes",
                                  what="checkpoint root hash")
        for line in self.extra:
            if not isinstance(line, str) or not line or "\n" in line or _has_control(line):
                raise CheckpointError("checkpoint extension lines must be non-empty single "
                                      "lines", what="checkpoint extension")

    def body(self) -> str:
        """The note text that is signed (ends with a newline)."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        lines.extend(self.extra)
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note."""

    name: str
    key_hint: bytes
    sig: bytes


def _has_control(text: str) -> bool:
    return any((ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F for c in text)


def _fail(msg: str, what: str = "checkpoint") -> CheckpointError:
    return CheckpointError(msg, what=what)


def sign_checkpoint(checkpoint: Checkpoint, signer: LogSigner, name: str) -> str:
    """The whole signed note for ``checkpoint``, signed by ``signer`` as ``name``."""
    _check_key_name(name)
    text = checkpoint.body()
    sig = signer.sign(text.encode("utf-8"))
    hint = note_key_hint(name, signer.public_key)
    return f"{text}\n{SIG_PREFIX}{name} {base64.b64encode(hint + sig).decode()}\n"


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name) \
            or "+" in name or _has_control(name):
        raise _fail(f"invalid signed-note key name {name!r}", "checkpoint signature")


def _b64decode(text: str, what: str) -> bytes:
    if not _B64.fullmatch(text) or len(text) % 4:
        raise _fail(f"{what} is not standard base64", what)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(f"{what} is not standard base64", what) from None


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Parse the note text of a checkpoint (origin, size, root, extension lines)."""
    if not text.endswith("\n"):
        raise _fail("checkpoint text does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise _fail("checkpoint needs an origin, a size and a root hash line "
                    f"(found {len(lines)} lines)")
    origin, size_text, root_text, *extra = lines
    if not origin:
        raise _fail("checkpoint origin line is empty", "checkpoint origin")
    if not _DECIMAL.fullmatch(size_text):
        raise _fail(f"checkpoint size line {size_text[:40]!r} is not a decimal number",
                    "checkpoint size")
    size = int(size_text)
    if size >= 1 << 64:
        raise _fail("checkpoint size does not fit in 64 bits", "checkpoint size")
    root = _b64decode(root_text, "checkpoint root hash")
    if len(root) != 32:
        raise _fail(f"checkpoint root hash is {len(root)} bytes, expected 32",
                    "checkpoint root hash")
    if len(extra) > MAX_EXTENSION_LINES:
        raise _fail("checkpoint has too many extension lines", "checkpoint extension")
    for line in extra:
        if not line:
            raise _fail("checkpoint has an empty extension line", "checkpoint extension")
    return Checkpoint(origin, size, root, tuple(extra))


def split_signed_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and its parsed signature lines (strict)."""
    if isinstance(note, (bytes, bytearray)):
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError:
            raise _fail("signed note is not UTF-8") from None
    if not isinstance(note, str):
        raise _fail("signed note must be text")
    if len(note.encode("utf-8")) > MAX_NOTE_SIZE:
        raise _fail(f"signed note is larger than {MAX_NOTE_SIZE} bytes")
    if _has_control(note):
        raise _fail("signed note contains control characters")
    sep = note.find("\n\n")
    if sep < 0:
        raise _fail("signed note has no blank line before its signatures")
    text, sig_block = note[:sep + 1], note[sep + 2:]
    if not sig_block.endswith("\n"):
        raise _fail("signed note does not end with a newline", "checkpoint signature")
    sig_lines = sig_block[:-1].split("\n")
    if len(sig_lines) > MAX_SIGNATURES:
        raise _fail("signed note has too many signatures", "checkpoint signature")
    sigs: list[NoteSignature] = []
    for pos, line in enumerate(sig_lines):
        if not line.startswith(SIG_PREFIX):
            raise _fail(f"signature line {pos + 1} does not start with an em dash",
                        "checkpoint signature")
        parts = line[len(SIG_PREFIX):].split(" ")
        if len(parts) != 2:
            raise _fail(f"signature line {pos + 1} is not '— <name> <signature>'",
                        "checkpoint signature")
        name, b64 = parts
        _check_key_name(name)
        raw = _b64decode(b64, "checkpoint signature")
        if len(raw) < 5:
            raise _fail(f"signature line {pos + 1} is too short", "checkpoint signature")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
    if not sigs:
        raise _fail("signed note has no signatures", "checkpoint signature")
    return text, sigs


def parse_signed_note(note: str) -> tuple[Checkpoint, list[NoteSignature]]:
    """Parse a signed checkpoint note into the checkpoint and its signatures."""
    text, sigs = split_signed_note(note)
    return parse_checkpoint_body(text), sigs


def verify_checkpoint(note_text: str, verifiers: list[LogVerifier], *, name: str | None = None,
                      origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint and return it.

    At least one signature line must come from a key in ``verifiers`` (matching key
    hint, and key name ``name`` when given) and verify; a line whose hint matches a
    trusted key but whose signature does not verify fails the whole note. Lines from
    unknown keys (witness cosignatures) are ignored. ``origin`` is compared exactly.
    """
    text, sigs = split_signed_note(note_text)
    checkpoint = parse_checkpoint_body(text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}",
            what="checkpoint origin")
    data = text.encode("utf-8")
    verified = False
    for sig in sigs:
        if name is not None and sig.name != name:
            continue
        for verifier in verifiers:
            if sig.key_hint != note_key_hint(sig.name, verifier.public_key):
                continue
            try:
                verifier.verify(sig.sig, data)
            except VerificationError:
                raise CheckpointError(
                    f"checkpoint signature by {sig.name} (key hint {sig.key_hint.hex()}) "
                    f"does not verify", what="checkpoint signature",
                    where=f"origin {checkpoint.origin}, size {checkpoint.size}") from None
            verified = True
    if not verified:
        raise CheckpointError(
            "checkpoint carries no signature by a trusted log key"
            + (f" named {name!r}" if name else ""), what="checkpoint signature",
            where=f"origin {checkpoint.origin}, size {checkpoint.size}")
    return checkpoint
