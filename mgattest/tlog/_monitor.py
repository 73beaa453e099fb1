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
from datetime import datetime, timezone
from typing import Callable, NoReturn, Protocol
from collections.abc import Sequence

from mgattest._files import read_json
from mgattest.errors import InputError, MgattestError, VerificationError
from mgattest.tlog import merkle
from mgattest.tlog._checkpoint import Checkpoint, verify_checkpoint
from mgattest.tlog._client import ConsistencyProof, LogInfo, LogUnavailableError, RekorClient
from mgattest.tlog._evidence import Inconsistency, InconsistencyKind, LogInconsistencyError
from mgattest.tlog._tilescan import EntryVisitor, TileScan, scan_tiles
from mgattest.tlog.errors import CheckpointError, ConsistencyProofError
from mgattest.tlog._keys import LogVerifier

__all__ = ["MAX_STATE_FILE", "CheckpointSource", "LogMonitor", "MonitorState", "PollResult",
           "default_evidence_path", "verify_extension",
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

    def checkpoint(self) -> str:
        """``GET /checkpoint`` (tlog-tiles): the signed checkpoint note; tile scans only."""
        ...

    def tile(self, path: str) -> bytes:
        """``GET /tile/...`` (tlog-tiles); tile scans only."""
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
    """One verified step: the log's current checkpoint, the one it was checked against,
    and the tile scan of the entries in between (when entries were scanned)."""

    checkpoint: Checkpoint
    previous: Checkpoint | None
    scan: TileScan | None = None
    note: str = ""  # the signed note of ``checkpoint``

    @property
    def growth(self) -> int | None:
        """Entries added since the previous checkpoint (None on the first poll)."""
        return None if self.previous is None else self.checkpoint.size - self.previous.size


def default_evidence_path(state_path: Path) -> Path:
    """Where evidence goes without ``--evidence``: beside the state, one file per event."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return state_path.with_name(f"{state_path.stem}.evidence-{stamp}.json")


class LogMonitor:
    """Checks that every new checkpoint of the log at ``url`` extends the last one seen.

    The last verified checkpoint lives in ``state_path`` (read and verified again when the
    monitor is opened, rewritten after every successful :meth:`poll`). ``origin`` pins the
    checkpoint origin; without it the saved (or first seen) origin is pinned. When the
    log's history does not add up, the evidence is written to ``evidence_path`` (default:
    beside the state, see :func:`default_evidence_path`) and
    :class:`~mgattest.tlog._evidence.LogInconsistencyError` is raised.
    """

    def __init__(self, client: CheckpointSource, verifier: LogVerifier, state_path: str | Path,
                 *, state: MonitorState | None = None, origin: str | None = None,
                 where: str | None = None, evidence_path: str | Path | None = None) -> None:
        self.client = client
        self.where = where or client.url  # names the log in errors
        self.verifier = verifier
        self.state_path = Path(state_path)
        self.state = state
        self.origin = origin or (state.checkpoint.origin if state else None)
        self.evidence_path = Path(evidence_path) if evidence_path is not None else None

    @classmethod
    def open(cls, url: str, verifier: LogVerifier, state_path: str | Path, *,
             origin: str | None = None,
             evidence_path: str | Path | None = None) -> LogMonitor:
        """Load and verify the saved state (if any), then connect to the log."""
        state = MonitorState.load(state_path, verifier, origin)
        return cls(RekorClient(url), verifier, state_path, state=state, origin=origin,
                   where=url, evidence_path=evidence_path)

    def poll(self, visit: EntryVisitor | None = None, *,
             scan_from: int | None = None) -> PollResult:
        """:meth:`check`, then :meth:`commit` its result."""
        result = self.check(visit, scan_from=scan_from)
        self.commit(result)
        return result

    def commit(self, result: PollResult) -> None:
        """Save ``result``'s checkpoint (verified by :meth:`check`) as the new state."""
        self.state = MonitorState(result.checkpoint, result.note)
        self.state.save(self.state_path)
        self.origin = result.checkpoint.origin

    def check(self, visit: EntryVisitor | None = None, *,
              scan_from: int | None = None) -> PollResult:
        """Fetch and verify the current checkpoint and prove it extends the saved one.

        Without ``visit`` the checkpoint comes from the Rekor v1 API and consistency from
        its proof endpoint. With ``visit`` the log is read as tlog-tiles (``/checkpoint``,
        entry bundles, hash tiles; our log and Rekor v2): every entry added since the
        saved checkpoint (on the first poll: from ``scan_from``, default none) is handed
        to ``visit(index, leaf)``; a result comes back only after the tiles verified
        against the new signed root and that root extends the saved one — so a caller
        acts on what it was shown only after ``check`` returns.

        Raises ``LogUnavailableError`` when the log cannot be reached (the state is left
        as it was: an outage is not evidence against the log),
        :class:`~mgattest.tlog._tiles.TileDataError` for tiles that do not verify, and
        :class:`~mgattest.tlog._evidence.LogInconsistencyError` (evidence written) when
        the log's history does not add up. The state is not saved: :meth:`commit` the
        result once the caller has dealt with what the scan showed.
        """
        note = self.client.checkpoint() if visit is not None \
            else self.client.log_info()["signedTreeHead"]
        previous = self.state.checkpoint if self.state else None
        try:
            current = verify_note(note, self.verifier, self.origin, self.where)
        except CheckpointError as exc:
            if self.state is None:
                raise
            self._report("bad-checkpoint", f"the served checkpoint does not verify: "
                         f"{exc.message}", note)
        scan = None
        if previous is not None:
            self._check_heads(previous, current, note)
        if visit is not None:
            start = previous.size if previous is not None else \
                current.size if scan_from is None else scan_from
            if not 0 <= start <= current.size:
                raise InputError(f"cannot scan from index {start}: the log holds "
                                 f"{current.size} entries", what="scan start")
            scan = scan_tiles(self.client, current, start, visit)
            if previous is not None and scan.prefix_root is not None \
                    and scan.prefix_root != bytes(previous.root_hash):
                proof, seed = scan.consistency_proof()
                self._report("fork", f"the tiles of the tree of size {current.size} give "
                             f"root {scan.prefix_root.hex()} for its first {previous.size} "
                             f"entries, not the verified {bytes(previous.root_hash).hex()}",
                             note, proof, seed, "built from the log's tiles")
        elif previous is not None and 0 < previous.size < current.size:
            proof = self.client.consistency_proof(previous.size, current.size).hashes
            try:
                check_consistent(previous, current, proof)
            except ConsistencyProofError as exc:
                self._proof_failed(previous, current, note, proof, exc.message)
        return PollResult(current, previous, scan, note)

    def _check_heads(self, previous: Checkpoint, current: Checkpoint, note: str) -> None:
        """A smaller tree, or another root for the same size, is reported at once."""
        if current.size < previous.size:
            self._report("shrink", f"the log shrank from {previous.size} to {current.size} "
                         "entries: history was rewritten", note)
        if current.size == previous.size and current.root_hash != previous.root_hash:
            self._report("rewrite", f"two checkpoints of size {current.size} have different "
                         "roots: the log is forked", note)

    def _proof_failed(self, previous: Checkpoint, current: Checkpoint, note: str,
                      proof: list[bytes], problem: str) -> NoReturn:
        """Turn a failing served proof into the strongest evidence available."""
        m = previous.size
        if m & (m - 1):  # not a power of two: the served proof alone may prove a fork
            try:
                old_root, new_root = merkle.consistency_roots(m, current.size, proof,
                                                              bytes(previous.root_hash))
            except ConsistencyProofError:
                old_root = new_root = b""
            if new_root == bytes(current.root_hash) and old_root != bytes(previous.root_hash):
                self._report("fork", problem, note, proof, None,
                             "served by the log (/api/v1/log/proof)")
        try:  # build one from the log's tiles, if it serves them
            scan: TileScan | None = scan_tiles(self.client, current, m, lambda i, b: None)
        except (AttributeError, InputError, VerificationError, LogUnavailableError):
            scan = None  # no tiles (AttributeError: a source without them), or bad ones
        if scan is not None and scan.prefix_root != bytes(previous.root_hash):
            built, seed = scan.consistency_proof()
            self._report("fork", problem, note, built, seed, "built from the log's tiles")
        self._report("invalid-proof", problem, note, proof, None,
                     "served by the log (/api/v1/log/proof)")

    def _report(self, kind: InconsistencyKind, check: str, note: str,
                proof: Sequence[bytes] = (), seed: bytes | None = None,
                proof_source: str = "") -> NoReturn:
        """Write the evidence file and raise :class:`LogInconsistencyError`."""
        assert self.state is not None
        evidence = Inconsistency(kind, check, self.where, self.state.note, note, tuple(proof),
                                 seed, proof_source,
                                 datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        path = self.evidence_path or default_evidence_path(self.state_path)
        evidence.save(path)
        raise LogInconsistencyError(
            f"{check}; evidence ({kind}) written to {path}: anyone can check it with "
            f"`mgattest log verify-evidence {path} --log-key <the log's public key>`",
            evidence=evidence, evidence_path=str(path), where=self.where)
