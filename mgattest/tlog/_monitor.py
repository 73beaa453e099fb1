"""Watching a log from outside: signed checkpoints that must only ever grow.

:func:`verify_note` checks one signed checkpoint; :func:`check_consistent` checks that a
newer checkpoint extends an older one (RFC 9162 consistency, and equal sizes must have
equal roots). :class:`LogMonitor` keeps the last verified checkpoint in a state file
(:class:`MonitorState`) and checks each new one with :meth:`LogMonitor.poll`: the loop
behind ``mgattest log monitor``, usable from Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol
from collections.abc import Sequence

from mgattest._files import read_json
from mgattest.errors import InputError, MgattestError
from mgattest.tlog import merkle
from mgattest.tlog._checkpoint import Checkpoint, verify_checkpoint
from mgattest.tlog._client import ConsistencyProof, LogInfo, RekorClient
from mgattest.tlog.errors import ConsistencyProofError
from mgattest.tlog._keys import LogVerifier

__all__ = ["MAX_STATE_FILE", "CheckpointSource", "LogMonitor", "MonitorState", "PollResult",
           "verify_extension",
           "check_consistent", "parse_consistency_proof", "verify_note"]

MAX_STATE_FILE = 64 * 1024 * 1024


def verify_note(text: str, verifier: LogVerifier, origin: str | None, where: str) -> Checkpoint:
    """Verify a signed checkpoint note; a failure names ``where`` the note came from."""
    try:
        return verify_checkpoint(text, [verifier], origin=origin)
    except MgattestError as exc:
        exc.where = where if exc.where is None else f"{where}: {exc.where}"
        raise


def check_consistent(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Verify ``new`` extends ``old`` (RFC 9162 consistency; equal sizes need equal roots)."""
    where = f"sizes {old.size} -> {new.size}"
    if new.size < old.size:
        raise ConsistencyProofError(
            f"the log shrank from {old.size} to {new.size} entries: history was rewritten",
            what="log consistency", where=where)
    if old.size == new.size:
        if bytes(old.root_hash) != bytes(new.root_hash):
            raise ConsistencyProofError(
                f"two checkpoints of size {old.size} have different roots: the log is forked",
                what="log consistency", where=where)
        return
    if old.size == 0:
        return
    merkle.verify_consistency(old.size, new.size, list(proof), bytes(old.root_hash),
                              bytes(new.root_hash))


def parse_consistency_proof(data: object, where: str) -> list[bytes]:
    """The hashes of a Rekor ``ConsistencyProof`` JSON value (``{"hashes": [hex, ...]}``)."""
    hashes = data.get("hashes") if isinstance(data, dict) else None
    if not isinstance(hashes, list) or not all(
            isinstance(h, str) and len(h) == 64 for h in hashes):
        raise InputError(f"{where} must be {{\"hashes\": [hex, ...]}}",
                         what="consistency proof", where=where)
    try:
        return [bytes.fromhex(h) for h in hashes]
    except ValueError:
        raise InputError(f"{where} holds non-hex hashes",
                         what="consistency proof", where=where) from None


class CheckpointSource(Protocol):
    """Where a monitor reads a log from: :class:`~mgattest.tlog._client.RekorClient`, or
    anything answering the same two Rekor v1 calls."""

    url: str

    def log_info(self) -> LogInfo:
        """``GET /api/v1/log``: at least ``signedTreeHead`` (the signed checkpoint note)."""
        ...

    def consistency_proof(self, first: int, last: int) -> ConsistencyProof:
        """``GET /api/v1/log/proof``: the proof that tree ``first`` is a prefix of ``last``."""
        ...


