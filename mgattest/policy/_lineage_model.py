"""The lineage of one model: its own attestations through ``ModelVerifier``, then
:func:`~mgattest.policy._lineage.trace_lineage` over their dependencies.

The model's candidate bundles are its default ``<model>.sigstore.json`` and whatever
the sources hold for the digests of its files. Each bundle file is verified on its own
by the one verify pipeline (``ModelVerifier.verify``: signature, log inclusion,
identity, and every file of the model against the subjects), so one bad bundle is
reported without hiding the good ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

from mgattest.errors import MgattestError
from mgattest.policy._lineage import (
    DEFAULT_DEPTH,
    ArtifactDigest,
    AttestationSource,
    Candidate,
    DependencyVerifier,
    LineageGraph,
    Rejected,
    trace_lineage,
)

if TYPE_CHECKING:
    from mgattest.attest import VerifiedAttestation
    from mgattest.policy._pipeline import ModelVerifier


@dataclass(frozen=True)
class LineageRequest:
    """What ``mgattest provenance`` traces: where attestations are looked up, how deep."""

    sources: tuple[AttestationSource, ...] = ()
    depth: int = DEFAULT_DEPTH


def model_digests(model: str) -> list[ArtifactDigest]:
    """The digests the model's attestations sign: a digest target itself, a stored
    model's manifest, or the SHA-256 of each file."""
    from mgattest.attest import digest_target, hash_model, resolve_stored_model  # noqa: PLC0415 - heavy

    target = digest_target(model)
    if target is None:
        stored = resolve_stored_model(model)
        target = stored.target if stored is not None else None
    if target is not None:
        return [ArtifactDigest(target.algorithm, target.hex_digest.lower())]
    digests = hash_model(model)
    return [ArtifactDigest("sha256", f.digest["sha256"].lower())
            for f in sorted(digests.files, key=lambda f: f.name) if "sha256" in f.digest]


def trace_provenance(model: str, verifier: ModelVerifier,
                     request: LineageRequest) -> LineageGraph:
    """Verify the model's attestations with *verifier* (the one verify pipeline, with
    or without a policy) and trace the lineage they record; dependencies are verified
    with the same trust (the policy's, or the verifier's trust options)."""
    from mgattest.attest import default_bundle_path, resolve_model_path  # noqa: PLC0415 - heavy

    model = os.fspath(resolve_model_path(model))
    digests = model_digests(model)
    files: list[str] = []
    loose: list[Candidate] = []  # found without a file (a log): verified by digest
    default = str(default_bundle_path(model))
    if os.path.isfile(default):
        files.append(default)
    for digest in digests:
        for source in request.sources:
            for candidate in source.find(digest):
                path = _file_of(candidate.label)
                if path is not None and candidate.bundle is not None:
                    if path not in files:
                        files.append(path)
                else:
                    loose.append(candidate)
    attestations, rejected = _verify_files(model, files, verifier, request)
    dependency_verifier = dependency_verifier_for(verifier)
    whole = len(digests) == 1  # a log hit proves a one-file model (or a digest) only
    for candidate in loose:
        if candidate.bundle is None:
            rejected.append(Rejected(candidate.label, candidate.problem or "no bundle"))
        elif not whole:
            rejected.append(Rejected(candidate.label, "signs one file of a multi-file model; "
                                     "pass its bundle file to check every file"))
        else:
            try:
                att = dependency_verifier(candidate, digests[0])
            except MgattestError as exc:
                rejected.append(Rejected(candidate.label, exc.message))
                continue
            if all(_key(a) != _key(att) for a in attestations):
                attestations.append(att)
    return trace_lineage(model, attestations, request.sources, dependency_verifier,
                         depth=request.depth, root_digest=digests[0] if whole else None,
                         root_rejected=rejected)


def dependency_verifier_for(verifier: ModelVerifier) -> DependencyVerifier:
    """Dependencies are verified under the model's trust: its policy's, or its options'."""
    from mgattest.policy._lineage_sources import (  # noqa: PLC0415 - loads attest
        policy_dependency_verifier,
        trust_verifier,
    )

    if verifier.policy is not None:
        return policy_dependency_verifier(verifier.policy, verifier.trust)
    return trust_verifier(verifier.trust, allow_unlogged=verifier.options.allow_unlogged)


def _file_of(label: str) -> str | None:
    """The bundle file a candidate was read from (``path`` or ``path:line``)."""
    if os.path.isfile(label):
        return label
    head, sep, line = label.rpartition(":")
    return head if sep and line.isdigit() and os.path.isfile(head) else None


def _verify_files(model: str, files: Sequence[str], verifier: ModelVerifier,
                  lineage: LineageRequest) -> tuple[list[VerifiedAttestation], list[Rejected]]:
    """Each bundle file through the verify pipeline, alone (a policy's ``lineage``
    clauses look up inputs in the same sources)."""
    from mgattest.policy._pipeline import VerifyOptions  # noqa: PLC0415 - cycle: the pipeline imports the evaluator

    attestations: list[VerifiedAttestation] = []
    rejected: list[Rejected] = []
    for path in files:
        one = type(verifier)(verifier.policy, verifier.trust,
                             replace(verifier.options or VerifyOptions(), bundles=(path,),
                                     lineage=lineage))
        try:
            outcome = one.verify(model)
        except MgattestError as exc:
            rejected.append(Rejected(path, exc.message))
            continue
        if not outcome.allowed:
            reason = outcome.verdict.reasons[0] if outcome.verdict and \
                outcome.verdict.reasons else "denied by the policy"
            rejected.append(Rejected(path, reason))
            continue
        attestations.extend(a for a in outcome.attestations
                            if _key(a) not in {_key(b) for b in attestations})
    return attestations, rejected


def _key(att: VerifiedAttestation) -> tuple[str | None, str]:
    """The same signed statement by the same signer (a bundle copied elsewhere)."""
    return att.payload_sha256, att.signer.distinct_id
