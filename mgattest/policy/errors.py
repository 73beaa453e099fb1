"""Typed errors of the policy engine and of verify-then-load."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgattest.errors import InputError, VerificationError
from mgattest._jsonutil import JSONObject

if TYPE_CHECKING:
    from mgattest.policy.verdict import Verdict


class PolicyError(InputError):
    """The policy file is malformed or inconsistent (exit 2); ``where`` is ``file:line``."""


class PolicyDenied(VerificationError):
    """The policy denied the artifact (exit 1). ``verdict`` holds every rule's outcome."""

    def __init__(self, message: str, *, verdict: "Verdict", what: str | None = "policy",
                 where: str | None = None, **details: object) -> None:
        super().__init__(message, what=what, where=where, **details)
        self.verdict = verdict

    def to_dict(self) -> JSONObject:
        """A JSON-ready form: the error's fields and the verdict."""
        out = super().to_dict()
        out["verdict"] = self.verdict.to_dict()
        return out
