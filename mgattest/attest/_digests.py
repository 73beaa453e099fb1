"""Model digests: hash every file of a model in parallel, and check a model against subjects.

Two modes:

* **files** (``shard_size=None``): one digest per file, equal to ``sha256sum`` (or
  ``sha512sum``, ``b2sum``, ``b3sum``). Files are hashed concurrently.
* **shards** (``shard_size=N``): every file is cut into ``N``-byte shards (the last one
  shorter; an empty file has none), all shards of all files are hashed concurrently, and
  each file's shard digests form an RFC 6962-style Merkle tree::

      leaf(d)    = H(0x00 || d)          d = H(shard bytes)
      node(l, r) = H(0x01 || l || r)     split at the largest power of two < n
      root([])   = H("")

  The subject's digest key is ``"<alg>-shard-merkle"`` (never ``"sha256"``: it is not
  a whole-file SHA-256), and its ``annotations`` carry ``shardSize`` (an integer) and
  ``shardDigests`` (hex, in order), so a failed check names the shard and byte range.

Reading uses one reused buffer per worker thread (``preadv`` into it), so memory stays
bounded whatever the file sizes; nothing is memory-mapped (a file truncated while mapped
would kill the process with SIGBUS instead of raising :class:`ModelChangedError`). Small
files are hashed in per-directory batches, few-KiB files on one worker (see ``_tasks``).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from mgattest._jsonutil import JSONValue
from mgattest.attest._options import CheckOptions
from mgattest.attest.errors import (
    DigestError,
    InvalidSubjectError,
    ModelChangedError,
    SubjectMismatchError,
)
from mgattest.attest._hfcache import check_cache_blobs
from mgattest.attest._results import FileCheck, ModelCheck
from mgattest.attest._statement import ResourceDescriptor
from mgattest.attest._walk import (
    DEFAULT_IGNORES,
    IgnoreRules,
    ModelFile,
    WalkResult,
    compile_glob,
    glob_escape,
    name_problem,
    open_model_dir,
    open_model_file,
    walk_model,
    walk_model_detailed,
)
from mgattest.tlog import merkle

__all__ = [
    "ALGORITHMS", "DEFAULT_IGNORES", "DigestSpec", "FileDigest", "ModelDigests", "ModelFile",
    "check_model", "check_shard", "compile_glob", "digest_target", "glob_escape",
    "hash_bytes_digest", "hash_model", "looks_like_digest", "raise_for_model_check",
    "shard_digest_key", "shard_ranges", "shard_tree_root", "supported_algorithms",
    "walk_model", "walk_model_detailed",
]

BUFFER_SIZE = 256 << 10  # per worker: syscalls stay negligible and the buffer stays in L2
MAX_SHARDS_PER_FILE = 100_000  # keeps statements (and their parsing) bounded
SHARD_KEY_SUFFIX = "-shard-merkle"
_PROGRESS_EVERY = 32 << 20
# How files are grouped into tasks (see _tasks): whole files up to SMALL_FILE bytes in
# batches of one directory's files (at most BATCH_FILES files or BATCH_BYTES bytes), files
# up to TINY_FILE bytes all in one task.
SMALL_FILE = 1 << 20
TINY_FILE = 32 << 10
BATCH_FILES = 64
BATCH_BYTES = 8 << 20


# --------------------------------------------------------------------------- algorithms

class _Hasher(Protocol):
    """What hashing needs of a hash object (hashlib's and blake3's)."""

    def update(self, data: bytes | memoryview, /) -> object: ...

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


def _blake3_factory() -> Callable[[], _Hasher] | None:
    try:
        import blake3  # noqa: PLC0415 - optional dependency, probed once at import
    except ImportError:
        return None
    return lambda: blake3.blake3(max_threads=1)


_FACTORIES: dict[str, Callable[[], _Hasher]] = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "blake2b": hashlib.blake2b,  # 64-byte digest, as b2sum and model_signing
}
_B3 = _blake3_factory()
if _B3 is not None:
    _FACTORIES["blake3"] = _B3

ALGORITHMS: tuple[str, ...] = tuple(_FACTORIES)
_DIGEST_SIZES = {"sha256": 32, "sha512": 64, "blake2b": 64, "blake3": 32}
# Preference when a subject offers several digests: shard trees name the bad shard.
_PREFERENCE = [a + SHARD_KEY_SUFFIX for a in ("sha256", "sha512", "blake2b", "blake3")] + [
    "sha256", "sha512", "blake2b", "blake3"]


# The digest keys this installation can compute, in order of preference.
_COMPUTABLE = [k for k in _PREFERENCE if k.removesuffix(SHARD_KEY_SUFFIX) in _FACTORIES]


def supported_algorithms() -> tuple[str, ...]:
    """The hash algorithms this installation can compute (blake3 only if installed)."""
    return ALGORITHMS


def _check_algorithm(algorithm: object) -> str:
    if algorithm == "blake3" and "blake3" not in _FACTORIES:
        raise DigestError("blake3 is not installed (pip install 'mgattest[blake3]')",
                          what="algorithm", where="blake3")
    if not isinstance(algorithm, str) or algorithm not in _FACTORIES:
        raise DigestError(f"unsupported digest algorithm {algorithm!r} "
                          f"(supported: {', '.join(ALGORITHMS)})", what="algorithm",
                          where=str(algorithm))
    return algorithm


def _check_shard_size(shard_size: object) -> int | None:
    if shard_size is None:
        return None
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size <= 0:
        raise DigestError(f"shard size must be a positive integer number of bytes, got "
                          f"{shard_size!r}", what="shard size", where=repr(shard_size))
    return shard_size


def shard_digest_key(algorithm: str) -> str:
    """The digest-set key of a shard-Merkle root, e.g. ``"sha256-shard-merkle"``."""
    return algorithm + SHARD_KEY_SUFFIX


def shard_ranges(size: int, shard_size: int) -> list[tuple[int, int]]:
    """``(start, end)`` byte ranges (end exclusive) of a ``size``-byte file's shards."""
    return [(s, min(s + shard_size, size)) for s in range(0, size, shard_size)]


