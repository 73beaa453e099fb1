"""A Sigstore ``TransparencyLogEntry`` (protobuf-specs ``rekor/v1``), parsed once.

:func:`parse_transparency_entry` turns the proto-JSON dict a bundle carries in
``verificationMaterial.tlogEntries[]`` into a frozen :class:`TransparencyLogEntry`:
every field bounded, typed and decoded (base64, int64 strings, the canonicalized body's
JSON), before any cryptography runs. A malformed field raises the log's typed error
(:class:`~mgattest.tlog.errors.LogEntryError`, ``InclusionProofError``, ``SETError``,
``CheckpointError``) located at the field.

Nothing here is verified: the index and time an entry carries are *claims*
(``claimed_log_index``, ``claimed_integrated_time``). Only
:func:`mgattest.tlog._verify.verify_entry` turns them into facts, in a
:class:`~mgattest.tlog._verify.VerifiedEntry`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, NotRequired, TypedDict

from mgattest._jsonutil import JSONObject
from mgattest.errors import MgattestError

from mgattest.tlog.errors import CheckpointError, InclusionProofError, LogEntryError, SETError

__all__ = ["EntryInclusionProof", "TransparencyLogEntry", "TransparencyLogEntryJSON",
           "parse_transparency_entry"]

MAX_BODY_SIZE = 32 * 1024 * 1024
MAX_PROOF_HASHES = 64
MAX_SET_BYTES = 1024
MAX_HASH_BYTES = 64
_UINT = re.compile(r"(0|[1-9][0-9]{0,19})")
REKOR_V2_KINDS = frozenset({("hashedrekord", "0.0.2"), ("dsse", "0.0.2")})
KNOWN_KINDS = frozenset({("hashedrekord", "0.0.1"), ("dsse", "0.0.1"), ("intoto", "0.0.2"),
                         ("intoto", "0.0.1"), ("rekord", "0.0.1")}) | REKOR_V2_KINDS


class LogIdJSON(TypedDict):
    """proto-JSON ``LogId``: the log's key id, base64."""

    keyId: str


class KindVersionJSON(TypedDict):
    """proto-JSON ``KindVersion`` of an entry's body."""

    kind: str
    version: str


class InclusionPromiseJSON(TypedDict):
    """proto-JSON ``InclusionPromise``: the signed entry timestamp, base64."""

    signedEntryTimestamp: str


class CheckpointJSON(TypedDict):
    """proto-JSON ``Checkpoint``: the signed note's text."""

    envelope: str


class InclusionProofJSON(TypedDict):
    """proto-JSON ``InclusionProof``: int64s as decimal strings, hashes base64."""

    logIndex: str
    rootHash: str
    treeSize: str
    hashes: list[str]
    checkpoint: CheckpointJSON


class TransparencyLogEntryJSON(TypedDict):
    """A ``TransparencyLogEntry`` in proto-JSON as mgattest writes it (bundle
    ``tlogEntries[]``); :func:`parse_transparency_entry` reads any such entry back."""

    logIndex: str
    logId: LogIdJSON
    kindVersion: KindVersionJSON
    integratedTime: str
    inclusionPromise: NotRequired[InclusionPromiseJSON]
    inclusionProof: NotRequired[InclusionProofJSON]
    canonicalizedBody: str


@dataclass(frozen=True)
class EntryInclusionProof:
    """The inclusion proof an entry carries, decoded but not verified."""

    log_index: int
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str | None  # the signed note's text; None in some v0.1 bundles


@dataclass(frozen=True)
class TransparencyLogEntry:
    """One ``TransparencyLogEntry``, every field decoded; nothing in it is verified yet.

    ``claimed_log_index`` and ``claimed_integrated_time`` are what the entry says;
    :class:`~mgattest.tlog._verify.VerifiedEntry` carries the values a proof covers.
    ``raw`` is the proto-JSON it was parsed from, written back unchanged by
    :meth:`to_dict` so re-serialised bundles stay byte-identical.
    """

    claimed_log_index: int
    log_id: bytes  # 32 bytes: SHA-256 of the log's public key
    kind: str
    kind_version: str
    claimed_integrated_time: int | None  # None when absent or 0
    inclusion_promise: bytes | None  # the signed entry timestamp (SET), if any
    inclusion_proof: EntryInclusionProof | None
    canonicalized_body: bytes
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> JSONObject:
        """The proto-JSON this entry was parsed from (a copy; as read, so arbitrary JSON)."""
        return copy.deepcopy(dict(self.raw))


