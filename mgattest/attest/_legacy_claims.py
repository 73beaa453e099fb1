"""The claims home-grown signing scripts leave in a model tree, found and parsed.

``mgattest migrate`` checks these claims before it signs anything. This module only
reads them: every claim becomes a :class:`Claim` (which file, what kind, what value, which
document said so); a document that says something unreadable about a file becomes a
:class:`ClaimProblem` naming the file, so that file is not signed. Schemes (docs/migrate.md):

- ``hmac-sig``: ``<file>.sig`` JSON ``{"file", "signature", "algorithm", "signed_at",
  "file_size"}``: HMAC-SHA256 (or -SHA512) of the file bytes, hex or base64;
- ``signature-manifest``: ``model_signatures.json`` (or any JSON) mapping file names to
  such records, or listing them;
- ``metadata-json``: a JSON record (``<file>.sig.json``, ``<file>.json``, ...) with
  ``checksum_sha256`` / ``checksum_sha512`` / ``file_size``;
- ``allowed-list``: JSON ``{filename: sha256 hex}`` (``sha256:`` prefixes allowed);
- ``checksum-file``: ``sha256sum``/``sha512sum``/BSD output (``SHA256SUMS``,
  ``<file>.sha256``, ``checksums.txt``, ...), parsed by :mod:`mgattest.attest._checksums`.

Names in a document are relative to the directory the document sits in; absolute names
and names that leave the migration root are problems, not guesses.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mgattest._files import read_bounded
from mgattest.attest._checksums import parse_checksum_text
from mgattest.attest._discover import BUNDLE_SUFFIX, DEFAULT_MODEL_PATTERNS, SKIPPED_DIRECTORIES
from mgattest.errors import InputError, MgattestError

ClaimKind = Literal["hmac-sha256", "hmac-sha512", "sha256", "sha512", "size"]
Scheme = Literal["hmac-sig", "signature-manifest", "metadata-json", "allowed-list",
                 "checksum-file"]

# What `mgattest audit` counts as model artifacts (its default "*.ext" patterns); files
# with these suffixes and no claim are reported "unclaimed".
MODEL_SUFFIXES = tuple(pattern.removeprefix("*") for pattern in DEFAULT_MODEL_PATTERNS)
MAX_CLAIM_DOCUMENT = 16 << 20

_CHECKSUM_NAME = re.compile(
    r"(sha(256|512)sums?|checksums?)(\.txt)?|.+\.sha(256|512)(sum)?(\.txt)?", re.IGNORECASE)
_BARE_DIGEST_SUFFIX = re.compile(r"\.sha(256|512)(sum)?(\.txt)?$", re.IGNORECASE)
_HEX = re.compile(r"[0-9a-fA-F]+")
_NAME_KEYS = ("file", "filename", "file_name", "name", "path")
_WRAPPER_KEYS = ("files", "signatures", "models", "artifacts", "checksums", "allowed_models")
_DIGEST_KEYS: dict[str, ClaimKind] = {"checksum_sha256": "sha256", "sha256": "sha256",
                                      "checksum_sha512": "sha512", "sha512": "sha512"}
_SIGNATURE_KEYS = ("signature", "hmac")
_SIZE_KEYS = ("file_size", "size")
_HMAC_NAMES: dict[str, ClaimKind] = {"hmacsha256": "hmac-sha256", "hs256": "hmac-sha256",
                                     "sha256hmac": "hmac-sha256", "sha256": "hmac-sha256",
                                     "hmacsha512": "hmac-sha512", "hs512": "hmac-sha512",
                                     "sha512hmac": "hmac-sha512", "sha512": "hmac-sha512"}
_HMAC_LENGTH: dict[ClaimKind, int] = {"hmac-sha256": 32, "hmac-sha512": 64}
_DIGEST_LENGTH: dict[ClaimKind, int] = {"sha256": 64, "sha512": 128}
_UNREADABLE = object()  # Reader.read_json: the document could not be read
_NOT_JSON = object()  # Reader.read_json: it is not JSON


@dataclass(frozen=True)
class Claim:
    """One old claim: ``target`` (POSIX path under the root) has ``expected``.

    ``expected`` is lower-case hex for digests and HMACs, a decimal string for sizes;
    ``source`` names the document (and line or key) that made the claim.
    """

    target: str
    kind: ClaimKind
    expected: str
    source: str
    scheme: Scheme


@dataclass(frozen=True)
class ClaimProblem:
    """A claim document (or part of one) that cannot be checked, and why; ``target`` is
    the file it is about when that is known (that file then fails)."""

    source: str
    message: str
    target: str | None = None


@dataclass
class ClaimInventory:
    """Everything found under a migration root."""

    claims: list[Claim] = field(default_factory=list)
    problems: list[ClaimProblem] = field(default_factory=list)
    notes: list[ClaimProblem] = field(default_factory=list)  # files skipped as not claims
    claim_files: list[str] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)  # model files found by suffix
    bundles: list[str] = field(default_factory=list)  # <x>.sigstore.json already present


# --------------------------------------------------------------------------- names

def resolve_name(doc_dir: str, name: str) -> str:
    """``name`` from a document in ``doc_dir`` as a POSIX path under the root.

    Raises ValueError (with the reason) for absolute names and names leaving the root.
    """
    if not name or "\x00" in name:
        raise ValueError("empty file name" if not name else "NUL in file name")
    if name.startswith("/") or re.match(r"[A-Za-z]:[\\/]", name):
        raise ValueError(f"absolute path {name!r}: cannot tell which file under the "
                         "migration root it means")
    joined = posixpath.normpath(posixpath.join(doc_dir, name))
    if joined == ".." or joined.startswith("../") or joined == ".":
        raise ValueError(f"{name!r} is outside the migration root")
    return joined


def _derived_target(doc_name: str) -> str | None:
    """The file a per-file document is about by its own name: ``x.sig`` / ``x.sig.json``
    / ``x.meta.json`` / ``x.json`` / ``x.sha256`` → ``x``."""
    for suffix in (".sig.json", ".meta.json", ".metadata.json", ".sig", ".json"):
        if doc_name.endswith(suffix) and len(doc_name) > len(suffix):
            return doc_name[: -len(suffix)]
    match = _BARE_DIGEST_SUFFIX.search(doc_name)
    if match and match.start() > 0:
        return doc_name[: match.start()]
    return None


# --------------------------------------------------------------------------- records

def _decode_signature(text: str, kind: ClaimKind | None) -> tuple[ClaimKind, str]:
    """An HMAC value (hex or base64) as (kind, lower hex); ValueError if neither fits."""
    text = text.strip()
    raw = bytes.fromhex(text) if _HEX.fullmatch(text) and len(text) in (64, 128) \
        else _base64(text)
    if raw is None or len(raw) not in (32, 64):
        raise ValueError("signature is neither hex nor base64 of a 32- or 64-byte HMAC")
    found: ClaimKind = "hmac-sha256" if len(raw) == 32 else "hmac-sha512"
    if kind is not None and kind != found:
        raise ValueError(f"signature has {len(raw)} bytes, not the {_HMAC_LENGTH[kind]} "
                         f"of {kind}")
    return found, raw.hex()


def _base64(text: str) -> bytes | None:
    """Standard or URL-safe base64, padded or not; None when it is neither."""
    padded = text + "=" * (-len(text) % 4)
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded.encode("ascii"), altchars=altchars, validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            continue
    return None


def _hmac_kind(algorithm: object) -> ClaimKind | None:
    """The HMAC kind an ``algorithm`` field names (None: not given); ValueError if unknown."""
    if algorithm is None:
        return None
    if not isinstance(algorithm, str):
        raise ValueError("algorithm is not a string")
    kind = _HMAC_NAMES.get(re.sub(r"[^a-z0-9]", "", algorithm.lower()))
    if kind is None:
        raise ValueError(f"unsupported signature algorithm {algorithm!r} (HMAC-SHA256 or "
                         "HMAC-SHA512 only)")
    return kind


def _digest_value(value: object, kind: ClaimKind) -> str:
    """A digest field as lower hex; ValueError if it is not one."""
    if not isinstance(value, str):
        raise ValueError(f"{kind} value is not a string")
    text = value.strip()
    if text.lower().startswith(f"{kind}:"):
        text = text[len(kind) + 1:]
    if not _HEX.fullmatch(text) or len(text) != _DIGEST_LENGTH[kind]:
        raise ValueError(f"{kind} value is not {_DIGEST_LENGTH[kind]} hex digits")
    return text.lower()


def is_record(value: object) -> bool:
    """Whether a JSON value is a claim record: an object with a signature or a
    ``checksum_*`` field, or a bare ``sha256``/``sha512`` field holding a digest (a model
    config may well have a ``sha256`` key meaning something else)."""
    if not isinstance(value, dict):
        return False
    if any(k in value for k in (*_SIGNATURE_KEYS, "checksum_sha256", "checksum_sha512")):
        return True
    return any(_looks_like_digest(value.get(k)) for k in ("sha256", "sha512"))


def record_claims(record: dict[str, object], target: str, source: str,
                  scheme: Scheme) -> list[Claim]:
    """The claims of one record about ``target``; ValueError names what is unreadable."""
    claims: list[Claim] = []
    for key in _SIGNATURE_KEYS:
        if key in record:
            value = record[key]
            if not isinstance(value, str):
                raise ValueError(f"{key} is not a string")
            kind, hex_value = _decode_signature(value, _hmac_kind(record.get("algorithm")))
            claims.append(Claim(target, kind, hex_value, source, scheme))
    for key, kind in _DIGEST_KEYS.items():
        if key in record:
            claims.append(Claim(target, kind, _digest_value(record[key], kind), source,
                                scheme))
    for key in _SIZE_KEYS:
        if key in record:
            size = record[key]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ValueError(f"{key} is not a non-negative integer")
            claims.append(Claim(target, "size", str(size), source, scheme))
    return claims


def _last_component(name: str) -> str:
    """The file name part of a path written on any system."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _record_name(record: dict[str, object]) -> str | None:
    for key in _NAME_KEYS:
        value = record.get(key)
        if isinstance(value, str):
            return value
    return None


