"""Searching a log by artifact hash, public key or identity (Rekor v1 ``/api/v1/index/retrieve``).

* :class:`SearchQuery` — one validated query, built from Rekor's ``SearchIndex`` request
  JSON (:func:`parse_search_request`, the server side) or from a client's options
  (:meth:`SearchQuery.to_request` gives the JSON to send);
* :func:`search_store` — the UUIDs of the entries of a log's store the index names;
* :func:`rebuild_search_index` — index every entry of an existing or imported database.

The index only finds candidates; :mod:`mgattest.tlog._search_client` verifies each hit
before it is shown.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from mgattest.errors import InputError
from mgattest.tlog._search_terms import (
    EntryTerms,
    entry_terms,
    hash_index_key,
    identity_index_key,
    index_keys,
    key_digest,
    key_index_key,
    normalize_identity,
)
from mgattest.tlog._store import LogStore
from mgattest.tlog.errors import LogError

# The most UUIDs one search answers (the newest ones when more match). Rekor bounds its
# index answers too; a client that gets this many knows the answer may be cut short.
MAX_SEARCH_RESULTS = 1000
MAX_SEARCH_REQUEST = 64 * 1024  # bytes of one SearchIndex request body
MAX_KEY_CONTENT = 64 * 1024  # decoded publicKey.content
MAX_IDENTITY_LENGTH = 1024

# Rekor's SearchIndex.hash pattern (sha1 is accepted there; nothing here is indexed by it).
_HASH = re.compile(r"(?:sha256:)?[0-9a-fA-F]{64}|(?:sha1:)?[0-9a-fA-F]{40}")
_EMAIL = re.compile(r"[^@\s]{1,256}@[^@\s]{1,256}")
_KEY_FORMATS = ("pgp", "x509", "minisign", "ssh", "tuf")
Operator = Literal["and", "or"]


class SearchQueryError(InputError):
    """A malformed search request (HTTP 400, exit 2)."""


@dataclass(frozen=True)
class SearchQuery:
    """What to search for: any of a hash, a key digest and an identity, combined by
    ``operator`` (Rekor's default: ``or``). ``issuer`` is checked by the client only
    (Rekor's API cannot ask by issuer)."""

    sha256: str | None = None  # "sha256:<lowercase hex>"
    key: str | None = None  # "sha256:<SPKI digest hex>"
    key_pem: bytes | None = field(default=None, repr=False)  # what the request sends
    identity: str | None = None
    issuer: str | None = None
    operator: Operator = "or"

    def __post_init__(self) -> None:
        if self.sha256 is None and self.key is None and self.identity is None:
            raise SearchQueryError("a search needs a hash, a public key or an identity",
                                   what="search query")

    @classmethod
    def by_sha256(cls, digest: str) -> "SearchQuery":
        """Entries holding an artifact or subject digest (``HEX`` or ``sha256:HEX``)."""
        return cls(sha256=normalize_sha256(digest))

    @classmethod
    def by_key(cls, pem: bytes) -> "SearchQuery":
        """Entries signed by a PEM public key (or a certificate for that key)."""
        return cls(key=_key_digest_from("x509", pem), key_pem=pem)

    @classmethod
    def by_identity(cls, identity: str, issuer: str | None = None) -> "SearchQuery":
        """Entries signed by a certificate for ``identity`` (SAN e-mail or URI) issued
        by the OIDC ``issuer`` (checked on the verified certificate)."""
        if not isinstance(identity, str) or not identity or len(identity) > \
                MAX_IDENTITY_LENGTH or not identity.isprintable():
            raise SearchQueryError("an identity must be a printable string of at most "
                                   f"{MAX_IDENTITY_LENGTH} characters", what="search identity")
        return cls(identity=identity, issuer=issuer)

    def describe(self) -> str:
        """What this query looks for, in words."""
        parts = []
        if self.sha256 is not None:
            parts.append(self.sha256)
        if self.key is not None:
            parts.append(f"key {self.key}")
        if self.identity is not None:
            parts.append(f"identity {self.identity}"
                         + (f" issued by {self.issuer}" if self.issuer else ""))
        return f" {self.operator} ".join(parts)

    def index_keys(self) -> list[bytes]:
        """The stored index keys this query looks up."""
        keys = []
        if self.sha256 is not None:
            keys.append(hash_index_key(self.sha256))
        if self.key is not None:
            keys.append(key_index_key(self.key))
        if self.identity is not None:
            keys.append(identity_index_key(self.identity))
        return keys

    def matches(self, terms: EntryTerms, *, check_issuer: bool = True) -> bool:
        """Whether an entry with ``terms`` answers this query; with ``check_issuer``
        False, whether a log's index (which knows no issuer) may name it."""
        checks = []
        if self.sha256 is not None:
            checks.append(self.sha256 in terms.hashes)
        if self.key is not None:
            checks.append(self.key in terms.keys)
        if self.identity is not None:
            wanted = normalize_identity(self.identity)
            checks.append(any(i.identity == wanted
                              and (not check_issuer or self.issuer is None
                                   or i.issuer == self.issuer)
                              for i in terms.identities))
        return all(checks) if self.operator == "and" else any(checks)

    def to_request(self) -> dict[str, object]:
        """Rekor's ``SearchIndex`` JSON for this query.

        A non-e-mail identity (a URI) goes as ``identity``, an mgattest extension:
        Rekor's API searches e-mail identities only.
        """
        request: dict[str, object] = {}
        if self.sha256 is not None:
            request["hash"] = self.sha256
        if self.key_pem is not None:
            request["publicKey"] = {"format": "x509",
                                    "content": base64.b64encode(self.key_pem).decode()}
        if self.identity is not None:
            if _EMAIL.fullmatch(self.identity):
                request["email"] = self.identity
            else:
                request["identity"] = self.identity
        if len(request) > 1:
            request["operator"] = self.operator
        return request


def normalize_sha256(value: str) -> str:
    """``sha256:<lowercase hex>`` from ``HEX`` or ``sha256:HEX``; SearchQueryError if not."""
    text = value.strip()
    if text.lower().startswith("sha256:"):
        text = text[7:]
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise SearchQueryError(f"not a SHA-256 digest (64 hex characters): {value[:80]!r}",
                               what="search hash")
    return "sha256:" + text.lower()


def _key_digest_from(fmt: str, content: bytes) -> str:
    """The SPKI digest of a key given as Rekor's ``publicKey`` (x509 PEM or ssh)."""
    try:
        if fmt == "x509":
            if b"-----BEGIN CERTIFICATE-----" in content:
                return key_digest(x509.load_pem_x509_certificate(content).public_key())
            if b"-----BEGIN" in content:
                return key_digest(serialization.load_pem_public_key(content))
            return key_digest(serialization.load_der_public_key(content))
        if fmt == "ssh":
            return key_digest(serialization.load_ssh_public_key(content))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SearchQueryError(f"publicKey.content is not a usable {fmt} public key or "
                               f"certificate: {str(exc)[:200]}", what="search public key") \
            from None
    raise SearchQueryError(f"publicKey.format {fmt!r} is not searchable on this log "
                           "(x509 and ssh are)", what="search public key")


def parse_search_request(request: object) -> SearchQuery:
    """Validate Rekor's ``SearchIndex`` request JSON; :class:`SearchQueryError` if off."""
    if not isinstance(request, dict):
        raise SearchQueryError("the search request must be a JSON object", what="search query")
    unknown = set(request) - {"hash", "publicKey", "email", "identity", "operator"}
    if unknown:
        names = ", ".join(sorted(ascii(n)[:40] for n in unknown)[:5])
        raise SearchQueryError(f"unknown search field(s): {names}", what="search query")
    sha256 = key = identity = None
    raw_hash = request.get("hash")
    if raw_hash is not None:
        if not isinstance(raw_hash, str) or not _HASH.fullmatch(raw_hash):
            raise SearchQueryError("hash must be sha256:<64 hex> or sha1:<40 hex>",
                                   what="search hash")
        # sha1 is valid Rekor input, but nothing here is indexed by it: it finds nothing
        sha256 = normalize_sha256(raw_hash) if len(raw_hash.split(":")[-1]) == 64 \
            else "sha1:" + raw_hash.split(":")[-1].lower()
    raw_key = request.get("publicKey")
    if raw_key is not None:
        key = _parse_public_key(raw_key)
    for name in ("email", "identity"):
        value = request.get(name)
        if value is None:
            continue
        if identity is not None:
            raise SearchQueryError("give email or identity, not both", what="search identity")
        if not isinstance(value, str) or not value or len(value) > MAX_IDENTITY_LENGTH \
                or not value.isprintable():
            raise SearchQueryError(f"{name} must be a printable string of at most "
                                   f"{MAX_IDENTITY_LENGTH} characters", what="search identity")
        if name == "email" and not _EMAIL.fullmatch(value):
            raise SearchQueryError("email is not an e-mail address", what="search identity")
        identity = value
    operator = request.get("operator", "or")
    if operator not in ("and", "or"):
        raise SearchQueryError("operator must be 'and' or 'or'", what="search query")
    return SearchQuery(sha256=sha256, key=key, identity=identity,
                       operator="and" if operator == "and" else "or")


def _parse_public_key(raw: object) -> str:
    if not isinstance(raw, dict) or not set(raw) <= {"format", "content", "url"}:
        raise SearchQueryError("publicKey must be an object with format and content",
                               what="search public key")
    fmt = raw.get("format")
    if fmt not in _KEY_FORMATS:
        raise SearchQueryError(f"publicKey.format must be one of {', '.join(_KEY_FORMATS)}",
                               what="search public key")
    if raw.get("url") is not None:
        raise SearchQueryError("publicKey.url is not fetched by this log: send the content",
                               what="search public key")
    content = raw.get("content")
    if not isinstance(content, str) or len(content) > MAX_KEY_CONTENT * 4 // 3 + 4:
        raise SearchQueryError("publicKey.content must be base64 of at most "
                               f"{MAX_KEY_CONTENT} bytes", what="search public key")
    try:
        decoded = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise SearchQueryError("publicKey.content is not base64", what="search public key") \
            from None
    return _key_digest_from(str(fmt), decoded)


def search_store(store: LogStore, query: SearchQuery,
                 limit: int = MAX_SEARCH_RESULTS) -> list[str]:
    """UUIDs (hex leaf hashes) of the entries the index names for ``query``, in index
    order (the newest ``limit`` when more match). LogError if the index is incomplete."""
    if not store.search_index_complete():
        raise LogError(f"the search index of {store.path} is incomplete (a database from "
                       "before the index, or imported): run `mgattest log reindex`",
                       what="search index", where=store.path)
    return [leaf.hex() for _, leaf in store.search(query.index_keys(), query.operator, limit)]


def rebuild_search_index(store: LogStore, batch: int = 4096) -> int:
    """Index every entry of ``store`` (idempotent; entries indexed already are kept) and
    mark the index complete. Returns the number of entries read."""
    count = 0
    for rows in store.iter_indexable(batch):
        store.add_search_keys([(key, idx, leaf) for idx, leaf, body, attestation in rows
                               for key in index_keys(entry_terms(body, attestation))])
        count += len(rows)
    store.mark_search_index_complete()
    return count
