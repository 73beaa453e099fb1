"""mgattest.policy: policy files, the one verification pipeline, verdicts and their explanations.

Entry points (re-exported lazily, PEP 562: importing the package or
``mgattest.policy.errors`` stays cheap)::

    load_policy(path) -> Policy            lint_policy(path) -> list[Issue]
    policy_from_bytes(data, source) -> Policy
    evaluate(policy, attestations, model_check, content_reports, now=None) -> Verdict
    ModelVerifier(policy, TrustOptions, VerifyOptions).verify(source) -> VerificationOutcome
    policy_verifier(PolicyRequest) -> ModelVerifier   (``mgattest verify --policy/--builder-id``,
                                                      with ShortcutOptions)
    default_bundle_path, names_a_digest, attestation_to_json   attest's, for the pipeline's callers
    read_model_bytes(path) -> ModelBytes   model_check(...), scan_model(...): verify-then-load
    describe_policy(policy), verdict_tree(verdict)      explanations for people
    initial_policy(...), dump_policy(...), verify_for_init(...)   ``mgattest policy init``
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
    from mgattest.policy.evaluate import evaluate
    from mgattest.policy.explain import describe_policy, verdict_tree
    from mgattest.policy.init import dump_policy, initial_policy, verify_for_init
    from mgattest.policy.loader import lint_policy, load_policy, policy_from_bytes
    from mgattest.policy.model import Policy
    from mgattest.policy.modelbytes import (
        MAX_MODEL_FILES,
        ModelBytes,
        model_check,
        read_model_bytes,
        scan_model,
    )
    from mgattest.policy.pipeline import (
        ModelVerifier,
        PolicyRequest,
        TrustOptions,
        VerificationOutcome,
        VerifyOptions,
        policy_verifier,
    )
    from mgattest.policy.shortcuts import ShortcutOptions, effective_policy
    from mgattest.policy.verdict import Check, Verdict
    from mgattest.policy.modelbytes import FileBytes

_EXPORTS = LazyExports("mgattest.policy", {
    "PolicyDenied": "mgattest.policy.errors",
    "PolicyError": "mgattest.policy.errors",
    "load_policy": "mgattest.policy.loader",
    "lint_policy": "mgattest.policy.loader",
    "policy_from_bytes": "mgattest.policy.loader",
    "evaluate": "mgattest.policy.evaluate",
    "Policy": "mgattest.policy.model",
    "Verdict": "mgattest.policy.verdict",
    "Check": "mgattest.policy.verdict",
    "describe_policy": "mgattest.policy.explain",
    "verdict_tree": "mgattest.policy.explain",
    "dump_policy": "mgattest.policy.init",
    "initial_policy": "mgattest.policy.init",
    "verify_for_init": "mgattest.policy.init",
    "MAX_MODEL_FILES": "mgattest.policy.modelbytes",
    "ModelBytes": "mgattest.policy.modelbytes",
    "model_check": "mgattest.policy.modelbytes",
    "read_model_bytes": "mgattest.policy.modelbytes",
    "scan_model": "mgattest.policy.modelbytes",
    "ModelVerifier": "mgattest.policy.pipeline",
    "TrustOptions": "mgattest.policy.pipeline",
    "VerifyOptions": "mgattest.policy.pipeline",
    "VerificationOutcome": "mgattest.policy.pipeline",
    "PolicyRequest": "mgattest.policy.pipeline",
    "policy_verifier": "mgattest.policy.pipeline",
    "default_bundle_path": "mgattest.policy.pipeline",
    "names_a_digest": "mgattest.policy.pipeline",
    "attestation_to_json": "mgattest.policy.pipeline",
    "ShortcutOptions": "mgattest.policy.shortcuts",
    "effective_policy": "mgattest.policy.shortcuts",
    "FileBytes": "mgattest.policy.modelbytes",
})

__all__ = [
    "Check", "MAX_MODEL_FILES", "ModelBytes", "ModelVerifier", "Policy", "PolicyDenied",
    "PolicyError", "PolicyRequest", "ShortcutOptions", "TrustOptions", "Verdict",
    "VerificationOutcome", "VerifyOptions", "attestation_to_json", "default_bundle_path",
    "describe_policy", "dump_policy", "effective_policy", "evaluate", "initial_policy",
    "lint_policy", "load_policy", "model_check", "names_a_digest", "policy_from_bytes",
    "policy_verifier", "read_model_bytes", "scan_model", "verdict_tree", "verify_for_init",
    "FileBytes",
]


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return list(__all__)
