"""Fulcio's v2 REST API over a :class:`~mgattest.ca._authority.CertificateAuthority`.

Endpoints (JSON shapes as in sigstore/fulcio ``fulcio.proto``):

- ``POST /api/v2/signingCert`` — OIDC token (``Authorization: Bearer`` or
  ``credentials.oidcIdentityToken``) plus either ``certificateSigningRequest`` (base64 of
  a PEM CSR, as sigstore-python sends) or ``publicKeyRequest`` (PEM public key and
  ``proofOfPossession``: a signature over the token's email/subject). Answers 201 with
  ``signedCertificateEmbeddedSct.chain.certificates`` (leaf, intermediate, root PEM).
- ``GET /api/v2/trustBundle`` and ``GET /api/v2/configuration``.
- ``GET /api/v2/mgattest/ctlog`` (mgattest extension) — the CT log key that signs the
  embedded SCTs, for ``mgattest trust private``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypedDict

from cryptography import x509
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from mgattest._jsonutil import JSONObject
from mgattest._keys import check_rsa_parameters
from mgattest._numbers import parse_ascii_uint
from mgattest.ca._authority import CertificateAuthority
from mgattest.ca.errors import CAError, TokenError
from mgattest.ca._identity import identity_from_claims
from mgattest.ca._tokens import TokenVerifier

MAX_REQUEST_BYTES = 64 * 1024
CT_KEY_PATH = "/api/v2/mgattest/ctlog"


class PEMChainJSON(TypedDict):
    """Fulcio ``CertificateChain``: PEM certificates, leaf first."""

    certificates: list[str]


class SignedCertificateJSON(TypedDict):
    """Fulcio ``SigningCertificateEmbeddedSct``: the issued chain."""

    chain: PEMChainJSON


class SigningCertResponseJSON(TypedDict):
    """The ``POST /api/v2/signingCert`` response: the SCT travels inside the leaf."""

    signedCertificateEmbeddedSct: SignedCertificateJSON


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise CAError(f"{field} must be a base64 string", what="signing-request", where=field)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CAError(f"{field} is not valid base64", what="signing-request", where=field) from None


def _verify_pop(public_key: Any, signature: bytes, challenge: bytes) -> None:
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            try:
                public_key.verify(signature, challenge, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                if isinstance(public_key.curve, ec.SECP256R1):
                    raise
                digest = hashes.SHA384() if isinstance(public_key.curve, ec.SECP384R1) \
                    else hashes.SHA512()
                public_key.verify(signature, challenge, ec.ECDSA(digest))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, challenge)
        else:
            raise CAError("unsupported public key type", what="public-key")
    except InvalidSignature:
        raise CAError("proof of possession does not verify: sign the token's subject/email "
                      "with the private key", what="proof-of-possession") from None


def _requested_key(body: dict[str, Any], challenge: str) -> Any:
    csr_field = body.get("certificateSigningRequest")
    key_request = body.get("publicKeyRequest")
    if (csr_field is None) == (key_request is None):
        raise CAError("give exactly one of certificateSigningRequest and publicKeyRequest",
                      what="signing-request")
    if csr_field is not None:
        raw = _b64(csr_field, "certificateSigningRequest")
        try:
            csr = (x509.load_pem_x509_csr(raw) if raw.lstrip().startswith(b"-----")
                   else x509.load_der_x509_csr(raw))
        except ValueError as exc:
            raise CAError(f"certificateSigningRequest is not a CSR ({exc})",
                          what="signing-request", where="certificateSigningRequest") from None
        # Bounded work before any signature check: no huge RSA exponent or modulus.
        check_rsa_parameters(csr.public_key(), what="requested public key", error=CAError)
        try:
            valid = csr.is_signature_valid
        except UnsupportedAlgorithm:
            valid = False
        if not valid:
            raise CAError("CSR signature does not verify (no proof of possession)",
                          what="proof-of-possession", where="certificateSigningRequest")
        return csr.public_key()
    if not isinstance(key_request, dict) or not isinstance(key_request.get("publicKey"), dict):
        raise CAError("publicKeyRequest.publicKey is missing", what="signing-request")
    content = key_request["publicKey"].get("content")
    if not isinstance(content, str):
        raise CAError("publicKeyRequest.publicKey.content must be a PEM string",
                      what="signing-request")
    try:
        public_key = serialization.load_pem_public_key(content.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        raise CAError(f"publicKeyRequest.publicKey.content is not a PEM public key ({exc})",
                      what="signing-request") from None
    check_rsa_parameters(public_key, what="requested public key", error=CAError)
    signature = _b64(key_request.get("proofOfPossession"), "publicKeyRequest.proofOfPossession")
    _verify_pop(public_key, signature, challenge.encode("utf-8"))
    return public_key


def _token(body: dict[str, Any], authorization: str | None) -> str:
    token: str | None = None
    creds = body.get("credentials")
    if isinstance(creds, dict) and isinstance(creds.get("oidcIdentityToken"), str):
        token = creds["oidcIdentityToken"]
    if token is None and authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
    if token is None:
        raise TokenError("no OIDC identity token (Authorization: Bearer or "
                         "credentials.oidcIdentityToken)", what="oidc-token")
    return token


def issue_for_request(ca: CertificateAuthority, verifier: TokenVerifier,
                      body: JSONObject, authorization: str | None) -> SigningCertResponseJSON:
    """Handle one signingCert request body; return Fulcio's response JSON."""
    token = _token(body, authorization)
    issuer, claims = verifier.verify(token)
    identity = identity_from_claims(claims, issuer, verifier.configs[issuer].type)
    public_key = _requested_key(body, identity.challenge)
    try:
        cert = ca.issue(public_key, identity)
    except (ValueError, UnicodeError) as exc:  # what a certificate cannot represent: 400
        raise CAError(f"the token's identity cannot be represented in a certificate ({exc})",
                      what="identity") from None
    chain = [_pem(cert)] + [_pem(c) for c in ca.chain]
    return {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}}


