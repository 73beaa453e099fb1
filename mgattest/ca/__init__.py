"""Server-side keyless infrastructure for private deployments.

- :mod:`mgattest.ca.authority` — a Fulcio-compatible certificate authority (root,
  intermediate, short-lived code-signing certificates in Fulcio's profile);
- :mod:`mgattest.ca.ctlog` — the CT log signer that embeds RFC 6962 SCTs;
- :mod:`mgattest.ca.tokens` — OIDC identity-token verification (discovery + JWKS);
- :mod:`mgattest.ca.server` — Fulcio's v2 REST API over the above;
- :mod:`mgattest.ca.oidc_issuer` — a local OIDC issuer for tests and demos (NOT for
  production).

Depends only on :mod:`mgattest.errors`, ``cryptography``, ``pyjwt`` and ``fastapi``.
"""

from mgattest.ca.errors import CAError, TokenError

__all__ = ["CAError", "TokenError"]
