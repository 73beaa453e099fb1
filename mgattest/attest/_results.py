"""What a verified attestation proves, as plain data.

These dataclasses are the contract between ``mgattest.attest`` (which produces them
after cryptographic verification) and ``mgattest.policy`` (which evaluates rules over
them). Nothing here does crypto; an instance exists only after verification passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from mgattest.attest._statement import ResourceDescriptor, Statement

# What vouches for a time: a verified SignedEntryTimestamp over the log entry's
# integratedTime, or a verified RFC 3161 timestamp over the signature.
TimeSource = Literal["set", "rfc3161"]
TIME_SOURCES: tuple[TimeSource, ...] = ("set", "rfc3161")


@dataclass(frozen=True)
class SignerInfo:
    """Who signed: a public key, or a certificate bound to an OIDC identity."""

    kind: str  # "key" | "certificate"
    # SHA-256 hex of the DER SubjectPublicKeyInfo of the signing key (both kinds).
    key_fingerprint: str
    # Key mode: the bundle's publicKey.hint, only when it names the verifying key.
    key_hint: str | None = None
    # Certificate mode: the SAN value (email or URI), the OIDC issuer (Fulcio ext .1.8
    # or legacy .1.1), and every Fulcio extension by short name
    # (e.g. "source_repository_uri", "source_repository_ref", "build_signer_uri").
    identity: str | None = None
    issuer: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    certificate_pem: str | None = None
    not_before: int | None = None  # unix seconds
    not_after: int | None = None
    # Accepted deviations from a rule mgattest otherwise enforces, kept visible in the
    # verdict (e.g. a private-CA signing certificate with CA:TRUE that model_signing takes).
    warnings: tuple[str, ...] = ()

    @property
    def distinct_id(self) -> str:
        """Identifier used to count distinct signers (threshold rules)."""
        if self.kind == "certificate" and self.identity is not None:
            return f"cert:{self.issuer}|{self.identity}"
        return f"key:{self.key_fingerprint}"


@dataclass(frozen=True)
class VerifiedTime:
    """A time that a verified signature covers, and what vouched for it.

    Only the code that verified the SET or the RFC 3161 timestamp creates one
    (``mgattest.tlog._verify``, ``mgattest.attest._timestamps``). Consumers of signing
    times (key windows, certificate validity, maxAge, audit, VSA) take this type, never a
    bare ``int``, so a time merely claimed by a bundle cannot reach them by mistake.
    """

    seconds: int  # unix seconds
    source: TimeSource
    where: str = ""  # e.g. "log e2eb3fff… index 7", "rfc3161Timestamps[0]"

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, int) \
                or self.seconds < 0:
            raise TypeError("VerifiedTime.seconds must be non-negative unix seconds")
        if self.source not in TIME_SOURCES:
            raise TypeError(f"VerifiedTime.source must be one of {TIME_SOURCES}")

    def describe(self) -> str:
        """``2026-01-02T03:04:05Z (SET, log … index 7)`` for verdicts."""

        label = {"set": "SET", "rfc3161": "RFC 3161 timestamp"}[self.source]
        stamp = datetime.fromtimestamp(self.seconds, tz=timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        return f"{stamp} ({label}{', ' + self.where if self.where else ''})"


def earliest(times: Sequence[VerifiedTime]) -> VerifiedTime | None:
    """The earliest verified time (the tightest proof of when a signature existed)."""
    return min(times, key=lambda t: t.seconds) if times else None


@dataclass(frozen=True)
class LogProof:
    """A transparency-log entry that verified: an inclusion proof up to a checkpoint
    signed by a trusted log, and/or a SignedEntryTimestamp (v0.1 bundles).

    ``log_index`` and ``integrated_time`` hold only what a verified signature covers:
    the SET covers ``logIndex`` and ``integratedTime``; a checkpoint-backed inclusion
    proof covers the proof's index. What the bundle merely claims is kept in the
    ``claimed_*`` fields, for display only, labelled as claimed.
    """

    log_id: str  # hex SHA-256 of the log key's DER SPKI (matched to a trusted log)
    log_index: int | None  # proven index, None when nothing proves it
    integrated_time: VerifiedTime | None  # SET-backed; None otherwise
    kind: str  # e.g. "dsse", "hashedrekord"
    kind_version: str
    inclusion_proof_verified: bool
    checkpoint_origin: str | None
    tree_size: int | None
    set_verified: bool
    leaf_hash: str = ""  # hex RFC 6962 leaf hash of the canonicalized body
    claimed_log_index: int | None = None  # the bundle's logIndex, unauthenticated
    claimed_integrated_time: int | None = None  # the bundle's integratedTime, ditto
    # The checkpoint note that verified (log-signed, matching the proof's root); its
    # witness cosignature lines are checked by policies that require witnesses.
    checkpoint_note: str | None = None

    @property
    def distinct_id(self) -> tuple[str, str]:
        """What makes two proofs the same log entry: the log and the leaf it proves."""
        return (self.log_id, self.leaf_hash)

    def describe(self) -> str:
        """``log index 7 (inclusion proven)`` / ``log index 7 (SET)`` / claimed index."""
        if self.log_index is None:
            return f"log index {self.claimed_log_index} (claimed, not proven)"
        how = "inclusion proven" if self.inclusion_proof_verified else "SET"
        return f"log index {self.log_index} ({how})"


@dataclass(frozen=True)
class VerifiedAttestation:
    """One bundle whose signature, certificate and log entries all verified."""

    source: str  # where it came from (file path, and line for JSON-lines)
    media_type: str
    # For DSSE bundles: the in-toto Statement. For messageSignature bundles: None.
    statement: Statement | None
    predicate_type: str | None
    predicate: Mapping[str, Any] | None  # the statement's, as parsed (shape per predicate_type)
    subjects: list[ResourceDescriptor]  # resource descriptors from the statement
    signer: SignerInfo
    log_entries: list[LogProof]
    # messageSignature bundles: the signed artifact digest {"sha256": hex}.
    message_digest: dict[str, str] | None = None
    payload_sha256: str | None = None  # hex digest of the exact DSSE payload bytes
    # Every verified signing time: SET-backed integrated times and RFC 3161 genTimes.
    signing_times: tuple[VerifiedTime, ...] = ()
    # Evidence present in the bundle that was not verified and so was not used
    # (e.g. an RFC 3161 timestamp with no trusted authority); shown in verdicts.
    notes: tuple[str, ...] = ()

    @property
    def signing_time(self) -> VerifiedTime | None:
        """The earliest verified signing time, or None when nothing vouches for one."""
        return earliest(self.signing_times)


@dataclass(frozen=True)
class FileCheck:
    """The outcome of re-hashing one file of a model against its subject."""

    name: str
    status: str  # "ok" | "mismatch" | "missing" | "extra" | "ignored"
    digest: dict[str, str] | None = None
    detail: str | None = None  # e.g. "shard 3, bytes 3145728-4194303"
    # A blob of a stored model (OCI layout, Ollama): the digest of the manifest that names
    # it, the whole chain verified; a subject signing that manifest covers this file too.
    named_by: dict[str, str] | None = None


@dataclass(frozen=True)
class ModelCheck:
    """Every file of a model compared against a statement's subjects."""

    root: str
    files: list[FileCheck]

    @property
    def ok(self) -> bool:
        return all(f.status in ("ok", "ignored") for f in self.files)
