"""The ``lineage`` clause of a rule, evaluated over a traced :class:`LineageGraph`.

Pure, like the evaluator that calls it: the graph holds only attestations that verified
(``policy._lineage``), found for dependencies that verified attestations name. For each
requirement, every traced dependency of its ``kind`` within ``depth`` levels must carry
attestations satisfying ``signedBy``, and at least ``minCount`` such dependencies must
exist (a model that stops naming its base model does not pass by omission).
"""

from __future__ import annotations

from typing import Any, Callable

from mgattest.attest import VerifiedAttestation
from mgattest.policy._lineage import LineageGraph
from mgattest.policy._model import Rule, SignedBy
from mgattest.policy._verdict import FAIL, PASS, Check

SignedByOutcome = Callable[[SignedBy, list[VerifiedAttestation]], tuple[bool, str, Any]]
"""The evaluator's ``signedBy`` judgement, bound to the policy and the time."""


def lineage_check(rule: Rule, graph: LineageGraph | None,
                  signed_by: SignedByOutcome) -> Check:
    """One ``lineage`` check of *rule*: PASS, or FAIL naming each input that fell short."""
    spec = rule.lineage
    if spec is None:
        raise ValueError(f"rule {rule.id!r} has no lineage clause")
    if graph is None:
        return Check(rule.id, "lineage", FAIL, "the model's lineage was not traced (no "
                     "attestation sources were given to the verifier)")
    evidence: list[dict[str, Any]] = []
    failures: list[str] = []
    for req in spec.require:
        inputs = [n for n in graph.nodes if 0 < n.depth <= spec.depth and n.kind == req.kind]
        if len(inputs) < req.min_count:
            failures.append(f"{len(inputs)} {req.kind} input(s) within depth {spec.depth}, "
                            f"{req.min_count} required")
        for node in inputs:
            item: dict[str, Any] = {"kind": req.kind, "name": node.name,
                                    "digest": node.digest.text if node.digest else None,
                                    "status": node.status, "depth": node.depth}
            if node.status != "verified":
                why = node.rejected[0].reason if node.rejected else "no attestation found"
                failures.append(f"{req.kind} {node.name!r} is {node.status}: {why}")
                item["ok"] = False
            else:
                ok, reason, _ = signed_by(req.signed_by, list(node.attestations))
                item.update(ok=ok, reason=reason)
                if not ok:
                    failures.append(f"{req.kind} {node.name!r}: {reason}")
            evidence.append(item)
    if failures:
        more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        return Check(rule.id, "lineage", FAIL, failures[0] + more, evidence)
    kinds = ", ".join(sorted({r.kind for r in spec.require}))
    return Check(rule.id, "lineage", PASS, f"every {kinds} input carries a verified "
                 "attestation from a required signer", evidence)
