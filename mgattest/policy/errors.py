"""Typed errors of the policy engine and of verify-then-load."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgattest.errors import InputError, VerificationError

if TYPE_CHECKING:
    from mgattest.policy.verdict import Verdict


class PolicyError(InputError):
    """The policy file is malformed or inconsistent (exit 2); ``where`` is ``file:line``."""


class PolicyDenied(VerificationError):
    """The policy denied the artifact (exit 1). ``verdict`` holds every rule's outcome."""

    def __init__(self, message: str, *, verdict: "Verdict", **kwargs: Any) -> None:
        super().__init__(message, what=kwargs.pop("what", "policy"), **kwargs)
        self.verdict = verdict

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["verdict"] = self.verdict.to_dict()
        return out