# --------------------------------------------------------------------------- documents

class _Reader:
    """Adds the claims of each document to an inventory."""

    def __init__(self, root: Path, inventory: ClaimInventory) -> None:
        self.root = root
        self.inv = inventory

    def problem(self, source: str, message: str, target: str | None = None) -> None:
        self.inv.problems.append(ClaimProblem(source, message, target))

    def add_record(self, record: dict[str, object], doc_dir: str, name: str | None,
                   source: str, scheme: Scheme) -> None:
        if name is None:
            self.problem(source, "record names no file (file/filename/name/path)")
            return
        try:
            target = resolve_name(doc_dir, name)
        except ValueError as exc:
            self.problem(source, str(exc))
            return
        try:
            self.inv.claims.extend(record_claims(record, target, source, scheme))
        except ValueError as exc:
            self.problem(source, str(exc), target)

    def read_bytes(self, rel: str) -> bytes | None:
        try:
            return read_bounded(self.root / rel, MAX_CLAIM_DOCUMENT, what="claim document")
        except MgattestError as exc:
            self.problem(rel, exc.message)
            return None

    def read_json(self, rel: str) -> object:
        """The JSON value of a document; ``_UNREADABLE`` (a problem is recorded) or
        ``_NOT_JSON``."""
        data = self.read_bytes(rel)
        if data is None:
            return _UNREADABLE
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            return _NOT_JSON

    def sig_file(self, rel: str) -> None:
        """``<file>.sig``: one HMAC record (a non-JSON .sig is someone else's signature)."""
        doc = self.read_json(rel)
        if doc is _NOT_JSON:
            self.inv.notes.append(ClaimProblem(rel, "not JSON (not a home-grown HMAC "
                                                    "signature): skipped"))
        if doc is _NOT_JSON or doc is _UNREADABLE:
            return
        doc_dir, doc_name = posixpath.split(rel)
        derived = _derived_target(doc_name)
        if not is_record(doc) or derived is None:
            self.problem(rel, "a .sig JSON document without a signature or checksum")
            return
        assert isinstance(doc, dict)
        self.inv.claim_files.append(rel)
        target = posixpath.join(doc_dir, derived) if doc_dir else derived
        named = _record_name(doc)
        # Scripts often record the path they signed on their own machine: only the last
        # component has to name this .sig's neighbour.
        if named is not None and _last_component(named) != derived:
            self.problem(rel, f"the record names {named!r} but sits beside {derived!r}",
                         target)
            return
        try:
            self.inv.claims.extend(record_claims(doc, target, rel, "hmac-sig"))
        except ValueError as exc:
            self.problem(rel, str(exc), target)

    def json_file(self, rel: str) -> None:
        """A JSON document: a record, a manifest of records, an allowed-models list, or
        none of these (then it is a model file like config.json and left alone)."""
        doc = self.read_json(rel)
        if doc is _NOT_JSON or doc is _UNREADABLE:
            return
        doc_dir, doc_name = posixpath.split(rel)
        if isinstance(doc, dict):
            for key in _WRAPPER_KEYS:
                if isinstance(doc.get(key), (dict, list)):
                    inner = doc[key]
                    if _classify(inner) is not None:
                        doc = inner
                        break
        kind = _classify(doc)
        if kind is None:
            return
        self.inv.claim_files.append(rel)
        if kind == "record":
            assert isinstance(doc, dict)
            name = _record_name(doc) or _derived_target(doc_name)
            self.add_record(doc, doc_dir, name, rel, "metadata-json")
        elif kind == "map":
            assert isinstance(doc, dict)
            for key, record in doc.items():
                named = _record_name(record)
                if named is not None and _last_component(named) != _last_component(key):
                    self.problem(f"{rel}[{key}]", f"keyed {key!r} but names {named!r}")
                    continue
                self.add_record(record, doc_dir, key, f"{rel}[{key}]", "signature-manifest")
        elif kind == "list":
            assert isinstance(doc, list)
            for i, record in enumerate(doc):
                self.add_record(record, doc_dir, _record_name(record), f"{rel}[{i}]",
                                "signature-manifest")
        else:
            assert isinstance(doc, dict)
            for key, value in doc.items():
                self.allowed_entry(doc_dir, key, value, f"{rel}[{key}]")

    def allowed_entry(self, doc_dir: str, name: str, value: object, source: str) -> None:
        kind: ClaimKind = "sha512" if isinstance(value, str) and len(
            value.rsplit(":", 1)[-1].strip()) == 128 else "sha256"
        try:
            target = resolve_name(doc_dir, name)
            self.inv.claims.append(Claim(target, kind, _digest_value(value, kind), source,
                                         "allowed-list"))
        except ValueError as exc:
            self.problem(source, str(exc))

    def checksum_file(self, rel: str) -> None:
        data = self.read_bytes(rel)
        if data is None:
            return
        doc_dir, doc_name = posixpath.split(rel)
        derived = _derived_target(doc_name) if _BARE_DIGEST_SUFFIX.search(doc_name) else None
        parsed = parse_checksum_text(data.decode("utf-8", "surrogateescape"),
                                     default_name=derived)
        self.inv.claim_files.append(rel)
        for bad in parsed.bad_lines:
            self.problem(f"{rel}:{bad.line}", bad.reason)
        for line in parsed.entries:
            source = f"{rel}:{line.line}"
            try:
                target = resolve_name(doc_dir, line.name)
            except ValueError as exc:
                self.problem(source, str(exc))
                continue
            self.inv.claims.append(Claim(target, line.algorithm, line.hex_digest, source,
                                         "checksum-file"))


