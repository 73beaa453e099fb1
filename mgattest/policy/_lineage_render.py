"""A :class:`~mgattest.policy._lineage.LineageGraph` as table rows, JSON and Mermaid.

Every fact shown comes from a verified attestation: the signer verified, the time a
verified SET or RFC 3161 timestamp covers, the builder and source its signed predicate
names. Inputs that are not attested, or whose attestations did not verify, are flagged
(``flagged: true`` in JSON; a red dashed class in Mermaid).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypedDict

from mgattest.attest import VerifiedAttestation
from mgattest.policy._lineage import FLAGGED, LineageGraph, LineageNode


@dataclass(frozen=True)
class AttestationFacts:
    """What one verified attestation of a node says, for display."""

    source: str
    signer: str
    verified_time: str | None  # RFC 3339, covered by a verified SET / timestamp
    builder: str | None
    source_repository: str | None
    predicate_type: str | None


class AttestationFactsJSON(TypedDict):
    source: str
    signer: str
    verifiedTime: str | None
    builder: str | None
    sourceRepository: str | None
    predicateType: str | None


class RejectedJSON(TypedDict):
    source: str
    reason: str


class NodeJSON(TypedDict):
    id: str
    name: str
    kind: str
    uri: str
    digest: str | None
    depth: int
    status: str
    flagged: bool
    attestations: list[AttestationFactsJSON]
    rejected: list[RejectedJSON]


class LineageJSON(TypedDict):
    root: str
    complete: bool
    depth: int
    nodes: list[NodeJSON]
    edges: list[dict[str, str]]
    flagged: list[str]


def attestation_facts(att: VerifiedAttestation) -> AttestationFacts:
    """Signer, verified time, builder and source repository of one attestation."""
    signer = att.signer
    if signer.kind == "certificate" and signer.identity:
        who = f"{signer.identity} ({signer.issuer})" if signer.issuer else signer.identity
    else:
        who = f"key sha256:{signer.key_fingerprint[:16]}"
    when = att.signing_time
    stamp = None if when is None else datetime.fromtimestamp(
        when.seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    builder, repository = _builder_and_source(att.predicate)
    repository = repository or signer.extensions.get("source_repository_uri")
    return AttestationFacts(att.source, who, stamp, builder, repository, att.predicate_type)


def _builder_and_source(predicate: Any) -> tuple[str | None, str | None]:
    if not isinstance(predicate, dict):
        return None, None
    run = predicate.get("runDetails")
    builder = run.get("builder") if isinstance(run, dict) else None
    builder_id = builder.get("id") if isinstance(builder, dict) else None
    definition = predicate.get("buildDefinition")
    external = definition.get("externalParameters") if isinstance(definition, dict) else None
    repository = None
    if isinstance(external, dict):
        source, workflow = external.get("source"), external.get("workflow")
        if isinstance(source, dict) and isinstance(source.get("uri"), str):
            repository = source["uri"]
        elif isinstance(workflow, dict) and isinstance(workflow.get("repository"), str):
            repository = workflow["repository"]
    return (builder_id if isinstance(builder_id, str) else None), repository


def lineage_to_json(graph: LineageGraph) -> LineageJSON:
    """The graph as JSON (``mgattest provenance --format json``)."""
    nodes: list[NodeJSON] = []
    for node in graph.nodes:
        facts = [attestation_facts(a) for a in node.attestations]
        nodes.append({
            "id": node.id, "name": node.name, "kind": node.kind, "uri": node.uri,
            "digest": node.digest.text if node.digest else None, "depth": node.depth,
            "status": node.status, "flagged": node.status in FLAGGED and node.depth > 0,
            "attestations": [{"source": f.source, "signer": f.signer,
                              "verifiedTime": f.verified_time, "builder": f.builder,
                              "sourceRepository": f.source_repository,
                              "predicateType": f.predicate_type} for f in facts],
            "rejected": [{"source": r.source, "reason": r.reason} for r in node.rejected],
        })
    return {"root": graph.root.name, "complete": graph.complete, "depth": graph.depth,
            "nodes": nodes,
            "edges": [{"from": e.parent, "to": e.child, "name": e.name, "kind": e.kind}
                      for e in graph.edges],
            "flagged": [n.id for n in graph.flagged]}


@dataclass(frozen=True)
class LineageRow:
    """One line of the table: a node and (when verified) one of its attestations."""

    node: str
    subject: str
    kind: str
    status: str
    signer: str
    verified_time: str
    builder: str
    source_repository: str
    note: str


def lineage_rows(graph: LineageGraph) -> list[LineageRow]:
    """Table rows, breadth first: one per verified attestation, or one per node."""
    rows = []
    for node in graph.nodes:
        indent = "  " * node.depth + ("└ " if node.depth else "")
        subject = indent + node.name + (f" {node.digest.text[:19]}…" if node.digest else "")
        note = node.rejected[0].reason if node.rejected and not node.attestations else ""
        if not node.attestations:
            rows.append(LineageRow(node.id, subject, node.kind, node.status, "", "", "", "",
                                   note))
        for att in node.attestations:
            f = attestation_facts(att)
            rows.append(LineageRow(node.id, subject, node.kind, node.status, f.signer,
                                   f.verified_time or "", f.builder or "",
                                   f.source_repository or "", note))
    return rows


# ------------------------------------------------------------------------- Mermaid

MERMAID_CLASSES = {
    "verified": "fill:#e6f4ea,stroke:#1e7e34,color:#000",
    "unverifiable": "fill:#fde8e8,stroke:#c81e1e,stroke-width:3px,color:#000",
    "unattested": "fill:#fff4e5,stroke:#c81e1e,stroke-width:3px,stroke-dasharray:5 5,"
                  "color:#000",
    "unpinned": "fill:#fff4e5,stroke:#c81e1e,stroke-width:3px,stroke-dasharray:5 5,"
                "color:#000",
    "source": "fill:#eef2ff,stroke:#3730a3,color:#000",
    "notfollowed": "fill:#f3f4f6,stroke:#6b7280,color:#000",
}
_SAFE_LABEL = re.compile(r"[A-Za-z0-9 ._:/@+=,()\-]")


def mermaid_text(text: str) -> str:
    """Label text for a quoted Mermaid label: anything but plain characters becomes a
    ``#NNN;`` entity, so a name cannot close the label or inject markup."""
    return "".join(ch if _SAFE_LABEL.fullmatch(ch) else f"#{ord(ch)};" for ch in text)


