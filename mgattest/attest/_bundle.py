"""Sigstore bundles (protobuf-specs ``sigstore_bundle.proto``) in proto-JSON.

Reads media types ``application/vnd.dev.sigstore.bundle+json;version=0.1|0.2|0.3`` and
``application/vnd.dev.sigstore.bundle.v0.3+json``; writes v0.3. Parsing bounds sizes
and checks the shape before any cryptography runs; each ``tlogEntries`` item is parsed
once, here, into a :class:`~mgattest.tlog._transparency_entry.TransparencyLogEntry`
(whose index and time are claims until ``tlog.verify.verify_entry`` proves them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NotRequired, Sequence, TypedDict

from mgattest._jsonutil import JSONObject, JSONValue
from mgattest._files import read_bounded
from mgattest.attest._dsse import Envelope, EnvelopeJSON, b64, b64decode_strict
from mgattest.attest.errors import BundleFormatError, BundleReadError, DSSEFormatError
from mgattest.tlog import TransparencyLogEntry, parse_transparency_entry

MEDIA_TYPE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
MEDIA_TYPES = {
    "application/vnd.dev.sigstore.bundle+json;version=0.1": "0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2": "0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "0.3",
    MEDIA_TYPE_V03: "0.3",
}
MAX_BUNDLE_BYTES = 64 * 1024 * 1024


# The v0.3 bundle as :func:`make_bundle` writes it (proto-JSON: camelCase members,
# bytes in standard base64). Bundles read from elsewhere (v0.1-v0.3, other producers)
# stay arbitrary JSON until :func:`parse_bundle` turns them into a :class:`Bundle`.

class CertificateJSON(TypedDict):
    """``verificationMaterial.certificate``: the signing certificate, DER in base64."""

    rawBytes: str


class PublicKeyHintJSON(TypedDict):
    """``verificationMaterial.publicKey``: which key signed (a hint, not the key)."""

    hint: str


class SignedTimestampJSON(TypedDict):
    """One RFC 3161 timestamp response, DER in base64."""

    signedTimestamp: str


class TimestampVerificationDataJSON(TypedDict):
    """``verificationMaterial.timestampVerificationData``."""

    rfc3161Timestamps: list[SignedTimestampJSON]


class VerificationMaterialJSON(TypedDict):
    """``verificationMaterial``: a certificate or a public key hint (exactly one), the
    transparency log entries and any RFC 3161 timestamps."""

    certificate: NotRequired[CertificateJSON]
    publicKey: NotRequired[PublicKeyHintJSON]
    tlogEntries: list[Mapping[str, JSONValue]]
    timestampVerificationData: NotRequired[TimestampVerificationDataJSON]


class MessageDigestJSON(TypedDict):
    """``messageSignature.messageDigest``: hash algorithm name and digest in base64."""

    algorithm: str
    digest: str


class MessageSignatureJSON(TypedDict):
    """``messageSignature``: a signature over an artifact's digest."""

    messageDigest: MessageDigestJSON
    signature: str


class BundleJSON(TypedDict):
    """A Sigstore bundle v0.3 as mgattest (or sigstore-python, for keyless signing)
    writes it: a DSSE envelope or a message signature (exactly one)."""

    mediaType: str
    verificationMaterial: VerificationMaterialJSON
    dsseEnvelope: NotRequired[EnvelopeJSON]
    messageSignature: NotRequired[MessageSignatureJSON]
MAX_TLOG_ENTRIES = 8
MAX_CERTIFICATES = 10
MAX_TIMESTAMPS = 8
MAX_CERT_BYTES = 64 * 1024
MAX_BODY_BYTES = 48 * 1024 * 1024
_HASH_ALGS = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}


@dataclass(frozen=True)
class MessageSignature:
    """A ``messageSignature`` bundle: a signature over an artifact's bytes."""

    algorithm: str  # "sha256" | "sha384" | "sha512"
    digest: bytes
    signature: bytes


@dataclass(frozen=True)
class Bundle:
    """A parsed, shape-checked Sigstore bundle. Nothing here is verified yet."""

    media_type: str
    version: str
    source: str
    envelope: Envelope | None = None
    message_signature: MessageSignature | None = None
    public_key_hint: str | None = None
    certificate_der: bytes | None = None  # the leaf (v0.3 `certificate` or chain[0])
    chain_der: tuple[bytes, ...] = ()  # any further certificates of a v0.1/v0.2 chain
    tlog_entries: tuple[TransparencyLogEntry, ...] = ()
    rfc3161_timestamps: tuple[bytes, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def signature(self) -> bytes:
        """The one signature this bundle carries."""
        if self.envelope is not None:
            return self.envelope.signatures[0].sig
        assert self.message_signature is not None
        return self.message_signature.signature


def _fail(message: str, where: str, what: str = "bundle") -> BundleFormatError:
    return BundleFormatError(message, what=what, where=where)


def read_bundle_bytes(path: str | Path, *, max_bytes: int = MAX_BUNDLE_BYTES) -> bytes:
    """Read a bundle file, refusing files over ``max_bytes`` before reading them."""
    return read_bounded(path, max_bytes, what="bundle", error=BundleReadError,
                        too_large=BundleFormatError)


def load_bundle(source: str | Path | bytes | JSONObject, *,
                where: str | None = None) -> Bundle:
    """Parse a bundle from a path, raw JSON bytes or an already-decoded dict."""
    if isinstance(source, dict):
        return parse_bundle(source, where=where or "bundle")
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), where or "bundle"
        if len(data) > MAX_BUNDLE_BYTES:
            raise _fail(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes", label,
                        "bundle size")
    else:
        data, label = read_bundle_bytes(source), where or str(source)
    try:
        decoded = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _fail(f"bundle {label} is not valid JSON: {exc}", label) from None
    return parse_bundle(decoded, where=label)


