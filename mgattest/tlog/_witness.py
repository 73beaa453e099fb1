"""A C2SP tlog-witness (https://c2sp.org/tlog-witness): cosign only consistent checkpoints.

:class:`Witness` answers ``add-checkpoint`` requests. For each log it knows (origin →
log verifier) it keeps the latest checkpoint it cosigned in :class:`WitnessState`
(SQLite). A request carries ``old <size>``, a consistency proof from that size, and
the new signed checkpoint; the witness

1. parses the request (400 when malformed) and finds the origin (404 when unknown);
2. verifies the log's signature (403 when absent or bad);
3. checks ``old`` ≤ the new size (400), then — in one write transaction, so two racing
   requests cannot roll the state back — that ``old`` is the size it last cosigned
   (409 with that size otherwise), that the proof links its stored root to the new one
   (422), that a size-0 checkpoint has the empty root (422);
4. stores the new checkpoint and returns its cosignature line.

A witness therefore never cosigns two checkpoints that are not consistent: a fork.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from mgattest.errors import InputError, MgattestError
from mgattest.tlog import merkle
from mgattest.tlog._checkpoint import Checkpoint, parse_signed_note, verify_checkpoint
from mgattest.tlog._cosign import WitnessSigner, add_signature_lines
from mgattest.tlog._keys import LogVerifier
from mgattest.tlog.errors import ConsistencyProofError, LogError

MAX_REQUEST = 80 * 1024  # old line + 63 proof lines + a checkpoint note (64 KiB max)
MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]{0,19})")
_EMPTY_ROOT = hashlib.sha256(b"").digest()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS witnessed (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL
);
"""


class WitnessRefusal(MgattestError):
    """An ``add-checkpoint`` request the witness refuses: an HTTP ``status``, a message,
    and for 409 the size it last cosigned (the response body). CLI exit 1."""

    exit_code = 1

    def __init__(self, status: int, message: str, size: int | None = None) -> None:
        super().__init__(message, what="add-checkpoint request")
        self.status = status
        self.size = size


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed ``add-checkpoint`` body: old size, consistency proof, the signed note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str


def encode_request(old_size: int, proof: list[bytes], note: str) -> bytes:
    """The ``add-checkpoint`` request body (the client side)."""
    lines = [f"old {old_size}"] + [base64.b64encode(h).decode() for h in proof]
    return ("\n".join(lines) + "\n\n" + note).encode("utf-8")


def parse_request(body: bytes) -> AddCheckpointRequest:
    """Parse an ``add-checkpoint`` body strictly (``WitnessRefusal(400)`` on any defect)."""
    if len(body) > MAX_REQUEST:
        raise WitnessRefusal(400, f"request body exceeds {MAX_REQUEST} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessRefusal(400, "request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessRefusal(400, "request has no blank line before the checkpoint")
    lines = head.split("\n")
    match = _OLD_LINE.fullmatch(lines[0])
    if match is None:
        raise WitnessRefusal(400, "first line must be 'old <size>' (decimal, no leading zeros)")
    old_size = int(match.group(1))
    if old_size >= 1 << 64:
        raise WitnessRefusal(400, "old size does not fit in 64 bits")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRefusal(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for pos, line in enumerate(lines[1:], start=1):
        try:
            digest = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 32 or base64.b64encode(digest).decode() != line:
            raise WitnessRefusal(400, f"proof line {pos} is not a base64 32-byte hash")
        proof.append(digest)
    return AddCheckpointRequest(old_size, tuple(proof), note)


def origin_hash(origin: str) -> str:
    """The lowercase hex SHA-256 of an origin: the witness's monitoring path segment."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


class WitnessState:
    """The latest cosigned checkpoint of each origin, in SQLite (one row per origin)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"cannot open witness state {self.path}: {exc}",
                             what="witness state", where=self.path) from None

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): a compare-and-swap runs inside it."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise LogError(f"witness state {self.path}: {exc}", where=self.path) from None
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")

    def latest(self, origin: str) -> tuple[int, bytes, str] | None:
        """(size, root, cosigned note) of the last checkpoint cosigned for ``origin``."""
        row = self._conn.execute("SELECT size, root, note FROM witnessed WHERE origin = ?",
                                 (origin,)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), str(row[2]))


