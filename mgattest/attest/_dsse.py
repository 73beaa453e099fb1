"""DSSE envelopes (Dead Simple Signing Envelope v1.0).

The signature covers the pre-authentication encoding (PAE), never the raw payload:
``"DSSEv1" SP len(type) SP type SP len(body) SP body`` with lengths in ASCII decimal.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import NotRequired, Protocol, TypedDict
from mgattest._encodings import pae
from mgattest.attest.errors import DSSEFormatError

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"

# Bounds applied before any decoding: an envelope carries one Statement, not a dataset.
MAX_PAYLOAD_BYTES = 32 * 1024 * 1024
MAX_SIGNATURES = 16
MAX_SIGNATURE_BYTES = 16 * 1024


class SignatureJSON(TypedDict):
    """One signature of :class:`EnvelopeJSON` (``keyid`` written only when set)."""

    sig: str
    keyid: NotRequired[str]


class EnvelopeJSON(TypedDict):
    """A DSSE envelope in proto-JSON, as :meth:`Envelope.to_dict` writes it (bytes in
    standard base64)."""

    payload: str
    payloadType: str
    signatures: list[SignatureJSON]


def b64decode_strict(value: object, *, what: str, where: str | None = None,
                     max_bytes: int | None = None) -> bytes:
    """Decode standard (or URL-safe) base64, rejecting anything else with a clear error."""
    if not isinstance(value, str):
        raise DSSEFormatError(f"{what}: expected a base64 string, got {type(value).__name__}",
                              what=what, where=where)
    if max_bytes is not None and len(value) > (max_bytes * 4) // 3 + 4:
        raise DSSEFormatError(f"{what}: larger than {max_bytes} bytes", what=what, where=where)
    # Go's encoding/base64 (and so protojson) skips CR and LF: accept wrapped base64.
    text = value.strip().replace("\r", "").replace("\n", "")
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DSSEFormatError(f"{what}: invalid base64", what=what, where=where) from None


def b64(data: bytes) -> str:
    """Standard base64 with padding, as proto-JSON writes bytes."""
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Signature:
    """One DSSE signature: raw signature bytes and an optional key id."""

    sig: bytes
    keyid: str = ""


@dataclass(frozen=True)
class Envelope:
    """A parsed DSSE envelope; ``payload`` holds the exact signed bytes."""

    payload: bytes
    payload_type: str = IN_TOTO_PAYLOAD_TYPE
    signatures: tuple[Signature, ...] = field(default_factory=tuple)

    def pae(self) -> bytes:
        """The bytes every signature of this envelope covers."""
        return pae(self.payload_type, self.payload)

    def to_dict(self) -> EnvelopeJSON:
        """Proto-JSON form, as in a Sigstore bundle's ``dsseEnvelope``."""
        sigs: list[SignatureJSON] = []
        for s in self.signatures:
            entry: SignatureJSON = {"sig": b64(s.sig)}
            if s.keyid:
                entry["keyid"] = s.keyid
            sigs.append(entry)
        return {"payload": b64(self.payload), "payloadType": self.payload_type,
                "signatures": sigs}

    def to_json(self) -> str:
        """Compact JSON of :meth:`to_dict` (the form submitted to a Rekor dsse entry)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: object, *, where: str = "dsseEnvelope") -> "Envelope":
        """Parse and bound a proto-JSON envelope; raises :class:`DSSEFormatError`."""
        if not isinstance(data, dict):
            raise DSSEFormatError("DSSE envelope must be a JSON object", what="dsse", where=where)
        payload_type = data.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type or len(payload_type) > 256:
            raise DSSEFormatError("DSSE envelope: payloadType missing or invalid",
                                  what="dsse.payloadType", where=where)
        payload = b64decode_strict(data.get("payload"), what="dsse.payload", where=where,
                                   max_bytes=MAX_PAYLOAD_BYTES)
        raw_sigs = data.get("signatures")
        if not isinstance(raw_sigs, list) or not raw_sigs:
            raise DSSEFormatError("DSSE envelope has no signatures",
                                  what="dsse.signatures", where=where)
        if len(raw_sigs) > MAX_SIGNATURES:
            raise DSSEFormatError(f"DSSE envelope has more than {MAX_SIGNATURES} signatures",
                                  what="dsse.signatures", where=where)
        sigs = []
        for i, raw in enumerate(raw_sigs):
            if not isinstance(raw, dict):
                raise DSSEFormatError(f"DSSE signature {i} is not an object",
                                      what="dsse.signatures", where=where)
            sig = b64decode_strict(raw.get("sig"), what=f"dsse.signatures[{i}].sig",
                                   where=where, max_bytes=MAX_SIGNATURE_BYTES)
            if not sig:
                raise DSSEFormatError(f"DSSE signature {i} is empty",
                                      what="dsse.signatures", where=where)
            keyid = raw.get("keyid", "") or ""
            if not isinstance(keyid, str):
                raise DSSEFormatError(f"DSSE signature {i}: keyid must be a string",
                                      what="dsse.signatures", where=where)
            sigs.append(Signature(sig, keyid))
        return cls(payload=payload, payload_type=payload_type, signatures=tuple(sigs))


class PayloadSigner(Protocol):
    """What DSSE signing needs: ``sign(data) -> signature`` (e.g. ``signers.Signer``)."""

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (the PAE of the payload)."""


def sign_envelope(payload: bytes, signer: PayloadSigner, *,
                  payload_type: str = IN_TOTO_PAYLOAD_TYPE, keyid: str = "") -> Envelope:
    """Sign ``payload`` with ``signer`` (anything with ``.sign(data) -> bytes``)."""
    signature = signer.sign(pae(payload_type, payload))
    return Envelope(payload=payload, payload_type=payload_type,
                    signatures=(Signature(signature, keyid),))
