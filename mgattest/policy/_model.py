"""The compiled policy: frozen dataclasses the evaluator walks.

A policy file is parsed (``loader``), validated against ``schema.json``, then compiled
here: regexes and globs compiled, signer references resolved, keys loaded and
fingerprinted, times parsed. Everything that can be wrong with a policy is found at
this point, so evaluation never meets a malformed policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mgattest.policy._matching import Matcher

if TYPE_CHECKING:
    from mgattest.tlog import WitnessKey

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_PROVENANCE_TYPES = (SLSA_PROVENANCE_V1, SLSA_PROVENANCE_V02)

# Policy extension keys → Fulcio extension short names (as in SignerInfo.extensions).
EXTENSION_NAMES = {
    "sourceRepository": "source_repository_uri",
    "sourceRepositoryRef": "source_repository_ref",
    "sourceRepositoryDigest": "source_repository_digest",
    "sourceRepositoryOwner": "source_repository_owner_uri",
    "workflow": "build_signer_uri",
    "buildConfig": "build_config_uri",
    "buildTrigger": "build_trigger",
    "runnerEnvironment": "runner_environment",
    "repositoryVisibility": "source_repository_visibility_at_signing",
}


@dataclass(frozen=True)
class TrustedKey:
    """A named public key with an optional validity window (unix seconds)."""

    name: str
    fingerprint: str  # SHA-256 hex of DER SPKI
    pem: str
    valid_from: int | None = None
    valid_until: int | None = None


@dataclass(frozen=True)
class TrustedLogSpec:
    """An extra transparency log the policy trusts."""

    name: str
    log_id: str
    public_key_pem: str
    url: str | None = None
    origin: str | None = None


@dataclass(frozen=True)
class TrustedWitness:
    """A witness the policy trusts: its policy name and its cosigning key (from a vkey)."""

    name: str
    vkey: str
    key: "WitnessKey"


@dataclass(frozen=True)
class WitnessRequirement:
    """``transparencyLog.witnesses``: the checkpoint an entry is proven against must carry
    verified cosignatures of at least ``require`` distinct witnesses among ``of``."""

    require: int
    of: tuple[TrustedWitness, ...]


@dataclass(frozen=True)
class RootSpec:
    """A trusted root: ``sigstore-public-good``, ``sigstore-staging`` or a file."""

    name: str
    path: str | None  # absolute path for file roots; None for the built-in ones
    log_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Signer:
    """A named identity: a trusted key, or a keyless issuer+subject (+ extensions)."""

    name: str
    key: TrustedKey | None = None
    issuer: Matcher | None = None
    subject: Matcher | None = None
    extensions: tuple[tuple[str, Matcher], ...] = ()  # (fulcio short name, matcher)


@dataclass(frozen=True)
class SignedBy:
    """``anyOf`` (threshold 1), ``allOf`` (threshold = len) or ``threshold: N of [...]``."""

    mode: str  # "anyOf" | "allOf" | "threshold"
    signers: tuple[str, ...]
    threshold: int


@dataclass(frozen=True)
class LogRequirement:
    require: str = "required"  # "required" | "optional"
    logs: tuple[str, ...] = ()  # names; empty = any trusted log
    log_ids: frozenset[str] = frozenset()
    min_entries: int = 1
    witnesses: WitnessRequirement | None = None


@dataclass(frozen=True)
class ProvenanceSpec:
    """Expectations on an SLSA Provenance v1 or v0.2 predicate."""

    builder_id: Matcher | None = None
    build_type: Matcher | None = None
    source_repository: Matcher | None = None
    source_ref: Matcher | None = None
    source_tag: str | None = None
    source_versioned_tag: str | None = None
    source_branch: str | None = None
    bind_to_certificate: bool = True
    param_values: dict[str, Any] = field(default_factory=dict)
    param_allowed: dict[str, list[Any]] = field(default_factory=dict)
    reject_unknown_params: bool = False
    dependencies_pinned: bool = False
    datasets: tuple[Matcher, ...] = ()
    base_models: tuple[Matcher, ...] = ()
    max_age_seconds: int | None = None
    max_age_from: str = "finishedOn"
    # slsa-verifier's rule: which certificate identity may vouch for the builder id.
    builder_bound_to_certificate: bool = False
    # v0.2 only: invocation.configSource and materials.
    config_source_uri: Matcher | None = None
    config_source_entry_point: Matcher | None = None
    config_source_digest: dict[str, str] = field(default_factory=dict)
    materials: tuple[Matcher, ...] = ()


@dataclass(frozen=True)
class AttestationSpec:
    predicate_type: str  # the first accepted type (for messages)
    signed_by: SignedBy | None = None
    provenance: ProvenanceSpec | None = None
    also_accepted: tuple[str, ...] = ()  # predicateType given as a list: any of them

    @property
    def accepted_types(self) -> tuple[str, ...]:
        """Every predicate type that satisfies this expectation."""
        return (self.predicate_type,) + self.also_accepted


@dataclass(frozen=True)
class CelCheck:
    id: str
    expr: str
    message: str
    program: Any  # compiled by mgattest.policy._cel


@dataclass(frozen=True)
class LineageRequirement:
    """Every traced dependency of ``kind`` carries a verified attestation satisfying
    ``signed_by``; at least ``min_count`` such dependencies exist."""

    kind: str
    signed_by: SignedBy
    min_count: int = 1


@dataclass(frozen=True)
class LineageSpec:
    """The ``lineage`` clause: requirements on the inputs ``depth`` levels down."""

    require: tuple[LineageRequirement, ...]
    depth: int = 1


@dataclass(frozen=True)
class Rule:
    id: str
    match: tuple[str, ...]
    where: str  # file:line of the rule, for messages
    description: str | None = None
    signed_by: SignedBy | None = None
    tlog: LogRequirement | None = None
    attestations: tuple[AttestationSpec, ...] = ()
    unsigned_files: str = "deny"
    ignore: tuple[str, ...] = ()
    digest_allow: frozenset[str] | None = None
    digest_deny: frozenset[str] = frozenset()
    formats: frozenset[str] | None = None
    # content.remoteCode.allow: digests of the Python files (``*.py``) that may run as
    # model code (transformers ``trust_remote_code``); None = the rule allows no code.
    remote_code_allow: frozenset[str] | None = None
    pickle: str = "deny"
    scan_required: bool = True
    unknown: str = "allow"  # content.unknown: a file of no format the scanner knows
    max_size: int | None = None  # files.maxSize in bytes: a larger file is a size anomaly
    cel: tuple[CelCheck, ...] = ()
    lineage: LineageSpec | None = None


@dataclass(frozen=True)
class Waiver:
    """One entry of the policy's ``exceptions:`` list: an approved, expiring waiver of the
    failures of one artifact digest (of the named ``rules``, or of every rule when None).

    A record, not an error: it only ever waives failing checks until ``expires``."""

    digest: str  # "sha256:<hex>"
    reason: str
    approver: str
    expires: int
    rules: frozenset[str] | None = None


@dataclass(frozen=True)
class Policy:
    """A compiled, validated policy. ``digest`` is ``sha256:<hex>`` of the file bytes."""

    source: str
    digest: str
    name: str | None
    mode: str
    expires: int | None
    unmatched_files: str
    roots: tuple[RootSpec, ...]
    keys: dict[str, TrustedKey]
    logs: dict[str, TrustedLogSpec]
    signers: dict[str, Signer]
    rules: tuple[Rule, ...]
    exceptions: tuple[Waiver, ...]  # the YAML key stays `exceptions`
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    witnesses: dict[str, TrustedWitness] = field(default_factory=dict)

    def trusted_log_ids(self) -> frozenset[str]:
        """Every log id the policy trusts (roots + extra logs)."""
        ids: set[str] = set()
        for root in self.roots:
            ids |= root.log_ids
        for log in self.logs.values():
            ids.add(log.log_id)
        return frozenset(ids)


def parse_time(text: str) -> int:
    """Parse an RFC 3339 timestamp or a date (midnight UTC) into unix seconds."""
    value = text.strip().replace(" ", "T")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """Parse ``30d``/``12h``/``15m``/``90s``/``2w`` into seconds."""
    return int(text[:-1]) * _DURATION_UNITS[text[-1]]


_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def parse_size(value: int | str) -> int:
    """``files.maxSize`` in bytes: an integer, or ``"NUMBER UNIT"`` as the schema allows
    (``512MiB``, ``2 GB``; decimal and binary units)."""
    if isinstance(value, int):
        return value
    text = value.replace(" ", "")
    digits = text.rstrip("BKMGTi")
    return int(digits) * _SIZE_UNITS[text[len(digits):]]


def format_time(ts: int | None) -> str:
    """Unix seconds → RFC 3339 UTC (``-`` for None)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
