"""OpenSSF model signing (``model_signing`` v1.0 predicate): write it, read it, check it.

The format (``https://model_signing/signature/v1.0``)::

    subject:   [{name: <model name>, digest: {sha256: SHA256(d_1 || d_2 || ... )}}]
    predicate: {serialization: {method: "files"|"shards", hash_type, allow_symlinks,
                                [shard_size], [ignore_paths]},
                resources: [{name, algorithm, digest}, ...]}

where ``d_i`` are the raw resource digests in resource order (model_signing sorts
resources by path components, then shard start/end). In ``files`` mode a resource is a
file (``"."`` for a single-file model) with ``algorithm == hash_type``; in ``shards``
mode it is ``"path:start:end"`` with ``algorithm == "<hash_type>-sharded-<shard_size>"``.

Where model_signing 1.1.1 misbehaves we do not copy it (see docs/digests.md):

* ``shard_size`` is written as an integer (model_signing's protobuf route makes it a
  float, which its own verifier then mis-handles); on read an integral float is accepted.
* ``ignore_paths`` is written sorted (model_signing's order varies between runs).
* Shard resource names are split from the right, so names containing ``:`` read back
  correctly; on write such names are refused because model_signing cannot read them.
* The format cannot represent empty files in shard mode: we omit them on write, as
  model_signing does, and a check of a shard-mode statement reports extra empty files
  as ``ignored`` (never silently ``ok``).
* ``ignore_paths`` entries that are absolute or contain ``..`` make the statement invalid.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from mgattest._jsonutil import JSONValue
from mgattest.attest._digests import (
    DEFAULT_IGNORES,
    ModelDigests,
    check_model,
    glob_escape,
    shard_digest_key,
    shard_ranges,
    shard_tree_root,
)
from mgattest.attest.errors import DigestError, ModelSigningFormatError
from mgattest.attest._options import CheckOptions
from mgattest.attest._results import ModelCheck
from mgattest.attest._statement import Statement
from mgattest.attest._walk import name_problem

__all__ = [
    "PREDICATE_TYPE", "PREDICATE_TYPE_V0_1", "STATEMENT_TYPE", "ModelSigningExpectations",
    "ModelSigningFormatError", "check_model_signing", "expectations_from_model_signing",
    "resources_digest", "to_model_signing_statement",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
PREDICATE_TYPE_V0_1 = "https://model_signing/Digests/v0.1"

_FILE_ALGORITHMS = {"sha256": 32, "blake2b": 64, "blake3": 32}
_SHARD_ALGORITHMS = {"sha256": 32, "blake2b": 64}
MAX_RESOURCES = 1_000_000
_OFFSET = re.compile(r"0|[1-9][0-9]*")
_HEX = re.compile(r"[0-9a-f]+")


def _fmt_error(message: str, where: str) -> ModelSigningFormatError:
    return ModelSigningFormatError(message, what="model-signing statement", where=where)


def resources_digest(resources: Sequence[Mapping[str, JSONValue]]) -> str:
    """SHA-256 (hex) over the concatenated raw digests of ``resources``, in order."""
    h = hashlib.sha256()
    for r in resources:
        h.update(bytes.fromhex(r["digest"]))
    return h.hexdigest()


def _path_key(name: str) -> list[str]:
    # model_signing orders pathlib.PurePosixPath objects, i.e. by path components.
    return [] if name == "." else name.split("/")


def _has_glob_magic(pattern: str) -> bool:
    return re.search(r"(?<!\\)[*?\[]", pattern) is not None


def _ignore_paths(digests: ModelDigests) -> list[str]:
    paths = set(DEFAULT_IGNORES)
    for pattern in digests.ignore:
        if not _has_glob_magic(pattern):
            paths.add(re.sub(r"\\(.)", r"\1", pattern).strip("/"))
    # Globs have no model_signing equivalent: record the entries they actually matched.
    paths.update(entry.rstrip("/") for entry in digests.ignored)
    paths.update(digests.excluded)
    return sorted(paths)


def to_model_signing_statement(digests: ModelDigests, *,
                               model_name: str | None = None) -> Statement:
    """The in-toto statement model_signing 1.1.1 would sign for the same model.

    Files mode needs sha256, blake2b or blake3; shard mode (``digests.shard_size`` set)
    sha256 or blake2b, and no ``:`` in file names. ``model_name`` defaults to the last
    component of the model path as given, as model_signing does.
    """
    alg = digests.algorithm
    if model_name is None:
        model_name = digests.model_name or os.path.basename(digests.root)
    resources: list[tuple[tuple[list[str], int, int], dict[str, str]]] = []
    if digests.shard_size is None:
        if alg not in _FILE_ALGORITHMS:
            raise DigestError(f"model_signing cannot express {alg} digests (use "
                              f"{', '.join(_FILE_ALGORITHMS)})", what="algorithm", where=alg)
        for f in digests.files:
            name = "." if digests.single_file else f.name
            resources.append(((_path_key(name), 0, 0),
                              {"name": name, "algorithm": alg, "digest": f.digest[alg]}))
        serialization: dict[str, Any] = {"method": "files", "hash_type": alg,
                                         "allow_symlinks": digests.allow_symlinks}
    else:
        if alg not in _SHARD_ALGORITHMS:
            raise DigestError(f"model_signing shard mode cannot express {alg} digests (use "
                              f"{', '.join(_SHARD_ALGORITHMS)})", what="algorithm", where=alg)
        size = digests.shard_size
        label = f"{alg}-sharded-{size}"
        for f in digests.files:
            name = "." if digests.single_file else f.name
            if ":" in name:
                raise DigestError(f"file {f.name!r} contains ':', which model_signing's shard "
                                  "format cannot represent; use files mode", what="file name",
                                  where=f.name)
            if f.shards is None:
                raise DigestError(f"file {f.name!r} has no shard digests", what="file",
                                  where=f.name)
            for (start, end), shard in zip(shard_ranges(f.size, size), f.shards, strict=True):
                resources.append(((_path_key(name), start, end),
                                  {"name": f"{name}:{start}:{end}", "algorithm": label,
                                   "digest": shard}))
        serialization = {"method": "shards", "hash_type": alg, "shard_size": size,
                         "allow_symlinks": digests.allow_symlinks}
    if not resources:
        raise DigestError("nothing to sign: the model has no file the model-signing format can "
                          "represent (in shard mode it cannot hold empty files; use files mode)",
                          what="model", where=digests.root)
    ignore_paths = _ignore_paths(digests)
    if ignore_paths:
        serialization["ignore_paths"] = ignore_paths
    resources.sort(key=lambda item: item[0])
    ordered = [r for _, r in resources]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": resources_digest(ordered)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"serialization": serialization, "resources": ordered},
    }


# --------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class ModelSigningExpectations:
    """What a model-signing statement says the model is, in ``check_model`` terms."""

    model_name: str
    method: str  # "files" | "shards"
    hash_type: str
    shard_size: int | None
    allow_symlinks: bool
    ignore_paths: tuple[str, ...]
    single_file: bool
    subjects: list[dict[str, Any]]  # mgattest ResourceDescriptors (shard trees in shard mode)
    subject_digest: str | None  # the statement's verified root digest (None for v0.1)

    def check(self, root: str | os.PathLike[str], *, ignore: Iterable[str] = (),
              exclude: Iterable[str | os.PathLike[str]] = (), allow_symlinks: bool | None = None,
              allow_unsigned_files: bool = False, workers: int | None = None,
              progress: Callable[[int], object] | None = None) -> ModelCheck:
        """Re-hash the model at ``root`` against this statement (see :func:`check_model`).

        The statement's ``ignore_paths`` are honoured as literal paths (they are signed);
        ``allow_symlinks`` defaults to the statement's setting.
        """
        patterns = [glob_escape(p) for p in self.ignore_paths] + list(ignore)
        return check_model(root, self.subjects, CheckOptions(
            ignore=patterns, exclude=exclude,
            allow_symlinks=self.allow_symlinks if allow_symlinks is None else allow_symlinks,
            allow_unsigned_files=allow_unsigned_files, single_file_match_by_digest=True,
            allow_unsigned_empty_files=self.method == "shards", workers=workers,
            progress=progress))


def _hex(value: object, size: int, where: str) -> str:
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) != 2 * size:
        raise _fmt_error(f"resource {where!r} has a malformed digest (expected {2 * size} "
                         "lowercase hex characters)", where)
    return value


_Serialization = tuple[str, str, int | None, bool, tuple[str, ...]]


def _serialization(predicate: Mapping[str, Any]) -> _Serialization:
    ser = predicate.get("serialization")
    if not isinstance(ser, Mapping):
        raise _fmt_error("predicate has no serialization object", "predicate.serialization")
    method = ser.get("method")
    hash_type = ser.get("hash_type")
    allow_symlinks = ser.get("allow_symlinks")
    if method not in ("files", "shards"):
        raise _fmt_error(f"unknown serialization method {method!r}", "serialization.method")
    table = _FILE_ALGORITHMS if method == "files" else _SHARD_ALGORITHMS
    if hash_type not in table:
        raise _fmt_error(f"unsupported hash_type {hash_type!r} for {method} serialization",
                         "serialization.hash_type")
    if not isinstance(allow_symlinks, bool):
        raise _fmt_error("allow_symlinks must be a boolean", "serialization.allow_symlinks")
    shard_size: int | None = None
    if method == "shards":
        raw = ser.get("shard_size")
        # model_signing 1.1.1 writes integers through protobuf Struct, i.e. as floats.
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
            raise _fmt_error(f"shard_size must be a positive integer, got {raw!r}",
                             "serialization.shard_size")
        shard_size = raw
    raw_ignore = ser.get("ignore_paths", [])
    if not isinstance(raw_ignore, list) or len(raw_ignore) > MAX_RESOURCES:
        raise _fmt_error("ignore_paths must be a bounded list", "serialization.ignore_paths")
    ignore_paths = []
    for p in raw_ignore:
        problem = name_problem(p.rstrip("/") if isinstance(p, str) else p)
        if problem is not None:
            raise _fmt_error(f"ignore path {p!r} {problem}; ignore paths must stay inside the "
                             "model", "serialization.ignore_paths")
        ignore_paths.append(p.rstrip("/"))
    return method, hash_type, shard_size, allow_symlinks, tuple(ignore_paths)


def _file_subjects(resources: list[Mapping[str, Any]], hash_type: str,
                   model_name: str) -> tuple[list[dict[str, Any]], bool]:
    subjects: list[dict[str, Any]] = []
    single = len(resources) == 1 and resources[0].get("name") == "."
    seen: set[str] = set()
    for r in resources:
        name = r.get("name")
        if r.get("algorithm") != hash_type:
            raise _fmt_error(f"resource {name!r} uses algorithm {r.get('algorithm')!r}, "
                             f"not the serialization's {hash_type!r}", str(name))
        if single:
            name = model_name
        problem = name_problem(name)
        if problem is not None:
            raise _fmt_error(f"resource name {name!r} {problem}", str(name))
        assert isinstance(name, str)
        if name in seen:
            raise _fmt_error(f"resource {name!r} appears more than once", name)
        seen.add(name)
        subjects.append({"name": name, "digest": {
            hash_type: _hex(r.get("digest"), _FILE_ALGORITHMS[hash_type], name)}})
    return subjects, single


def _shard_subjects(resources: list[Mapping[str, Any]], hash_type: str, shard_size: int,
                    model_name: str) -> tuple[list[dict[str, Any]], bool]:
    label = f"{hash_type}-sharded-{shard_size}"
    size = _SHARD_ALGORITHMS[hash_type]
    per_file: dict[str, dict[int, tuple[int, str]]] = {}
    for r in resources:
        rname = r.get("name")
        if not isinstance(rname, str) or rname.count(":") < 2:
            raise _fmt_error(f"shard resource {rname!r} is not 'path:start:end'", str(rname))
        if r.get("algorithm") != label:
            raise _fmt_error(f"shard resource {rname!r} uses algorithm {r.get('algorithm')!r}, "
                             f"expected {label!r}", rname)
        path, start_s, end_s = rname.rsplit(":", 2)  # from the right: ':' in paths survives
        if not (_OFFSET.fullmatch(start_s) and _OFFSET.fullmatch(end_s)):
            raise _fmt_error(f"shard resource {rname!r} has malformed offsets", rname)
        start, end = int(start_s), int(end_s)
        if end <= start or end - start > shard_size or start % shard_size:
            raise _fmt_error(f"shard resource {rname!r} is not a shard of {shard_size} bytes",
                             rname)
        shards = per_file.setdefault(path, {})
        if start in shards:
            raise _fmt_error(f"shard resource {rname!r} appears more than once", rname)
        shards[start] = (end, _hex(r.get("digest"), size, rname))
    single = "." in per_file
    if single and len(per_file) != 1:
        raise _fmt_error("resource '.' (a single-file model) cannot sit beside other files", ".")
    subjects: list[dict[str, Any]] = []
    for path, shards in per_file.items():
        name = model_name if path == "." else path
        problem = name_problem(name)
        if problem is not None:
            raise _fmt_error(f"resource name {name!r} {problem}", name)
        ordered: list[str] = []
        expected_start = 0
        for start in sorted(shards):
            end, digest = shards[start]
            if start != expected_start:
                raise _fmt_error(f"file {name!r} has a gap before byte {start} in its shards",
                                 name)
            ordered.append(digest)
            expected_start = end
        root = shard_tree_root([bytes.fromhex(d) for d in ordered], hash_type).hex()
        subjects.append({"name": name, "digest": {shard_digest_key(hash_type): root},
                         "annotations": {"shardSize": shard_size, "shardDigests": ordered}})
    subjects.sort(key=lambda s: s["name"])
    return subjects, single


def expectations_from_model_signing(statement: Statement) -> ModelSigningExpectations:
    """Validate a model-signing statement and turn it into ``check_model`` expectations.

    Verifies the subject digest (SHA-256 over the concatenated resource digests) and
    every resource; shard resources become per-file shard trees, so a failed check names
    the bad shard and byte range. Also reads the older ``Digests/v0.1`` predicate (one
    subject per file). Raises :class:`ModelSigningFormatError` on anything inconsistent.
    """
    if not isinstance(statement, Mapping) or statement.get("_type") != STATEMENT_TYPE:
        raise _fmt_error(f"not an in-toto {STATEMENT_TYPE} statement", "_type")
    ptype = statement.get("predicateType")
    subject = statement.get("subject")
    if not isinstance(subject, list) or not subject:
        raise _fmt_error("statement has no subject list", "subject")
    if ptype == PREDICATE_TYPE_V0_1:
        subs = []
        for s in subject:
            if not isinstance(s, Mapping) or not isinstance(s.get("digest"), Mapping):
                raise _fmt_error("v0.1 subject is malformed", "subject")
            subs.append({"name": s.get("name"),
                         "digest": {"sha256": _hex(s["digest"].get("sha256"), 32,
                                                   str(s.get("name")))}})
        return ModelSigningExpectations("compat-undefined-not-present", "files", "sha256", None,
                                        False, tuple(DEFAULT_IGNORES), False, subs, None)
    if ptype != PREDICATE_TYPE:
        raise _fmt_error(f"predicate type {ptype!r} is not {PREDICATE_TYPE}", "predicateType")
    if len(subject) != 1 or not isinstance(subject[0], Mapping):
        raise _fmt_error(f"expected exactly one subject, got {len(subject)}", "subject")
    model_name = subject[0].get("name")
    digest = subject[0].get("digest")
    if not isinstance(model_name, str) or not isinstance(digest, Mapping):
        raise _fmt_error("subject needs a name and a digest", "subject")
    expected_root = _hex(digest.get("sha256"), 32, "subject")
    predicate = statement.get("predicate")
    if not isinstance(predicate, Mapping):
        raise _fmt_error("statement has no predicate", "predicate")
    method, hash_type, shard_size, allow_symlinks, ignore_paths = _serialization(predicate)
    resources = predicate.get("resources")
    if not isinstance(resources, list) or len(resources) > MAX_RESOURCES or \
            not all(isinstance(r, Mapping) for r in resources):
        raise _fmt_error("predicate.resources must be a bounded list of objects", "resources")
    if method == "files":
        subjects, single = _file_subjects(resources, hash_type, model_name)
    else:
        assert shard_size is not None
        subjects, single = _shard_subjects(resources, hash_type, shard_size, model_name)
    if not subjects:
        raise _fmt_error("statement has no resources: it covers no file", "resources")
    actual_root = resources_digest(resources)  # every digest was validated as hex above
    if actual_root != expected_root:
        raise _fmt_error(f"subject digest {expected_root} does not match the resources, which "
                         f"hash to {actual_root}", "subject")
    return ModelSigningExpectations(model_name, method, hash_type, shard_size, allow_symlinks,
                                    ignore_paths, single, subjects, expected_root)


class ModelSigningCheckArgs(TypedDict, total=False):
    """The keyword arguments of :meth:`ModelSigningExpectations.check`."""

    ignore: Iterable[str]
    exclude: Iterable[str | os.PathLike[str]]
    allow_symlinks: bool | None
    allow_unsigned_files: bool
    workers: int | None
    progress: Callable[[int], object] | None


def check_model_signing(root: str | os.PathLike[str], statement: Statement,
                        **kwargs: Unpack[ModelSigningCheckArgs]) -> ModelCheck:
    """Validate ``statement`` and check the model at ``root`` against it."""
    return expectations_from_model_signing(statement).check(root, **kwargs)
