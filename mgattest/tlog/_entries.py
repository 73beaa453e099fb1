"""Rekor entry kinds: validate a proposed entry, verify its signature, canonicalise it.

Writes: ``hashedrekord`` 0.0.1 and ``dsse`` 0.0.1, in Rekor's proposed-entry API shape
``{"apiVersion", "kind", "spec"}``. The stored leaf body is byte-for-byte what Rekor
stores: the RFC 8785 (JCS) serialisation of ``{"apiVersion", "kind", "spec"}`` with the
fields Rekor keeps:

* hashedrekord: ``spec.signature.content`` (base64 signature),
  ``spec.signature.publicKey.content`` (base64 of the re-encoded PEM key or
  certificate), ``spec.data.hash.{algorithm,value}``.
* dsse: ``spec.envelopeHash`` (SHA-256 of the proposed envelope text as sent),
  ``spec.payloadHash`` (SHA-256 of the decoded payload), ``spec.signatures`` sorted by
  signature string, each ``{signature, verifier: base64(PEM)}``.

Reads (:func:`parse_body`) also accept ``intoto`` 0.0.2 and the Rekor v2
``hashedrekord``/``dsse`` 0.0.2 bodies.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, cast

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mgattest._encodings import pae
from mgattest._jsonutil import JSONObject
from mgattest.tlog.errors import EntryRejectedError
from mgattest.tlog._keys import KeyParameterError, check_rsa_parameters
from mgattest.tlog._tiles import MAX_ENTRY_SIZE

MAX_PROPOSED_SIZE = 4 * 1024 * 1024  # whole proposed entry, serialized
MAX_ENVELOPE_SIZE = 4 * 1024 * 1024
MAX_KEY_PEM_SIZE = 64 * 1024
MAX_SIGNATURE_SIZE = 4096
MAX_SIGNATURES = 16
MAX_SIGNATURE_CHECKS = 64  # signature verifications one proposed entry may cost
# Largest attestation (DSSE payload) the log keeps beside an entry and a client reads.
MAX_ATTESTATION_SIZE = 1024 * 1024
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_BODY_SIZE = 4 * 1024 * 1024  # a stored body this package reads (other logs' too)
# A body this log appends: tlog-tiles entry bundles prefix each entry with a uint16
# length, so a larger entry could never be served as a tile.
MAX_LOGGED_BODY_SIZE = MAX_ENTRY_SIZE

HASH_ALGORITHMS = {"sha256": (hashes.SHA256, 64), "sha384": (hashes.SHA384, 96),
                   "sha512": (hashes.SHA512, 128)}
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_STD_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.S)

WRITABLE_KINDS = {("hashedrekord", "0.0.1"), ("dsse", "0.0.1")}
READABLE_KINDS = WRITABLE_KINDS | {("intoto", "0.0.2"), ("hashedrekord", "0.0.2"),
                                   ("dsse", "0.0.2")}


@dataclass(frozen=True)
class CanonicalEntry:
    """A validated, signature-checked entry ready to be appended: its leaf body."""

    kind: str
    api_version: str
    body: bytes
    # a dsse entry's in-toto Statement payload, kept beside the entry for search
    attestation: bytes | None = None


def _reject(message: str, field: str | None = None) -> EntryRejectedError:
    return EntryRejectedError(message, what="proposed entry", where=field)


def _obj(value: Any, field: str, keys: set[str], required: set[str] | None = None
         ) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _reject(f"{field} must be a JSON object", field)
    # JSON null means "absent", as Go's decoder (and so Rekor) treats it; sigstore-python
    # sends null for the server-computed dsse fields.
    present: dict[str, Any] = {k: v for k, v in value.items() if v is not None}
    unknown = set(present) - keys
    if unknown:
        raise _reject(f"{field} has unknown field(s): {_names(unknown)}", field)
    missing = (required if required is not None else keys) - set(present)
    if missing:
        raise _reject(f"{field} is missing {', '.join(sorted(missing))}", field)
    return present


def _names(names: set[str], limit: int = 5) -> str:
    """Client-chosen field names for a message: a few, short, and printable (a lone
    surrogate or a control character is escaped, so the message can always be sent)."""
    shown = [name if name.isprintable() and name.isascii() else ascii(name)
             for name in sorted(names)[:limit]]
    text = ", ".join(n[:60] for n in shown)
    return text + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def _str(value: Any, field: str, max_len: int) -> str:
    if not isinstance(value, str) or not value:
        raise _reject(f"{field} must be a non-empty string", field)
    if len(value) > max_len:
        raise _reject(f"{field} is longer than {max_len} characters", field)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a "\ud800" JSON escape: nothing can hash or sign it
            raise _reject(f"{field} holds a lone UTF-16 surrogate (not Unicode text)",
                          field) from None
    return value


def _b64(value: Any, field: str, max_len: int) -> bytes:
    """Strict standard base64 (padded), as Go's ``base64.StdEncoding`` requires."""
    text = _str(value, field, max_len * 4 // 3 + 4)
    if not _STD_B64.fullmatch(text):
        raise _reject(f"{field} is not standard base64", field)
    out = base64.b64decode(text)
    if not out:
        raise _reject(f"{field} is empty", field)
    return out


def _b64_lenient(value: Any, field: str, max_len: int) -> bytes:
    """Base64 as DSSE allows it: standard or URL-safe alphabet, padding optional."""
    text = _str(value, field, max_len * 4 // 3 + 4)
    if not re.fullmatch(r"[A-Za-z0-9+/\-_]*={0,2}", text):
        raise _reject(f"{field} is not base64", field)
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1:
        raise _reject(f"{field} is not base64 (bad length)", field)
    try:
        return base64.b64decode(stripped.replace("-", "+").replace("_", "/")
                                + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _reject(f"{field} is not base64", field) from None


@dataclass(frozen=True)
class _Key:
    public_key: Any
    canonical_pem: bytes  # what Rekor stores: the re-encoded PEM of the key or certificate


def load_key_or_certificate(pem: bytes, field: str) -> _Key:
    """Parse a PEM public key or certificate as Rekor's x509 PKI type does."""
    if len(pem) > MAX_KEY_PEM_SIZE:
        raise _reject(f"{field} is larger than {MAX_KEY_PEM_SIZE} bytes", field)
    try:
        return _load_key_cached(pem)
    except _KeyProblem as exc:
        raise _reject(f"{field} {exc}", field) from None


class _KeyProblem(Exception):
    """Internal: why a PEM key could not be used (the caller names the field)."""


@functools.lru_cache(maxsize=256)
def _load_key_cached(pem: bytes) -> _Key:
    # One signer usually logs many entries: parse each distinct key once.
    blocks = _PEM_BLOCK.findall(pem)
    if not blocks:
        raise _KeyProblem("is not a PEM public key or certificate")
    key: PublicKeyTypes
    if blocks[0] == b"CERTIFICATE" and len(blocks) == 1:
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
            raise _KeyProblem(f"cannot be parsed as a certificate: {exc}") from None
        try:
            key = cert.public_key()
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise _KeyProblem(f"holds an unsupported certificate key: {exc}") from None
        canonical = cert.public_bytes(serialization.Encoding.PEM)
    elif blocks[0] == b"PUBLIC KEY" and len(blocks) == 1:
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise _KeyProblem(f"cannot be parsed as a public key: {exc}") from None
        canonical = key.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        # Rekor would accept a chain and check it; we take the signing certificate only
        # (what sigstore-python sends) rather than half-check a chain.
        raise _KeyProblem("must hold exactly one PEM PUBLIC KEY or CERTIFICATE block "
                          "(certificate chains are not accepted)")
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey,
                            ed25519.Ed25519PublicKey)):
        raise _KeyProblem(f"holds an unsupported key type {type(key).__name__}")
    try:
        check_rsa_parameters(key)
    except KeyParameterError as exc:
        raise _KeyProblem(f"holds a refused key: {exc.message}") from None
    return _Key(key, canonical)


def _verify_prehashed(key: Any, signature: bytes, digest: bytes, algorithm: str,
                      field: str) -> None:
    hash_cls = HASH_ALGORITHMS[algorithm][0]
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hash_cls())))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hash_cls()))
        else:
            raise _reject(f"{field}: Ed25519 keys cannot sign a prehashed digest "
                          "(hashedrekord needs ECDSA or RSA; use a dsse entry)", field)
    except InvalidSignature:
        raise _reject(f"{field}: signature does not verify over {algorithm} digest "
                      f"{digest.hex()} with the given key", field) from None