class Witness:
    """The witness: its signing key, the logs it follows (origin → key), its state."""

    def __init__(self, signer: WitnessSigner, logs: Mapping[str, LogVerifier],
                 state: WitnessState) -> None:
        self.signer = signer
        self.logs = dict(logs)
        self.state = state
        self._lock = threading.Lock()  # one connection: one transaction at a time

    def add_checkpoint(self, body: bytes, *, timestamp: int | None = None) -> str:
        """Handle one ``add-checkpoint`` body; return the cosignature line(s).

        Raises :class:`WitnessRefusal` with the status the spec prescribes.
        """
        request = parse_request(body)
        new = self._verified(request.note)
        if request.old_size > new.size:
            raise WitnessRefusal(400, f"old size {request.old_size} is larger than the "
                                 f"checkpoint size {new.size}")
        if new.size == 0 and new.root_hash != _EMPTY_ROOT:
            raise WitnessRefusal(422, "a checkpoint of size 0 must have the empty tree's root")
        with self._lock, self.state.transaction() as conn:
            row = conn.execute("SELECT size, root FROM witnessed WHERE origin = ?",
                               (new.origin,)).fetchone()
            known_size, known_root = (0, _EMPTY_ROOT) if row is None else (int(row[0]),
                                                                            bytes(row[1]))
            if request.old_size != known_size:
                raise WitnessRefusal(409, f"old size {request.old_size} is not the size last "
                                     f"cosigned ({known_size})", size=known_size)
            self._check_consistent(known_size, known_root, new, request.proof)
            line = self.signer.cosign(new, timestamp)
            note = add_signature_lines(request.note, [line])
            conn.execute("INSERT OR REPLACE INTO witnessed(origin, size, root, note) "
                         "VALUES (?, ?, ?, ?)", (new.origin, new.size, new.root_hash, note))
        return line

    def _verified(self, note: str) -> Checkpoint:
        try:
            checkpoint, _ = parse_signed_note(note)
        except MgattestError as exc:
            raise WitnessRefusal(400, f"malformed checkpoint: {exc.message}") from None
        verifier = self.logs.get(checkpoint.origin)
        if verifier is None:
            raise WitnessRefusal(404, f"unknown log origin {checkpoint.origin!r}")
        try:
            return verify_checkpoint(note, [verifier], origin=checkpoint.origin)
        except MgattestError as exc:
            raise WitnessRefusal(403, f"checkpoint signature: {exc.message}") from None

    @staticmethod
    def _check_consistent(old_size: int, old_root: bytes, new: Checkpoint,
                          proof: tuple[bytes, ...]) -> None:
        if old_size == 0:
            if proof:
                raise WitnessRefusal(422, "old size is 0, so the consistency proof must be "
                                     "empty")
            return
        if old_size == new.size:
            if proof or old_root != new.root_hash:
                raise WitnessRefusal(422, f"checkpoint of size {new.size} has a different "
                                     "root than the one cosigned: the log is forked")
            return
        try:
            merkle.verify_consistency(old_size, new.size, list(proof), old_root, new.root_hash)
        except ConsistencyProofError as exc:
            raise WitnessRefusal(422, f"consistency proof from size {old_size} to "
                                 f"{new.size} does not verify: {exc.message}") from None

    def latest_note(self, origin_hex: str) -> str | None:
        """The cosigned checkpoint last stored for the origin whose hash is ``origin_hex``."""
        for origin in self.logs:
            if origin_hash(origin) == origin_hex:
                with self._lock:
                    latest = self.state.latest(origin)
                return None if latest is None else latest[2]
        return None
