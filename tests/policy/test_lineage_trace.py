"""``trace_lineage`` on its own: statuses of inputs that are not artifacts (VCS sources,
unpinned), kinds, bounds, and candidates that never reach the graph unverified. The
attestations are verified facts built by tests/helpers/policy_facts.py; the signed,
end-to-end chain is tests/cli/test_cli_provenance.py."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from mgattest.attest import VerifiedAttestation
from mgattest.errors import VerificationError
from mgattest.policy import ArtifactDigest, Candidate, dependency_kind
from mgattest.policy._lineage import LineageLimitError, trace_lineage
from tests.helpers.policy_facts import KEY_A, KEY_B, attestation, digest_of, key_signer

SLSA = "https://slsa.dev/provenance/v1"


def with_deps(*deps: dict, name: str = "m.bin", key=KEY_A,
              payload: str = "00" * 32) -> VerifiedAttestation:
    predicate = {"buildDefinition": {"buildType": "x", "externalParameters": {},
                                     "resolvedDependencies": list(deps)},
                 "runDetails": {"builder": {"id": "b"}}}
    att = attestation({name: digest_of(name.encode())}, key_signer(key), predicate=predicate)
    return replace(att, payload_sha256=payload)


@dataclass
class Store:
    """A source whose candidates are tokens the fake verifier maps to attestations."""

    found: dict[str, list[Candidate]]
    name: str = "store"

    def find(self, digest: ArtifactDigest) -> list[Candidate]:
        return self.found.get(digest.text, [])


def verifier(results: dict[str, VerifiedAttestation]):
    def verify(candidate: Candidate, digest: ArtifactDigest) -> VerifiedAttestation:
        if candidate.label not in results:
            raise VerificationError("signature does not verify", where=candidate.label)
        return results[candidate.label]
    return verify


def test_vcs_sources_and_unpinned_inputs() -> None:
    root = with_deps({"uri": "git+https://github.com/acme/train@refs/heads/main",
                      "digest": {"gitCommit": "a" * 40}},
                     {"name": "dataset", "uri": "https://example/data"})
    graph = trace_lineage("m.bin", [root], [], verifier({}))
    statuses = {n.name: (n.kind, n.status) for n in graph.nodes[1:]}
    assert statuses == {"git+https://github.com/acme/train@refs/heads/main":
                        ("source", "source"), "dataset": ("dataset", "unpinned")}
    assert [n.name for n in graph.flagged] == ["dataset"]
    assert not graph.complete


def test_kinds() -> None:
    assert dependency_kind({"name": "x", "annotations": {"kind": "Tokenizer"}}) == "tokenizer"
    assert dependency_kind({"name": "dataset-wikitext"}) == "dataset"
    assert dependency_kind({"name": "base_model"}) == "base-model"
    assert dependency_kind({"name": "datasets-are-not-a-prefix"}) == "other"
    assert dependency_kind({"uri": "git+https://x"}) == "source"
    assert dependency_kind({"name": 3, "annotations": "kind"}) == "other"


def test_only_verified_candidates_count_and_each_once() -> None:
    dep = ArtifactDigest("sha256", "ab" * 32)
    root = with_deps({"name": "base-model", "digest": {"sha256": dep.hex}})
    base = with_deps(name="base.bin", key=KEY_B, payload="11" * 32)
    store = Store({dep.text: [Candidate("good", {}), Candidate("copy", {}),
                              Candidate("forged", {}), Candidate("log", None, "no envelope")]})
    graph = trace_lineage("m.bin", [root], [store],
                          verifier({"good": base, "copy": base}))
    node = graph.nodes[1]
    assert node.status == "verified" and node.attestations == (base,)
    assert [(r.source, r.reason) for r in node.rejected] == [
        ("forged", "signature does not verify"), ("log", "no envelope")]


def test_nothing_verified_is_unverifiable_and_not_followed() -> None:
    dep = ArtifactDigest("sha256", "cd" * 32)
    root = with_deps({"name": "base-model", "digest": {"sha256": dep.hex.upper()}})
    store = Store({dep.text: [Candidate("forged", {})]})
    graph = trace_lineage("m.bin", [root], [store], verifier({}))
    assert [n.status for n in graph.nodes] == ["verified", "unverifiable"]
    assert graph.nodes[1].digest == dep  # digests compared in lower case


def test_bounds() -> None:
    with pytest.raises(LineageLimitError):
        trace_lineage("m.bin", [], [], verifier({}), depth=33)
    wide = with_deps(*({"name": f"dataset-{i}", "digest": {"sha256": f"{i:064x}"}}
                       for i in range(1001)))
    with pytest.raises(LineageLimitError, match="more than 1000"):
        trace_lineage("m.bin", [wide], [], verifier({}))


def test_root_without_attestations() -> None:
    assert trace_lineage("m.bin", [], [], verifier({})).root.status == "unattested"