class _CheckBudget:
    """Counts signature verifications for one entry; refuses the entry beyond the limit.

    Each check is CPU the client chose to spend on our side (and ``/entries/retrieve``
    runs them unauthenticated), so an entry may ask for at most
    :data:`MAX_SIGNATURE_CHECKS` of them.
    """

    def __init__(self, limit: int = MAX_SIGNATURE_CHECKS) -> None:
        self.left = limit

    def spend(self, field: str) -> None:
        if self.left <= 0:
            raise _reject(f"the entry needs more than {MAX_SIGNATURE_CHECKS} signature checks "
                          "(list the verifiers in the order of the signatures they verify)",
                          field)
        self.left -= 1


def _verify_message(key: Any, signature: bytes, message: bytes, budget: _CheckBudget,
                    field: str) -> bool:
    """Whether ``signature`` over ``message`` verifies (DSSE: hash chosen by key type)."""
    attempts: list[Any]
    if isinstance(key, ed25519.Ed25519PublicKey):
        attempts = [lambda: key.verify(signature, message)]
    elif isinstance(key, ec.EllipticCurvePublicKey):
        natural = {"secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512}.get(
            key.curve.name, hashes.SHA256)
        algs = [natural] if natural is hashes.SHA256 else [hashes.SHA256, natural]
        attempts = [lambda a=a: key.verify(signature, message, ec.ECDSA(a())) for a in algs]
    else:
        attempts = [
            lambda: key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256()),
            lambda: key.verify(signature, message,
                               padding.PSS(padding.MGF1(hashes.SHA256()),
                                           padding.PSS.DIGEST_LENGTH), hashes.SHA256()),
        ]
    for attempt in attempts:
        budget.spend(field)
        try:
            attempt()
            return True
        except InvalidSignature:
            continue
    return False