def _shard_count(size: int, shard_size: int) -> int:
    return -(-size // shard_size)


def shard_tree_root(shard_digests: Sequence[bytes], algorithm: str = "sha256") -> bytes:
    """RFC 6962-style Merkle root over raw shard digests with hash ``algorithm``.

    The tree is the transparency log's (:mod:`mgattest.tlog.merkle`) over ``algorithm``.
    """
    new = _FACTORIES[_check_algorithm(algorithm)]
    hasher = merkle.SHA256 if new is hashlib.sha256 else merkle.tree_hasher(new)
    return merkle.root_hash([hasher.leaf(d) for d in shard_digests], hasher)


# --------------------------------------------------------------------------- data

@dataclass(frozen=True)
class FileDigest:
    """The digest of one model file; ``shards`` (hex, in order) only in shard mode."""

    name: str
    size: int
    digest: dict[str, str]
    shards: list[str] | None = None

    def subject(self, shard_size: int | None) -> ResourceDescriptor:
        """This file as an in-toto ResourceDescriptor."""
        rd: ResourceDescriptor = {"name": self.name, "digest": dict(self.digest)}
        if self.shards is not None:
            rd["annotations"] = {"shardSize": shard_size, "shardDigests": list(self.shards)}
        return rd


@dataclass(frozen=True)
class ModelDigests:
    """Every file of a model with its digest, and the parameters that produced them."""

    root: str
    algorithm: str
    shard_size: int | None
    ignore: tuple[str, ...]
    files: list[FileDigest]
    ignored: tuple[str, ...] = ()  # entries the walk skipped (default or user ignores)
    single_file: bool = False
    allow_symlinks: bool = False
    excluded: tuple[str, ...] = field(default=())  # excluded names inside the root
    model_name: str = ""  # last component of the model path as given

    def subjects(self) -> list[ResourceDescriptor]:
        """In-toto ResourceDescriptors, one per file, sorted by name."""
        return [f.subject(self.shard_size) for f in sorted(self.files, key=lambda f: f.name)]

    @property
    def total_size(self) -> int:
        """Bytes hashed."""
        return sum(f.size for f in self.files)


class DigestSpec(NamedTuple):
    """A digest given in place of a path: ``sha256:HEX``."""

    algorithm: str
    hex_digest: str

    @property
    def digest_set(self) -> dict[str, str]:
        """As an in-toto digest set."""
        return {self.algorithm: self.hex_digest}


_DIGEST_SPEC = re.compile(r"(?P<alg>[a-z0-9]+):(?P<hex>[0-9a-fA-F]+)")


def hash_bytes_digest(text: str) -> DigestSpec:
    """Parse ``"sha256:HEX"`` / ``"sha512:HEX"`` (also blake2b, blake3) into a DigestSpec."""
    m = _DIGEST_SPEC.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise DigestError(f"{text!r} is not a digest of the form ALGORITHM:HEX",
                          what="digest", where=str(text))
    alg = m.group("alg")
    if alg not in _DIGEST_SIZES:
        raise DigestError(f"unsupported digest algorithm {alg!r} in {text!r}", what="digest",
                          where=text)
    hex_digest = m.group("hex").lower()
    if len(hex_digest) != 2 * _DIGEST_SIZES[alg]:
        raise DigestError(f"{alg} digest must have {2 * _DIGEST_SIZES[alg]} hex characters, "
                          f"got {len(hex_digest)}", what="digest", where=text)
    return DigestSpec(alg, hex_digest)


# Digests a verify target may be given as (what bundles' subjects and messageDigests use).
_TARGET_PREFIX = re.compile(r"(sha256|sha384|sha512):", re.IGNORECASE)
_TARGET_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


def digest_target(text: str) -> DigestSpec | None:
    """``sha256:HEX`` / ``sha384:HEX`` / ``sha512:HEX`` given where a path may be.

    None when ``text`` is a path. Text that starts like a digest but is not a
    well-formed one is a usage error naming what is wrong — unless a file of that
    name exists, which is then the target.
    """
    if not isinstance(text, str) or not _TARGET_PREFIX.match(text):
        return None
    alg, _, hex_part = text.partition(":")
    alg = alg.lower()
    problem = None
    if not re.fullmatch(r"[0-9a-fA-F]*", hex_part):
        problem = "has characters that are not hex digits"
    elif len(hex_part) != 2 * _TARGET_SIZES[alg]:
        problem = (f"has {len(hex_part)} hex digits; a {alg} digest has "
                   f"{2 * _TARGET_SIZES[alg]}")
    if problem is None:
        return DigestSpec(alg, hex_part.lower())
    if os.path.lexists(text):
        return None
    raise DigestError(f"malformed digest {text[:80]!r}: {problem} (give ALGORITHM:HEX, "
                      "e.g. sha256:<64 hex digits>, or a path that exists)",
                      what="usage", where=text[:80])


def looks_like_digest(text: str) -> bool:
    """Whether ``text`` has the ``ALGORITHM:HEX`` shape (for CLIs taking a path or digest)."""
    return isinstance(text, str) and _DIGEST_SPEC.fullmatch(text.strip()) is not None


# --------------------------------------------------------------------------- engine

@dataclass(frozen=True)
class _Plan:
    file: ModelFile
    algorithm: str
    shard_size: int | None


class _Job(NamedTuple):
    """One byte range to hash: a whole file (``shard == -1``) or one shard of it."""

    plan: int  # index into the plans
    shard: int
    start: int
    end: int  # exclusive
    whole: bool  # the range ends at the end of the file: check that it did not grow


class _Progress:
    def __init__(self, callback: Callable[[int], Any] | None) -> None:
        self.callback = callback
        self.done = 0
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        if self.callback is None or n == 0:
            return
        with self.lock:
            self.done += n
            self.callback(self.done)


_local = threading.local()


def _buffer() -> memoryview:
    # An anonymous mapping, not a bytearray: reading page-cached files into a
    # malloc'd buffer cost ~4x the kernel time here (sys 0.85 s vs 0.2 s per 2 GiB,
    # measured with two threads), which capped hashing at ~60 % of the SHA-256 limit.
    mv = getattr(_local, "buffer", None)
    if mv is None or len(mv) != BUFFER_SIZE:
        mv = memoryview(mmap.mmap(-1, BUFFER_SIZE))
        _local.buffer = mv
    return mv


def _hash_open(fd: int, plan: _Plan, job: _Job, buf: memoryview, progress: _Progress) -> bytes:
    """Hash ``job``'s range of the open file ``fd`` (read through ``buf``), proving the
    file did not change meanwhile."""
    mf, start, end = plan.file, job.start, job.end
    if end - start > BUFFER_SIZE and hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_SEQUENTIAL)
    h = _FACTORIES[plan.algorithm]()
    pos, pending, end_checked = start, 0, False
    while pos < end:
        left = end - pos
        # The last read of a whole file asks for one byte more (one syscall, not two,
        # per small file): receiving it means the file grew.
        want = left + 1 if job.whole and left < BUFFER_SIZE else min(BUFFER_SIZE, left)
        n = os.preadv(fd, [buf[:want]], pos)
        if n == 0:
            raise ModelChangedError(f"model file {mf.name!r} shrank while being hashed "
                                    f"(no data at byte {pos})", what="file", where=mf.name)
        if n > left:
            raise ModelChangedError(f"model file {mf.name!r} grew while being hashed",
                                    what="file", where=mf.name)
        end_checked = want > left
        h.update(buf[:n])
        pos += n
        pending += n
        if pending >= _PROGRESS_EVERY:
            progress.add(pending)
            pending = 0
    if job.whole and not end_checked and os.pread(fd, 1, end):
        raise ModelChangedError(f"model file {mf.name!r} grew while being hashed",
                                what="file", where=mf.name)
    st = os.fstat(fd)
    if st.st_size != mf.size or st.st_mtime_ns != mf.mtime_ns:
        raise ModelChangedError(f"model file {mf.name!r} changed while being hashed",
                                what="file", where=mf.name)
    progress.add(pending)
    return h.digest()


