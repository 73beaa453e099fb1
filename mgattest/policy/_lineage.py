"""A model's lineage: its attestations, the SLSA dependencies they name, and theirs.

:func:`trace_lineage` starts from the verified attestations of a model (the one verify
pipeline, ``ModelVerifier``, verified them), reads the ``resolvedDependencies`` of their
SLSA Provenance v1 predicates, and for each pinned digest asks the
:class:`AttestationSource` s (bundle files and directories, transparency logs) for
attestations of that digest. Every candidate is verified (:class:`DependencyVerifier`:
signature, log inclusion, identity, the digest a subject) before anything it says is
read; a candidate that fails is kept as *rejected*, with the reason, and never
followed. Dependencies of verified attestations are followed in turn, breadth first,
each digest visited once (cycles end there), down to a depth bound.

Nothing here prints; ``mgattest provenance`` renders :class:`LineageGraph`
(``policy._lineage_render``) and the policy ``lineage`` clause evaluates it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Literal, Protocol, Sequence

from mgattest._jsonutil import JSONObject
from mgattest.attest import VerifiedAttestation
from mgattest.errors import InputError, MgattestError

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
DEFAULT_DEPTH = 5
MAX_DEPTH = 32
MAX_NODES = 1000  # a lineage wider than this is refused rather than walked for ever

NodeStatus = Literal["verified", "unverifiable", "unattested", "unpinned", "source",
                     "not-followed"]
"""``verified``: at least one attestation of the digest verified. ``unverifiable``:
attestations were found but none verified. ``unattested``: none was found.
``unpinned``: the dependency names no digest. ``source``: a VCS commit (``gitCommit``),
vouched for by the builder, not by an attestation. ``not-followed``: beyond ``--depth``."""

FLAGGED: frozenset[str] = frozenset({"unverifiable", "unattested", "unpinned"})
"""Statuses that make a lineage incomplete."""

# Digest algorithms artifacts are attested by, strongest first (the one looked up).
_ARTIFACT_ALGORITHMS = ("sha256", "sha512", "sha384")
_VCS_ALGORITHMS = ("gitCommit", "sha1")

KNOWN_KINDS = ("base-model", "dataset", "code", "source", "tokenizer", "model")
"""Dependency kinds recognised in a dependency's name (``dataset-wikitext``)."""

@dataclass(frozen=True)
class ArtifactDigest:
    """One digest of an artifact, ``algorithm:hex``."""

    algorithm: str
    hex: str

    @property
    def text(self) -> str:
        return f"{self.algorithm}:{self.hex}"

@dataclass(frozen=True)
class Candidate:
    """An attestation an :class:`AttestationSource` found for a digest, not yet verified.

    ``bundle`` is None when the source found evidence it cannot hand over as a bundle
    (e.g. a log entry whose envelope the log does not serve); ``problem`` says why."""

    label: str  # where it came from: a file (and line), or a log URL and entry
    bundle: JSONObject | None
    problem: str | None = None

class AttestationSource(Protocol):
    """Finds attestations by the digest of an artifact they sign."""

    name: str

    def find(self, digest: ArtifactDigest) -> list[Candidate]:
        """Every attestation this source holds for *digest* (unverified)."""
        ...

class DependencyVerifier(Protocol):
    """Verifies one candidate attestation of *digest*: signature, log inclusion,
    identity, and that it signs *digest*; raises a ``VerificationError`` otherwise."""

    def __call__(self, candidate: Candidate, digest: ArtifactDigest) -> VerifiedAttestation:
        ...

@dataclass(frozen=True)
class Rejected:
    """A candidate attestation that did not verify, and why."""

    source: str
    reason: str

@dataclass(frozen=True)
class LineageNode:
    """One artifact of the lineage: the root model or a dependency."""

    id: str  # "n0" is the root
    name: str  # the model as given, or the dependency's name
    kind: str  # "model" for the root; the dependency's kind ("other" when unknown)
    uri: str
    digest: ArtifactDigest | None
    depth: int
    status: NodeStatus
    attestations: tuple[VerifiedAttestation, ...] = ()
    rejected: tuple[Rejected, ...] = ()