def verify_extension(old: Checkpoint, verifier: LogVerifier, *, origin: str | None = None,
                     newer_note: str | None = None, newer_label: str = "",
                     proof: Callable[[], Sequence[bytes]] | None = None,
                     log: CheckpointSource | None = None) -> Checkpoint:
    """Verify that a newer checkpoint extends ``old`` (append-only) and return it.

    The newer checkpoint is ``newer_note`` (a signed note, ``newer_label`` naming where it
    came from) or, without one, ``log``'s current one; the consistency proof comes from
    ``proof()`` (called only when a proof is needed: not for equal sizes or an empty old
    tree) or, without it, from ``log``. Both notes must verify under ``verifier`` and
    carry ``origin`` (default: ``old``'s)."""
    if newer_note is None:
        if log is None:
            raise InputError("a newer checkpoint or a log to read it from is needed",
                             what="usage")
        newer_note, newer_label = log.log_info()["signedTreeHead"], log.url
    new = verify_note(newer_note, verifier, origin or old.origin, newer_label)
    hashes: Sequence[bytes] = []
    if 0 < old.size < new.size:
        if proof is not None:
            hashes = proof()
        elif log is not None:
            hashes = log.consistency_proof(old.size, new.size).hashes
        else:
            raise InputError("a consistency proof or a log to fetch it from is needed",
                             what="usage")
    check_consistent(old, new, hashes)
    return new


@dataclass(frozen=True)
class MonitorState:
    """The last verified checkpoint of a monitored log and the signed note it came from."""

    checkpoint: Checkpoint
    note: str

    @classmethod
    def load(cls, path: str | Path, verifier: LogVerifier,
             origin: str | None = None) -> MonitorState | None:
        """The state saved at ``path``, its note verified again; None when there is none."""
        if not Path(path).exists():
            return None
        saved = read_json(path, "monitor state", MAX_STATE_FILE)
        note = saved.get("checkpoint") if isinstance(saved, dict) else None
        if not isinstance(note, str):
            raise InputError(f"{path} is not a monitor state file", what="monitor state",
                             where=str(path))
        return cls(verify_note(note, verifier, origin, str(path)), note)

    def save(self, path: str | Path) -> None:
        """Write the state (JSON) to ``path`` through a temporary file and a rename."""
        cp = self.checkpoint
        state = {"origin": cp.origin, "size": cp.size,
                 "root_hash": bytes(cp.root_hash).hex(), "checkpoint": self.note}
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)


@dataclass(frozen=True)
class PollResult:
    """One verified step: the log's current checkpoint and the one it was checked against."""

    checkpoint: Checkpoint
    previous: Checkpoint | None

    @property
    def growth(self) -> int | None:
        """Entries added since the previous checkpoint (None on the first poll)."""
        return None if self.previous is None else self.checkpoint.size - self.previous.size


class LogMonitor:
    """Checks that every new checkpoint of the log at ``url`` extends the last one seen.

    The last verified checkpoint lives in ``state_path`` (read and verified again when the
    monitor is opened, rewritten after every successful :meth:`poll`). ``origin`` pins the
    checkpoint origin; without it the saved (or first seen) origin is pinned.
    """

    def __init__(self, client: CheckpointSource, verifier: LogVerifier, state_path: str | Path,
                 *, state: MonitorState | None = None, origin: str | None = None,
                 where: str | None = None) -> None:
        self.client = client
        self.where = where or client.url  # names the log in errors
        self.verifier = verifier
        self.state_path = Path(state_path)
        self.state = state
        self.origin = origin or (state.checkpoint.origin if state else None)

    @classmethod
    def open(cls, url: str, verifier: LogVerifier, state_path: str | Path, *,
             origin: str | None = None) -> LogMonitor:
        """Load and verify the saved state (if any), then connect to the log."""
        state = MonitorState.load(state_path, verifier, origin)
        return cls(RekorClient(url), verifier, state_path, state=state, origin=origin,
                   where=url)

    def poll(self) -> PollResult:
        """Fetch and verify the current checkpoint, prove it extends the saved one, save it.

        Raises ``LogUnavailableError`` when the log cannot be reached (the state is left
        as it was: an outage is not evidence against the log) and a ``VerificationError``
        when the log's history does not add up.
        """
        note = self.client.log_info()["signedTreeHead"]
        current = verify_note(note, self.verifier, self.origin, self.where)
        previous = self.state.checkpoint if self.state else None
        proof: list[bytes] = []
        if previous is not None and 0 < previous.size < current.size:
            proof = self.client.consistency_proof(previous.size, current.size).hashes
        if previous is not None:
            check_consistent(previous, current, proof)
        self.state = MonitorState(current, note)
        self.state.save(self.state_path)
        self.origin = current.origin
        return PollResult(current, previous)