def _hash_task(real_root: str, single_file: bool, plans: Sequence[_Plan],
               task: Sequence[_Job], progress: _Progress) -> list[bytes]:
    """Hash the jobs of one task in order; results in the same order.

    A task of several files (small files, grouped by directory) opens each directory
    once (:func:`open_model_dir`) and the files from it: every file still gets its own
    ``O_NOFOLLOW`` open and identity proof, only the path walk is shared.
    """
    shared = not single_file and len(task) > 1
    buf = _buffer()
    dir_fd, dir_name = -1, ""
    try:
        digests = []
        for job in task:
            plan = plans[job.plan]
            if shared:
                parent = os.path.dirname(plan.file.path)
                if dir_fd < 0 or parent != dir_name:
                    if dir_fd >= 0:
                        os.close(dir_fd)
                        dir_fd = -1
                    dir_fd, dir_name = open_model_dir(real_root, plan.file), parent
            fd = open_model_file(real_root, plan.file, single_file=single_file,
                                 dir_fd=dir_fd if shared else None)
            try:
                digests.append(_hash_open(fd, plan, job, buf, progress))
            finally:
                os.close(fd)
        return digests
    finally:
        if dir_fd >= 0:
            os.close(dir_fd)


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _check_workers(workers: object) -> int:
    if workers is None:
        return _default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers <= 0:
        raise DigestError(f"workers must be a positive integer, got {workers!r}",
                          what="workers", where=repr(workers))
    return workers