def _classify(doc: object) -> Literal["record", "map", "list", "allowed"] | None:
    if is_record(doc):
        return "record"
    if isinstance(doc, dict) and doc and all(is_record(v) for v in doc.values()):
        return "map"
    if isinstance(doc, list) and doc and all(is_record(v) for v in doc):
        return "list"
    if isinstance(doc, dict) and doc and all(_looks_like_digest(v) for v in doc.values()):
        return "allowed"
    return None


def _looks_like_digest(value: object) -> bool:
    if not isinstance(value, str):
        return False
    text = value.rsplit(":", 1)[-1].strip() if value.lower().startswith(
        ("sha256:", "sha512:")) else value.strip()
    return bool(_HEX.fullmatch(text)) and len(text) in (64, 128)


def collect_claims(root: str | os.PathLike[str]) -> ClaimInventory:
    """Find and parse every old claim under the directory ``root`` (VCS metadata and
    symlinks are not followed), plus the model files and existing bundles it holds."""
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"{root} is not a directory", what="migrate root", where=str(root))
    inventory = ClaimInventory()
    reader = _Reader(base, inventory)

    def unreadable(exc: OSError) -> None:  # fail closed: claims in it would go unseen
        where = Path(exc.filename).relative_to(base).as_posix() if exc.filename else str(base)
        inventory.problems.append(ClaimProblem(where, "cannot read directory: "
                                                      f"{exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(base, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRECTORIES)
        rel_dir = Path(dirpath).relative_to(base).as_posix()
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not stat.S_ISREG(os.lstat(os.path.join(dirpath, name)).st_mode):
                continue
            lower = name.lower()
            if lower.endswith(BUNDLE_SUFFIX):
                inventory.bundles.append(rel)
            elif lower.endswith(".sig"):
                reader.sig_file(rel)
            elif lower.endswith(".json"):
                reader.json_file(rel)
            elif _CHECKSUM_NAME.fullmatch(name):
                reader.checksum_file(rel)
            elif lower.endswith(MODEL_SUFFIXES):
                inventory.candidates.append(rel)
    return inventory
