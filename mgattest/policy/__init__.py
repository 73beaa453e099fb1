"""mgattest.policy: policy files, their evaluation, and explanations of the verdicts.

Public surface::

    load_policy(path) -> Policy            lint_policy(path) -> list[Issue]
    evaluate(policy, attestations, model_check, content_reports, now=None) -> Verdict
    Policy, Verdict, Check, PolicyError, PolicyDenied

Submodules load lazily so importing the package stays cheap.
"""

from __future__ import annotations

from typing import Any

from mgattest.policy.errors import PolicyDenied, PolicyError

__all__ = ["Check", "Policy", "PolicyDenied", "PolicyError", "Verdict", "evaluate",
           "lint_policy", "load_policy", "policy_from_bytes"]

_LAZY = {
    "load_policy": "mgattest.policy.loader",
    "lint_policy": "mgattest.policy.loader",
    "policy_from_bytes": "mgattest.policy.loader",
    "evaluate": "mgattest.policy.evaluate",
    "Policy": "mgattest.policy.model",
    "Verdict": "mgattest.policy.verdict",
    "Check": "mgattest.policy.verdict",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mgattest.policy' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
