"""Compare a model's files with what the verified attestations sign.

Two ways to get the digests: from bytes already in memory (verify-then-load), or by
streaming the files with ``attest.digests.hash_model`` (``mgattest verify``, bounded
memory for multi-GB models). Either way the subjects decide which digests are needed:
``sha256`` always (allow/deny lists, exceptions, audit), plus any other algorithm or
``<alg>-shard-merkle`` root a subject uses.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterable

from mgattest.attest import FileCheck, ModelCheck, VerifiedAttestation
from mgattest.inspect import INFO, FileReport, Finding
from mgattest.policy._evaluate import subject_digests

if TYPE_CHECKING:
    from mgattest.attest import DigestSpec

SHARD_SUFFIX = "-shard-merkle"

Expectation = tuple[dict[str, str], Any]  # (signed digest set, subject annotations)


def expectations(attestations: Iterable[VerifiedAttestation]
                 ) -> tuple[dict[str, list[Expectation]], list[Expectation]]:
    """Signed digests by subject name, and all of them (for single-file models)."""
    by_name: dict[str, list[Expectation]] = {}
    anywhere: list[Expectation] = []
    for att in attestations:
        annotations: dict[str | None, Any] = {
            s.get("name"): s.get("annotations") for s in att.subjects if isinstance(s, dict)}
        for name, digest in subject_digests(att):
            entry = (digest, annotations.get(name))
            anywhere.append(entry)
            if isinstance(name, str):
                by_name.setdefault(name, []).append(entry)
    return by_name, anywhere


def digest_plan(expected: Iterable[Expectation], supported: Iterable[str]
                ) -> set[tuple[str, int | None]]:
    """The (algorithm, shard size) passes needed: whole-file sha256 plus what subjects use."""
    algorithms = set(supported)
    plan: set[tuple[str, int | None]] = {("sha256", None)}
    for digest, notes in expected:
        for key in digest:
            if key.endswith(SHARD_SUFFIX):
                size = notes.get("shardSize") if isinstance(notes, dict) else None
                alg = key[: -len(SHARD_SUFFIX)]
                if alg in algorithms and isinstance(size, int) and not isinstance(size, bool) \
                        and size > 0:
                    plan.add((alg, size))
            elif key in algorithms:
                plan.add((key, None))
    return plan


def build_model_check(root: str, single_file: bool, digests: dict[str, dict[str, str]],
                      shards: Callable[[str, str], list[str] | None],
                      by_name: dict[str, list[Expectation]]) -> ModelCheck:
    """File checks from computed digests. *shards(name, key)* returns the file's shard
    digests (hex) for a ``-shard-merkle`` key, for naming the first differing shard."""
    checks = []
    for name in sorted(digests):
        got = digests[name]
        if not single_file and name in by_name and not any(
                agrees(d, got) for d, _ in by_name[name]):
            checks.append(FileCheck(name, "mismatch", got,
                                    _mismatch_detail(name, by_name[name], shards)))
        else:
            checks.append(FileCheck(name, "ok", got))
    if not single_file:
        for name in sorted(set(by_name) - set(digests)):
            checks.append(FileCheck(name, "missing", None, "named by a statement subject"))
    return ModelCheck(root, checks)


def agrees(signed: dict[str, str], actual: dict[str, str]) -> bool:
    """Every digest both sides have is equal, and they share at least one."""
    shared = [k for k in signed if k in actual]
    return bool(shared) and all(signed[k].lower() == actual[k].lower() for k in shared)


def _mismatch_detail(name: str, expected: list[Expectation],
                     shards: Callable[[str, str], list[str] | None]) -> str:
    for digest, notes in expected:
        for key in digest:
            if not key.endswith(SHARD_SUFFIX) or not isinstance(notes, dict):
                continue
            signed = notes.get("shardDigests") or []
            size = notes.get("shardSize")
            got = shards(name, key)
            if got is None or not isinstance(size, int):
                continue
            for i in range(max(len(signed), len(got))):
                if i >= len(signed) or i >= len(got) or got[i] != str(signed[i]).lower():
                    return f"shard {i}, bytes {i * size}-{(i + 1) * size - 1} differ"
    keys = sorted({k for d, _ in expected for k in d})
    return f"{', '.join(keys)} differ from the signed subject"


def stream_model_check(model: str | os.PathLike[str], attestations: list[VerifiedAttestation],
                       *, exclude: Iterable[str | os.PathLike[str]] = ()
                       ) -> tuple[ModelCheck, bool]:
    """Hash the model from disk (parallel, bounded memory) and build its ModelCheck.

    Returns the check and whether the model is a single file.
    """
    from mgattest.attest import hash_model, supported_algorithms  # noqa: PLC0415 - hashing backends load only when a model is hashed

    by_name, anywhere = expectations(attestations)
    digests: dict[str, dict[str, str]] = {}
    shard_lists: dict[tuple[str, str], list[str]] = {}
    single = False
    root = os.fspath(model)
    for alg, size in sorted(digest_plan(anywhere, supported_algorithms()),
                            key=lambda p: (p[0], p[1] or 0)):
        md = hash_model(model, algorithm=alg, shard_size=size, exclude=list(exclude))
        single, root = md.single_file, md.root
        for f in md.files:
            digests.setdefault(f.name, {}).update(f.digest)
            if f.shards is not None:
                shard_lists[(f.name, alg + SHARD_SUFFIX)] = [s.lower() for s in f.shards]
    check = build_model_check(root, single, digests,
                              lambda n, k: shard_lists.get((n, k)), by_name)
    return check, single


def stream_scan(model: str | os.PathLike[str], check: ModelCheck,
                single: bool) -> dict[str, FileReport]:
    """Content reports keyed by the model-relative names of *check*."""
    from mgattest.inspect import scan_path  # noqa: PLC0415 - every format checker (~0.15 s) loads only when content is inspected

    reports = scan_path(model)
    if single:
        names = [f.name for f in check.files if f.status != "missing"]
        return {names[0]: reports[0]} if names and reports else {}
    base = os.path.abspath(os.fspath(model))
    out = {}
    for report in reports:
        rel = os.path.relpath(os.path.abspath(report.path), base).replace(os.sep, "/")
        out[rel] = report
    return out


def digest_model_check(target: DigestSpec, attestations: list[VerifiedAttestation]
                       ) -> tuple[ModelCheck, dict[str, FileReport]]:
    """The check and content of a target given as a digest (``DigestSpec``), not bytes.

    The one "file" is named after the subject that signs that digest (or the digest
    itself when none does, then a mismatch); its content is "not inspected" — there are
    no bytes to scan, so only ``content.unknown: deny`` (or a format rule) can object.
    """

    alg, hex_digest = target.algorithm, target.hex_digest
    display = f"{alg}:{hex_digest}"
    signed_as = [name for att in attestations for name, digest in signed_digests(att)
                 if digest.get(alg, "").lower() == hex_digest]
    if signed_as:
        name = next((n for n in signed_as if isinstance(n, str) and n), display)
        check = FileCheck(name, "ok", {alg: hex_digest})
    else:
        name = display
        check = FileCheck(name, "mismatch", {alg: hex_digest},
                          "no verified attestation signs this digest")
    report = FileReport(name, "unknown", 0, [Finding(
        INFO, "unrecognised", "given as a digest: no bytes to inspect")], [])
    return ModelCheck(display, [check]), {name: report}


def signed_digests(att: VerifiedAttestation) -> list[tuple[Any, dict[str, str]]]:
    """Subject digests, plus the messageDigest of a message-signature bundle."""
    pairs = list(subject_digests(att))
    if att.message_digest:
        pairs.append((None, dict(att.message_digest)))
    return pairs
