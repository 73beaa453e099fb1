"""Typed errors of the private CA and OIDC issuer."""

from __future__ import annotations

from mgattest.errors import InputError, VerificationError


class CAError(InputError):
    """The CA directory or a certificate request is unusable (bad input, exit 2)."""


class TokenError(VerificationError):
    """An OIDC identity token was rejected (signature, issuer, audience, expiry...)."""