def create_app(ca: CertificateAuthority, verifier: TokenVerifier) -> FastAPI:
    """Build the FastAPI app serving Fulcio's v2 API for ``ca``."""
    app = FastAPI(title="mgattest private CA (Fulcio v2 API)", docs_url=None,
                  redoc_url=None, openapi_url=None)

    def _error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"code": status, "message": message}, status_code=status)

    @app.post("/api/v2/signingCert")
    async def _signing_cert(request: Request) -> Any:
        declared = request.headers.get("content-length")
        length = parse_ascii_uint(declared)
        if declared is not None and length is None:
            return _error(400, "invalid Content-Length")
        if length is not None and length > MAX_REQUEST_BYTES:
            return _error(413, f"request larger than {MAX_REQUEST_BYTES} bytes")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_REQUEST_BYTES:
                return _error(413, f"request larger than {MAX_REQUEST_BYTES} bytes")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return _error(400, "request body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "request body is not a JSON object")
        try:
            answer = await run_in_threadpool(issue_for_request, ca, verifier, body,
                                             request.headers.get("authorization"))
        except TokenError as exc:
            return _error(401, f"identity token rejected: {exc.message}")
        except CAError as exc:
            return _error(400, exc.message)
        return JSONResponse(answer, status_code=201)

    @app.get("/api/v2/trustBundle")
    def _trust_bundle() -> dict[str, Any]:
        return {"chains": [{"certificates": [_pem(c) for c in ca.chain]}]}

    @app.get("/api/v2/configuration")
    def _configuration() -> dict[str, Any]:
        return {"issuers": [{"issuerUrl": c.url, "audience": verifier.audience,
                             "challengeClaim": c.challenge_claim, "issuerType": c.type}
                            for c in verifier.configs.values()]}

    @app.get(CT_KEY_PATH)
    def _ct_key() -> dict[str, Any]:
        pem = serialization.load_der_public_key(ca.ct_signer.public_key_der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return {"publicKey": pem.decode("ascii"),
                "keyId": base64.b64encode(ca.ct_log_id()).decode("ascii"),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFrom": ca.created.isoformat().replace("+00:00", "Z")}

    @app.get("/healthz")
    def _health() -> dict[str, str]:
        return {"status": "ok"}

    return app