def _jobs(plans: Sequence[_Plan]) -> list[_Job]:
    jobs: list[_Job] = []
    for i, plan in enumerate(plans):
        size = plan.file.size
        if plan.shard_size is None:
            jobs.append(_Job(i, -1, 0, size, True))
            continue
        count = _shard_count(size, plan.shard_size)
        if count > MAX_SHARDS_PER_FILE:
            raise DigestError(
                f"file {plan.file.name!r} would have {count} shards of {plan.shard_size} "
                f"bytes (limit {MAX_SHARDS_PER_FILE}); choose a larger shard size",
                what="shard size", where=plan.file.name)
        if count == 0:
            jobs.append(_Job(i, -1, 0, 0, True))  # still open it: proves it is a regular file
        for k, (s, e) in enumerate(shard_ranges(size, plan.shard_size)):
            jobs.append(_Job(i, k, s, e, e == size))
    return jobs


def _tasks(plans: Sequence[_Plan], jobs: list[_Job], single_file: bool) -> list[list[_Job]]:
    """Group jobs into tasks for the workers.

    * ranges over ``SMALL_FILE`` bytes (and every shard): one task each, biggest first,
      so every worker stays busy until the end;
    * whole files up to ``SMALL_FILE``: batches of one directory's files, so the
      per-task cost (a future, a thread hand-off, the directory's path walk; ~30 µs)
      is paid per batch, not per file;
    * files up to ``TINY_FILE``: one task, hashed by one worker. Their cost is Python
      and syscalls, which hold or hand over the GIL at every step: two threads on them
      were slower than one (10,000 files of 2-6 KiB: 0.26 s vs 0.21 s).
    """
    big: list[list[_Job]] = []
    small: dict[str, list[_Job]] = {}
    tiny: list[_Job] = []
    for job in jobs:
        if single_file or job.shard >= 0 or job.end > SMALL_FILE:
            big.append([job])
        elif job.end <= TINY_FILE:
            tiny.append(job)
        else:
            small.setdefault(os.path.dirname(plans[job.plan].file.path), []).append(job)
    big.sort(key=lambda t: t[0].start - t[0].end)
    tasks = big
    for group in small.values():
        batch: list[_Job] = []
        size = 0
        for job in group:
            if batch and (len(batch) >= BATCH_FILES or size + job.end > BATCH_BYTES):
                tasks.append(batch)
                batch, size = [], 0
            batch.append(job)
            size += job.end
        tasks.append(batch)
    if tiny:
        # by directory, so consecutive files share the directory descriptor
        tiny.sort(key=lambda j: os.path.split(plans[j.plan].file.path))
        tasks.append(tiny)
    return tasks


