"""Typed errors of the library integrations."""

from __future__ import annotations

from mgattest.errors import InputError, VerificationError


class RemoteCodeDenied(VerificationError):
    """The model carries code a loader would run (``*.py`` files, an ``auto_map``) and
    the policy does not allow that exact code (exit 1); ``where`` names the file."""


class UnsafeLoaderOption(InputError):
    """A keyword argument would let the loader read bytes mgattest did not verify (a
    revision, a cache, a token, a path outside the verified copy ...) (exit 2);
    ``where`` names the argument."""
