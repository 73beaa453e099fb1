"""What a log entry can be found by: its artifact hashes, signing keys and identities.

One definition serves both sides of a search. The log derives an entry's index keys
from these terms when it appends the entry (and when ``rebuild_search_index`` re-reads
old ones); the client derives the same terms from the entry it fetched and verified,
and shows a hit only when the query's term is among them — so a server's index is
never trusted.

Terms, as Rekor v1 indexes them:

* hashes (``"<alg>:<lowercase hex>"``): a hashedrekord's ``spec.data.hash``; a dsse
  entry's ``payloadHash`` and ``envelopeHash``, and, when the entry's attestation (the
  DSSE payload, which the body only names by hash) is at hand and matches
  ``payloadHash``, the digests of its in-toto Statement subjects; an intoto 0.0.2
  entry's ``payloadHash`` and ``hash``;
* keys (``"sha256:<hex>"``): SHA-256 of the DER SubjectPublicKeyInfo of every verifier
  key or certificate key (so a search by a bare public key also finds the entries its
  certificates signed);
* identities: the certificate SAN e-mail addresses (lowercase, as Rekor looks them up)
  and URIs, each with the Fulcio OIDC issuer extension of that certificate.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from mgattest.tlog._entries import HASH_ALGORITHMS, MAX_ATTESTATION_SIZE

MAX_SUBJECTS = 100_000  # subjects of one statement taken into the index

# Fulcio's OIDC issuer extensions: v2 (DER UTF8String) and the deprecated v1 (raw bytes).
_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")


@dataclass(frozen=True)
class Identity:
    """A certificate's identity: one SAN value and the issuer that vouched for it."""

    identity: str
    issuer: str | None


@dataclass(frozen=True)
class EntryTerms:
    """Everything an entry can be found by (see the module docstring)."""

    hashes: frozenset[str]
    keys: frozenset[str]
    identities: frozenset[Identity]
    subject_digests: frozenset[str]  # the subset of ``hashes`` from statement subjects

    def signers(self) -> list[str]:
        """Who signed, for display: identities (with issuer) or key digests."""
        if self.identities:
            return sorted(f"{i.identity} ({i.issuer or 'no issuer'})" for i in self.identities)
        return sorted(f"key {k}" for k in self.keys)


# --- normalised query values ---------------------------------------------------------

def normalize_email(email: str) -> str:
    """Rekor looks e-mail identities up in lowercase."""
    return email.lower()


def normalize_identity(identity: str) -> str:
    """An e-mail identity lowercased; any other SAN (URI) kept exactly."""
    return normalize_email(identity) if _is_email(identity) else identity


def _is_email(text: str) -> bool:
    return "@" in text and ":" not in text.split("@", 1)[0]


def key_digest(public_key: Any) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo of ``public_key``."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


# --- terms of one entry ----------------------------------------------------------------

@dataclass
class _Collector:
    hashes: set[str]
    keys: set[str]
    identities: set[Identity]
    subjects: set[str]

    def add_hash(self, value: Any) -> None:
        if isinstance(value, dict):
            alg, hexdigest = value.get("algorithm"), value.get("value")
            if isinstance(alg, str) and isinstance(hexdigest, str) and alg in HASH_ALGORITHMS \
                    and len(hexdigest) == HASH_ALGORITHMS[alg][1]:
                self.hashes.add(f"{alg}:{hexdigest.lower()}")

    def add_verifier(self, pem_b64: Any) -> None:
        """A base64 PEM public key or certificate, as the bodies carry them."""
        if isinstance(pem_b64, str) and len(pem_b64) <= _MAX_VERIFIER_B64:
            keys, identities = _verifier_terms(pem_b64)
            self.keys |= keys
            self.identities |= identities


_MAX_VERIFIER_B64 = 96 * 1024


@functools.lru_cache(maxsize=1024)
def _verifier_terms(pem_b64: str) -> tuple[frozenset[str], frozenset[Identity]]:
    """(key digests, identities) of one verifier; cached, as one signer logs many
    entries."""
    try:
        pem = base64.b64decode(pem_b64, validate=True)
    except (binascii.Error, ValueError):
        return frozenset(), frozenset()
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem:
            cert = x509.load_pem_x509_certificate(pem)
            return (frozenset({key_digest(cert.public_key())}),
                    frozenset(certificate_identities(cert)))
        return frozenset({key_digest(serialization.load_pem_public_key(pem))}), frozenset()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return frozenset(), frozenset()


def certificate_identities(cert: x509.Certificate) -> set[Identity]:
    """The SAN e-mails (lowercased) and URIs of ``cert``, each with its OIDC issuer."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return set()
    issuer = certificate_issuer(cert)
    names = [normalize_email(e) for e in san.get_values_for_type(x509.RFC822Name)]
    names += san.get_values_for_type(x509.UniformResourceIdentifier)
    return {Identity(name, issuer) for name in names}


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The Fulcio OIDC issuer extension (v2, else v1) of ``cert``, if any."""
    for oid in (_ISSUER_V2, _ISSUER_V1):
        try:
            ext = cert.extensions.get_extension_for_oid(oid).value
        except (x509.ExtensionNotFound, ValueError):
            continue
        raw = getattr(ext, "value", b"")
        text = _der_utf8(raw) if oid == _ISSUER_V2 else raw
        try:
            return bytes(text).decode("utf-8") if text else None
        except UnicodeDecodeError:
            return None
    return None


