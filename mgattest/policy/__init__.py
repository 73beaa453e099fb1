"""mgattest.policy: policy files, the one verification pipeline, verdicts and their explanations.

Entry points (re-exported lazily, PEP 562: importing the package or
``mgattest.policy.errors`` stays cheap)::

    load_policy(path) -> Policy            lint_policy(path) -> list[Issue]
    policy_from_bytes(data, source) -> Policy
    evaluate(policy, attestations, model_check, content_reports, now=None) -> Verdict
    is_model_code(name)                    the files content.remoteCode judges (``*.py``)
    ModelVerifier(policy, TrustOptions, VerifyOptions).verify(source) -> VerificationOutcome
    policy_verifier(PolicyRequest) -> ModelVerifier   (``mgattest verify --policy/--builder-id``,
                                                      with ShortcutOptions)
    default_bundle_path, names_a_digest, attestation_to_json   attest's, for the pipeline's callers
    read_model_bytes(path) -> ModelBytes   model_check(...), scan_model(...): verify-then-load
    scan_stored_model(StoredModel) -> reports   content of an Ollama / OCI-layout model's blobs
    describe_policy(policy), verdict_tree(verdict)      explanations for people
    initial_policy(...), dump_policy(...), verify_for_init(...)   ``mgattest policy init``
    add_key(...), retire_key(...) -> KeyEdit   ``mgattest policy key add|retire`` (rotation)
    audit_tree(root, ModelVerifier, AuditOptions) -> AuditReport   ``mgattest audit``,
        ``verify --all``; audit_to_json / audit_to_sarif / audit_to_junit render it
    trace_provenance(model, ModelVerifier, LineageRequest) -> LineageGraph   ``mgattest
        provenance``: attestations found by digest in AttestationSources (BundleFiles,
        LogIndex), verified, SLSA resolvedDependencies followed; lineage_to_json /
        lineage_to_mermaid / lineage_rows render it
    Policy, Verdict, Check, PolicyError, PolicyDenied

Typed errors live in the public module :mod:`mgattest.policy.errors`. Every other module
is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgattest._lazy import LazyExports

if TYPE_CHECKING:  # the public names, for type checkers; at run time they load lazily
    # attest's helpers the pipeline module re-exports (policy.pipeline.__getattr__)
    from mgattest.attest import attestation_to_json, default_bundle_path, names_a_digest
    from mgattest.policy.errors import PolicyDenied, PolicyError
    from mgattest.policy._evaluate import evaluate, is_model_code
    from mgattest.policy._explain import describe_policy, verdict_tree
    from mgattest.policy._init import dump_policy, initial_policy, verify_for_init
    from mgattest.policy._loader import lint_policy, load_policy, policy_from_bytes
    from mgattest.policy._keyedit import KeyEdit, add_key, parse_window_time, retire_key
    from mgattest.policy._model import Policy
    from mgattest.policy._modelbytes import (
        MAX_MODEL_FILES,
        ModelBytes,
        model_check,
        read_model_bytes,
        scan_model,
    )
    from mgattest.policy._pipeline import (
        ModelVerifier,
        PolicyRequest,
        TrustOptions,
        VerificationOutcome,
        VerifyOptions,
        policy_verifier,
    )
    from mgattest.policy._shortcuts import ShortcutOptions, effective_policy
    from mgattest.policy._verdict import Check, Verdict
    from mgattest.policy._modelbytes import FileBytes
    from mgattest.policy._init import GeneratedPolicy, generate_policy
    from mgattest.policy._treeaudit import (AUDIT_STATUSES, ArtifactResult, AuditFinding,
                                            AuditOptions, AuditReport, audit_tree)
    from mgattest.policy._auditformats import audit_to_json, audit_to_junit, audit_to_sarif
    from mgattest.policy._stores import scan_stored_model
    from mgattest.policy._lineage import (ArtifactDigest, AttestationSource, Candidate,
                                          LineageEdge, LineageGraph, LineageNode,
                                          dependency_kind)
    from mgattest.policy._lineage_model import LineageRequest, trace_provenance
    from mgattest.policy._lineage_render import lineage_rows, lineage_to_json, lineage_to_mermaid
    from mgattest.policy._lineage_sources import BundleFiles, LogIndex

_EXPORTS = LazyExports("mgattest.policy", {
    "PolicyDenied": "mgattest.policy.errors",
    "PolicyError": "mgattest.policy.errors",
    "load_policy": "mgattest.policy._loader",
    "lint_policy": "mgattest.policy._loader",
    "policy_from_bytes": "mgattest.policy._loader",
    "KeyEdit": "mgattest.policy._keyedit",
    "add_key": "mgattest.policy._keyedit",
    "retire_key": "mgattest.policy._keyedit",
    "parse_window_time": "mgattest.policy._keyedit",
    "evaluate": "mgattest.policy._evaluate",
    "is_model_code": "mgattest.policy._evaluate",
    "Policy": "mgattest.policy._model",
    "Verdict": "mgattest.policy._verdict",
    "Check": "mgattest.policy._verdict",
    "describe_policy": "mgattest.policy._explain",
    "verdict_tree": "mgattest.policy._explain",
    "dump_policy": "mgattest.policy._init",
    "initial_policy": "mgattest.policy._init",
    "verify_for_init": "mgattest.policy._init",
    "MAX_MODEL_FILES": "mgattest.policy._modelbytes",
    "ModelBytes": "mgattest.policy._modelbytes",
    "model_check": "mgattest.policy._modelbytes",
    "read_model_bytes": "mgattest.policy._modelbytes",
    "scan_model": "mgattest.policy._modelbytes",
    "ModelVerifier": "mgattest.policy._pipeline",
    "TrustOptions": "mgattest.policy._pipeline",
    "VerifyOptions": "mgattest.policy._pipeline",
    "VerificationOutcome": "mgattest.policy._pipeline",
    "PolicyRequest": "mgattest.policy._pipeline",
    "policy_verifier": "mgattest.policy._pipeline",
    "default_bundle_path": "mgattest.policy._pipeline",
    "names_a_digest": "mgattest.policy._pipeline",
    "attestation_to_json": "mgattest.policy._pipeline",
    "ShortcutOptions": "mgattest.policy._shortcuts",
    "effective_policy": "mgattest.policy._shortcuts",
    "FileBytes": "mgattest.policy._modelbytes",
    "GeneratedPolicy": "mgattest.policy._init",
    "generate_policy": "mgattest.policy._init",
    # auditing a repository tree (mgattest audit, verify --all) and its report formats
    "AUDIT_STATUSES": "mgattest.policy._treeaudit",
    "ArtifactResult": "mgattest.policy._treeaudit",
    "AuditFinding": "mgattest.policy._treeaudit",
    "AuditOptions": "mgattest.policy._treeaudit",
    "AuditReport": "mgattest.policy._treeaudit",
    "audit_tree": "mgattest.policy._treeaudit",
    "audit_to_json": "mgattest.policy._auditformats",
    "audit_to_junit": "mgattest.policy._auditformats",
    "audit_to_sarif": "mgattest.policy._auditformats",
    "scan_stored_model": "mgattest.policy._stores",
    # a model's lineage (mgattest provenance, the lineage clause)
    "ArtifactDigest": "mgattest.policy._lineage",
    "AttestationSource": "mgattest.policy._lineage",
    "Candidate": "mgattest.policy._lineage",
    "LineageEdge": "mgattest.policy._lineage",
    "LineageGraph": "mgattest.policy._lineage",
    "LineageNode": "mgattest.policy._lineage",
    "dependency_kind": "mgattest.policy._lineage",
    "LineageRequest": "mgattest.policy._lineage_model",
    "trace_provenance": "mgattest.policy._lineage_model",
    "lineage_rows": "mgattest.policy._lineage_render",
    "lineage_to_json": "mgattest.policy._lineage_render",
    "lineage_to_mermaid": "mgattest.policy._lineage_render",
    "BundleFiles": "mgattest.policy._lineage_sources",
    "LogIndex": "mgattest.policy._lineage_sources",
})

__all__ = [
    "is_model_code",
    "KeyEdit", "add_key", "retire_key", "parse_window_time",
    "attestation_to_json", "Check", "default_bundle_path", "describe_policy",
    "dump_policy", "effective_policy", "evaluate", "FileBytes", "initial_policy",
    "lint_policy", "load_policy", "MAX_MODEL_FILES", "model_check", "ModelBytes",
    "ModelVerifier", "names_a_digest", "Policy", "policy_from_bytes", "policy_verifier",
    "PolicyDenied", "PolicyError", "PolicyRequest", "read_model_bytes", "scan_model",
    "ShortcutOptions", "TrustOptions", "Verdict", "verdict_tree", "VerificationOutcome",
    "verify_for_init", "VerifyOptions",
    "GeneratedPolicy", "generate_policy", "scan_stored_model",
    "ArtifactResult", "AUDIT_STATUSES", "audit_to_json", "audit_to_junit", "audit_to_sarif",
    "audit_tree", "AuditFinding", "AuditOptions", "AuditReport",
    "ArtifactDigest", "AttestationSource", "BundleFiles", "Candidate", "dependency_kind",
    "LineageEdge", "LineageGraph", "LineageNode", "LineageRequest", "lineage_rows",
    "lineage_to_json", "lineage_to_mermaid", "LogIndex", "trace_provenance",
]


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return list(__all__)