@dataclass(frozen=True)
class LineageEdge:
    """``parent`` was built from ``child`` (a ``resolvedDependencies`` entry)."""

    parent: str
    child: str
    name: str
    kind: str

@dataclass(frozen=True)
class LineageGraph:
    """The traced lineage: nodes (root first, breadth first) and edges."""

    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]
    depth: int

    @property
    def root(self) -> LineageNode:
        return self.nodes[0]

    @property
    def flagged(self) -> list[LineageNode]:
        """Inputs without a verified attestation (unverifiable, unattested, unpinned)."""
        return [n for n in self.nodes[1:] if n.status in FLAGGED]

    @property
    def complete(self) -> bool:
        """True when the root and every traced input verified (VCS sources aside)."""
        return self.root.status == "verified" and not self.flagged

    def children(self, node_id: str) -> list[tuple[LineageEdge, LineageNode]]:
        """The dependencies of one node, with the edges naming them."""
        by_id = {n.id: n for n in self.nodes}
        return [(e, by_id[e.child]) for e in self.edges if e.parent == node_id]

@dataclass(frozen=True)
class Dependency:
    """A ``resolvedDependencies`` entry as read from a verified SLSA predicate."""

    name: str
    uri: str
    kind: str
    digest: ArtifactDigest | None
    vcs: bool  # pinned by a VCS commit only

def dependency_kind(entry: JSONObject) -> str:
    """The kind of a dependency: its ``annotations.kind`` when it is a string, else a
    known kind its ``name`` is or starts with (``dataset``, ``dataset-wikitext``,
    ``base-model``), ``source`` for a ``git+`` URI, else ``other``."""
    annotations = entry.get("annotations")
    if isinstance(annotations, dict):
        kind = annotations.get("kind")
        if isinstance(kind, str) and kind:
            return kind.lower()
    name = entry.get("name")
    if isinstance(name, str):
        lowered = name.lower().replace("_", "-")
        for known in KNOWN_KINDS:
            if lowered == known or lowered.startswith((known + "-", known + ":",
                                                       known + "/")):
                return known
    uri = entry.get("uri")
    if isinstance(uri, str) and uri.startswith("git+"):
        return "source"
    return "other"

def dependencies_of(att: VerifiedAttestation) -> list[Dependency]:
    """The ``resolvedDependencies`` of a verified SLSA Provenance v1 attestation (none
    for other predicates). Malformed entries are skipped, never guessed at."""
    if att.predicate_type != SLSA_PROVENANCE_V1 or not isinstance(att.predicate, dict):
        return []
    definition = att.predicate.get("buildDefinition")
    entries = definition.get("resolvedDependencies") if isinstance(definition, dict) else None
    if not isinstance(entries, list):
        return []
    out = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        name, uri = entry.get("name"), entry.get("uri")
        name = name if isinstance(name, str) else ""
        uri = uri if isinstance(uri, str) else ""
        digests = entry.get("digest")
        digests = digests if isinstance(digests, dict) else {}
        digest, vcs = _lookup_digest(digests)
        out.append(Dependency(name or uri or "(unnamed)", uri, dependency_kind(entry),
                              digest, vcs))
    return out

def _lookup_digest(digests: dict[str, object]) -> tuple[ArtifactDigest | None, bool]:
    for algorithm in _ARTIFACT_ALGORITHMS:
        value = digests.get(algorithm)
        if isinstance(value, str) and value:
            return ArtifactDigest(algorithm, value.lower()), False
    for algorithm in _VCS_ALGORITHMS:
        value = digests.get(algorithm)
        if isinstance(value, str) and value:
            return ArtifactDigest(algorithm, value.lower()), True
    return None, False

@dataclass
class _Walk:
    """The mutable state of one trace."""

    sources: Sequence[AttestationSource]
    verify: DependencyVerifier
    depth: int
    nodes: list[LineageNode] = field(default_factory=list)
    edges: list[LineageEdge] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)  # digest text → node id

    def add(self, node: LineageNode) -> None:
        if len(self.nodes) >= MAX_NODES:
            raise LineageLimitError(f"the lineage has more than {MAX_NODES} artifacts",
                                    what="lineage", where=node.name)
        self.nodes.append(node)
        if node.digest is not None:
            self.seen[node.digest.text] = node.id