def _der_utf8(der: bytes) -> bytes | None:
    """The contents of a DER UTF8String (tag 0x0c), or None."""
    if len(der) < 2 or der[0] != 0x0C:
        return None
    length, offset = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            return None
        length, offset = int.from_bytes(der[2:2 + count], "big"), 2 + count
    if offset + length != len(der):
        return None
    return der[offset:]


def _subject_digests(attestation: bytes) -> set[str]:
    """``alg:hex`` of every subject digest of an in-toto Statement (bounded)."""
    try:
        statement = json.loads(attestation)
    except (ValueError, RecursionError):
        return set()
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    if not isinstance(subjects, list):
        return set()
    out: set[str] = set()
    for subject in subjects[:MAX_SUBJECTS]:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        if not isinstance(digests, dict):
            continue
        for alg, value in digests.items():
            if isinstance(alg, str) and isinstance(value, str) and 0 < len(value) <= 128 \
                    and len(alg) <= 32:
                out.add(f"{alg.lower()}:{value.lower()}")
    return out


def entry_terms(body: bytes, attestation: bytes | None = None) -> EntryTerms:
    """The search terms of one canonical body (and its attestation, if any).

    Never raises on odd content: what cannot be read contributes no term (a client
    then finds no binding and reports the hit as unverifiable).
    """
    found = _Collector(set(), set(), set(), set())
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        obj = None
    spec = obj.get("spec") if isinstance(obj, dict) else None
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if isinstance(spec, dict):
        payload_hash = None
        if kind == "hashedrekord":
            data = spec.get("data")
            found.add_hash(data.get("hash") if isinstance(data, dict) else None)
            sig = spec.get("signature")
            pub = sig.get("publicKey") if isinstance(sig, dict) else None
            found.add_verifier(pub.get("content") if isinstance(pub, dict) else None)
        elif kind == "dsse":
            payload_hash = spec.get("payloadHash")
            found.add_hash(payload_hash)
            found.add_hash(spec.get("envelopeHash"))
            for sig in spec.get("signatures") or []:
                if isinstance(sig, dict):
                    found.add_verifier(sig.get("verifier"))
        elif kind == "intoto":
            content = spec.get("content")
            if isinstance(content, dict):
                payload_hash = content.get("payloadHash")
                found.add_hash(payload_hash)
                found.add_hash(content.get("hash"))
                env = content.get("envelope")
                for sig in (env.get("signatures") or []) if isinstance(env, dict) else []:
                    if isinstance(sig, dict):
                        found.add_verifier(sig.get("publicKey"))
        if attestation is not None and _attests(payload_hash, attestation):
            found.subjects = _subject_digests(attestation)
            found.hashes |= found.subjects
    return EntryTerms(frozenset(found.hashes), frozenset(found.keys),
                      frozenset(found.identities), frozenset(found.subjects))


def _attests(payload_hash: Any, attestation: bytes) -> bool:
    """Whether ``attestation`` is the payload the body's ``payloadHash`` names."""
    expected = _sha256_value(payload_hash)
    if expected is None or len(attestation) > MAX_ATTESTATION_SIZE:
        return False
    return hashlib.sha256(attestation).hexdigest() == expected


def _sha256_value(payload_hash: Any) -> str | None:
    if not isinstance(payload_hash, dict) or payload_hash.get("algorithm") != "sha256":
        return None
    return str(payload_hash.get("value")).lower()


def committed_payload_sha256(entry: Any) -> str | None:
    """The SHA-256 (lowercase hex) a parsed dsse or intoto body commits its payload to
    (``spec.payloadHash``, ``spec.content.payloadHash``); None for other bodies."""
    spec = entry.get("spec") if isinstance(entry, dict) else None
    if not isinstance(spec, dict):
        return None
    if entry.get("kind") == "dsse":
        return _sha256_value(spec.get("payloadHash"))
    content = spec.get("content")
    if entry.get("kind") == "intoto" and isinstance(content, dict):
        return _sha256_value(content.get("payloadHash"))
    return None


# --- index keys -------------------------------------------------------------------------

def hash_index_key(term: str) -> bytes:
    """The stored index key of a hash term (``alg:hex``)."""
    return _index_key("hash", term)


def key_index_key(term: str) -> bytes:
    """The stored index key of a public-key term (``sha256:<SPKI digest>``)."""
    return _index_key("key", term)


def identity_index_key(identity: str) -> bytes:
    """The stored index key of an identity (normalised SAN value; issuer not part of it,
    as Rekor's API cannot ask by issuer)."""
    return _index_key("identity", normalize_identity(identity))


def _index_key(namespace: str, value: str) -> bytes:
    # fixed-size keys keep the index compact; the client re-checks every hit anyway
    return hashlib.sha256(f"{namespace}\n{value}".encode()).digest()


def index_keys(terms: EntryTerms) -> list[bytes]:
    """Every stored index key of an entry with ``terms`` (distinct)."""
    keys = {hash_index_key(h) for h in terms.hashes}
    keys |= {key_index_key(k) for k in terms.keys}
    keys |= {identity_index_key(i.identity) for i in terms.identities}
    return sorted(keys)