def _run(real_root: str, single_file: bool, plans: Sequence[_Plan], workers: int,
         progress: Callable[[int], Any] | None) -> list[FileDigest]:
    """Hash every plan (whole file or shards) concurrently; results in plan order."""
    tracker = _Progress(progress)
    tasks = _tasks(plans, _jobs(plans), single_file)
    whole: dict[int, bytes] = {}
    shards: dict[int, dict[int, bytes]] = {}
    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            _store(task, _hash_task(real_root, single_file, plans, task, tracker), whole, shards)
    else:
        ex = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mgattest-hash")
        try:
            futures: dict[Future[list[bytes]], list[_Job]] = {
                ex.submit(_hash_task, real_root, single_file, plans, task, tracker): task
                for task in tasks}
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for fut in done:
                exc = fut.exception()
                if exc is not None:
                    raise exc
            for fut, task in futures.items():
                _store(task, fut.result(), whole, shards)
        finally:
            # On failure or Ctrl-C, drop queued jobs; running ones end with their range.
            ex.shutdown(wait=True, cancel_futures=True)
    out: list[FileDigest] = []
    for i, plan in enumerate(plans):
        mf = plan.file
        if plan.shard_size is None:
            out.append(FileDigest(mf.name, mf.size, {plan.algorithm: whole[i].hex()}))
            continue
        got = shards.get(i, {})
        ordered = [got[k] for k in range(len(got))]
        root = shard_tree_root(ordered, plan.algorithm)
        out.append(FileDigest(mf.name, mf.size, {shard_digest_key(plan.algorithm): root.hex()},
                              [d.hex() for d in ordered]))
    return out


def _store(task: Sequence[_Job], digests: Sequence[bytes], whole: dict[int, bytes],
           shards: dict[int, dict[int, bytes]]) -> None:
    for job, digest in zip(task, digests, strict=True):
        if job.shard < 0:
            whole[job.plan] = digest
        else:
            shards.setdefault(job.plan, {})[job.shard] = digest


def _normalise_patterns(ignore: Iterable[str]) -> tuple[str, ...]:
    if isinstance(ignore, str):
        ignore = (ignore,)
    patterns = tuple(ignore)
    for p in patterns:
        compile_glob(p)  # validate early, with a clear error
    return patterns


def hash_model(root: str | os.PathLike[str], *, algorithm: str = "sha256",
               shard_size: int | None = None, ignore: Iterable[str] = (),
               exclude: Iterable[str | os.PathLike[str]] = (), allow_symlinks: bool = False,
               workers: int | None = None,
               progress: Callable[[int], object] | None = None) -> ModelDigests:
    """Hash every file of the model at ``root``.

    ``ignore`` are anchored globs (recorded in the result; the caller records them in
    the statement), applied on top of the default git ignores; ``exclude`` concrete paths
    (the bundle file). ``progress(bytes_done)`` receives the cumulative byte count; it may
    be called from worker threads, one call at a time.
    """
    algorithm = _check_algorithm(algorithm)
    shard_size = _check_shard_size(shard_size)
    n_workers = _check_workers(workers)
    patterns = _normalise_patterns(ignore)
    walk = walk_model_detailed(root, ignore=patterns, exclude=exclude,
                               allow_symlinks=allow_symlinks)
    plans = [_Plan(f, algorithm, shard_size) for f in walk.files]
    files = _run(walk.root, walk.single_file, plans, n_workers, progress)
    check_cache_blobs(walk, _sha256_by_name(files))
    followed_links = allow_symlinks or walk.hf_snapshot is not None  # snapshots: always
    return ModelDigests(walk.root, algorithm, shard_size, patterns, files, tuple(walk.ignored),
                        walk.single_file, followed_links, tuple(walk.excluded),
                        walk.name)


# --------------------------------------------------------------------------- checking

@dataclass(frozen=True)
class _Expectation:
    name: str
    key: str
    algorithm: str
    hex_digest: str
    shard_size: int | None = None
    shards: tuple[str, ...] | None = None


_HEX = re.compile(r"[0-9a-fA-F]+")


def _bad_subject(name: str, why: str) -> InvalidSubjectError:
    return InvalidSubjectError(f"subject {name!r} {why}", what="subject", where=name)


