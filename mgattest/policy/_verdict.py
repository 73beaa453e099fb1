"""The structured outcome of a policy evaluation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TypedDict

from mgattest._jsonutil import JSONObject

PASS, FAIL, WARN, WAIVED, SKIP = "pass", "fail", "warn", "waived", "skip"


class CheckJSON(TypedDict):
    """The JSON form of a :class:`Check` (``Verdict.to_dict()["checks"]`` items)."""

    rule: str
    clause: str
    status: str
    reason: str
    evidence: list[JSONObject]
    id: str


class ClearanceJSON(TypedDict):
    """The JSON form of a :class:`Clearance`."""

    loadable: bool
    reason: str
    pickle: str
    rules: list[str]
    attestations: list[str]
    code: bool


class PolicyRefJSON(TypedDict):
    """Which policy decided: its source (file) and digest."""

    source: str
    digest: str


class VerdictJSON(TypedDict):
    """The JSON form of a :class:`Verdict` (``mgattest verify --json``, PolicyDenied)."""

    allowed: bool
    decision: str
    mode: str
    policy: PolicyRefJSON
    evaluatedAt: int
    artifacts: list[JSONObject]
    checks: list[CheckJSON]
    reasons: list[str]
    clearance: dict[str, ClearanceJSON]


@dataclass
class Check:
    """One clause of one rule: status, the reason, and the evidence it rests on."""

    rule: str  # rule id ("policy" for policy-wide checks)
    clause: str  # e.g. "signedBy", "attestations[0].provenance.builderId", "cel:no-fork"
    status: str  # pass | fail | warn | waived | skip
    reason: str
    evidence: list[JSONObject] = field(default_factory=list)

    @property
    def id(self) -> str:
        """``rule.clause``."""
        return f"{self.rule}.{self.clause}"

    def to_dict(self) -> CheckJSON:
        """A JSON-ready form (the fields, evidence copied as ``asdict`` does, and ``id``)."""
        return {"rule": self.rule, "clause": self.clause, "status": self.status,
                "reason": self.reason, "evidence": asdict(self)["evidence"], "id": self.id}


@dataclass(frozen=True)
class Clearance:
    """What the verdict established about one file: may ``load`` deserialise it, and
    with which permissions.

    A file is *loadable* when at least one rule judged it (matched and not ignored),
    every rule that judged it counted an attestation covering it from a signer that
    rule trusts, and none of its ``files``, ``digests`` or ``content`` clauses failed
    for it (a waived failure counts as passed). Permissions are the strictest of the
    rules that judged it: ``pickle`` is ``deny`` if any of them says deny.
    """

    loadable: bool
    reason: str  # why (not) loadable
    pickle: str = "deny"  # deny | scan | restricted
    rules: tuple[str, ...] = ()  # ids of the rules that judged the file
    attestations: tuple[str, ...] = ()  # sources of the attestations that covered it
    # May it run as model code (transformers trust_remote_code)? Only when loadable and
    # every rule that judged it lists its digest in content.remoteCode.allow.
    code: bool = False

    def to_dict(self) -> ClearanceJSON:
        """A JSON-ready form."""
        return {"loadable": self.loadable, "reason": self.reason, "pickle": self.pickle,
                "rules": list(self.rules), "attestations": list(self.attestations),
                "code": self.code}


@dataclass
class Verdict:
    """Every check, in deterministic order, and the decision they add up to."""

    allowed: bool
    decision: str  # "allow" | "deny"
    mode: str
    policy_source: str
    policy_digest: str
    evaluated_at: int
    artifacts: list[JSONObject]
    checks: list[Check]
    # name → Clearance of every present file (empty when nothing was evaluated).
    clearance: dict[str, Clearance] = field(default_factory=dict)
    # True when some clause failed, also when warn mode turned the failure into a warning.
    clause_failed: bool = False

    @property
    def passed(self) -> bool:
        """Allowed with no clause failed (warn mode lets a failure through; this does not)."""
        return self.allowed and not self.clause_failed and not self.failures

    @property
    def failures(self) -> list[Check]:
        """Checks that failed (in warn mode they did not deny)."""
        return [c for c in self.checks if c.status == FAIL]

    @property
    def reasons(self) -> list[str]:
        """``rule.clause: reason`` for every failure."""
        return [f"{c.id}: {c.reason}" for c in self.failures]

    def to_dict(self) -> VerdictJSON:
        """A JSON-ready form (stable key order)."""
        return {
            "allowed": self.allowed,
            "decision": self.decision,
            "mode": self.mode,
            "policy": {"source": self.policy_source, "digest": self.policy_digest},
            "evaluatedAt": self.evaluated_at,
            "artifacts": self.artifacts,
            "checks": [c.to_dict() for c in self.checks],
            "reasons": self.reasons,
            "clearance": {n: c.to_dict() for n, c in sorted(self.clearance.items())},
        }
