"""in-toto Statement v1: build, validate and serialise deterministically.

The payload bytes are RFC 8785 (JCS) of the statement, so the same model and the same
predicate always give the same bytes. Predicates stay plain JSON (3 stays 3).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping, NotRequired, TypedDict, cast

import rfc8785

from mgattest._jsonutil import JSONValue
from mgattest._jsonutil import reject_duplicate_keys
from mgattest.attest.errors import StatementError, UnsafeSubjectNameError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
LEGACY_STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1",)
MAX_STATEMENT_BYTES = 32 * 1024 * 1024
MAX_SUBJECTS = 1_000_000
_HEX = re.compile(r"^[0-9a-f]+$")
# Algorithms of in-toto digest sets with a fixed length, and that length in hex characters.
DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128, "sha3_256": 64,
                   "sha3_384": 96, "sha3_512": 128, "blake2b": 128, "blake3": 64,
                   "sha1": 40, "gitCommit": 40}


class ResourceDescriptor(TypedDict):
    """A statement subject: ``name`` (checked: a relative path, unique) and ``digest``
    (checked: algorithm → hex). Of in-toto's optional members only ``annotations`` is
    read (by the policy engine, which checks its shape), and ``uri`` is written for
    SLSA dependencies (:func:`mgattest.attest._recorder.describe_path`)."""

    name: str
    digest: dict[str, str]
    uri: NotRequired[str]
    annotations: NotRequired[JSONValue]


# Functional syntax: ``_type`` is the member's JSON name.
Statement = TypedDict("Statement", {
    "_type": str,
    "subject": list[ResourceDescriptor],
    "predicateType": str,
    "predicate": NotRequired[Mapping[str, JSONValue]],
})
"""An in-toto Statement (v1, or a legacy v0.1 one when read) after
:func:`validate_statement`: subjects checked, ``predicate`` an object whose shape depends
on ``predicateType`` (so it stays arbitrary JSON here)."""


_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_COMPONENTS = frozenset(("", ".", ".."))


def check_subject_name(name: object, *, where: str = "statement") -> str:
    """Return ``name`` if it is a safe relative POSIX path; raise otherwise.

    Refused: empty, absolute (``/x``, ``C:``, ``\\\\host``), any ``..`` or ``.``
    component, empty components, backslashes, NUL and other control characters.
    """
    if not isinstance(name, str) or not name:
        raise UnsafeSubjectNameError("subject name is empty or not a string",
                                     what="subject name", where=where)
    problem = None
    if name.startswith("/") or _DRIVE.match(name):
        problem = "is absolute"
    elif "\\" in name:
        problem = "contains a backslash"
    elif _CONTROL.search(name):
        problem = "contains a control character"
    elif not _BAD_COMPONENTS.isdisjoint(name.split("/")):
        problem = "contains an empty, '.' or '..' component"
    if problem:
        raise UnsafeSubjectNameError(f"subject name {name!r} {problem}",
                                     what="subject name", where=where, subject=name)
    return name


def make_subject(name: str, digest: dict[str, str]) -> ResourceDescriptor:
    """A resource descriptor ``{name, digest}`` after checking both."""
    check_subject_name(name)
    _check_digest(digest, where=name)
    return {"name": name, "digest": dict(digest)}


def _check_digest(digest: Any, *, where: str) -> None:
    if not isinstance(digest, dict) or not digest:
        raise StatementError(f"subject {where}: digest must be a non-empty object",
                             what="subject digest", where=where)
    for alg, value in digest.items():
        if not isinstance(alg, str) or not isinstance(value, str):
            raise StatementError(f"subject {where}: digest entries must be strings",
                                 what="subject digest", where=where)
        expected = DIGEST_LENGTHS.get(alg)
        if expected is not None and (len(value) != expected or not _HEX.match(value)):
            raise StatementError(f"subject {where}: {alg} digest must be {expected} "
                                 "lowercase hex characters", what="subject digest",
                                 where=where)


def parse_digest(text: str, *, what: str = "digest") -> tuple[str, str]:
    """``ALG:HEX`` → (alg, lowercase hex), for digests a user types (``--dependency``).

    The algorithm must be one in-toto names with a fixed length (sha256, sha512,
    gitCommit, ...), and the value exactly that many hex characters: a truncated or
    mistyped digest is refused at sign time instead of being signed as a pin.
    """
    alg, sep, value = text.partition(":")
    if not sep or not alg:
        raise StatementError(f"{text!r} is not a digest of the form ALGORITHM:HEX",
                             what=what, where=text)
    expected = DIGEST_LENGTHS.get(alg) or DIGEST_LENGTHS.get(alg.lower())
    if expected is None:
        known = ", ".join(sorted(DIGEST_LENGTHS))
        raise StatementError(f"unknown digest algorithm {alg!r} in {text!r} (known: {known})",
                             what=what, where=text)
    alg = alg if alg in DIGEST_LENGTHS else alg.lower()
    value = value.lower()
    if len(value) != expected or not _HEX.match(value):
        found = f"{len(value)} characters" + ("" if _HEX.match(value) else ", not all hex")
        raise StatementError(f"{alg} digest in {text!r} must be {expected} hex characters "
                             f"(got {found})", what=what, where=text)
    return alg, value


def make_statement(subjects: Iterable[ResourceDescriptor], predicate_type: str,
                   predicate: Mapping[str, JSONValue] | None) -> Statement:
    """Build an in-toto Statement v1 dict (subjects sorted by name, unique names)."""
    subject_list = sorted((ResourceDescriptor(**s) for s in subjects),
                          key=lambda s: s.get("name", ""))
    statement: Statement = {"_type": STATEMENT_TYPE, "subject": subject_list,
                 "predicateType": predicate_type}
    if predicate is not None:
        statement["predicate"] = predicate
    validate_statement(statement)
    return statement


def validate_statement(statement: object, *, where: str = "statement",
                       check_names: bool = True) -> Statement:
    """Check a statement against the in-toto v1 spec; returns it unchanged."""
    if not isinstance(statement, dict):
        raise StatementError("statement is not a JSON object", what="statement", where=where)
    stype = statement.get("_type")
    if stype != STATEMENT_TYPE and stype not in LEGACY_STATEMENT_TYPES:
        raise StatementError(f"statement _type {stype!r} is not {STATEMENT_TYPE}",
                             what="statement._type", where=where)
    ptype = statement.get("predicateType")
    if not isinstance(ptype, str) or not ptype:
        raise StatementError("statement predicateType missing", what="predicateType",
                             where=where)
    if "predicate" in statement and not isinstance(statement["predicate"], dict):
        raise StatementError("statement predicate must be an object", what="predicate",
                             where=where)
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise StatementError("statement has no subjects", what="subject", where=where)
    if len(subjects) > MAX_SUBJECTS:
        raise StatementError(f"statement has more than {MAX_SUBJECTS} subjects",
                             what="subject", where=where)
    seen: set[str] = set()
    for i, subject in enumerate(subjects):
        if not isinstance(subject, dict):
            raise StatementError(f"subject {i} is not an object", what="subject", where=where)
        name = subject.get("name")
        if check_names:
            name = check_subject_name(name, where=f"{where} subject {i}")
        elif not isinstance(name, str):
            raise StatementError(f"subject {i} has no name", what="subject", where=where)
        if name in seen:
            raise StatementError(f"subject name {name!r} appears twice", what="subject",
                                 where=where)
        seen.add(name)
        _check_digest(subject.get("digest"), where=str(name))
    return cast(Statement, statement)  # each member Statement declares was checked above


def serialize_statement(statement: Statement) -> bytes:
    """Deterministic payload bytes: RFC 8785 JSON Canonicalization of the statement."""
    document: Mapping[str, Any] = statement  # rfc8785's JSON type does not admit TypedDicts
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise StatementError(f"statement cannot be canonicalised: {exc}",
                             what="statement") from None


def parse_statement(payload: bytes, *, where: str = "statement",
                    check_names: bool = False) -> Statement:
    """Parse payload bytes as an in-toto statement (size-bounded, duplicate keys refused)."""
    if len(payload) > MAX_STATEMENT_BYTES:
        raise StatementError("statement larger than 32 MiB", what="statement", where=where)
    try:
        data = json.loads(payload, object_pairs_hook=reject_duplicate_keys)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise StatementError(f"statement is not valid JSON: {exc}", what="statement",
                             where=where) from None
    return validate_statement(data, where=where, check_names=check_names)