def _parse_hex(name: str, label: str, value: object, size: int) -> str:
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) != 2 * size:
        raise _bad_subject(name, f"has a malformed {label} digest (expected {2 * size} hex "
                                 "characters)")
    return value.lower()


def _parse_subject(sub: object, index: int, forced: str | None) -> _Expectation:
    if not isinstance(sub, Mapping):
        raise InvalidSubjectError(f"subject #{index} is not an object", what="subject",
                                  where=f"subject #{index}")
    name = sub.get("name")
    problem = name_problem(name)
    if problem is not None:
        shown = name if isinstance(name, str) else f"#{index}"
        raise _bad_subject(shown, f"has an unsafe name: it {problem}")
    assert isinstance(name, str)
    digest = sub.get("digest")
    if not isinstance(digest, Mapping) or not digest:
        raise _bad_subject(name, "has no digest")
    if forced is not None:
        usable = [forced] if forced in digest and forced in _COMPUTABLE else []
    else:
        usable = [k for k in _COMPUTABLE if k in digest]
    if not usable:
        raise _bad_subject(name, f"has no digest this verifier can compute (has: "
                                 f"{', '.join(sorted(map(str, digest)))}; supported: "
                                 f"{', '.join(ALGORITHMS)} and their {SHARD_KEY_SUFFIX} forms)")
    key = usable[0]
    alg = key.removesuffix(SHARD_KEY_SUFFIX)
    value = _parse_hex(name, key, digest[key], _DIGEST_SIZES[alg])
    if key == alg:
        return _Expectation(name, key, alg, value)
    ann = sub.get("annotations")
    if not isinstance(ann, Mapping):
        raise _bad_subject(name, f"has a {key} digest but no shard annotations")
    size = ann.get("shardSize")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise _bad_subject(name, "has a shardSize annotation that is not a positive integer")
    raw_shards = ann.get("shardDigests")
    if not isinstance(raw_shards, list) or len(raw_shards) > MAX_SHARDS_PER_FILE:
        raise _bad_subject(name, "has a shardDigests annotation that is not a bounded list")
    shards = tuple(_parse_hex(name, f"shard {i}", d, _DIGEST_SIZES[alg])
                   for i, d in enumerate(raw_shards))
    root = shard_tree_root([bytes.fromhex(s) for s in shards], alg).hex()
    if root != value:
        raise _bad_subject(name, f"has shard digests whose Merkle root is not its {key} "
                                 "digest (forged or corrupted statement)")
    return _Expectation(name, key, alg, value, size, shards)


def _parse_subjects(subjects: object, forced: str | None) -> list[_Expectation]:
    if isinstance(subjects, (str, bytes, Mapping)) or not isinstance(subjects, Sequence):
        raise InvalidSubjectError("subjects must be a list of resource descriptors",
                                  what="subject", where="subject")
    if not subjects:
        raise InvalidSubjectError("the statement has no subjects: it covers nothing",
                                  what="subject", where="subject")
    out: list[_Expectation] = []
    seen: set[str] = set()
    for i, sub in enumerate(subjects):
        exp = _parse_subject(sub, i, forced)
        if exp.name in seen:
            raise _bad_subject(exp.name, "appears more than once")
        seen.add(exp.name)
        out.append(exp)
    return out


def _compare(exp: _Expectation, got: FileDigest) -> str | None:
    """``None`` when ``got`` matches ``exp``, else a detail naming what differs."""
    actual = got.digest.get(exp.key)
    if actual == exp.hex_digest:
        return None
    if exp.shards is None or got.shards is None or exp.shard_size is None:
        return f"{exp.key} differs: expected {exp.hex_digest}, got {actual}"
    bad = [i for i in range(max(len(exp.shards), len(got.shards)))
           if i >= len(exp.shards) or i >= len(got.shards) or exp.shards[i] != got.shards[i]]
    first = bad[0]
    start = first * exp.shard_size
    end = min(start + exp.shard_size, got.size) - 1
    where = f"shard {first}, bytes {start}-{end}" if end >= start else \
        f"shard {first}, bytes {start}- (missing: file is {got.size} bytes)"
    detail = f"{where}; {len(bad)} of {len(exp.shards)} signed shards differ"
    if len(exp.shards) != len(got.shards):
        detail += f" (file has {len(got.shards)} shards of {exp.shard_size} bytes, statement " \
                  f"{len(exp.shards)}: size changed)"
    return detail


