"""Typed errors of ``mgattest.inspect``."""

from __future__ import annotations

from mgattest.errors import InputError, VerificationError


class InspectInputError(InputError):
    """Bad usage of the inspector (e.g. a path that does not exist)."""


class UnsafeContentError(VerificationError):
    """Content reached outside the allow-list, or a format check failed (fail closed).

    ``details`` carries ``module``/``name`` for a refused global when known.
    """


class RestrictedLoadError(InputError):
    """The data could not be deserialised at all (corrupt, truncated, wrong format)."""
