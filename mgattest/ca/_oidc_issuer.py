"""A local OIDC issuer for tests and demos — NOT for production.

It publishes a discovery document and a JWKS and mints ES256 identity tokens for any
subject you ask for: whoever can read its key directory can be anyone. Use it to try the
private keyless stack on one machine, or in CI fixtures; use a real identity provider
for anything that matters.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mgattest._jsonutil import JSONObject
from mgattest.ca.errors import CAError

if TYPE_CHECKING:
    from fastapi import FastAPI

KEY_FILE = "oidc.key.pem"
ISSUER_FILE = "issuer.json"
DEFAULT_TTL = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class ECJWKJSON(TypedDict):
    """The issuer's public key as a JWK (RFC 7517/7518, P-256); ``kid`` is its RFC 7638
    thumbprint, added once computed."""

    kty: str
    crv: str
    use: str
    alg: str
    x: str
    y: str
    kid: NotRequired[str]


class JWKSJSON(TypedDict):
    """A JWK Set: the document served at ``jwks_uri``."""

    keys: list[ECJWKJSON]


class DiscoveryJSON(TypedDict):
    """The OpenID Connect discovery document (``/.well-known/openid-configuration``)."""

    issuer: str
    jwks_uri: str
    authorization_endpoint: str
    token_endpoint: str
    response_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    claims_supported: list[str]


class LocalOIDCIssuer:
    """An ES256 signing key plus the issuer URL it signs tokens for."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, issuer_url: str) -> None:
        self._key = private_key
        self.issuer_url = issuer_url.rstrip("/")
        numbers = private_key.public_key().public_numbers()
        self._jwk: ECJWKJSON = {
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
        # RFC 7638 thumbprint as the key id.
        canonical = json.dumps({k: self._jwk[k] for k in ("crv", "kty", "x", "y")},
                               separators=(",", ":"), sort_keys=True)
        self.kid = _b64url(hashlib.sha256(canonical.encode()).digest())
        self._jwk["kid"] = self.kid

    @classmethod
    def open(cls, directory: str | os.PathLike[str], issuer_url: str | None = None
             ) -> "LocalOIDCIssuer":
        """Load (or create) the issuer key in ``directory``; record ``issuer_url`` there.

        Without ``issuer_url`` the URL recorded by a previous ``oidc serve`` is used.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        key_path = d / KEY_FILE
        if key_path.exists():
            try:
                key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            except (ValueError, TypeError) as exc:
                raise CAError(f"{key_path} is not a PEM private key ({exc})",
                              what="oidc-issuer", where=str(key_path)) from None
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise CAError(f"{key_path} is not an ECDSA key", what="oidc-issuer",
                              where=str(key_path))
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        record = d / ISSUER_FILE
        if issuer_url is None:
            try:
                issuer_url = json.loads(record.read_text(encoding="utf-8"))["issuer"]
            except (OSError, ValueError, KeyError, TypeError):
                raise CAError(f"no issuer URL recorded in {record}: start `mgattest oidc serve "
                              f"--dir {d}` first or pass --issuer", what="oidc-issuer",
                              where=str(record)) from None
        else:
            tmp = record.with_suffix(".tmp")
            tmp.write_text(json.dumps({"issuer": issuer_url.rstrip("/")}) + "\n",
                           encoding="utf-8")
            tmp.replace(record)
        return cls(key, issuer_url)

    def discovery(self) -> DiscoveryJSON:
        """The OpenID Connect discovery document."""
        return {
            "issuer": self.issuer_url,
            "jwks_uri": f"{self.issuer_url}/keys",
            "authorization_endpoint": f"{self.issuer_url}/auth",
            "token_endpoint": f"{self.issuer_url}/token",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "claims_supported": ["sub", "email", "email_verified", "aud", "iss", "iat", "exp"],
        }

    def jwks(self) -> JWKSJSON:
        """The issuer's public keys."""
        return {"keys": [self._jwk.copy()]}

    def mint(self, subject: str, *, email: str | None = None, audience: str = "sigstore",
             ttl: int = DEFAULT_TTL, claims: JSONObject | None = None,
             now: int | None = None) -> str:
        """Sign an identity token for ``subject``.

        When ``email`` is given (or ``subject`` looks like an address) the token carries
        ``email`` + ``email_verified: true``, so a Fulcio-style CA issues an email SAN.
        """
        if not subject:
            raise CAError("a token needs a non-empty subject", what="oidc-token")
        if ttl <= 0 or ttl > 24 * 3600:
            raise CAError("token lifetime must be 1 s to 24 h", what="oidc-token")
        issued = int(time.time()) if now is None else now
        body: dict[str, Any] = {
            "iss": self.issuer_url, "sub": subject, "aud": audience,
            "iat": issued, "nbf": issued, "exp": issued + ttl, "jti": uuid.uuid4().hex,
        }
        if email is None and "@" in subject and "/" not in subject:
            email = subject
        if email is not None:
            body["email"] = email
            body["email_verified"] = True
        body.update(claims or {})
        return jwt.encode(body, self._key, algorithm="ES256", headers={"kid": self.kid})


def create_app(issuer: LocalOIDCIssuer) -> FastAPI:
    """ASGI app serving the discovery document and JWKS (no token endpoint: mint with
    ``mgattest oidc token``, which needs the key directory)."""
    from fastapi import FastAPI  # noqa: PLC0415 - server stack, loaded only by `oidc serve`

    app = FastAPI(title="mgattest local OIDC issuer (NOT for production)", docs_url=None,
                  redoc_url=None, openapi_url=None)

    # FastAPI reads a route's return annotation as its response model: the routes keep
    # a plain dict (and copy the TypedDict into one) so the served JSON stays as it was.
    @app.get("/.well-known/openid-configuration")
    def _discovery() -> dict[str, Any]:
        return dict(issuer.discovery())

    @app.get("/keys")
    def _keys() -> dict[str, Any]:
        return dict(issuer.jwks())

    return app