def _canonical_hashedrekord(spec: Any) -> dict[str, Any]:
    spec = _obj(spec, "spec", {"signature", "data"})
    sig = _obj(spec["signature"], "spec.signature", {"content", "publicKey"})
    pub = _obj(sig["publicKey"], "spec.signature.publicKey", {"content"})
    data = _obj(spec["data"], "spec.data", {"hash"})
    hsh = _obj(data["hash"], "spec.data.hash", {"algorithm", "value"})
    algorithm = hsh["algorithm"]
    if algorithm not in HASH_ALGORITHMS:
        raise _reject(f"spec.data.hash.algorithm must be one of "
                      f"{', '.join(HASH_ALGORITHMS)}, not {str(algorithm)[:20]!r}",
                      "spec.data.hash.algorithm")
    value = _str(hsh["value"], "spec.data.hash.value", 128)
    if len(value) != HASH_ALGORITHMS[algorithm][1] or not _LOWER_HEX.fullmatch(value):
        raise _reject(f"spec.data.hash.value must be {HASH_ALGORITHMS[algorithm][1]} "
                      f"lowercase hex characters for {algorithm}", "spec.data.hash.value")
    signature = _b64(sig["content"], "spec.signature.content", MAX_SIGNATURE_SIZE)
    key = load_key_or_certificate(
        _b64(pub["content"], "spec.signature.publicKey.content", MAX_KEY_PEM_SIZE),
        "spec.signature.publicKey.content")
    _verify_prehashed(key.public_key, signature, bytes.fromhex(value), algorithm,
                      "spec.signature.content")
    return {
        "signature": {
            "content": base64.b64encode(signature).decode(),
            "publicKey": {"content": base64.b64encode(key.canonical_pem).decode()},
        },
        "data": {"hash": {"algorithm": algorithm, "value": value}},
    }


