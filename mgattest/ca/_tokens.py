"""Verify OIDC identity tokens the way Fulcio does before issuing a certificate.

The token's ``iss`` must be one of the configured issuers, exactly as configured (a
trailing ``/`` is a different issuer, as in Fulcio), and that configured string is what
reaches the certificate; each issuer carries its issuer type
(:class:`~mgattest.ca._identity.IssuerConfig`). The token's signing
key comes from the JWKS named by that issuer's discovery document; ``aud`` must contain
"sigstore"; ``exp``/``iat`` (and ``nbf`` if present) must hold now. Symmetric and
``none`` algorithms are never accepted.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable
from urllib.parse import urlsplit

import jwt

from mgattest._jsonutil import JSONObject
from mgattest.ca.errors import CAError, TokenError
from mgattest.ca._identity import IssuerConfig, parse_issuer

AUDIENCE = "sigstore"
ALLOWED_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                      "ES256", "ES384", "ES512", "EdDSA"]
MAX_TOKEN_BYTES = 16 * 1024
MAX_DOCUMENT_BYTES = 256 * 1024
LEEWAY_SECONDS = 30
JWKS_TTL_SECONDS = 300
MIN_REFRESH_SECONDS = 30
HTTP_TIMEOUT_SECONDS = 5


def _is_loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "::1", "localhost")


def check_issuer_url(url: str) -> str:
    """Validate an issuer URL: https, or http only on a loopback host."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return url
    raise CAError(f"OIDC issuer {url!r} must be an https URL (http only on 127.0.0.1)",
                  what="oidc-issuer", where=url)


def _fetch_json(url: str) -> JSONObject:
    import requests  # noqa: PLC0415 - requests only when a JWKS is fetched over the network

    check_issuer_url(url)
    try:
        with requests.get(url, timeout=HTTP_TIMEOUT_SECONDS, stream=True,
                          allow_redirects=False) as resp:
            if resp.status_code != 200:
                raise TokenError(f"{url} answered HTTP {resp.status_code}",
                                 what="oidc-discovery", where=url)
            body = resp.raw.read(MAX_DOCUMENT_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise TokenError(f"cannot fetch {url}: {exc}", what="oidc-discovery", where=url) from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise TokenError(f"{url} returned more than {MAX_DOCUMENT_BYTES} bytes",
                         what="oidc-discovery", where=url)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise TokenError(f"{url} did not return JSON", what="oidc-discovery", where=url) from None
    if not isinstance(doc, dict):
        raise TokenError(f"{url} did not return a JSON object", what="oidc-discovery", where=url)
    return doc


class TokenVerifier:
    """Verifies tokens from a fixed set of issuers; caches each issuer's JWKS."""

    def __init__(self, issuers: "list[str | IssuerConfig]", *, audience: str = AUDIENCE,
                 fetch: Callable[[str], JSONObject] = _fetch_json,
                 clock: Callable[[], float] = time.time) -> None:
        if not issuers:
            raise CAError("at least one OIDC issuer is required", what="oidc-issuer")
        configs = [parse_issuer(i) for i in issuers]
        #: exact issuer URL -> its configuration (``URL`` or ``URL=TYPE`` specs accepted)
        self.configs: dict[str, IssuerConfig] = {}
        for config in configs:
            check_issuer_url(config.url)
            if config.url in self.configs:
                raise CAError(f"OIDC issuer {config.url!r} is configured twice",
                              what="oidc-issuer", where=config.url)
            self.configs[config.url] = config
        self.issuers = list(self.configs)
        self.audience = audience
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._jwks: dict[str, tuple[float, dict[str, Any]]] = {}

    def _keys(self, issuer: str, refresh: bool = False) -> dict[str, Any]:
        with self._lock:
            cached = self._jwks.get(issuer)
            if cached:
                age = self._clock() - cached[0]
                # A forced refresh (unknown kid) is rate-limited so random key ids in
                # tokens cannot turn the CA into a request amplifier against the IdP.
                if age < (MIN_REFRESH_SECONDS if refresh else JWKS_TTL_SECONDS):
                    return cached[1]
        discovery = self._fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if discovery.get("issuer") != issuer:
            raise TokenError(f"discovery document of {issuer} names issuer "
                             f"{discovery.get('issuer')!r}", what="oidc-discovery", where=issuer)
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise TokenError(f"discovery document of {issuer} has no jwks_uri",
                             what="oidc-discovery", where=issuer)
        jwks = self._fetch(jwks_uri)
        keys: dict[str, Any] = {}
        for n, jwk in enumerate(jwks.get("keys") or []):
            try:
                key = jwt.PyJWK(jwk)
            except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError):
                continue  # keys we cannot use (e.g. encryption keys) are ignored
            keys[jwk.get("kid") or f"#{n}"] = key
        if not keys:
            raise TokenError(f"JWKS of {issuer} holds no usable signing key",
                             what="oidc-jwks", where=jwks_uri)
        with self._lock:
            self._jwks[issuer] = (self._clock(), keys)
        return keys

    def verify(self, token: str) -> tuple[str, JSONObject]:
        """Return ``(issuer, claims)`` of a valid token, else raise :class:`TokenError`."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
            raise TokenError("identity token is missing or larger than 16 KiB",
                             what="oidc-token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise TokenError(f"identity token is not a JWT ({exc})", what="oidc-token") from None
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self.configs:
            raise TokenError(f"token issuer {issuer!r} is not trusted by this CA (issuers "
                             "match exactly, trailing '/' included)", what="oidc-token",
                             where="iss")
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise TokenError(f"token algorithm {alg!r} is not allowed", what="oidc-token",
                             where="alg")
        kid = header.get("kid")
        keys = self._keys(issuer)
        if kid is not None and kid not in keys:
            keys = self._keys(issuer, refresh=True)  # the issuer may have rotated keys
        candidates = [keys[kid]] if kid in keys else (list(keys.values()) if kid is None else [])
        if not candidates:
            raise TokenError(f"token key id {kid!r} not in the JWKS of {issuer}",
                             what="oidc-token", where="kid")
        last: Exception | None = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    token, key, algorithms=[alg], audience=self.audience,
                    issuer=issuer, leeway=LEEWAY_SECONDS,
                    options={"require": ["iss", "sub", "aud", "exp", "iat"]})
            except jwt.InvalidSignatureError as exc:
                last = exc
                continue
            except jwt.ExpiredSignatureError:
                raise TokenError("identity token has expired", what="oidc-token",
                                 where="exp") from None
            except jwt.InvalidAudienceError:
                raise TokenError(f"identity token audience {unverified.get('aud')!r} is not "
                                 f"{self.audience!r}", what="oidc-token", where="aud") from None
            except jwt.ImmatureSignatureError:
                raise TokenError("identity token is not valid yet (iat/nbf in the future)",
                                 what="oidc-token", where="iat") from None
            except jwt.PyJWTError as exc:
                raise TokenError(f"identity token rejected: {exc}", what="oidc-token") from None
            iat = claims.get("iat")
            if not isinstance(iat, (int, float)) or iat > self._clock() + LEEWAY_SECONDS:
                raise TokenError("identity token iat is in the future", what="oidc-token",
                                 where="iat")
            return issuer, claims
        raise TokenError(f"identity token signature does not verify with {issuer}'s keys"
                         f" ({last})", what="oidc-token", where="signature")
