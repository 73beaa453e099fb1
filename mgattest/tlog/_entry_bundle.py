"""A Rekor v1 log entry plus the statement the log serves → a verifiable bundle.

A Rekor ``dsse`` 0.0.1 entry does not record the DSSE envelope: its body holds the
envelope's ``signatures`` (each signature with its ``verifier``, a PEM key or
certificate) and the SHA-256 of the payload (``payloadHash``). ``mgattest log serve``
keeps the payload (the in-toto Statement) beside the entry and serves it as the
``LogEntry``'s ``attestation.data``: the shape Rekor's attestation storage serves for
``intoto`` entries (the decoded payload, never the envelope). Rekor itself stores
nothing for ``dsse`` entries, so its dsse hits stay unverifiable here.

:func:`bundle_from_log_entry` rebuilds the envelope from those parts: the signature
and verifier come from the entry body (covered by the inclusion proof and the SET),
the payload is the served statement, accepted only when its SHA-256 is the body's
``payloadHash``, and the payload type is in-toto's (the body does not record one; a
signature over another type simply fails to verify). The result is an ordinary
v0.3 bundle whose ``tlogEntries`` hold the entry, so whoever uses it verifies it like
any bundle: the signature over DSSE's PAE, the key or certificate trust, the entry's
binding to the envelope, the inclusion proof and the SET. Nothing the log serves
outside the verified body is believed before that.

:func:`served_attestation` reads ``attestation.data``; ``log search`` uses it to find
a statement's subjects, the same bytes the bundle's payload is built from.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from mgattest._jsonutil import JSONObject
from mgattest.tlog._client import rekor_v1_to_bundle_entry
from mgattest.tlog._entries import MAX_ATTESTATION_SIZE
from mgattest.tlog._search_terms import committed_payload_sha256
from mgattest.tlog.errors import LogEntryError

BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def served_attestation(raw: object) -> bytes | None:
    """The decoded ``attestation.data`` of a Rekor v1 ``LogEntry`` (``{uuid: {...}}``),
    or None when absent, malformed or larger than the log keeps. Unverified: it is
    only believed when its SHA-256 is the verified body's ``payloadHash``."""
    if not isinstance(raw, dict) or len(raw) != 1:
        return None
    (entry,) = raw.values()
    att = entry.get("attestation") if isinstance(entry, dict) else None
    data = att.get("data") if isinstance(att, dict) else None
    if not isinstance(data, str) or len(data) > MAX_ATTESTATION_SIZE * 4 // 3 + 4:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def bundle_from_log_entry(raw: object, *, where: str) -> JSONObject:
    """The v0.3 bundle a Rekor v1 dsse ``LogEntry`` and its served statement stand for
    (see the module docstring). Nothing is verified here but the statement's hash;
    verify the result as any bundle.

    Raises :class:`~mgattest.tlog.LogEntryError` (or ``LogResponseError`` for a
    malformed entry) naming why no bundle can be built: not a dsse entry, no statement
    served, a statement that is not the one the entry commits to.
    """
    entry = rekor_v1_to_bundle_entry(raw, where=where)
    try:
        body = json.loads(base64.b64decode(entry["canonicalizedBody"], validate=True))
    except (ValueError, binascii.Error, RecursionError):
        body = None  # rekor_v1_to_bundle_entry already parsed it; kept for the type checker
    if not isinstance(body, dict):
        raise LogEntryError("the entry body is not a JSON object", what="log entry",
                            where=where)
    kind = (str(body.get("kind")), str(body.get("apiVersion")))
    spec = body.get("spec")
    signatures = spec.get("signatures") if isinstance(spec, dict) else None
    if kind != ("dsse", "0.0.1"):
        raise LogEntryError(f"a {kind[0]} {kind[1]} entry, not a dsse 0.0.1 entry: the log "
                            "holds no DSSE signature to rebuild an envelope from",
                            what="log entry", where=where)
    if not isinstance(signatures, list) or len(signatures) != 1 \
            or not isinstance(signatures[0], dict):
        raise LogEntryError("the dsse entry does not hold exactly one signature",
                            what="log entry", where=where)
    signature, verifier = signatures[0].get("signature"), signatures[0].get("verifier")
    if not isinstance(signature, str) or not isinstance(verifier, str):
        raise LogEntryError("the dsse entry's signature or verifier is not a string",
                            what="log entry", where=where)
    statement = served_attestation(raw)
    if statement is None:
        raise LogEntryError("the log serves no in-toto statement for this dsse entry "
                            "(attestation.data)", what="served statement", where=where)
    expected = committed_payload_sha256(body)
    got = hashlib.sha256(statement).hexdigest()
    if expected is None or got != expected:
        raise LogEntryError(f"the statement the log serves hashes to sha256:{got}, but the "
                            f"entry's payloadHash is sha256:{expected}: not the signed "
                            "payload", what="served statement", where=where)
    material = _verification_material(verifier, where=where)
    material["tlogEntries"] = [dict(entry)]
    envelope = {"payload": base64.b64encode(statement).decode(),
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "signatures": [{"sig": signature}]}
    return {"mediaType": BUNDLE_V03, "verificationMaterial": material,
            "dsseEnvelope": envelope}


def _verification_material(verifier_b64: str, *, where: str) -> JSONObject:
    """The bundle's certificate (``rawBytes``) for a certificate verifier; a key hint
    for a public key (the verifier's trusted keys decide which key that is)."""
    try:
        pem = base64.b64decode(verifier_b64, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        raise LogEntryError("the dsse entry's verifier is not a base64 PEM",
                            what="log entry", where=where) from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        return {"publicKey": {"hint": ""}}
    der_b64 = "".join(line.strip() for line in pem.splitlines()
                      if line.strip() and not line.startswith("-----"))
    return {"certificate": {"rawBytes": der_b64}}