def _size_detail(exp: _Expectation, size: int) -> str:
    assert exp.shards is not None and exp.shard_size is not None
    covered = len(exp.shards) * exp.shard_size
    return (f"shard {len(exp.shards)}, bytes {covered}-{size - 1}; size changed: the file is "
            f"{size} bytes, its {len(exp.shards)} signed shards of {exp.shard_size} bytes "
            f"cover at most {covered}")


def check_model(root: str | os.PathLike[str], subjects: Sequence[Mapping[str, JSONValue]],
                options: CheckOptions | None = None) -> ModelCheck:
    """Re-hash the model at ``root`` and compare every file with ``subjects``.

    Subjects are validated first (names relative, normalised, no ``..``, backslash or
    NUL, no duplicates; digests well formed; shard annotations consistent with their
    Merkle root), before the filesystem is touched; a bad list raises
    :class:`InvalidSubjectError`. The digest algorithm is chosen per subject (shard trees
    first, then sha256, sha512, blake2b, blake3) unless ``algorithm`` forces a key.
    :class:`~mgattest.attest._options.CheckOptions` says how files are compared.

    Statuses: ``ok``, ``mismatch`` (detail names the shard and byte range in shard
    mode), ``missing`` (subject without file), ``extra`` (file without subject; ``ignored``
    with ``allow_unsigned_files``), ``ignored`` (matched an ignore pattern). For a
    single-file model, a subject matches by digest whatever its name, as in-toto says.
    ``allow_unsigned_empty_files`` turns extra *empty* files into ``ignored`` (for formats
    that cannot represent them).
    """
    options = options or CheckOptions()
    algorithm, ignore, exclude = options.algorithm, options.ignore, options.exclude
    allow_symlinks, workers, progress = options.allow_symlinks, options.workers, options.progress
    allow_unsigned_files = options.allow_unsigned_files
    single_file_match_by_digest = options.single_file_match_by_digest
    allow_unsigned_empty_files = options.allow_unsigned_empty_files
    expectations = _parse_subjects(subjects, algorithm)
    n_workers = _check_workers(workers)
    rules = IgnoreRules(_normalise_patterns(ignore))
    walk = walk_model_detailed(root, ignore=rules, exclude=exclude, allow_symlinks=allow_symlinks)

    if walk.single_file and single_file_match_by_digest:
        return _check_single_file(walk, expectations, n_workers, progress)

    by_name = {e.name: e for e in expectations}
    checks: list[FileCheck] = []
    plans: list[_Plan] = []
    for mf in walk.files:
        exp = by_name.get(mf.name)
        if exp is None:
            if allow_unsigned_files:
                checks.append(FileCheck(mf.name, "ignored", None, "not covered by the statement "
                                        "(unsigned files allowed)"))
            elif allow_unsigned_empty_files and mf.size == 0:
                checks.append(FileCheck(mf.name, "ignored", None, "empty file not covered by "
                                        "the statement (its format cannot represent it)"))
            else:
                checks.append(FileCheck(mf.name, "extra", None, "file is not covered by the "
                                        "statement"))
            continue
        if _too_many_shards(exp, mf.size):
            # Far larger than what was signed: no need (and no bound) to hash it.
            checks.append(FileCheck(mf.name, "mismatch", None, _size_detail(exp, mf.size)))
            continue
        plans.append(_Plan(mf, exp.algorithm, exp.shard_size))
    present = {mf.name for mf in walk.files}
    for name in walk.ignored:
        checks.append(FileCheck(name, "ignored", None, "matches an ignore pattern"))
    present.update(walk.ignored)
    for exp in expectations:
        if exp.name in present:
            continue
        hit = rules.covers(exp.name)
        if hit is not None:
            checks.append(FileCheck(exp.name, "ignored", None, f"ignored by pattern {hit!r}"))
        else:
            checks.append(FileCheck(exp.name, "missing", None, "file named by the statement "
                                    "is missing"))
    hashed = _run(walk.root, walk.single_file, plans, n_workers, progress)
    check_cache_blobs(walk, _sha256_by_name(hashed))  # before subjects: the named cause
    for got in hashed:
        exp = by_name[got.name]
        detail = _compare(exp, got)
        checks.append(FileCheck(got.name, "ok" if detail is None else "mismatch",
                                dict(got.digest), detail))
    checks.sort(key=lambda c: c.name)
    return ModelCheck(walk.root, checks)


def _sha256_by_name(files: Iterable[FileDigest]) -> dict[str, str]:
    """Whole-file SHA-256 digests already computed, by file name."""
    return {f.name: f.digest["sha256"] for f in files if "sha256" in f.digest}


