"""What a verified attestation proves, as plain data.

These dataclasses are the contract between ``mgattest.attest`` (which produces them
after cryptographic verification) and ``mgattest.policy`` (which evaluates rules over
them). Nothing here does crypto; an instance exists only after verification passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SignerInfo:
    """Who signed: a public key, or a certificate bound to an OIDC identity."""

    kind: str  # "key" | "certificate"
    # SHA-256 hex of the DER SubjectPublicKeyInfo of the signing key (both kinds).
    key_fingerprint: str
    # Key mode: the bundle's publicKey.hint, if any.
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
class LogProof:
    """A transparency-log entry whose inclusion (or promise) was verified."""

    log_id: str  # hex SHA-256 of the log key's DER SPKI
    log_index: int
    integrated_time: int | None  # unix seconds; None for Rekor v2 entries without it
    kind: str  # e.g. "dsse", "hashedrekord"
    kind_version: str
    inclusion_proof_verified: bool
    checkpoint_origin: str | None
    tree_size: int | None
    set_verified: bool


@dataclass(frozen=True)
class VerifiedAttestation:
    """One bundle whose signature, certificate and log entries all verified."""

    source: str  # where it came from (file path, and line for JSON-lines)
    media_type: str
    # For DSSE bundles: the in-toto Statement. For messageSignature bundles: None.
    statement: dict[str, Any] | None
    predicate_type: str | None
    predicate: dict[str, Any] | None
    subjects: list[dict[str, Any]]  # resource descriptors from the statement
    signer: SignerInfo
    log_entries: list[LogProof]
    # messageSignature bundles: the signed artifact digest {"sha256": hex}.
    message_digest: dict[str, str] | None = None
    payload_sha256: str | None = None  # hex digest of the exact DSSE payload bytes


@dataclass(frozen=True)
class FileCheck:
    """The outcome of re-hashing one file of a model against its subject."""

    name: str
    status: str  # "ok" | "mismatch" | "missing" | "extra" | "ignored"
    digest: dict[str, str] | None = None
    detail: str | None = None  # e.g. "shard 3, bytes 3145728-4194303"


@dataclass(frozen=True)
class ModelCheck:
    """Every file of a model compared against a statement's subjects."""

    root: str
    files: list[FileCheck]

    @property
    def ok(self) -> bool:
        return all(f.status in ("ok", "ignored") for f in self.files)