_BARE = object()  # "no default": a bare field's location is its name


@dataclass(frozen=True)
class _Fields:
    """Locates a field for errors: ``<prefix><field>`` when parsing within a container
    (e.g. ``bundle.json tlogEntries[0].``); without one, what :func:`verify_entry` has
    always named (the field, or ``bare``)."""

    prefix: str = ""

    def at(self, name: str, bare: Any = _BARE) -> str | None:
        if self.prefix:
            return self.prefix + name
        return name if bare is _BARE else bare


def uint_field(value: object, name: str, error: type[MgattestError] = LogEntryError,
               where: str | None = None) -> int:
    """A non-negative int64 given as a JSON number or a decimal string (proto-JSON)."""
    where = where or name
    if isinstance(value, bool):
        raise error(f"{name} must be an integer", what="log entry", where=where)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _UINT.fullmatch(value):
        number = int(value)
    else:
        raise error(f"{name} must be a non-negative integer, not {str(value)[:30]!r}",
                    what="log entry", where=where)
    if number < 0 or number >= 1 << 63:
        raise error(f"{name} must be a non-negative int64, not {number}", what="log entry",
                    where=where)
    return number


def b64_field(value: object, name: str, max_bytes: int,
              error: type[MgattestError] = LogEntryError,
              where: str | None = None) -> bytes:
    """Non-empty proto-JSON bytes (either base64 alphabet) of at most ``max_bytes``."""
    where = where or name
    if not isinstance(value, str) or not value:
        raise error(f"{name} must be a non-empty base64 string", what="log entry",
                    where=where)
    if len(value) > max_bytes * 4 // 3 + 4:
        raise error(f"{name} is larger than {max_bytes} bytes", what="log entry",
                    where=where)
    try:
        text = value.replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{name} is not base64", what="log entry", where=where) from None


def json_object(value: object, name: str, where: str | None = None) -> JSONObject:
    """``value`` if it is a JSON object, else a :class:`LogEntryError` naming ``name``."""
    if not isinstance(value, dict):
        raise LogEntryError(f"{name} must be a JSON object", what="log entry",
                            where=where or name)
    return value


def parse_transparency_entry(entry: object, *, where: str = "") -> TransparencyLogEntry:
    """Parse and bound one proto-JSON ``TransparencyLogEntry``.

    ``where`` locates the entry in its container (``"bundle.json tlogEntries[0]"``);
    errors then name ``<where>.<field>``. Raises the log's typed errors; whether a proof
    or a promise is *required* is the verifier's decision, not checked here.
    """
    fields = _Fields(f"{where}." if where else "")
    entry = json_object(entry, "tlog entry", where or None)
    log_index = uint_field(entry.get("logIndex"), "logIndex", where=fields.at("logIndex"))
    log_id = b64_field(json_object(entry.get("logId"), "logId", fields.at("logId")).get(
        "keyId"), "logId.keyId", 64, where=fields.at("logId.keyId"))
    if len(log_id) != 32:
        raise LogEntryError(f"logId.keyId is {len(log_id)} bytes, expected 32",
                            what="log entry", where=fields.at("logId.keyId"))
    kind, version = _kind_version(entry, fields)
    integrated_time: int | None = None
    if entry.get("integratedTime") is not None:
        integrated_time = uint_field(entry["integratedTime"], "integratedTime",
                                     where=fields.at("integratedTime")) or None
    body = b64_field(entry.get("canonicalizedBody"), "canonicalizedBody", MAX_BODY_SIZE,
                     where=fields.at("canonicalizedBody"))
    _check_body_kind(body, kind, version, fields)
    promise = entry.get("inclusionPromise")
    set_bytes = None
    if promise is not None:
        set_bytes = b64_field(
            json_object(promise, "inclusionPromise", fields.at("inclusionPromise")).get(
                "signedEntryTimestamp"), "inclusionPromise.signedEntryTimestamp",
            MAX_SET_BYTES, SETError, where=fields.at("inclusionPromise.signedEntryTimestamp"))
    proof = None
    if entry.get("inclusionProof") is not None:
        proof = _inclusion_proof(entry["inclusionProof"], log_index, fields)
    return TransparencyLogEntry(
        claimed_log_index=log_index, log_id=log_id, kind=kind, kind_version=version,
        claimed_integrated_time=integrated_time, inclusion_promise=set_bytes,
        inclusion_proof=proof, canonicalized_body=body, raw=entry)