def _obj(value: Any, name: str, where: str, *, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _fail(f"bundle {name} must be an object", where, name)
    return value


def _cert_bytes(value: Any, name: str, where: str) -> bytes:
    raw = _obj(value, name, where).get("rawBytes")
    try:
        data = b64decode_strict(raw, what=f"{name}.rawBytes", where=where,
                                max_bytes=MAX_CERT_BYTES)
    except DSSEFormatError as exc:
        raise _fail(exc.message, where, name) from None
    if not data:
        raise _fail(f"bundle {name} is empty", where, name)
    return data


def _parse_tlog_entry(entry: Any, i: int, where: str) -> TransparencyLogEntry:
    """The bundle's shape rules for a ``tlogEntries`` item (a :class:`BundleFormatError`),
    then the log's own parse (its typed errors, located at ``tlogEntries[i].<field>``)."""
    return parse_transparency_entry(_check_tlog_entry(entry, i, where),
                                    where=f"{where} tlogEntries[{i}]")


def _check_tlog_entry(entry: Any, i: int, where: str) -> dict[str, Any]:
    label = f"tlogEntries[{i}]"
    entry = _obj(entry, label, where)
    for key in ("logIndex", "logId", "kindVersion", "canonicalizedBody"):
        if key not in entry:
            raise _fail(f"bundle {label} lacks {key}", where, label)
    try:
        index = int(entry["logIndex"])
    except (TypeError, ValueError):
        raise _fail(f"bundle {label}.logIndex is not an integer", where, label) from None
    if index < 0:
        raise _fail(f"bundle {label}.logIndex is negative ({index})", where, label)
    body = entry["canonicalizedBody"]
    if not isinstance(body, str) or len(body) > (MAX_BODY_BYTES * 4) // 3 + 4:
        raise _fail(f"bundle {label}.canonicalizedBody missing or too large", where, label)
    kv = _obj(entry["kindVersion"], f"{label}.kindVersion", where)
    if not isinstance(kv.get("kind"), str) or not isinstance(kv.get("version"), str):
        raise _fail(f"bundle {label}.kindVersion needs kind and version", where, label)
    checked: dict[str, Any] = entry
    return checked


def parse_bundle(data: JSONValue, *, where: str = "bundle") -> Bundle:
    """Shape-check a decoded bundle and return a :class:`Bundle`."""
    if not isinstance(data, dict):
        raise _fail("bundle is not a JSON object", where)
    media_type = data.get("mediaType")
    version = MEDIA_TYPES.get(media_type) if isinstance(media_type, str) else None
    if version is None or not isinstance(media_type, str):
        raise _fail(f"unsupported bundle media type {media_type!r}", where, "mediaType")
    vm = _obj(data.get("verificationMaterial"), "verificationMaterial", where)

    hint = None
    leaf = None
    chain: tuple[bytes, ...] = ()
    material = [k for k in ("publicKey", "x509CertificateChain", "certificate") if k in vm]
    if len(material) != 1:
        raise _fail("bundle verificationMaterial must hold exactly one of publicKey, "
                    f"x509CertificateChain, certificate (found {material or 'none'})",
                    where, "verificationMaterial")
    if "publicKey" in vm:
        pk = _obj(vm["publicKey"], "publicKey", where)
        hint = pk.get("hint")
        if hint is not None and (not isinstance(hint, str) or len(hint) > 1024):
            raise _fail("bundle publicKey.hint must be a short string", where, "publicKey")
    elif "certificate" in vm:
        leaf = _cert_bytes(vm["certificate"], "certificate", where)
    else:
        # protobuf-specs puts a v0.3 leaf in `certificate`, but model_signing 1.1.1
        # writes v0.3 bundles with a chain: read both (the chain's extra certificates
        # are never trusted as anchors).
        certs = _obj(vm["x509CertificateChain"], "x509CertificateChain", where).get(
            "certificates")
        if not isinstance(certs, list) or not certs:
            raise _fail("bundle certificate chain is empty", where, "x509CertificateChain")
        if len(certs) > MAX_CERTIFICATES:
            raise _fail(f"bundle certificate chain longer than {MAX_CERTIFICATES}", where,
                        "x509CertificateChain")
        ders = [_cert_bytes(c, f"x509CertificateChain.certificates[{i}]", where)
                for i, c in enumerate(certs)]
        leaf, chain = ders[0], tuple(ders[1:])

    entries = vm.get("tlogEntries", []) or []
    if not isinstance(entries, list):
        raise _fail("bundle tlogEntries must be a list", where, "tlogEntries")
    if len(entries) > MAX_TLOG_ENTRIES:
        raise _fail(f"bundle has more than {MAX_TLOG_ENTRIES} tlog entries", where,
                    "tlogEntries")
    tlog = tuple(_parse_tlog_entry(e, i, where) for i, e in enumerate(entries))

    tsd = _obj(vm.get("timestampVerificationData"), "timestampVerificationData", where,
               required=False)
    raw_ts = tsd.get("rfc3161Timestamps", []) or []
    if not isinstance(raw_ts, list) or len(raw_ts) > MAX_TIMESTAMPS:
        raise _fail("bundle rfc3161Timestamps must be a short list", where,
                    "timestampVerificationData")
    timestamps = []
    for i, ts in enumerate(raw_ts):
        try:
            timestamps.append(b64decode_strict(_obj(ts, "rfc3161Timestamps", where).get(
                "signedTimestamp"), what=f"rfc3161Timestamps[{i}]", where=where,
                max_bytes=MAX_CERT_BYTES))
        except DSSEFormatError as exc:
            raise _fail(exc.message, where, "timestampVerificationData") from None

    has_dsse, has_msg = "dsseEnvelope" in data, "messageSignature" in data
    if has_dsse == has_msg:
        raise _fail("bundle must hold exactly one of dsseEnvelope and messageSignature",
                    where, "content")
    envelope = message = None
    try:
        if has_dsse:
            envelope = Envelope.from_dict(data["dsseEnvelope"], where=where)
            if len(envelope.signatures) != 1:
                raise _fail("a bundle's DSSE envelope must carry exactly one signature",
                            where, "dsseEnvelope")
        else:
            ms = _obj(data["messageSignature"], "messageSignature", where)
            md = _obj(ms.get("messageDigest"), "messageSignature.messageDigest", where,
                      required=False)
            named = md.get("algorithm", "SHA2_256") if md else "SHA2_256"
            alg = _HASH_ALGS.get(named) if isinstance(named, str) else None
            if alg is None:
                raise _fail(f"unsupported message digest algorithm {str(named)[:40]!r}",
                            where, "messageSignature")
            digest = (b64decode_strict(md.get("digest"), what="messageDigest.digest",
                                       where=where, max_bytes=64) if md else b"")
            sig = b64decode_strict(ms.get("signature"), what="messageSignature.signature",
                                   where=where, max_bytes=16 * 1024)
            if not sig:
                raise _fail("bundle messageSignature.signature is empty", where,
                            "messageSignature")
            message = MessageSignature(alg, digest, sig)
    except DSSEFormatError as exc:
        raise _fail(exc.message, where, exc.what or "content") from None
    return Bundle(media_type=media_type, version=version, source=where, envelope=envelope,
                  message_signature=message, public_key_hint=hint, certificate_der=leaf,
                  chain_der=chain, tlog_entries=tlog, rfc3161_timestamps=tuple(timestamps),
                  raw=data)


def make_bundle(*, envelope: Envelope | None = None,
                message_signature: MessageSignature | None = None,
                public_key_hint: str | None = None, certificate_der: bytes | None = None,
                tlog_entries: Sequence[TransparencyLogEntry | Mapping[str, JSONValue]] | None = None,
                rfc3161_timestamps: list[bytes] | None = None) -> BundleJSON:
    """Build a v0.3 bundle dict (proto-JSON: camelCase, int64 as strings, base64 bytes).

    ``tlog_entries``: proto-JSON dicts, or parsed entries (written back as they were read).
    """
    entries = [e.to_dict() if isinstance(e, TransparencyLogEntry) else e
               for e in tlog_entries or []]
    # Members in this order (certificate or key, entries, timestamps): the JSON written.
    vm: VerificationMaterialJSON
    if certificate_der is not None:
        vm = {"certificate": {"rawBytes": b64(certificate_der)}, "tlogEntries": entries}
    else:
        vm = {"publicKey": {"hint": public_key_hint or ""}, "tlogEntries": entries}
    if rfc3161_timestamps:
        vm["timestampVerificationData"] = {
            "rfc3161Timestamps": [{"signedTimestamp": b64(t)} for t in rfc3161_timestamps]}
    out: BundleJSON = {"mediaType": MEDIA_TYPE_V03, "verificationMaterial": vm}
    if envelope is not None:
        out["dsseEnvelope"] = envelope.to_dict()
    elif message_signature is not None:
        alg = {v: k for k, v in _HASH_ALGS.items()}[message_signature.algorithm]
        out["messageSignature"] = {
            "messageDigest": {"algorithm": alg, "digest": b64(message_signature.digest)},
            "signature": b64(message_signature.signature)}
    else:
        raise ValueError("a bundle needs an envelope or a message signature")
    return out


def dump_bundle(bundle: BundleJSON) -> str:
    """Serialise a bundle dict as indented JSON text ending in a newline."""
    return json.dumps(bundle, indent=2) + "\n"