def _css_class(node: LineageNode) -> str:
    return "notfollowed" if node.status == "not-followed" else node.status


def lineage_to_mermaid(graph: LineageGraph) -> str:
    """A Mermaid ``flowchart`` (GitHub renders it in job summaries and pull requests)."""
    lines = ["flowchart TD"]
    for node in graph.nodes:
        label = [node.name if node.depth == 0 or node.name == node.kind
                 else f"{node.kind}: {node.name}"]
        if node.digest is not None:
            label.append(node.digest.text[:23] + "...")
        facts = [attestation_facts(a) for a in node.attestations]
        label.append(node.status if not facts else
                     f"verified: {facts[0].signer}" + (f" +{len(facts) - 1}"
                                                       if len(facts) > 1 else ""))
        text = "<br/>".join(mermaid_text(part) for part in label)
        lines.append(f'    {node.id}["{text}"]')
    for edge in graph.edges:
        lines.append(f'    {edge.parent} -->|"{mermaid_text(edge.kind)}"| {edge.child}')
    used = sorted({_css_class(n) for n in graph.nodes})
    for name in used:
        lines.append(f"    classDef {name} {MERMAID_CLASSES[name]}")
    for name in used:
        members = ",".join(n.id for n in graph.nodes if _css_class(n) == name)
        lines.append(f"    class {members} {name}")
    return "\n".join(lines) + "\n"
