"""Watching a log for signatures by your identities and keys.

:class:`EntryWatcher` reads log entries (the leaf bodies a tile scan hands over) and
keeps every entry signed by a watched keyless identity (certificate SAN + OIDC issuer
extension, exact match) or a watched public key (same SubjectPublicKeyInfo, as a bare key
or inside a certificate). Each :class:`WatchHit` carries the digests the entry makes
visible; which digest that is depends on the kind:

* ``hashedrekord`` 0.0.1 / 0.0.2: the signed artifact's digest;
* ``intoto`` 0.0.2: the statement's subject digests when the body keeps the payload,
  otherwise the payload hash;
* ``dsse`` 0.0.1 / 0.0.2: the payload hash only (these bodies do not keep the statement).

A hit is *expected* when every digest it shows is in the expected list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from mgattest.attest._certs import load_certificate, parse_identity
from mgattest.errors import InputError, MgattestError

__all__ = ["EntryWatcher", "WatchHit", "WatchList", "parse_expected_digests"]

_HEX = re.compile(r"[0-9a-f]{32,128}")
_V2_ALGORITHMS = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}
_VISIBLE = {
    "hashedrekord": "artifact digest",
    "dsse": "payload hash (dsse entries do not keep the statement)",
}


@dataclass(frozen=True)
class WatchList:
    """What to look for: ``(identity, issuer)`` pairs, public keys (SPKI DER), and the
    digests (``"sha256:<hex>"``) you expect them to have signed."""

    identities: tuple[tuple[str, str], ...] = ()
    keys: tuple[bytes, ...] = ()
    expected: frozenset[str] = frozenset()

    @classmethod
    def build(cls, identities: list[tuple[str, str]], key_pems: list[bytes],
              expected: frozenset[str] = frozenset()) -> WatchList:
        """A watch list from identity pairs and PEM public keys (read by the caller)."""
        spkis = []
        for pem in key_pems:
            try:
                key = serialization.load_pem_public_key(pem)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise InputError(f"a watched key is not a PEM public key ({exc})",
                                 what="watched key") from None
            spkis.append(key.public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo))
        return cls(tuple(identities), tuple(spkis), expected)


class _UnreadKind(Exception):
    """An entry kind this module does not read (its ``kind version`` is the message)."""


@dataclass(frozen=True)
class WatchHit:
    """One entry signed by something watched."""

    index: int
    kind: str
    signer: str  # "identity ID (issuer ISS)" or "key sha256:<SPKI digest>"
    digests: tuple[str, ...]
    visible: str  # what the digests are, for this kind
    expected: bool

    def to_json(self) -> dict[str, object]:
        return {"logIndex": self.index, "kind": self.kind, "signer": self.signer,
                "digests": list(self.digests), "digestsAre": self.visible,
                "expected": self.expected}


def parse_expected_digests(text: str, where: str) -> frozenset[str]:
    """Digests from a file: a JSON list, or one per line (``#`` comments); each is hex
    (sha256 by length 64) or ``algorithm:hex``. Returned as ``"algorithm:hex"``."""
    stripped = text.strip()
    items: list[object]
    if stripped.startswith("["):
        try:
            loaded = json.loads(stripped)
        except ValueError:
            raise InputError(f"{where} is not a JSON list", what="expected digests",
                             where=where) from None
        items = list(loaded)
    else:
        items = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        items = [i for i in items if i]
    out = set()
    for pos, item in enumerate(items):
        value = item.lower() if isinstance(item, str) else ""
        algorithm, _, hexpart = value.rpartition(":")
        algorithm = algorithm or {64: "sha256", 96: "sha384", 128: "sha512"}.get(len(hexpart), "")
        if not algorithm or not _HEX.fullmatch(hexpart):
            raise InputError(f"{where}: item {pos + 1} ({str(item)[:80]!r}) is not a hex digest",
                             what="expected digests", where=where)
        out.add(f"{algorithm}:{hexpart}")
    return frozenset(out)


def _pem_body(pem: bytes) -> tuple[bytes, bool]:
    """The base64 text (line breaks removed) of a single PEM block, and whether it is a
    certificate. The DER is decoded only for entries that pass :func:`_b64_cores`."""
    begin = pem.find(b"-----BEGIN ")
    label_end = pem.find(b"-----", begin + 11)
    body_end = pem.find(b"-----END ", label_end)
    if begin < 0 or label_end < 0 or body_end < 0:
        raise ValueError("no PEM block")
    body = b"".join(pem[label_end + 5:body_end].split())
    return body, pem[begin + 11:label_end] == b"CERTIFICATE"


def _b64_cores(needle: bytes) -> tuple[bytes, ...]:
    """The base64 characters fixed by ``needle`` at each of the 3 byte alignments: if
    ``needle`` occurs in some DER, one of these occurs in that DER's base64 text."""
    cores = []
    for k in range(3):
        encoded = base64.b64encode(b"\0" * k + needle + b"\0\0")
        cores.append(encoded[-(-8 * k // 6):8 * (k + len(needle)) // 6])
    return tuple(cores)


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected a base64 string")
    return base64.b64decode(value, validate=True)


def _hex_digest(algorithm: Any, value: Any) -> str:
    if not isinstance(algorithm, str) or not isinstance(value, str) \
            or not _HEX.fullmatch(value.lower()):
        raise ValueError("malformed digest")
    return f"{algorithm.lower()}:{value.lower()}"


def _v2_digest(obj: Any) -> str:
    algorithm = _V2_ALGORITHMS.get(obj.get("algorithm", ""), "")
    if not algorithm:
        raise ValueError("unknown digest algorithm")
    return f"{algorithm}:{_b64(obj['digest']).hex()}"


def _v2_verifier(verifier: Any) -> tuple[bytes, bool]:
    is_cert = "x509Certificate" in verifier
    raw = verifier["x509Certificate" if is_cert else "publicKey"]["rawBytes"]
    if not isinstance(raw, str):
        raise ValueError("rawBytes is not a base64 string")
    return raw.encode("ascii"), is_cert


def _statement_subjects(payload: bytes) -> tuple[str, ...]:
    statement = json.loads(payload)
    return tuple(sorted(_hex_digest(alg, value) for subject in statement["subject"]
                        for alg, value in subject["digest"].items()))


def entry_signers(body: Any) -> tuple[str, list[tuple[bytes, bool]]]:
    """``(kind, signers [(base64 of the DER, is_certificate)])`` of a parsed entry body: the
    cheap part,
    read for every entry; ``KeyError``/``ValueError``/``TypeError`` when it is malformed,
    :class:`_UnreadKind` for kinds this module does not read."""
    kind, version, spec = body["kind"], body["apiVersion"], body["spec"]
    if (kind, version) == ("hashedrekord", "0.0.1"):
        return kind, [_pem_body(_b64(spec["signature"]["publicKey"]["content"]))]
    if (kind, version) == ("dsse", "0.0.1"):
        return kind, [_pem_body(_b64(s["verifier"])) for s in spec["signatures"]]
    if (kind, version) == ("intoto", "0.0.2"):
        return kind, [_pem_body(_b64(s["publicKey"]))
                      for s in spec["content"]["envelope"]["signatures"]]
    if (kind, version) == ("hashedrekord", "0.0.2"):
        return kind, [_v2_verifier(spec["hashedRekordV002"]["signature"]["verifier"])]
    if (kind, version) == ("dsse", "0.0.2"):
        return kind, [_v2_verifier(s["verifier"]) for s in spec["dsseV002"]["signatures"]]
    raise _UnreadKind(f"{kind} {version}")


def entry_digests(body: Any) -> tuple[tuple[str, ...], str]:
    """``(digests, what they are)`` of a body :func:`entry_signers` read (hits only)."""
    kind, version, spec = body["kind"], body["apiVersion"], body["spec"]
    if version == "0.0.1":
        digest = spec["data"]["hash"] if kind == "hashedrekord" else spec["payloadHash"]
        return (_hex_digest(digest["algorithm"], digest["value"]),), _VISIBLE[kind]
    if kind == "intoto":
        content = spec["content"]
        if "payload" in content["envelope"]:
            return (_statement_subjects(_b64(content["envelope"]["payload"])),
                    "statement subject digests")
        digest = content["payloadHash"]
        return ((_hex_digest(digest["algorithm"], digest["value"]),),
                "payload hash (this intoto entry does not keep the payload)")
    if kind == "hashedrekord":
        return (_v2_digest(spec["hashedRekordV002"]["data"]),), _VISIBLE[kind]
    return (_v2_digest(spec["dsseV002"]["payloadHash"]),), _VISIBLE[kind]


def entry_facts(body: Any) -> tuple[str, list[tuple[bytes, bool]], tuple[str, ...], str]:
    """``(kind, signers, digests, what the digests are)`` of a parsed entry body."""
    kind, signers = entry_signers(body)
    return (kind, signers, *entry_digests(body))


_JSON = json.JSONDecoder()


@dataclass
class EntryWatcher:
    """A tile-scan visitor: call it with ``(log index, leaf body)`` for every entry."""

    watch: WatchList
    hits: list[WatchHit] = field(default_factory=list)
    unreadable: list[tuple[int, str]] = field(default_factory=list)
    skipped_kinds: Counter[str] = field(default_factory=Counter)
    scanned: int = 0

    def __post_init__(self) -> None:
        needles = [ident.encode() for ident, _ in self.watch.identities] + \
            list(self.watch.keys)
        self._cores = [core for needle in needles for core in _b64_cores(needle)]

    def fresh(self) -> EntryWatcher:
        """A watcher for the same watch list with nothing seen yet."""
        return EntryWatcher(self.watch)

    @property
    def unexpected(self) -> list[WatchHit]:
        """Hits whose digests are not all in the expected list."""
        return [hit for hit in self.hits if not hit.expected]

    def __call__(self, index: int, leaf: bytes) -> None:
        self.scanned += 1
        try:
            body = _JSON.decode(leaf.decode("utf-8"))
            kind, signers = entry_signers(body)
            for der, is_cert in signers:
                signer = self._match(der, is_cert, index)
                if signer is not None:
                    digests, visible = entry_digests(body)
                    expected = all(d in self.watch.expected for d in digests)
                    self.hits.append(WatchHit(index, kind, signer, digests, visible, expected))
                    return
        except _UnreadKind as exc:
            self.skipped_kinds[str(exc)] += 1
        except (LookupError, ValueError, TypeError, AttributeError, binascii.Error,
                RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            self.unreadable.append((index, f"{type(exc).__name__}: {exc}"[:200]))

    def _match(self, der_b64: bytes, is_cert: bool, index: int) -> str | None:
        """The watched signer a certificate or SPKI (base64 of its DER) stands for, if any."""
        if not is_cert:
            der = base64.b64decode(der_b64)
            return _key_label(der) if der in self.watch.keys else None
        # Cheap pre-check: a watched SAN or SPKI appears verbatim in the certificate DER,
        # so its base64 core appears in the base64 text.
        if not any(core in der_b64 for core in self._cores):
            return None
        try:
            cert = load_certificate(base64.b64decode(der_b64), f"log entry {index}")
            spki = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            if spki in self.watch.keys:
                return _key_label(spki)
            san, issuer, _ = parse_identity(cert)
        except (MgattestError, ValueError, x509.InvalidVersion) as exc:
            self.unreadable.append((index, f"certificate: {exc}"[:200]))
            return None
        if (san, issuer or "") in self.watch.identities:
            return f"identity {san} (issuer {issuer})"
        return None


def _key_label(spki: bytes) -> str:
    return f"key sha256:{hashlib.sha256(spki).hexdigest()}"
