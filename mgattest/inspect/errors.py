"""Typed errors of ``mgattest.inspect``."""

from __future__ import annotations

from mgattest.errors import InputError, VerificationError


class InspectInputError(InputError):
    """Bad usage of the inspector (e.g. a path that does not exist)."""


class UnsafeContentError(VerificationError):
    """Content reached outside the allow-list, a format check failed, or deserialising
    would need a capability the policy does not grant (fail closed). The one definition:
    the restricted unpickler, the format checks and ``mgattest.load``'s loaders raise it.

    ``details`` carries ``module``/``name`` for a refused global when known.
    """


class RestrictedLoadError(InputError):
    """The data could not be deserialised at all (corrupt, truncated, wrong format)."""
