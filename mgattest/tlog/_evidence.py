"""Evidence of a misbehaving log, as a file anyone can check offline.

When a monitor sees a log's history not add up it writes an :class:`Inconsistency`:
the last verified signed checkpoint, the checkpoint the log served next (both full
signed notes), the consistency proof it used and the failing check.
:func:`verify_evidence` re-checks such a file with nothing but the log's public key, so a
third party need not trust the reporter. What each kind proves:

* ``rewrite``: two checkpoints signed by the log for one size with different roots.
  Conclusive.
* ``fork``: a consistency proof whose hashes reproduce the *new* signed root but give a
  different root for the old size than the old signed checkpoint (``seed`` is the new
  tree's hash of the first ``old.size`` leaves when that size is a power of two). Under
  SHA-256 collision resistance the new tree does not extend the old one. Conclusive.
* ``shrink``: the log signed a smaller tree than one it signed before. Both signatures
  are conclusive; that the smaller came *later* is the reporter's observation.
* ``invalid-proof``: the log served a proof that does not link its two signed
  checkpoints, and no conclusive proof could be built. The log failed to prove it is
  append-only; it is not by itself a proof of a fork.
* ``bad-checkpoint``: the log served a checkpoint that does not verify under its key
  (signature, origin or form). Anyone can confirm the bytes do not verify; unsigned
  bytes bind no one, so this records an observation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

from mgattest._files import read_json
from mgattest.errors import InputError, MgattestError
from mgattest.tlog import merkle
from mgattest.tlog._checkpoint import Checkpoint, verify_checkpoint
from mgattest.tlog._keys import LogVerifier
from mgattest.tlog.errors import ConsistencyProofError

__all__ = ["EVIDENCE_TYPE", "EvidenceError", "EvidenceVerdict", "Inconsistency",
           "InconsistencyKind", "LogInconsistencyError", "read_evidence", "verify_evidence"]

EVIDENCE_TYPE = "mgattest.log-inconsistency/v1"
MAX_EVIDENCE_FILE = 1024 * 1024
InconsistencyKind = Literal["rewrite", "fork", "shrink", "invalid-proof", "bad-checkpoint"]
CONCLUSIVE: frozenset[str] = frozenset({"rewrite", "fork"})


class EvidenceError(ConsistencyProofError):
    """An evidence file that does not show what it claims (doctored or mistaken)."""


@dataclass(frozen=True)
class Inconsistency:
    """What a monitor saw: ``old_note`` (verified before), ``new_note`` (served by
    ``log``), the proof it checked and the check that failed."""

    kind: InconsistencyKind
    check: str
    log: str
    old_note: str
    new_note: str
    proof: tuple[bytes, ...] = ()
    seed: bytes | None = None
    proof_source: str = ""
    observed_at: str = ""

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "type": EVIDENCE_TYPE, "kind": self.kind, "failedCheck": self.check,
            "log": self.log, "observedAt": self.observed_at,
            "conclusive": self.kind in CONCLUSIVE,
            "previousCheckpoint": self.old_note, "servedCheckpoint": self.new_note,
        }
        if self.proof or self.seed is not None:
            proof: dict[str, object] = {"hashes": [h.hex() for h in self.proof],
                                        "source": self.proof_source}
            if self.seed is not None:
                proof["oldSizeSubtree"] = self.seed.hex()
            doc["consistencyProof"] = proof
        return doc

    def save(self, path: str | Path) -> None:
        """Write the evidence (JSON) through a temporary file and a rename."""
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)


class LogInconsistencyError(ConsistencyProofError):
    """The log's history does not add up; ``evidence`` says how, ``evidence_path`` where
    it was written."""

    def __init__(self, message: str, *, evidence: Inconsistency,
                 evidence_path: str | None, where: str | None = None) -> None:
        super().__init__(message, what="log consistency", where=where)
        self.evidence = evidence
        self.evidence_path = evidence_path


@dataclass(frozen=True)
class EvidenceVerdict:
    """The outcome of :func:`verify_evidence`: the kind, whether it is conclusive, and a
    sentence saying what was confirmed."""

    kind: InconsistencyKind
    conclusive: bool
    summary: str


def _hex32(value: object, where: str) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InputError(f"{where} must be 64 hex characters", what="evidence", where=where)
    return raw


def read_evidence(path: str | Path) -> Inconsistency:
    """Parse an evidence file written by a monitor (shape only; see
    :func:`verify_evidence`)."""
    doc = read_json(path, "evidence file", MAX_EVIDENCE_FILE)
    where = str(path)
    if not isinstance(doc, dict) or doc.get("type") != EVIDENCE_TYPE:
        raise InputError(f"{where} is not a log evidence file (type {EVIDENCE_TYPE})",
                         what="evidence", where=where)
    kind = doc.get("kind")
    if kind not in get_args(InconsistencyKind):
        raise InputError(f"{where}: unknown evidence kind {str(kind)[:40]!r}",
                         what="evidence", where=where)
    notes = [doc.get("previousCheckpoint"), doc.get("servedCheckpoint")]
    if not all(isinstance(n, str) for n in notes):
        raise InputError(f"{where}: previousCheckpoint and servedCheckpoint must be the "
                         "signed notes", what="evidence", where=where)
    proof_doc = doc.get("consistencyProof", {})
    hashes = proof_doc.get("hashes", []) if isinstance(proof_doc, dict) else None
    if not isinstance(hashes, list) or len(hashes) > merkle.MAX_PROOF_LENGTH:
        raise InputError(f"{where}: consistencyProof.hashes must be a list of hex hashes",
                         what="evidence", where=where)
    proof = tuple(_hex32(h, f"{where}: consistencyProof.hashes[{i}]")
                  for i, h in enumerate(hashes))
    seed_hex = proof_doc.get("oldSizeSubtree") if isinstance(proof_doc, dict) else None
    seed = None if seed_hex is None else _hex32(seed_hex, f"{where}: oldSizeSubtree")
    return Inconsistency(cast(InconsistencyKind, kind), str(doc.get("failedCheck", "")),
                         str(doc.get("log", "")), str(notes[0]), str(notes[1]), proof, seed,
                         str(proof_doc.get("source", "")) if isinstance(proof_doc, dict)
                         else "", str(doc.get("observedAt", "")))


def _verified(note: str, verifier: LogVerifier, label: str) -> Checkpoint:
    try:
        return verify_checkpoint(note, [verifier])
    except MgattestError as exc:
        raise EvidenceError(f"the {label} checkpoint in the evidence does not verify under "
                            f"the log key: {exc.message}", what="evidence") from None


def fork_roots(ev: Inconsistency, old: Checkpoint, new: Checkpoint) -> tuple[bytes, bytes]:
    """The (old-size, new-size) roots the evidence's proof implies."""
    seed = ev.seed if ev.seed is not None else bytes(old.root_hash)
    return merkle.consistency_roots(old.size, new.size, ev.proof, seed)


