"""A model's bytes, read once into private memory, and the checks made over those bytes.

``read_model_bytes`` walks a model (file or directory) without following symlinks and
hashes every file as it lands; ``model_check`` and ``scan_model`` judge exactly those
bytes, so what :mod:`mgattest.load` deserialises is what was verified. The verification
pipeline (:mod:`mgattest.policy._pipeline`) takes a :class:`ModelBytes` as one of its
sources; ``mgattest.load`` re-exports these names.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Protocol

from mgattest.errors import InputError

# attest and inspect load on first use: importing mgattest.loading must stay cheap.
if TYPE_CHECKING:
    from mgattest.attest import ModelCheck, VerifiedAttestation
    from mgattest.inspect import Admission
    from mgattest.inspect import FileReport

__all__ = ["MAX_MODEL_FILES", "FileBytes", "ModelBytes", "model_check", "read_model_bytes",
           "scan_model"]

FileBytes = bytes | bytearray | memoryview | mmap.mmap
"""The bytes of one file as read into memory (``read_model_bytes`` gives a private
anonymous ``mmap``, or an empty ``bytearray``); loaders also take plain ``bytes``."""

MAX_MODEL_FILES = 100_000


@dataclass(frozen=True)
class ModelBytes:
    """The bytes of every file of a model, read once, with their SHA-256 digests."""

    root: str
    single_file: bool
    # name → the file's bytes (name as in statement subjects): a private, writable
    # buffer (anonymous mmap) that loaders build zero-copy views into.
    files: dict[str, FileBytes]
    sha256: dict[str, str]  # name → hex
    identity: tuple[tuple[str, int, int, int, int], ...]  # (name, dev, ino, size, mtime_ns)
    # name → the content scan's restricted-unpickler admission walk over these bytes
    # (filled by scan_model; the loader re-checks it covers the bytes it loads).
    admissions: dict[str, Admission] = field(default_factory=dict, compare=False, repr=False)


def read_model_bytes(path: str | os.PathLike[str], *, ignore: Iterable[str] = (),
                     exclude: Iterable[str | os.PathLike[str]] = (),
                     allow_symlinks: bool = False) -> ModelBytes:
    """Read a model (file, directory or ``hf:`` reference) into memory without following
    symlinks (except a Hugging Face cache snapshot's links into its own ``blobs/``).

    Each file is opened with ``O_NOFOLLOW`` and checked to be the regular file the walk
    saw; its size must not change while it is read.
    """
    from mgattest.attest import (  # noqa: PLC0415 - attest loads on first use
        check_cache_blobs,
        open_model_file,
        resolve_model_path,
        walk_model_detailed,
    )

    path = resolve_model_path(path)

    walk = walk_model_detailed(path, ignore=list(ignore), exclude=list(exclude),
                               allow_symlinks=allow_symlinks)
    if len(walk.files) > MAX_MODEL_FILES:
        raise InputError(f"model has more than {MAX_MODEL_FILES} files", what="model",
                         where=str(path))
    files: dict[str, FileBytes] = {}
    digests: dict[str, str] = {}
    ident: list[tuple[str, int, int, int, int]] = []
    for mf in walk.files:
        fd = open_model_file(walk.root, mf, single_file=walk.single_file)
        with os.fdopen(fd, "rb", buffering=0) as fh:
            st = os.fstat(fh.fileno())
            data, digest = _read_and_hash(fh, st.st_size, mf.name)
            after = os.fstat(fh.fileno())
        if after.st_size != st.st_size or after.st_mtime_ns != st.st_mtime_ns:
            raise InputError(f"model file {mf.name!r} changed while it was read",
                             what="model file", where=mf.name)
        files[mf.name] = data
        digests[mf.name] = digest
        ident.append((mf.name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    check_cache_blobs(walk, digests, {name: memoryview(data) for name, data in files.items()})
    return ModelBytes(walk.root, walk.single_file, files, digests, tuple(ident))


_CHUNK = 1 << 20


def _read_and_hash(fh: io.RawIOBase, size: int, name: str) -> tuple[mmap.mmap | bytearray, str]:
    """Read exactly *size* bytes into a private buffer, hashing each chunk as it lands
    (while it is still in cache); the file must end where fstat said.

    The buffer is anonymous private memory (``mmap(-1, size)``): unlike a bytearray it
    is not zero-filled first, and unlike a file mapping no other process can change it.
    """
    buf: mmap.mmap | bytearray = mmap.mmap(-1, size) if size else bytearray()
    view = memoryview(buf)
    h = hashlib.sha256()
    pos = 0
    while pos < size:
        n = fh.readinto(view[pos:pos + _CHUNK])
        if not n:
            raise InputError(f"model file {name!r} shrank while it was read",
                             what="model file", where=name)
        h.update(view[pos:pos + n])
        pos += n
    if fh.read(1):
        raise InputError(f"model file {name!r} grew while it was read", what="model file",
                         where=name)
    return buf, h.hexdigest()


def model_check(model: ModelBytes, attestations: list[VerifiedAttestation]) -> ModelCheck:
    """A ModelCheck for the in-memory bytes.

    Every file gets its SHA-256 plus whatever other digests the subjects use
    (``sha512``, ``blake2b``, ``blake3``, ``<alg>-shard-merkle``), computed from the
    same bytes. A file named by a subject whose digests all differ is ``mismatch``
    (shard mode names the first differing shard and byte range); a subject naming a
    file absent here is ``missing``.
    """
    from mgattest.attest import shard_tree_root, supported_algorithms  # noqa: PLC0415 - attest loads on first use
    from mgattest.policy._modelcheck import (  # noqa: PLC0415 - it imports attest (first use)
        SHARD_SUFFIX,
        build_model_check,
        digest_plan,
        expectations,
    )

    by_name, anywhere = expectations(attestations)
    supported = supported_algorithms()
    digests: dict[str, dict[str, str]] = {}
    shard_lists: dict[tuple[str, str], list[str]] = {}
    for name in sorted(model.files):
        data = model.files[name]
        wanted = anywhere if model.single_file else by_name.get(name, [])
        got = digests[name] = {"sha256": model.sha256[name]}
        for alg, size in digest_plan(wanted, supported):
            if size is None:
                if alg not in got:
                    got[alg] = _hash(alg, data).hexdigest()
                continue
            view = memoryview(data)
            shards = [_hash(alg, view[i:i + size]).digest() for i in range(0, len(data), size)]
            got[alg + SHARD_SUFFIX] = shard_tree_root(shards, alg).hex()
            shard_lists[(name, alg + SHARD_SUFFIX)] = [s.hex() for s in shards]
    return build_model_check(model.root, model.single_file, digests,
                             lambda n, k: shard_lists.get((n, k)), by_name)


class _Hash(Protocol):
    """What ``hashlib`` and ``blake3`` hashes share (the part used here)."""

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


def _hash(algorithm: str, data: FileBytes) -> _Hash:
    if algorithm == "blake3":
        import blake3  # noqa: PLC0415 - optional dependency

        return blake3.blake3(data)
    return hashlib.new(algorithm, data)


def scan_model(model: ModelBytes) -> dict[str, FileReport]:
    """Content reports for every file, from the in-memory bytes.

    A pickle's walk is also its admission walk: it is kept in ``model.admissions`` so
    that loading the same bytes does not walk them a second time."""
    from mgattest.inspect import scan_bytes  # noqa: PLC0415 - every format checker, heavy

    def directory_of(name: str) -> str:
        # ONNX external data is resolved (and must stay) beside the file that names it.
        if model.single_file:
            return os.path.dirname(os.path.abspath(model.root))
        return os.path.dirname(os.path.join(model.root, name))

    reports = {name: scan_bytes(name, data, base_dir=directory_of(name))
               for name, data in model.files.items()}
    for name, report in reports.items():
        if report.admission is not None:
            model.admissions[name] = report.admission
    return reports
