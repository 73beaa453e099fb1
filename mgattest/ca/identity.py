"""Map verified OIDC token claims to what a Fulcio certificate states.

Follows Fulcio's principals: an email token (``email_verified``) yields an email SAN; a
GitHub Actions token yields the workflow URI as SAN plus the GitHub extensions
1.3.6.1.4.1.57264.1.2-6 (legacy, raw) and .1.9-.1.22 (DER UTF8String); any other token
yields its ``sub`` as a URI SAN when it is a URI, else as Fulcio's username otherName
(1.3.6.1.4.1.57264.1.7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mgattest.ca.errors import TokenError

GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
MAX_CLAIM_LENGTH = 1024


@dataclass(frozen=True)
class CertIdentity:
    """SAN and Fulcio extensions for one certificate."""

    san_kind: str  # "email" | "uri" | "username"
    san_value: str
    issuer: str
    # Fulcio OID arc under 1.3.6.1.4.1.57264.1 -> value.
    extensions: dict[int, str] = field(default_factory=dict)
    # The claim value the proof of possession must sign (Fulcio's principal name).
    challenge: str = ""


def _claim(claims: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenError(f"token lacks the {name!r} claim", what="oidc-token", where=name)
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TokenError(f"token claim {name!r} is not a string", what="oidc-token", where=name)
    text = str(value)
    if not text or len(text) > MAX_CLAIM_LENGTH or any(ord(c) < 0x20 for c in text):
        raise TokenError(f"token claim {name!r} is empty, too long or has control characters",
                         what="oidc-token", where=name)
    return text


def _github_identity(claims: dict[str, Any], issuer: str) -> CertIdentity:
    server = (_claim(claims, "server_url", required=False) or "https://github.com").rstrip("/")
    repo = _claim(claims, "repository")
    job_workflow_ref = _claim(claims, "job_workflow_ref")
    run_id = _claim(claims, "run_id")
    attempt = _claim(claims, "run_attempt")
    ext: dict[int, str] = {
        2: _claim(claims, "event_name"),
        3: _claim(claims, "sha"),
        4: _claim(claims, "workflow"),
        5: repo,
        6: _claim(claims, "ref"),
        9: f"{server}/{job_workflow_ref}",
        10: _claim(claims, "job_workflow_sha"),
        11: _claim(claims, "runner_environment"),
        12: f"{server}/{repo}",
        13: _claim(claims, "sha"),
        14: _claim(claims, "ref"),
        15: _claim(claims, "repository_id"),
        16: f"{server}/{_claim(claims, 'repository_owner')}",
        17: _claim(claims, "repository_owner_id"),
        18: f"{server}/{_claim(claims, 'workflow_ref')}",
        19: _claim(claims, "workflow_sha"),
        20: _claim(claims, "event_name"),
        21: f"{server}/{repo}/actions/runs/{run_id}/attempts/{attempt}",
    }
    visibility = _claim(claims, "repository_visibility", required=False)
    if visibility is not None:
        ext[22] = visibility
    return CertIdentity("uri", f"{server}/{job_workflow_ref}", issuer,
                        {k: v for k, v in ext.items() if v is not None},
                        challenge=_claim(claims, "sub") or "")


def identity_from_claims(claims: dict[str, Any], issuer: str) -> CertIdentity:
    """Derive the certificate identity for a token already verified to come from ``issuer``."""
    subject = _claim(claims, "sub")
    if issuer == GITHUB_ACTIONS_ISSUER or "job_workflow_ref" in claims:
        return _github_identity(claims, issuer)
    if "email" in claims:
        email = _claim(claims, "email")
        if claims.get("email_verified") is not True:
            raise TokenError("token email is not verified (email_verified is not true)",
                             what="oidc-token", where="email_verified")
        if email.count("@") != 1 or not all(email.split("@")):
            raise TokenError(f"token email {email!r} is not an address",
                             what="oidc-token", where="email")
        return CertIdentity("email", email, issuer, challenge=email)
    parts = urlsplit(subject)
    if parts.scheme in ("https", "http", "spiffe") and parts.netloc:
        return CertIdentity("uri", subject, issuer, challenge=subject)
    host = urlsplit(issuer).hostname or issuer
    return CertIdentity("username", f"{subject}!{host}", issuer, challenge=subject)
