"""The structured outcome of a policy evaluation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL, WARN, WAIVED, SKIP = "pass", "fail", "warn", "waived", "skip"


@dataclass
class Check:
    """One clause of one rule: status, the reason, and the evidence it rests on."""

    rule: str  # rule id ("policy" for policy-wide checks)
    clause: str  # e.g. "signedBy", "attestations[0].provenance.builderId", "cel:no-fork"
    status: str  # pass | fail | warn | waived | skip
    reason: str
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.rule}.{self.clause}"


@dataclass
class Verdict:
    """Every check, in deterministic order, and the decision they add up to."""

    allowed: bool
    decision: str  # "allow" | "deny"
    mode: str
    policy_source: str
    policy_digest: str
    evaluated_at: int
    artifacts: list[dict[str, Any]]
    checks: list[Check]

    @property
    def failures(self) -> list[Check]:
        """Checks that failed (in warn mode they did not deny)."""
        return [c for c in self.checks if c.status == FAIL]

    @property
    def reasons(self) -> list[str]:
        """``rule.clause: reason`` for every failure."""
        return [f"{c.id}: {c.reason}" for c in self.failures]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (stable key order)."""
        return {
            "allowed": self.allowed,
            "decision": self.decision,
            "mode": self.mode,
            "policy": {"source": self.policy_source, "digest": self.policy_digest},
            "evaluatedAt": self.evaluated_at,
            "artifacts": self.artifacts,
            "checks": [asdict(c) | {"id": c.id} for c in self.checks],
            "reasons": self.reasons,
        }
