"""Large logs for search tests and benchmarks, with the ground truth of every entry.

Entries are appended through ``TransparencyLog.append_many_canonical`` in batches
(real leaf hashes, Merkle subtrees, SETs and search index rows; the artifact
signatures inside the bodies are placeholders, which neither the index nor a client's
log verification looks at). Digests, keys and identities repeat with a Zipf-like skew,
so some queries hit thousands of entries and some a handful. The generator records what
it put into each entry, independently of the code under test.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
GOOGLE = "https://accounts.google.com"
GITHUB = "https://token.actions.githubusercontent.com"


@dataclass(frozen=True)
class CorpusSigner:
    """One signer: its PEM (key or certificate), SPKI digest and identity if any."""

    pem: bytes
    key_pem: bytes  # the bare public key (a search by key uses this)
    key_id: str  # sha256:<SPKI digest>
    identity: str | None = None
    issuer: str | None = None


@dataclass
class Truth:
    """What each entry holds, by log index, as the generator wrote it."""

    hashes: list[set[str]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    identities: list[tuple[str, str] | None] = field(default_factory=list)

    def with_hash(self, digest: str) -> list[int]:
        return [i for i, hs in enumerate(self.hashes) if digest in hs]

    def with_key(self, key_id: str) -> list[int]:
        return [i for i, k in enumerate(self.keys) if k == key_id]

    def with_identity(self, identity: str, issuer: str | None = None) -> list[int]:
        return [i for i, who in enumerate(self.identities)
                if who is not None and who[0] == identity and issuer in (None, who[1])]


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def certificate(key: ec.EllipticCurvePrivateKey, identity: str, issuer: str) -> bytes:
    """A self-signed Fulcio-like certificate: SAN e-mail or URI, OIDC issuer extension."""
    san: x509.GeneralName = (x509.RFC822Name(identity) if "@" in identity
                             and "://" not in identity
                             else x509.UniformResourceIdentifier(identity))
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "search-test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(ISSUER_OID, _der_utf8(issuer)),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def make_signers(keys: int = 12, identities: tuple[tuple[str, str], ...] = (
        ("alice@example.com", GOOGLE),
        ("alice@example.com", "https://issuer.attacker.example"),  # same SAN, other issuer
        ("bob@example.com", GOOGLE),
        ("https://github.com/org/train/.github/workflows/release.yml@refs/heads/main",
         GITHUB),
)) -> list[CorpusSigner]:
    """``keys`` bare-key signers, then one certificate signer per identity; the first
    certificate reuses the first bare key (a key search finds both)."""
    out = []
    raw_keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(keys)]
    for key in raw_keys:
        pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        out.append(CorpusSigner(pem, pem, _key_id(key)))
    for n, (identity, issuer) in enumerate(identities):
        key = raw_keys[0] if n == 0 else ec.generate_private_key(ec.SECP256R1())
        pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        out.append(CorpusSigner(certificate(key, identity, issuer), pem, _key_id(key),
                                identity.lower() if "://" not in identity else identity,
                                issuer))
    return out


def _key_id(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def digest_pool(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["sha256:" + rng.randbytes(32).hex() for _ in range(count)]


def _jcs(obj: Any) -> bytes:
    """RFC 8785 for these bodies (ASCII strings and objects only): sorted, compact JSON
    (rfc8785.dumps gives the same bytes, several times slower)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _entry(i: int, signer: CorpusSigner, digests: list[str]) -> tuple[Any, set[str]]:
    """(CanonicalEntry, hashes it holds) for entry ``i``: every third one dsse."""
    from mgattest.tlog._entries import CanonicalEntry

    verifier = base64.b64encode(signer.pem).decode()
    fake_sig = base64.b64encode(b"sig-%d" % i).decode()
    if i % 3:
        body = _jcs({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": digests[0][7:]}},
            "signature": {"content": fake_sig, "publicKey": {"content": verifier}}}})
        return CanonicalEntry("hashedrekord", "0.0.1", body), {digests[0]}
    statement = json.dumps({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"file{n}", "digest": {"sha256": d[7:]}}
                    for n, d in enumerate(digests)],
        "predicateType": "https://slsa.dev/provenance/v1", "predicate": {"n": i}},
        sort_keys=True).encode()
    payload_hash = "sha256:" + hashlib.sha256(statement).hexdigest()
    envelope_hash = "sha256:" + hashlib.sha256(b"envelope-%d" % i).hexdigest()
    body = _jcs({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
        "envelopeHash": {"algorithm": "sha256", "value": envelope_hash[7:]},
        "payloadHash": {"algorithm": "sha256", "value": payload_hash[7:]},
        "signatures": [{"signature": fake_sig, "verifier": verifier}]}})
    return (CanonicalEntry("dsse", "0.0.1", body, statement),
            set(digests) | {payload_hash, envelope_hash})


def fill_log(log: Any, count: int, signers: list[CorpusSigner], digests: list[str], *,
             batch: int = 10_000, seed: int = 1, truth: Truth | None = None) -> Truth:
    """Append ``count`` entries to ``log`` in batches; return (or extend) the truth."""
    rng = random.Random(seed)
    truth = truth if truth is not None else Truth()
    digest_weights = [1 / (k + 1) for k in range(len(digests))]
    # bare keys Zipf-like; certificates rarer, so an identity's answer fits in one
    # search response (about 0.4% of the entries each)
    signer_weights = [1 / (k + 1) if s.identity is None else 0.012
                      for k, s in enumerate(signers)]
    start = log.size
    pending = []
    for i in range(start, start + count):
        signer = rng.choices(signers, signer_weights)[0]
        chosen = rng.choices(digests, digest_weights, k=1 + (i % 3 == 0) * rng.randrange(3))
        entry, held = _entry(i, signer, list(dict.fromkeys(chosen)))
        pending.append(entry)
        truth.hashes.append(held)
        truth.keys.append(signer.key_id)
        truth.identities.append((signer.identity, signer.issuer)
                                if signer.identity is not None else None)
        if len(pending) == batch:
            log.append_many_canonical(pending)
            pending = []
    if pending:
        log.append_many_canonical(pending)
    return truth
