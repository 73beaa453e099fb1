"""Client-side OIDC identity tokens for keyless signing: parse, check, select.

The signer never verifies a token's signature — the CA does. Here we only make sure a
token is usable before spending a network round trip (a JWT with ``iss``, ``sub``,
``aud`` containing "sigstore", ``exp`` in the future) and pick one, in this order:

1. an explicit token (``--identity-token``; ``@path`` reads it from a file),
2. ``SIGSTORE_ID_TOKEN`` in the environment,
3. ambient CI credentials (GitHub Actions, GitLab, Buildkite, GCP... via the ``id``
   package),
4. the interactive browser flow of the OIDC URL in the signing config, if allowed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mgattest.attest.errors import OIDCTokenError
from mgattest._files import read_bounded

__all__ = ["TokenInfo", "parse_identity_token", "select_identity_token",
           "TOKEN_ENV_VAR"]

TOKEN_ENV_VAR = "SIGSTORE_ID_TOKEN"
AUDIENCE = "sigstore"
MAX_TOKEN_BYTES = 16 * 1024
CLOCK_LEEWAY = 5
# Issuers whose certificates carry the email claim rather than ``sub`` (sigstore-python's
# table of well-known providers).
_EMAIL_ISSUERS = {"https://accounts.google.com", "https://oauth2.sigstore.dev/auth",
                  "https://oauth2.sigstage.dev/auth"}


@dataclass(frozen=True)
class TokenInfo:
    """The unverified claims of an identity token that matter to a signer."""

    raw: str
    issuer: str
    subject: str
    identity: str  # what the certificate SAN will say (email or subject)
    audience: tuple[str, ...]
    expires_at: int
    issued_at: int
    claims: dict[str, Any] = field(default_factory=dict, repr=False)

    def seconds_left(self, now: float | None = None) -> int:
        """Seconds until the token expires (negative once expired)."""
        return int(self.expires_at - (time.time() if now is None else now))


def _b64url_json(part: str, what: str) -> dict[str, Any]:
    try:
        data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(data)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise OIDCTokenError(f"identity token {what} is not base64url JSON",
                             what="identity-token", where=what) from None
    if not isinstance(value, dict):
        raise OIDCTokenError(f"identity token {what} is not a JSON object",
                             what="identity-token", where=what)
    return value


def parse_identity_token(token: str, *, audience: str = AUDIENCE,
                         now: float | None = None) -> TokenInfo:
    """Parse a JWT identity token (signature NOT verified) and check it is usable now."""
    if not isinstance(token, str):
        raise OIDCTokenError("identity token must be a string", what="identity-token")
    token = token.strip()
    if not token:
        raise OIDCTokenError("identity token is empty", what="identity-token")
    if len(token) > MAX_TOKEN_BYTES:
        raise OIDCTokenError(f"identity token larger than {MAX_TOKEN_BYTES} bytes",
                             what="identity-token")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise OIDCTokenError("identity token is not a JWT (header.payload.signature)",
                             what="identity-token")
    header = _b64url_json(parts[0], "header")
    claims = _b64url_json(parts[1], "payload")
    if str(header.get("alg", "")).lower() in ("", "none") or not parts[2]:
        raise OIDCTokenError("identity token is unsigned (alg none)", what="identity-token",
                             where="alg")
    for name in ("iss", "sub", "aud", "exp", "iat"):
        if name not in claims:
            raise OIDCTokenError(f"identity token lacks the {name!r} claim",
                                 what="identity-token", where=name)
    aud = claims["aud"]
    audiences = tuple(aud) if isinstance(aud, list) else (aud,)
    if audience not in audiences:
        raise OIDCTokenError(f"identity token audience {aud!r} does not include {audience!r}",
                             what="identity-token", where="aud")
    exp, iat = claims["exp"], claims["iat"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (exp, iat)):
        raise OIDCTokenError("identity token exp/iat are not numbers", what="identity-token")
    current = time.time() if now is None else now
    if exp <= current - CLOCK_LEEWAY:
        raise OIDCTokenError(f"identity token expired {int(current - exp)} s ago; get a new one",
                             what="identity-token", where="exp")
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and nbf > current + CLOCK_LEEWAY:
        raise OIDCTokenError("identity token is not valid yet (nbf in the future)",
                             what="identity-token", where="nbf")
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    identity = subject
    if isinstance(claims.get("job_workflow_ref"), str):  # GitHub Actions: the workflow URI
        server = str(claims.get("server_url") or "https://github.com").rstrip("/")
        identity = f"{server}/{claims['job_workflow_ref']}"
    elif issuer in _EMAIL_ISSUERS or (claims.get("email") and claims.get("email_verified") is True):
        identity = str(claims.get("email") or subject)
    return TokenInfo(token, issuer, subject, identity, tuple(str(a) for a in audiences),
                     int(exp), int(iat), dict(claims))


def _explicit(value: str) -> str:
    if value.startswith("@"):
        path = Path(value[1:])
        # room for surrounding whitespace; the token itself is size-checked when parsed
        data = read_bounded(path, MAX_TOKEN_BYTES + 1024, what="identity token file",
                            error=OIDCTokenError)
        return data.decode("utf-8", "replace").strip()
    return value


def select_identity_token(explicit: str | None = None, *,
                          env: Mapping[str, str] | None = None,
                          audience: str = AUDIENCE, ambient: bool = True,
                          interactive_oidc_url: str | None = None,
                          now: float | None = None) -> TokenInfo:
    """Pick the identity token to sign with (see the module docstring for the order)."""
    env = os.environ if env is None else env
    if explicit:
        return parse_identity_token(_explicit(explicit), audience=audience, now=now)
    if env.get(TOKEN_ENV_VAR):
        return parse_identity_token(env[TOKEN_ENV_VAR], audience=audience, now=now)
    if ambient:
        try:
            from id import IdentityError, detect_credential  # noqa: PLC0415 - optional ambient-credential detection, only for keyless signing

            token = detect_credential(audience)
        except ImportError:
            token = None
        except IdentityError as exc:
            raise OIDCTokenError(f"ambient CI credential detected but unusable: {exc}",
                                 what="identity-token", where="ambient") from None
        if token:
            return parse_identity_token(token, audience=audience, now=now)
    if interactive_oidc_url:
        from sigstore.oidc import Issuer  # noqa: PLC0415 - heavy (sigstore), only for interactive sign-in

        try:
            token = str(Issuer(interactive_oidc_url).identity_token())
        except Exception as exc:  # noqa: BLE001 - sigstore raises several unrelated types here
            raise OIDCTokenError(f"interactive sign-in with {interactive_oidc_url} failed: "
                                 f"{exc}", what="identity-token") from None
        return parse_identity_token(token, audience=audience, now=now)
    raise OIDCTokenError(f"no identity token: pass --identity-token, set {TOKEN_ENV_VAR}, run "
                         "in a CI with OIDC credentials, or allow the interactive flow",
                         what="identity-token")