def verify_evidence(ev: Inconsistency, verifier: LogVerifier) -> EvidenceVerdict:
    """Re-check evidence offline with the log's key; :class:`EvidenceError` when it does
    not show what its kind claims."""
    old = _verified(ev.old_note, verifier, "previous")
    if ev.kind == "bad-checkpoint":
        try:
            verify_checkpoint(ev.new_note, [verifier], origin=old.origin)
        except MgattestError as exc:
            return EvidenceVerdict(ev.kind, False, "the served checkpoint does not verify "
                                   f"under the log key ({exc.message}); an observation, "
                                   "unsigned bytes bind no one")
        raise EvidenceError("the served checkpoint verifies: no bad checkpoint here",
                            what="evidence")
    new = _verified(ev.new_note, verifier, "served")
    if new.origin != old.origin:
        raise EvidenceError(f"the checkpoints are of different logs ({old.origin!r}, "
                            f"{new.origin!r})", what="evidence")
    if ev.kind == "rewrite":
        if old.size != new.size or old.root_hash == new.root_hash:
            raise EvidenceError("a rewrite needs two checkpoints of one size with different "
                                "roots", what="evidence")
        return EvidenceVerdict(ev.kind, True, f"the log signed two different roots for "
                               f"size {old.size}: its history was rewritten")
    if ev.kind == "shrink":
        if new.size >= old.size:
            raise EvidenceError(f"no shrink: size {old.size} then {new.size}", what="evidence")
        return EvidenceVerdict(ev.kind, False, f"the log signed size {old.size} and size "
                               f"{new.size}; that the smaller was served later is the "
                               "reporter's observation")
    if not 0 < old.size < new.size:
        raise EvidenceError(f"a {ev.kind} needs 0 < old size < new size, got {old.size} and "
                            f"{new.size}", what="evidence")
    if ev.kind == "fork":
        if old.size & (old.size - 1) == 0 and ev.seed is None:
            raise EvidenceError("a fork from a power-of-two size needs oldSizeSubtree",
                                what="evidence")
        old_root, new_root = fork_roots(ev, old, new)
        if new_root != bytes(new.root_hash):
            raise EvidenceError("the proof does not reproduce the served checkpoint's root: "
                                "it proves nothing", what="evidence")
        if old_root == bytes(old.root_hash):
            raise EvidenceError("the proof shows the new tree extends the old one: no fork",
                                what="evidence")
        return EvidenceVerdict(ev.kind, True, f"the tree of size {new.size} signed by the log "
                               f"has root {old_root.hex()} for its first {old.size} entries, "
                               f"not the signed {bytes(old.root_hash).hex()}: the log forked")
    try:  # invalid-proof
        merkle.verify_consistency(old.size, new.size, list(ev.proof), bytes(old.root_hash),
                                  bytes(new.root_hash))
    except ConsistencyProofError as exc:
        return EvidenceVerdict(ev.kind, False, f"the proof the log served does not link its "
                               f"checkpoints ({exc.message}); not by itself proof of a fork")
    raise EvidenceError("the proof verifies: the checkpoints are consistent", what="evidence")