def _canonical_dsse(spec: Any) -> tuple[dict[str, Any], bytes | None]:
    """The canonical dsse spec and the attestation to keep: the payload when it is an
    in-toto Statement of at most :data:`MAX_ATTESTATION_SIZE` bytes."""
    spec = _obj(spec, "spec", {"proposedContent"})
    content = _obj(spec["proposedContent"], "spec.proposedContent", {"envelope", "verifiers"})
    envelope_text = _str(content["envelope"], "spec.proposedContent.envelope",
                         MAX_ENVELOPE_SIZE)
    verifiers = content["verifiers"]
    if not isinstance(verifiers, list) or not verifiers:
        raise _reject("spec.proposedContent.verifiers must be a non-empty list",
                      "spec.proposedContent.verifiers")
    if len(verifiers) > MAX_SIGNATURES:
        raise _reject(f"at most {MAX_SIGNATURES} verifiers", "spec.proposedContent.verifiers")
    keys = [load_key_or_certificate(
        _b64(v, f"spec.proposedContent.verifiers[{i}]", MAX_KEY_PEM_SIZE),
        f"spec.proposedContent.verifiers[{i}]") for i, v in enumerate(verifiers)]
    try:
        envelope = json.loads(envelope_text)
    except (ValueError, RecursionError):
        raise _reject("spec.proposedContent.envelope is not JSON",
                      "spec.proposedContent.envelope") from None
    envelope = _obj(envelope, "envelope", {"payload", "payloadType", "signatures"})
    payload_type = _str(envelope["payloadType"], "envelope.payloadType", 1024)
    payload = _b64_lenient(envelope["payload"], "envelope.payload", MAX_ENVELOPE_SIZE)
    sigs = envelope["signatures"]
    if not isinstance(sigs, list) or not sigs:
        raise _reject("envelope.signatures must be a non-empty list", "envelope.signatures")
    if len(sigs) > MAX_SIGNATURES:
        raise _reject(f"at most {MAX_SIGNATURES} signatures", "envelope.signatures")
    message = pae(payload_type, payload)
    key_by_sig: dict[str, _Key] = {}
    used: set[int] = set()
    budget = _CheckBudget()
    for i, item in enumerate(sigs):
        item = _obj(item, f"envelope.signatures[{i}]", {"sig", "keyid"}, {"sig"})
        if "keyid" in item and not isinstance(item["keyid"], str):
            raise _reject(f"envelope.signatures[{i}].keyid must be a string",
                          f"envelope.signatures[{i}].keyid")
        sig_text = _str(item["sig"], f"envelope.signatures[{i}].sig", MAX_SIGNATURE_SIZE * 2)
        raw = _b64_lenient(sig_text, f"envelope.signatures[{i}].sig", MAX_SIGNATURE_SIZE)
        # The verifier at the signature's own position first: in the usual envelope
        # that is the one, so n signatures cost n checks, not n².
        for k in sorted(range(len(keys)), key=lambda k: k != i):
            key = keys[k]
            if _verify_message(key.public_key, raw, message, budget,
                               f"envelope.signatures[{i}]"):
                key_by_sig.setdefault(sig_text, key)
                used.add(k)
                break
        else:
            raise _reject(f"envelope signature {i} does not verify over the DSSE PAE with "
                          "any of the given verifiers", f"envelope.signatures[{i}]")
    unused = sorted(set(range(len(keys))) - used)
    if unused:
        raise _reject(f"verifier {unused[0]} verifies no envelope signature",
                      f"spec.proposedContent.verifiers[{unused[0]}]")
    keep = payload_type == INTOTO_PAYLOAD_TYPE and len(payload) <= MAX_ATTESTATION_SIZE
    return {
        "envelopeHash": {"algorithm": "sha256",
                         "value": hashlib.sha256(envelope_text.encode("utf-8")).hexdigest()},
        "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
        "signatures": [
            {"signature": s, "verifier": base64.b64encode(key_by_sig[s].canonical_pem).decode()}
            for s in sorted(key_by_sig)
        ],
    }, payload if keep else None


