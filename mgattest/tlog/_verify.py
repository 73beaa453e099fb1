"""Offline verification of one transparency-log entry.

:func:`verify_entry` takes a Sigstore bundle ``TransparencyLogEntry`` (parsed by
:mod:`mgattest.tlog._transparency_entry`, or its proto-JSON dict, parsed here) and checks,
in order: field bounds and types; that the log is trusted (by
``logId``); the SET when present (required without an inclusion proof) — only a
verified SET makes ``integratedTime`` a fact; that the log key was valid at a
verified time (the SET's integrated time, else the caller's RFC 3161 times, else
now); the leaf hash of the canonicalized body; the inclusion proof up to the root;
the checkpoint — signed by that log's key, with the expected origin, and the
proof's size and root (which sigstore-python does not check); and that the
integrated time is not in the future. The result separates what is proven from
what the entry merely claims.

:func:`verify_rekor_entry` does the same for Rekor v1 ``LogEntry`` JSON.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from mgattest._jsonutil import JSONObject
from mgattest.tlog import merkle
from mgattest.tlog._checkpoint import Checkpoint, verify_checkpoint
from mgattest.tlog.errors import (
    CheckpointError,
    ConsistencyProofError,
    InclusionProofError,
    LogEntryError,
    SETError,
)
from mgattest.tlog._keys import LogVerifier
from mgattest.tlog._promise import verify_set
from mgattest.tlog._transparency_entry import (
    MAX_BODY_SIZE,
    MAX_PROOF_HASHES,
    REKOR_V2_KINDS,
    TransparencyLogEntry,
    b64_field,
    json_object,
    parse_transparency_entry,
)
from mgattest.tlog._trust import TrustedLog

# Allowed clock skew between the log and this machine for "not in the future".
CLOCK_SKEW_SECONDS = 60


@dataclass(frozen=True)
class VerifiedEntry:
    """What a verified log entry proves.

    ``integrated_time`` is set only when a verified SET covers it, and ``log_index``
    only when a verified SET (the entry's ``logIndex``) or a checkpoint-backed inclusion
    proof (the proof's index) covers it. The bundle's own values are kept as
    ``claimed_*`` for display; nothing should treat them as facts.
    """

    log_id: str  # hex
    log_index: int | None
    integrated_time: int | None
    kind: str
    kind_version: str
    body: bytes
    checkpoint_origin: str | None
    tree_size: int | None
    inclusion_proof_verified: bool
    set_verified: bool
    leaf_hash: bytes = b""
    claimed_log_index: int | None = None
    claimed_integrated_time: int | None = None
    # When the log key's validity window was checked: "integrated time" (SET-backed),
    # "timestamp" (times the caller verified, RFC 3161) or "now" (nothing else proven).
    window_checked_at: str = "now"
    # The signed checkpoint note that verified (log signature, origin, size and root of
    # the proof); witness cosignatures on it are judged by whoever trusts witnesses.
    checkpoint_note: str | None = None


def _err(message: str, where: str | None = None) -> LogEntryError:
    return LogEntryError(message, what="log entry", where=where)


def _expected_origins(trusted: TrustedLog, origin: str | None) -> tuple[str | None, str | None]:
    """(exact origin, host prefix for the Rekor v1 'host - treeID' form)."""
    if origin is not None:
        return origin, None
    if trusted.origin is not None:
        return trusted.origin, None
    if trusted.base_url:
        parts = urlsplit(trusted.base_url)
        if parts.hostname:
            return None, parts.hostname
    return None, None


def _check_origin(checkpoint: Checkpoint, trusted: TrustedLog, origin: str | None,
                  rekor_v1_entry: bool) -> None:
    """The checkpoint's origin: exactly the configured one when there is one; else, for
    Rekor v2 / C2SP logs (whose spec binds origin and URL), derived from the base URL.

    A Rekor v1 origin is ``<server hostname> - <tree ID>`` (an mgattest log's is whatever
    ``log init`` chose), unrelated to the URL clients use, and the trusted root has no
    field for it: like sigstore-go, sigstore-js and sigstore-python, a Rekor v1 entry's
    checkpoint is then judged by its signature (the trusted log key, selected by its key
    hint) and by size and root equal to the proof's, which the caller checks.
    """
    exact, host = _expected_origins(trusted, origin)
    got = checkpoint.origin
    if exact is not None:
        if got != exact:
            raise CheckpointError(f"checkpoint origin {got!r} is not the expected {exact!r}",
                                  what="checkpoint origin")
        return
    if rekor_v1_entry:
        return
    if host is None:
        raise CheckpointError("cannot check the checkpoint origin: no origin or base URL is "
                              "known for this log", what="checkpoint origin")
    parts = urlsplit(trusted.base_url or "")
    path = parts.path.rstrip("/")
    candidates = {host, parts.netloc, parts.netloc + path, host + path}
    v1_form = "(?:" + re.escape(host) + "|" + re.escape(parts.netloc) + r") - [0-9]{1,20}"
    if got in candidates or re.fullmatch(v1_form, got):
        return
    raise CheckpointError(f"checkpoint origin {got!r} does not belong to log {trusted.base_url}",
                          what="checkpoint origin")


def _find_logs(log_id: bytes, trusted_logs: Sequence[TrustedLog]) -> list[TrustedLog]:
    found = [t for t in trusted_logs if hmac.compare_digest(t.log_id, log_id)]
    if not found:
        raise LogEntryError(f"entry comes from log {log_id.hex()}, which is not trusted",
                            what="log id", where=f"log id {log_id.hex()}")
    return found


def verify_entry(entry: TransparencyLogEntry | Mapping[str, object],
                 trusted_logs: Sequence[TrustedLog], *, origin: str | None = None,
                 require_inclusion_proof: bool = True, now: datetime | int | None = None,
                 verified_times: Sequence[int] = ()) -> VerifiedEntry:
    """Verify one bundle ``TransparencyLogEntry`` offline.

    ``entry`` is parsed already (a bundle's :class:`TransparencyLogEntry`) or its
    proto-JSON dict, parsed here. ``origin`` overrides the expected checkpoint origin
    (else ``TrustedLog.origin``, else, for Rekor v2 entries, derived from its base URL; a
    Rekor v1 origin is only checked when one of the first two names it).
    ``require_inclusion_proof=False`` accepts a v0.1-bundle entry carrying only a SET
    (which must then verify). ``verified_times`` are signing times the caller verified
    independently (RFC 3161 genTimes): without a SET, the log key must have been valid at
    each of them (at ``now`` when there are none).
    """
    # 1. bounds and types, before any crypto (done once, when a bundle is read)
    if not isinstance(entry, TransparencyLogEntry):
        entry = parse_transparency_entry(entry)
    _check_evidence_present(entry, require_inclusion_proof)
    log_index, log_id, body = entry.claimed_log_index, entry.log_id, entry.canonicalized_body
    kind, version = entry.kind, entry.kind_version
    integrated_time, set_bytes = entry.claimed_integrated_time, entry.inclusion_promise
    proof = entry.inclusion_proof

    # 2. the leaf is in the tree the proof describes (pure hashing, no trust yet)
    leaf = merkle.leaf_hash(body)
    if proof is not None:
        merkle.verify_inclusion(leaf, proof.log_index, proof.tree_size, list(proof.hashes),
                                proof.root_hash)
        if proof.checkpoint is None and require_inclusion_proof:
            raise CheckpointError(
                f"inclusion proof of log entry {log_index} carries no checkpoint, so its "
                "root hash is not signed by the log", what="checkpoint",
                where=f"log index {log_index}")
        # v0.1 bundles without a checkpoint: the proof's root is unauthenticated and
        # proves nothing; the SET carries trust.

    # 3. a trusted log; the SET first, since it is what makes integratedTime a fact
    candidates = _find_logs(log_id, trusted_logs)
    when_now = _now(now)
    if integrated_time is not None \
            and integrated_time > when_now.timestamp() + CLOCK_SKEW_SECONDS:
        raise LogEntryError(f"integrated time {integrated_time} of log entry {log_index} "
                            "is in the future", what="integrated time",
                            where=f"log index {log_index}")
    set_ok = False
    if set_bytes is not None:
        if integrated_time is None:
            raise SETError(f"log entry {log_index} has a SET but no integrated time",
                           what="SET", where=f"log index {log_index}")
        # Every candidate shares the key (the log ID is the key's hash).
        verify_set(candidates[0].verifier, set_bytes, body, integrated_time, log_id.hex(),
                   log_index)
        set_ok = True
    trusted, checked_at = _trusted_when(candidates, log_id, log_index,
                                        integrated_time if set_ok else None,
                                        verified_times, when_now)

    # 4. the checkpoint signs the proof's root
    checkpoint_origin = None
    checkpoint_note = None
    proof_size = None
    proof_verified = False
    if proof is not None and proof.checkpoint is not None:
        checkpoint = verify_checkpoint(proof.checkpoint, [trusted.verifier])
        _check_origin(checkpoint, trusted, origin, (kind, version) not in REKOR_V2_KINDS)
        tree_size = proof.tree_size
        if checkpoint.size != tree_size:
            raise CheckpointError(f"checkpoint is for tree size {checkpoint.size}, the "
                                  f"inclusion proof for size {tree_size}",
                                  what="checkpoint size", where=f"log index {log_index}")
        if not hmac.compare_digest(checkpoint.root_hash, proof.root_hash):
            raise CheckpointError("checkpoint root hash differs from the inclusion proof's "
                                  f"root hash for tree size {tree_size}",
                                  what="checkpoint root hash", where=f"log index {log_index}")
        checkpoint_origin, proof_size, proof_verified = checkpoint.origin, tree_size, True
        checkpoint_note = proof.checkpoint

    # 5. what is proven: the SET covers logIndex and integratedTime; a checkpointed
    # proof covers its own index. Claimed values are kept apart.
    proven_index = log_index if set_ok else (
        proof.log_index if proof is not None and proof_verified else None)
    return VerifiedEntry(log_id.hex(), proven_index, integrated_time if set_ok else None,
                         kind, version, body, checkpoint_origin, proof_size, proof_verified,
                         set_ok, leaf_hash=leaf, claimed_log_index=log_index,
                         claimed_integrated_time=integrated_time, window_checked_at=checked_at,
                         checkpoint_note=checkpoint_note)


def _check_evidence_present(entry: TransparencyLogEntry, require_inclusion_proof: bool) -> None:
    """The entry carries what this verification needs: an inclusion proof when required,
    else at least a SET (an inclusion proof without a checkpoint proves nothing alone)."""
    log_index, proof = entry.claimed_log_index, entry.inclusion_proof
    has_set = entry.inclusion_promise is not None
    if proof is not None:
        if proof.checkpoint is None and not require_inclusion_proof and not has_set:
            raise SETError(f"log entry {log_index} has an inclusion proof without a "
                           "checkpoint and no signed entry timestamp", what="SET",
                           where=f"log index {log_index}")
    elif require_inclusion_proof:
        raise InclusionProofError(f"log entry {log_index} has no inclusion proof",
                                  what="inclusion proof", where=f"log index {log_index}")
    elif not has_set:
        raise SETError(f"log entry {log_index} has neither an inclusion proof nor a signed "
                       "entry timestamp", what="SET", where=f"log index {log_index}")


def _trusted_when(candidates: list[TrustedLog], log_id: bytes, log_index: int,
                  set_time: int | None, verified_times: Sequence[int],
                  when_now: datetime) -> tuple[TrustedLog, str]:
    """The trusted log whose key window covers the entry's verified time(s).

    The time is the SET-backed integrated time; else the caller's independently
    verified times (RFC 3161); else now. An unauthenticated integratedTime is never
    used: it could place the entry inside a retired key's window.
    """
    if set_time is not None:
        times, label = [set_time], "integrated time"
    elif verified_times:
        times, label = list(verified_times), "the timestamped signing time"
    else:
        times, label = [int(when_now.timestamp())], "now"
    moments = [datetime.fromtimestamp(t, timezone.utc) for t in times]
    for candidate in candidates:
        if all(candidate.valid_at(m) for m in moments):
            return candidate, label
    shown = ", ".join(m.strftime("%Y-%m-%dT%H:%M:%SZ") for m in moments)
    raise LogEntryError(
        f"log key {log_id.hex()} was not valid at {label} {shown}"
        + ("; the entry has no verified time of its own (no SET)" if label != "integrated time"
           else ""), what="log validity", where=f"log index {log_index}")


def _now(now: datetime | int | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if isinstance(now, (int, float)) and not isinstance(now, bool):
        return datetime.fromtimestamp(now, timezone.utc)
    if isinstance(now, datetime):
        return now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    raise TypeError("now must be a datetime or unix seconds")


def rekor_entry_to_bundle_entry(rekor_json: JSONObject) -> JSONObject:
    """Convert Rekor v1 ``LogEntry`` JSON (``{uuid: {...}}`` or the inner object) to a
    bundle ``TransparencyLogEntry`` dict. Kind and version come from the body."""
    if not isinstance(rekor_json, dict):
        raise _err("Rekor log entry must be a JSON object")
    inner = rekor_json
    if "body" not in rekor_json:
        if len(rekor_json) != 1:
            raise _err("Rekor log entry must hold exactly one {uuid: entry}")
        inner = json_object(next(iter(rekor_json.values())), "entry")
    body = b64_field(inner.get("body"), "body", MAX_BODY_SIZE)
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise _err("body is not JSON", "body") from None
    if not isinstance(parsed, dict):
        raise _err("body is not a JSON object", "body")
    log_id_hex = inner.get("logID")
    try:
        log_id = bytes.fromhex(log_id_hex) if isinstance(log_id_hex, str) else b""
    except ValueError:
        log_id = b""
    if len(log_id) != 32:
        raise _err("logID must be 64 hex characters", "logID")
    out: dict[str, Any] = {
        "logIndex": inner.get("logIndex"),
        "logId": {"keyId": base64.b64encode(log_id).decode()},
        "kindVersion": {"kind": parsed.get("kind"), "version": parsed.get("apiVersion")},
        "integratedTime": inner.get("integratedTime"),
        "canonicalizedBody": base64.b64encode(body).decode(),
    }
    verification = inner.get("verification") or {}
    if not isinstance(verification, dict):
        raise _err("verification must be an object", "verification")
    if verification.get("signedEntryTimestamp") is not None:
        out["inclusionPromise"] = {"signedEntryTimestamp": verification["signedEntryTimestamp"]}
    proof = verification.get("inclusionProof")
    if proof is not None:
        proof = json_object(proof, "verification.inclusionProof")
        hashes = proof.get("hashes", [])
        if not isinstance(hashes, list) or len(hashes) > MAX_PROOF_HASHES:
            raise InclusionProofError("inclusionProof.hashes must be a short list",
                                      what="inclusion proof")
        try:
            b64_hashes = [base64.b64encode(bytes.fromhex(h)).decode() for h in hashes]
            root = base64.b64encode(bytes.fromhex(proof.get("rootHash", ""))).decode()
        except (TypeError, ValueError):
            raise InclusionProofError("inclusion proof hashes must be hex",
                                      what="inclusion proof") from None
        out["inclusionProof"] = {
            "logIndex": proof.get("logIndex"), "treeSize": proof.get("treeSize"),
            "rootHash": root, "hashes": b64_hashes,
            "checkpoint": {"envelope": proof.get("checkpoint")},
        }
    return out


def verify_rekor_entry(rekor_json: JSONObject, trusted_logs: Sequence[TrustedLog], *,
                       origin: str | None = None, require_inclusion_proof: bool = True,
                       now: datetime | int | None = None) -> VerifiedEntry:
    """Verify Rekor v1 ``LogEntry`` JSON (what ``GET /api/v1/log/entries/{uuid}`` returns).

    The entry's UUID key, when present, must equal the hex leaf hash of its body.
    """
    bundle_entry = rekor_entry_to_bundle_entry(rekor_json)
    if isinstance(rekor_json, dict) and "body" not in rekor_json:
        uuid = next(iter(rekor_json))
        leaf_hex = merkle.leaf_hash(base64.b64decode(bundle_entry["canonicalizedBody"])).hex()
        if not isinstance(uuid, str) or uuid.lower()[-64:] != leaf_hex or len(uuid) not in (64, 80):
            raise LogEntryError(f"entry UUID {str(uuid)[:80]} is not the leaf hash of its body",
                                what="log entry uuid")
    return verify_entry(bundle_entry, trusted_logs, origin=origin,
                        require_inclusion_proof=require_inclusion_proof, now=now)


def verify_consistency_notes(old_note: str, new_note: str, proof: Sequence[bytes],
                             verifiers: list[LogVerifier], origin: str | None = None
                             ) -> tuple[Checkpoint, Checkpoint]:
    """Verify two signed checkpoints of one log and the consistency proof between them.

    Both notes must be signed by one of ``verifiers`` and share the origin (``origin``
    when given). Returns ``(old, new)`` checkpoints.
    """
    old = verify_checkpoint(old_note, verifiers, origin=origin)
    new = verify_checkpoint(new_note, verifiers, origin=origin if origin else old.origin)
    if old.size > new.size:
        raise ConsistencyProofError(f"old checkpoint size {old.size} is larger than new "
                                    f"checkpoint size {new.size}", what="consistency proof")
    merkle.verify_consistency(old.size, new.size, list(proof), old.root_hash, new.root_hash)
    return old, new


__all__ = ["VerifiedEntry", "verify_entry", "verify_rekor_entry", "verify_consistency_notes",
           "rekor_entry_to_bundle_entry"]
