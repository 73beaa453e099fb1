"""Typed errors of the policy engine and of verify-then-load."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgattest.errors import ErrorJSON, InputError, VerificationError

if TYPE_CHECKING:
    from mgattest.policy._verdict import Verdict, VerdictJSON


class PolicyDeniedJSON(ErrorJSON):
    """:meth:`PolicyDenied.to_dict`: the error's fields and every rule's outcome."""

    verdict: VerdictJSON


class PolicyError(InputError):
    """The policy file is malformed or inconsistent (exit 2); ``where`` is ``file:line``."""


class PolicyDenied(VerificationError):
    """The policy denied the artifact (exit 1). ``verdict`` holds every rule's outcome."""

    def __init__(self, message: str, *, verdict: "Verdict", what: str | None = "policy",
                 where: str | None = None, **details: object) -> None:
        super().__init__(message, what=what, where=where, **details)
        self.verdict = verdict

    def to_dict(self) -> PolicyDeniedJSON:
        """A JSON-ready form: the error's fields and the verdict."""
        return {**super().to_dict(), "verdict": self.verdict.to_dict()}