def canonicalize(proposed: object) -> CanonicalEntry:
    """Validate a proposed entry, verify its signature(s), and build its leaf body."""
    if not isinstance(proposed, dict):
        raise _reject("a proposed entry must be a JSON object")
    try:
        # UTF-8 without escapes: this also refuses lone surrogates ("\ud800" escapes
        # decode to them), which no signature or hash can be computed over.
        size = len(json.dumps(proposed, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:
        raise _reject("proposed entry holds a lone UTF-16 surrogate (not Unicode text)") \
            from None
    except (TypeError, ValueError, RecursionError):
        raise _reject("proposed entry is not JSON-serialisable") from None
    if size > MAX_PROPOSED_SIZE:
        raise _reject(f"proposed entry is larger than {MAX_PROPOSED_SIZE} bytes")
    _obj(proposed, "entry", {"apiVersion", "kind", "spec"})
    kind, version = proposed["kind"], proposed["apiVersion"]
    # Strings first: a JSON list or object is unhashable, and must be a 400, not a crash.
    if not (isinstance(kind, str) and isinstance(version, str)) \
            or (kind, version) not in WRITABLE_KINDS:
        raise _reject(f"unsupported entry kind {str(kind)[:40]!r} version "
                      f"{str(version)[:20]!r}; this log accepts hashedrekord 0.0.1 and "
                      "dsse 0.0.1", "kind")
    attestation = None
    if kind == "hashedrekord":
        spec = _canonical_hashedrekord(proposed["spec"])
    else:
        spec, attestation = _canonical_dsse(proposed["spec"])
    body = rfc8785.dumps({"apiVersion": version, "kind": kind, "spec": spec})
    check_loggable_size(body)
    return CanonicalEntry(kind, version, body, attestation)


def check_loggable_size(body: bytes) -> None:
    """Refuse a canonical body larger than a tlog-tiles entry bundle can hold."""
    if len(body) > MAX_LOGGED_BODY_SIZE:
        raise _reject(f"the canonical entry would be {len(body)} bytes; this log stores at "
                      f"most {MAX_LOGGED_BODY_SIZE} bytes per entry (the tlog-tiles entry "
                      "size limit): use a smaller certificate, key or signature")


# --- reading stored bodies ------------------------------------------------------------

def _hash_obj(value: Any, field: str) -> None:
    h = _obj(value, field, {"algorithm", "value"})
    if h["algorithm"] not in HASH_ALGORITHMS:
        raise _reject(f"{field}.algorithm is not a known hash", field)
    v = h["value"]
    if not isinstance(v, str) or len(v) != HASH_ALGORITHMS[h["algorithm"]][1] \
            or not re.fullmatch(r"[0-9a-fA-F]+", v):
        raise _reject(f"{field}.value is not a hex digest", field)


def _check_hashedrekord_v1(spec: Any) -> None:
    spec = _obj(spec, "spec", {"signature", "data"})
    sig = _obj(spec["signature"], "spec.signature", {"content", "publicKey"})
    _b64(sig["content"], "spec.signature.content", MAX_SIGNATURE_SIZE)
    pub = _obj(sig["publicKey"], "spec.signature.publicKey", {"content"})
    _b64(pub["content"], "spec.signature.publicKey.content", MAX_KEY_PEM_SIZE)
    data = _obj(spec["data"], "spec.data", {"hash"})
    _hash_obj(data["hash"], "spec.data.hash")


def _check_dsse_v1(spec: Any) -> None:
    spec = _obj(spec, "spec", {"envelopeHash", "payloadHash", "signatures"})
    _hash_obj(spec["envelopeHash"], "spec.envelopeHash")
    _hash_obj(spec["payloadHash"], "spec.payloadHash")
    sigs = spec["signatures"]
    if not isinstance(sigs, list) or not sigs or len(sigs) > MAX_SIGNATURES:
        raise _reject("spec.signatures must be a non-empty list", "spec.signatures")
    for i, s in enumerate(sigs):
        s = _obj(s, f"spec.signatures[{i}]", {"signature", "verifier"})
        _str(s["signature"], f"spec.signatures[{i}].signature", MAX_SIGNATURE_SIZE * 2)
        _b64(s["verifier"], f"spec.signatures[{i}].verifier", MAX_KEY_PEM_SIZE)


def _check_intoto_v2(spec: Any) -> None:
    spec = _obj(spec, "spec", {"content"})
    content = _obj(spec["content"], "spec.content", {"envelope", "hash", "payloadHash"},
                   {"envelope"})
    env = _obj(content["envelope"], "spec.content.envelope",
               {"payload", "payloadType", "signatures"}, {"payloadType", "signatures"})
    _str(env["payloadType"], "spec.content.envelope.payloadType", 1024)
    if not isinstance(env["signatures"], list) or not env["signatures"]:
        raise _reject("spec.content.envelope.signatures must be a non-empty list",
                      "spec.content.envelope.signatures")
    for name in ("hash", "payloadHash"):
        if name in content:
            _hash_obj(content[name], f"spec.content.{name}")


def _check_v2(spec: Any, kind: str) -> None:
    field = "hashedRekordV002" if kind == "hashedrekord" else "dsseV002"
    _obj(spec, "spec", {field})
    if not isinstance(spec[field], dict):
        raise _reject(f"spec.{field} must be a JSON object", f"spec.{field}")


def parse_body(body: bytes) -> JSONObject:
    """Parse and validate a stored leaf body; returns the JSON object.

    v0.0.1 bodies (and intoto 0.0.2) must be in RFC 8785 canonical form, as Rekor
    stores them. Raises :class:`EntryRejectedError` on anything off.
    """
    if not isinstance(body, (bytes, bytearray)):
        raise _reject("entry body must be bytes")
    if not body or len(body) > MAX_BODY_SIZE:
        raise _reject(f"entry body is empty or larger than {MAX_BODY_SIZE} bytes")
    try:
        obj = json.loads(bytes(body))
    except (ValueError, RecursionError):
        raise _reject("entry body is not JSON") from None
    _obj(obj, "body", {"apiVersion", "kind", "spec"})
    kind, version = obj["kind"], obj["apiVersion"]
    if not (isinstance(kind, str) and isinstance(version, str)) \
            or (kind, version) not in READABLE_KINDS:
        raise _reject(f"unknown entry kind {str(kind)[:40]!r} version {str(version)[:20]!r}",
                      "kind")
    if version != "0.0.2" or kind == "intoto":
        try:
            canonical = rfc8785.dumps(obj)
        except ValueError:  # integers beyond 2**53, lone surrogates: not canonical JSON
            canonical = b""
        if canonical != bytes(body):
            raise _reject("entry body is not in canonical (RFC 8785) form")
    if (kind, version) == ("hashedrekord", "0.0.1"):
        _check_hashedrekord_v1(obj["spec"])
    elif (kind, version) == ("dsse", "0.0.1"):
        _check_dsse_v1(obj["spec"])
    elif kind == "intoto":
        _check_intoto_v2(obj["spec"])
    else:
        _check_v2(obj["spec"], kind)
    return cast("JSONObject", obj)  # _obj above checked it is a JSON object