def _kind_version(entry: dict[str, Any], fields: _Fields) -> tuple[str, str]:
    kv = json_object(entry.get("kindVersion"), "kindVersion", fields.at("kindVersion"))
    kind, version = kv.get("kind"), kv.get("version")
    if not isinstance(kind, str) or not isinstance(version, str) \
            or (kind, version) not in KNOWN_KINDS:
        raise LogEntryError(f"unknown entry kind {str(kind)[:40]!r} version "
                            f"{str(version)[:20]!r}", what="log entry",
                            where=fields.at("kindVersion"))
    return kind, version


def _check_body_kind(body: bytes, kind: str, version: str, fields: _Fields) -> None:
    """The body is a JSON object of the kind and version ``kindVersion`` names."""
    where = fields.at("canonicalizedBody")
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise LogEntryError("canonicalizedBody is not JSON", what="log entry",
                            where=where) from None
    if not isinstance(parsed, dict) or parsed.get("kind") != kind \
            or parsed.get("apiVersion") != version:
        raise LogEntryError(f"canonicalizedBody is not a {kind} {version} entry (kindVersion "
                            "disagrees with the body)", what="log entry", where=where)


def _inclusion_proof(value: Any, log_index: int, fields: _Fields) -> EntryInclusionProof:
    proof = json_object(value, "inclusionProof", fields.at("inclusionProof"))
    proof_index = uint_field(proof.get("logIndex"), "inclusionProof.logIndex",
                             InclusionProofError, where=fields.at("inclusionProof.logIndex"))
    tree_size = uint_field(proof.get("treeSize"), "inclusionProof.treeSize",
                           InclusionProofError, where=fields.at("inclusionProof.treeSize"))
    root = b64_field(proof.get("rootHash"), "inclusionProof.rootHash", MAX_HASH_BYTES,
                     InclusionProofError, where=fields.at("inclusionProof.rootHash"))
    hashes_in = proof.get("hashes", [])
    if not isinstance(hashes_in, list) or len(hashes_in) > MAX_PROOF_HASHES:
        raise InclusionProofError("inclusionProof.hashes must be a list of at most "
                                  f"{MAX_PROOF_HASHES} hashes", what="inclusion proof",
                                  where=fields.at("inclusionProof.hashes", None))
    hashes = tuple(b64_field(h, f"inclusionProof.hashes[{i}]", MAX_HASH_BYTES,
                             InclusionProofError,
                             where=fields.at(f"inclusionProof.hashes[{i}]"))
                   for i, h in enumerate(hashes_in))
    cp_obj = proof.get("checkpoint")
    envelope = cp_obj.get("envelope") if isinstance(cp_obj, dict) else None
    if envelope is not None and (not isinstance(envelope, str) or not envelope):
        raise CheckpointError("inclusionProof.checkpoint.envelope must be a signed note",
                              what="checkpoint",
                              where=fields.at("inclusionProof.checkpoint.envelope",
                                              f"log index {log_index}"))
    return EntryInclusionProof(log_index=proof_index, tree_size=tree_size, root_hash=root,
                               hashes=hashes, checkpoint=envelope)
