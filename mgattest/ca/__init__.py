"""mgattest.ca: server-side keyless infrastructure for private deployments.

Entry points (re-exported lazily, PEP 562: ``import mgattest.ca`` loads no server code):

- :func:`init_ca` creates a CA directory (root, intermediate, CT key);
  :class:`CertificateAuthority` opens one and issues Fulcio-profile short-lived
  code-signing certificates with embedded RFC 6962 SCTs;
- :class:`TokenVerifier` verifies OIDC identity tokens (discovery + JWKS);
- :func:`create_ca_app` is Fulcio's v2 REST API over the two, as an ASGI app;
- :class:`LocalOIDCIssuer` and :func:`create_issuer_app`: a local OIDC issuer for tests
  and demos (NOT for production);
- :func:`build_client_trust_config` writes the ClientTrustConfig clients verify against;
- :func:`bind`, :func:`url_of`, :func:`serve_forever`, :class:`ServerThread` run an ASGI
  app on a socket bound first (so ``--port 0`` has a known URL).

Typed errors live in the public module :mod:`mgattest.ca.errors`
(:class:`CAError`, :class:`TokenError`). Every other module is internal. Depends only on
:mod:`mgattest.errors`, ``cryptography``, ``pyjwt`` and ``fastapi``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgattest._lazy import LazyExports

if TYPE_CHECKING:  # the public names, for type checkers; at run time they load lazily
    from mgattest.ca._authority import CertificateAuthority, init as init_ca
    from mgattest.ca.errors import CAError, TokenError
    from mgattest.ca._oidc_issuer import LocalOIDCIssuer, create_app as create_issuer_app
    from mgattest.ca._server import create_app as create_ca_app
    from mgattest.ca._serving import ServerThread, bind, serve_forever, url_of
    from mgattest.ca._tokens import TokenVerifier
    from mgattest.ca._trustconfig import build_client_trust_config

_EXPORTS = LazyExports("mgattest.ca", {
    "CAError": "mgattest.ca.errors",
    "TokenError": "mgattest.ca.errors",
    "CertificateAuthority": "mgattest.ca._authority",
    "init_ca": "mgattest.ca._authority:init",
    "TokenVerifier": "mgattest.ca._tokens",
    "create_ca_app": "mgattest.ca._server:create_app",
    "LocalOIDCIssuer": "mgattest.ca._oidc_issuer",
    "create_issuer_app": "mgattest.ca._oidc_issuer:create_app",
    "build_client_trust_config": "mgattest.ca._trustconfig",
    "bind": "mgattest.ca._serving",
    "url_of": "mgattest.ca._serving",
    "serve_forever": "mgattest.ca._serving",
    "ServerThread": "mgattest.ca._serving",
})

__all__ = [
    "CAError", "CertificateAuthority", "LocalOIDCIssuer", "ServerThread", "TokenError",
    "TokenVerifier", "bind", "build_client_trust_config", "create_ca_app", "create_issuer_app",
    "init_ca", "serve_forever", "url_of",
]


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return list(__all__)