def _too_many_shards(exp: _Expectation, size: int) -> bool:
    return exp.shards is not None and exp.shard_size is not None and \
        _shard_count(size, exp.shard_size) > max(len(exp.shards), MAX_SHARDS_PER_FILE)


def _check_single_file(walk: WalkResult, expectations: list[_Expectation], workers: int,
                       progress: Callable[[int], Any] | None) -> ModelCheck:
    mf = walk.files[0]
    hashable = [e for e in expectations if not _too_many_shards(e, mf.size)]
    variants = sorted({(e.algorithm, e.shard_size) for e in hashable},
                      key=lambda v: (v[0], v[1] or 0))
    plans = [_Plan(mf, alg, size) for alg, size in variants]
    digests = _run(walk.root, True, plans, workers, progress)
    check_cache_blobs(walk, _sha256_by_name(digests))
    computed = dict(zip(variants, digests, strict=True))  # one digest per plan
    for exp in hashable:
        got = computed[(exp.algorithm, exp.shard_size)]
        if _compare(exp, got) is None:
            return ModelCheck(walk.root, [FileCheck(mf.name, "ok", dict(got.digest),
                                                    f"matches subject {exp.name!r} by digest")])
    same_name = [e for e in expectations if e.name == mf.name]
    if same_name:
        exp = same_name[0]
        if _too_many_shards(exp, mf.size):
            return ModelCheck(walk.root, [FileCheck(mf.name, "mismatch", None,
                                                    _size_detail(exp, mf.size))])
        got = computed[(exp.algorithm, exp.shard_size)]
        return ModelCheck(walk.root, [FileCheck(mf.name, "mismatch", dict(got.digest),
                                                _compare(exp, got))])
    first = digests[0] if digests else None
    return ModelCheck(walk.root, [FileCheck(
        mf.name, "mismatch", dict(first.digest) if first else None,
        f"no subject digest matches this file ({len(expectations)} subjects checked)")])


def check_shard(subject: Mapping[str, JSONValue], index: int, data: bytes | memoryview) -> None:
    """Check the bytes of shard ``index`` of a shard-mode subject, on their own.

    The subject's shard list is first proven against its signed Merkle root, so one
    shard can be verified (e.g. while streaming) without reading the rest of the file.
    Raises :class:`SubjectMismatchError` naming the shard and its byte range.
    """
    exp = _parse_subject(subject, 0, None)
    if exp.shards is None or exp.shard_size is None:
        raise InvalidSubjectError(f"subject {exp.name!r} has no shard digests", what="subject",
                                  where=exp.name)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(exp.shards):
        raise DigestError(f"subject {exp.name!r} has no shard {index!r} (it has "
                          f"{len(exp.shards)})", what="shard", where=f"{exp.name}: shard {index}")
    h = _FACTORIES[exp.algorithm]()
    h.update(data)
    if h.hexdigest() != exp.shards[index]:
        start = index * exp.shard_size
        where = f"{exp.name}: shard {index}, bytes {start}-{start + len(data) - 1}"
        raise SubjectMismatchError(f"shard {index} of {exp.name!r} (bytes {start}-"
                                   f"{start + len(data) - 1}) does not match the statement",
                                   what="subject digest", where=where)


#: How a failing file status reads in a sentence ("'w.bin' differs from its subject").
_STATUS_PHRASES = {"mismatch": "differs from its subject", "missing": "is missing",
                   "extra": "is extra (no subject names it)"}


def raise_for_model_check(check: ModelCheck) -> None:
    """Raise :class:`SubjectMismatchError` naming the first failing file (and shard).

    Also raises when nothing at all was verified (every entry ignored): fail closed.
    """
    failures = [f for f in check.files if f.status not in ("ok", "ignored")]
    if not failures:
        if not any(f.status == "ok" for f in check.files):
            raise SubjectMismatchError(f"model at {check.root}: no file was verified (everything "
                                       "was ignored or absent)", what="subject digest",
                                       where=check.root, failures=[])
        return
    first = failures[0]
    where = first.name if not first.detail else f"{first.name}: {first.detail}"
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    state = _STATUS_PHRASES.get(first.status, f"is {first.status}")
    raise SubjectMismatchError(
        f"model at {check.root} does not match the statement: {first.name!r} {state}"
        + (f" ({first.detail})" if first.detail else "") + more,
        what="subject digest", where=where,
        failures=[{"name": f.name, "status": f.status, "detail": f.detail} for f in failures])
