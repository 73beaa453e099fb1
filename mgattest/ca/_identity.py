"""Map verified OIDC token claims to what a Fulcio certificate states.

As in Fulcio, *how* claims become an identity is chosen per configured issuer (its
issuer type), never by which claims a token happens to carry; otherwise one trusted
issuer could mint another's identities (a generic IdP adding ``job_workflow_ref`` to a
token would get a GitHub workflow certificate). Issuer types:

* ``email``: the verified ``email`` claim becomes an email SAN (Fulcio's default for
  generic OIDC providers, and ours for any issuer not known below);
* ``github-workflow``: the workflow URI ``<server_url>/<job_workflow_ref>`` as URI SAN plus
  the GitHub extensions 1.3.6.1.4.1.57264.1.2-6 (legacy, raw) and .1.9-.1.22 (DER
  UTF8String); the default for ``https://token.actions.githubusercontent.com``;
* ``uri``: ``sub`` as URI SAN; an http(s) URI on the issuer's host (or a subdomain);
* ``spiffe``: ``sub`` as URI SAN; a ``spiffe://`` ID whose trust domain is the issuer's
  host (or a subdomain);
* ``username``: ``sub!<issuer host>`` as Fulcio's username otherName (1.3.6.1.4.1.57264.1.7).

Claims are validated before they reach a certificate: strings in Unicode NFC, without
control, bidi or other invisible characters (``mgattest._text.unsafe_char``); email and
URI SANs ASCII (IA5String). What cannot be represented is refused with a TokenError.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, overload
from urllib.parse import urlsplit

from mgattest._jsonutil import JSONObject
from mgattest._text import escape_text, unsafe_char
from mgattest.ca.errors import CAError, TokenError

GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
MAX_CLAIM_LENGTH = 1024

EMAIL, GITHUB_WORKFLOW, URI, SPIFFE, USERNAME = (
    "email", "github-workflow", "uri", "spiffe", "username")
#: Issuer types of well-known issuers; any other issuer defaults to ``email``.
WELL_KNOWN_ISSUER_TYPES = {GITHUB_ACTIONS_ISSUER: GITHUB_WORKFLOW}
DEFAULT_ISSUER_TYPE = EMAIL


@dataclass(frozen=True)
class IssuerConfig:
    """One trusted OIDC issuer: its exact ``iss`` URL and its issuer type."""

    url: str
    type: str

    @property
    def challenge_claim(self) -> str:
        """The claim a proof of possession signs (Fulcio's ``challengeClaim``)."""
        return "email" if self.type == EMAIL else "sub"


def default_issuer_type(url: str) -> str:
    """The issuer type used when the configuration names none."""
    return WELL_KNOWN_ISSUER_TYPES.get(url, DEFAULT_ISSUER_TYPE)


def parse_issuer(spec: "str | IssuerConfig") -> IssuerConfig:
    """``URL`` or ``URL=TYPE`` (as given to ``ca serve --oidc-issuer``) → IssuerConfig."""
    if isinstance(spec, IssuerConfig):
        config = spec
    else:
        url, sep, kind = spec.rpartition("=")
        config = IssuerConfig(url, kind) if sep else IssuerConfig(spec, default_issuer_type(spec))
    if config.type not in EXTRACTORS:
        raise CAError(f"unknown issuer type {config.type!r} for {config.url!r} (one of "
                      f"{', '.join(sorted(EXTRACTORS))})", what="oidc-issuer",
                      where=config.url)
    return config


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


@overload
def _claim(claims: dict[str, Any], name: str, *, required: Literal[True] = True) -> str: ...
@overload
def _claim(claims: dict[str, Any], name: str, *, required: bool) -> str | None: ...


def _claim(claims: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenError(f"token lacks the {name!r} claim", what="oidc-token", where=name)
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TokenError(f"token claim {name!r} is not a string", what="oidc-token", where=name)
    text = str(value)
    if not text or len(text) > MAX_CLAIM_LENGTH:
        raise TokenError(f"token claim {name!r} is empty or too long", what="oidc-token",
                         where=name)
    if any(unsafe_char(c) for c in text):
        raise TokenError(f"token claim {name!r} ({escape_text(text)}) has control, bidi or "
                         "other invisible characters", what="oidc-token", where=name)
    if not unicodedata.is_normalized("NFC", text):
        raise TokenError(f"token claim {name!r} ({escape_text(text)}) is not in Unicode NFC",
                         what="oidc-token", where=name)
    return text


def _ia5(value: str, name: str) -> str:
    """An email or URI SAN must be ASCII (IA5String); refuse, never 500, otherwise."""
    if not value.isascii():
        raise TokenError(f"token claim {name!r} ({escape_text(value)}) has non-ASCII "
                         "characters; an email or URI SAN cannot represent them",
                         what="oidc-token", where=name)
    return value


def _on_issuer_host(host: str | None, issuer: str) -> bool:
    issuer_host = (urlsplit(issuer).hostname or "").lower()
    host = (host or "").lower()
    return bool(host) and (host == issuer_host or host.endswith("." + issuer_host))


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
    _ia5(f"{server}/{job_workflow_ref}", "job_workflow_ref")
    return CertIdentity("uri", f"{server}/{job_workflow_ref}", issuer,
                        {k: v for k, v in ext.items() if v is not None},
                        challenge=_claim(claims, "sub") or "")


def _email_identity(claims: dict[str, Any], issuer: str) -> CertIdentity:
    email = _ia5(_claim(claims, "email") or "", "email")
    if claims.get("email_verified") is not True:
        raise TokenError("token email is not verified (email_verified is not true)",
                         what="oidc-token", where="email_verified")
    local, _, domain = email.partition("@")
    if not local or not domain or "@" in domain:
        raise TokenError(f"token email {email!r} is not an address", what="oidc-token",
                         where="email")
    return CertIdentity("email", email, issuer, challenge=email)


def _uri_subject(claims: dict[str, Any], issuer: str, schemes: tuple[str, ...]) -> str:
    subject = _ia5(_claim(claims, "sub") or "", "sub")
    parts = urlsplit(subject)
    if parts.scheme not in schemes or not parts.netloc:
        raise TokenError(f"token subject {subject!r} is not a {'/'.join(schemes)} URI",
                         what="oidc-token", where="sub")
    if not _on_issuer_host(parts.hostname, issuer):
        raise TokenError(f"token subject {subject!r} is not on the issuer's domain "
                         f"({urlsplit(issuer).hostname})", what="oidc-token", where="sub")
    return subject


def _uri_identity(claims: dict[str, Any], issuer: str) -> CertIdentity:
    subject = _uri_subject(claims, issuer, ("https", "http"))
    return CertIdentity("uri", subject, issuer, challenge=subject)


def _spiffe_identity(claims: dict[str, Any], issuer: str) -> CertIdentity:
    subject = _uri_subject(claims, issuer, ("spiffe",))
    return CertIdentity("uri", subject, issuer, challenge=subject)


def _username_identity(claims: dict[str, Any], issuer: str) -> CertIdentity:
    subject = _claim(claims, "sub") or ""
    if "!" in subject:
        raise TokenError(f"token subject {subject!r} contains '!' (reserved by the username "
                         "format)", what="oidc-token", where="sub")
    host = urlsplit(issuer).hostname or issuer
    return CertIdentity("username", f"{subject}!{host}", issuer, challenge=subject)


EXTRACTORS: dict[str, Callable[[dict[str, Any], str], CertIdentity]] = {
    EMAIL: _email_identity,
    GITHUB_WORKFLOW: _github_identity,
    URI: _uri_identity,
    SPIFFE: _spiffe_identity,
    USERNAME: _username_identity,
}


def identity_from_claims(claims: JSONObject, issuer: str,
                         issuer_type: str | None = None) -> CertIdentity:
    """Derive the certificate identity for a token already verified to come from ``issuer``.

    ``issuer_type`` is the configured type of that issuer (default: by well-known URL,
    else ``email``); the token's claims never choose it.
    """
    kind = issuer_type or default_issuer_type(issuer)
    extract = EXTRACTORS.get(kind)
    if extract is None:
        raise CAError(f"unknown issuer type {kind!r}", what="oidc-issuer", where=issuer)
    _claim(claims, "sub")  # every token names its subject
    return extract(claims, issuer)
