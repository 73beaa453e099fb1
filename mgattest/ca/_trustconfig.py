"""Build a Sigstore ClientTrustConfig for a private deployment from two URLs.

``build_client_trust_config(log_url, ca_url, oidc_url)`` asks the log for its public
key (Rekor v1 ``GET /api/v1/log/publicKey``) and the CA for its trust bundle and CT key,
and writes the trusted root (tlogs, ctlogs, certificateAuthorities) and signing config
(CA, log, OIDC URLs) that mgattest, sigstore-python, sigstore-js, sigstore-go and
model_signing all accept (every field is one of protobuf-specs', nothing empty that a
client would select from).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mgattest._trustjson import ClientTrustConfigJSON, TrustedRootJSON
from mgattest.ca.errors import CAError

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
SIGNING_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
HTTP_TIMEOUT_SECONDS = 10
MAX_RESPONSE_BYTES = 1024 * 1024
CT_KEY_PATH = "/api/v2/mgattest/ctlog"


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")


def _get(url: str) -> bytes:
    import requests  # noqa: PLC0415 - requests only when the CA's root is fetched over the network

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CAError(f"{url!r} is not an http(s) URL", what="trust-private", where=url)
    try:
        with requests.get(url, timeout=HTTP_TIMEOUT_SECONDS, stream=True,
                          allow_redirects=False) as resp:
            body = resp.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
            status = resp.status_code
    except requests.RequestException as exc:
        raise CAError(f"cannot reach {url}: {exc}", what="trust-private", where=url) from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise CAError(f"{url} answered more than {MAX_RESPONSE_BYTES} bytes",
                      what="trust-private", where=url)
    if status == 404:
        raise FileNotFoundError(url)
    if status != 200:
        raise CAError(f"{url} answered HTTP {status}", what="trust-private", where=url)
    return body


def _get_json(url: str) -> Any:
    try:
        return json.loads(_get(url))
    except ValueError:
        raise CAError(f"{url} did not answer JSON", what="trust-private", where=url) from None


def key_details(public_key: PublicKeyTypes) -> str:
    """protobuf-specs PublicKeyDetails name for a public key."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        names = {"secp256r1": "PKIX_ECDSA_P256_SHA_256", "secp384r1": "PKIX_ECDSA_P384_SHA_384",
                 "secp521r1": "PKIX_ECDSA_P521_SHA_512"}
        if public_key.curve.name in names:
            return names[public_key.curve.name]
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "PKIX_ED25519"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"PKIX_RSA_PKCS1V15_{public_key.key_size}_SHA256"
    raise CAError(f"unsupported key type {type(public_key).__name__}", what="trust-private")


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _log_start(log_url: str, now: dt.datetime) -> dt.datetime:
    """A validFor start for the log key: just before its first entry, else an hour ago."""
    try:
        first = _get_json(f"{log_url}/api/v1/log/entries?logIndex=0")
    except FileNotFoundError:
        return now - dt.timedelta(hours=1)
    times = [v.get("integratedTime") for v in first.values()] if isinstance(first, dict) else []
    times = [t for t in times if isinstance(t, int) and t > 0]
    if not times:
        return now - dt.timedelta(hours=1)
    return dt.datetime.fromtimestamp(min(times) - 60, tz=dt.timezone.utc)


def _service(url: str, start: dt.datetime, operator: str) -> dict[str, Any]:
    return {"url": url, "majorApiVersion": 1, "validFor": {"start": _rfc3339(start)},
            "operator": operator}


def build_client_trust_config(log_url: str, ca_url: str, oidc_url: str | None = None, *,
                              operator: str | None = None,
                              now: dt.datetime | None = None) -> ClientTrustConfigJSON:
    """Fetch the log's and CA's public material and return a ClientTrustConfig dict."""
    log_url, ca_url = log_url.rstrip("/"), ca_url.rstrip("/")
    now = now or dt.datetime.now(dt.timezone.utc)
    operator = operator or (urlsplit(ca_url).hostname or "private")

    try:
        log_pem = _get(f"{log_url}/api/v1/log/publicKey")
        log_key = serialization.load_pem_public_key(log_pem)
    except FileNotFoundError:
        raise CAError(f"{log_url} has no /api/v1/log/publicKey: is it a Rekor v1 log?",
                      what="trust-private", where=log_url) from None
    except ValueError as exc:
        raise CAError(f"{log_url} returned an unreadable public key ({exc})",
                      what="trust-private", where=log_url) from None
    log_der = _spki(log_key)
    log_start = _log_start(log_url, now)

    try:
        bundle = _get_json(f"{ca_url}/api/v2/trustBundle")
        ct = _get_json(f"{ca_url}{CT_KEY_PATH}")
    except FileNotFoundError as exc:
        raise CAError(f"{exc} not found: is {ca_url} a `mgattest ca serve`?",
                      what="trust-private", where=ca_url) from None
    try:
        chain_pems = bundle["chains"][0]["certificates"]
        chain = [x509.load_pem_x509_certificate(p.encode("ascii")) for p in chain_pems]
        ct_key = serialization.load_pem_public_key(ct["publicKey"].encode("ascii"))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise CAError(f"{ca_url} returned an unusable trust bundle or CT key ({exc})",
                      what="trust-private", where=ca_url) from None
    if not chain:
        raise CAError(f"{ca_url} trust bundle is empty", what="trust-private", where=ca_url)
    ca_start = min(c.not_valid_before_utc for c in chain)
    ct_der = _spki(ct_key)
    ct_start = ca_start

    trusted_root: TrustedRootJSON = {
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": [{
            "baseUrl": log_url, "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": base64.b64encode(log_der).decode(),
                          "keyDetails": key_details(log_key),
                          "validFor": {"start": _rfc3339(log_start)}},
            "logId": {"keyId": base64.b64encode(hashlib.sha256(log_der).digest()).decode()},
        }],
        "certificateAuthorities": [{
            "subject": {"organization": _attr(chain[-1], x509.NameOID.ORGANIZATION_NAME),
                        "commonName": _attr(chain[-1], x509.NameOID.COMMON_NAME)},
            "uri": ca_url,
            "certChain": {"certificates": [
                {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}
                for c in chain]},
            "validFor": {"start": _rfc3339(ca_start)},
        }],
        "ctlogs": [{
            "baseUrl": ca_url, "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": base64.b64encode(ct_der).decode(),
                          "keyDetails": key_details(ct_key),
                          "validFor": {"start": _rfc3339(ct_start)}},
            "logId": {"keyId": base64.b64encode(hashlib.sha256(ct_der).digest()).decode()},
        }],
        "timestampAuthorities": [],
    }
    signing_config = {
        "mediaType": SIGNING_CONFIG_MEDIA_TYPE,
        "caUrls": [_service(ca_url, ca_start, operator)],
        "oidcUrls": [_service(oidc_url.rstrip("/"), ca_start, operator)] if oidc_url else [],
        "rekorTlogUrls": [_service(log_url, log_start, operator)],
        "rekorTlogConfig": {"selector": "ANY"},
        # No TSA: no tsaUrls and no tsaConfig (sigstore-js refuses a tsaConfig that
        # selects from an empty tsaUrls list).
    }
    return {"mediaType": CLIENT_TRUST_CONFIG_MEDIA_TYPE, "trustedRoot": trusted_root,
            "signingConfig": signing_config}


def _attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""