class LineageLimitError(InputError):
    """A lineage too large to trace (an input problem, not a verdict)."""

def trace_lineage(root_name: str, root_attestations: Sequence[VerifiedAttestation],
                  sources: Sequence[AttestationSource], verify: DependencyVerifier, *,
                  depth: int = DEFAULT_DEPTH, root_digest: ArtifactDigest | None = None,
                  root_rejected: Sequence[Rejected] = ()) -> LineageGraph:
    """The lineage of a model whose own attestations were verified by the caller.

    *depth* bounds how many dependency levels are followed (1: the model's direct
    inputs only). A dependency digest already in the graph gets an edge, not a node.
    """
    if not 0 <= depth <= MAX_DEPTH:
        raise LineageLimitError(f"--depth must be between 0 and {MAX_DEPTH}", what="--depth")
    walk = _Walk(sources, verify, depth)
    status: NodeStatus = "verified" if root_attestations else (
        "unverifiable" if root_rejected else "unattested")
    walk.add(LineageNode("n0", root_name, "model", "", root_digest, 0, status,
                         tuple(root_attestations), tuple(root_rejected)))
    queue: deque[LineageNode] = deque([walk.nodes[0]])
    while queue:
        parent = queue.popleft()
        for dep in _unique(d for a in parent.attestations for d in dependencies_of(a)):
            if dep.digest is not None and dep.digest.text in walk.seen:
                walk.edges.append(LineageEdge(parent.id, walk.seen[dep.digest.text],
                                              dep.name, dep.kind))
                continue
            child = _visit(walk, dep, parent.depth + 1)
            walk.edges.append(LineageEdge(parent.id, child.id, dep.name, dep.kind))
            if child.status == "verified":
                queue.append(child)
    return LineageGraph(tuple(walk.nodes), tuple(walk.edges), depth)

def _unique(deps: Iterable[Dependency]) -> list[Dependency]:
    """One entry per digest (several attestations of a node may name the same input)."""
    out, keys = [], set()
    for dep in deps:
        key = dep.digest.text if dep.digest else f"{dep.name}|{dep.uri}"
        if key not in keys:
            keys.add(key)
            out.append(dep)
    return out

def _visit(walk: _Walk, dep: Dependency, depth: int) -> LineageNode:
    """The node of one dependency: looked up and verified, unless it cannot be."""
    node_id = f"n{len(walk.nodes)}"

    def node(status: NodeStatus, atts: Sequence[VerifiedAttestation] = (),
             rejected: Sequence[Rejected] = ()) -> LineageNode:
        made = LineageNode(node_id, dep.name, dep.kind, dep.uri, dep.digest, depth, status,
                           tuple(atts), tuple(rejected))
        walk.add(made)
        return made

    if dep.digest is None:
        return node("unpinned")
    if dep.vcs:
        return node("source")
    if depth > walk.depth:
        return node("not-followed")
    verified, rejected = verify_candidates(walk.sources, walk.verify, dep.digest)
    if verified:
        return node("verified", verified, rejected)
    return node("unverifiable" if rejected else "unattested", (), rejected)

def verify_candidates(sources: Sequence[AttestationSource], verify: DependencyVerifier,
                      digest: ArtifactDigest
                      ) -> tuple[list[VerifiedAttestation], list[Rejected]]:
    """Every attestation the sources hold for *digest*, verified, and those rejected.

    The same bundle found twice (a file and a log) is verified once."""
    verified: list[VerifiedAttestation] = []
    rejected: list[Rejected] = []
    payloads: set[str] = set()
    for source in sources:
        for candidate in source.find(digest):
            if candidate.bundle is None:
                rejected.append(Rejected(candidate.label, candidate.problem or "no bundle"))
                continue
            try:
                att = verify(candidate, digest)
            except MgattestError as exc:  # bad input or a failed check: not attested
                rejected.append(Rejected(candidate.label, exc.message))
                continue
            key = f"{att.payload_sha256 or candidate.label}|{att.signer.distinct_id}"
            if key not in payloads:
                payloads.add(key)
                verified.append(att)
    return verified, rejected
