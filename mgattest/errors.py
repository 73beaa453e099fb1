"""The error hierarchy shared by every mgattest package.

Every failure mgattest reports is one of these. Each carries a human message plus
structured fields naming *what* failed and *where* (a file, shard, byte range, log
index, rule id ...), so the CLI can print a precise reason and ``--json`` output can
carry it for machines.

Exit codes (CLI): :class:`VerificationError` → 1, :class:`InputError` → 2.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from mgattest._jsonutil import JSONObject


class ErrorJSON(TypedDict):
    """:meth:`MgattestError.to_dict`: the error's class name and message, plus *what*,
    *where* and the JSON-ready details when set (details are free-form per error)."""

    error: str
    message: str
    what: NotRequired[str]
    where: NotRequired[str]
    details: NotRequired[JSONObject]


class MgattestError(Exception):
    """Base class of every error mgattest raises on purpose."""

    exit_code: int = 2

    def __init__(self, message: str, *, what: str | None = None, where: str | None = None,
                 **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.what = what
        self.where = where
        self.details = details

    def to_dict(self) -> ErrorJSON:
        """A JSON-ready description of the failure."""
        out: ErrorJSON = {"error": type(self).__name__, "message": self.message}
        if self.what is not None:
            out["what"] = self.what
        if self.where is not None:
            out["where"] = self.where
        if self.details:
            out["details"] = {k: v for k, v in self.details.items() if _jsonable(v)}
        return out

    def __str__(self) -> str:
        return self.message


class InputError(MgattestError):
    """Bad usage or malformed input (exit code 2). Never a security verdict."""

    exit_code = 2


class VerificationError(MgattestError):
    """Something was checked and found wrong (exit code 1). Fails closed."""

    exit_code = 1


def _jsonable(value: object) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, dict))
