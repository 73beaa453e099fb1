"""Dispatch: recognise each file's format and run the matching checks.

``scan_bytes`` and ``scan_path`` never raise for hostile content: every problem is a
finding in the returned :class:`FileReport`. They raise :class:`InspectInputError` only
for bad usage (a path that does not exist).
"""

from __future__ import annotations

import io
import mmap
import os
import stat
import tarfile
from pathlib import Path
import zipfile
from typing import Callable, Iterable, Literal, overload

from mgattest._files import open_regular
from mgattest._hflayout import (LOCAL_DIR_METADATA, RefusedLink, Snapshot, blob_digest_kind,
                                blob_hasher, find_snapshot, follow_blob_link, snapshot_above)
from mgattest.inspect import _archive as archive, _compressed as compressed, _npy as npy, _torchscript as torchscript
from mgattest.inspect._admission import walk_for_admission
from mgattest.inspect._allowlist import pair_set
from mgattest.inspect._detect import (CODE_EXTS, HEADERED_EXTS, PICKLE_EXTS, PICKLE_OPCODES,
                                     PICKLED_FORMATS, is_safetensors, looks_like_onnx,
                                     policy_format, sniff, text_kind)
from mgattest.inspect.errors import InspectInputError
from mgattest.inspect._gguf_check import check_gguf
from mgattest.inspect._keras_check import (check_keras_config, check_keras_h5,
                                          looks_like_keras_config)
from mgattest.inspect._limits import DEFAULT_LIMITS, Buffer, Data, Limits
from mgattest.inspect._onnx_check import check_onnx
from mgattest.inspect._pickle_scan import (SCAN_LIMIT, ScanContext, StreamResult,
                                          is_torch_legacy_magic, scan_pickle_blob)
from mgattest.inspect._report import (DANGEROUS, INFO, MALFORMED, SUSPICIOUS, FileReport,
                                     Finding, ImportRecord)
from mgattest.inspect._safetensors_check import check_safetensors

_COMPRESSED = ("gzip", "zlib", "bz2", "xz", "lzma", "joblib-zf")
_JOBLIB_ZF_HEADER = 2 + 19  # b"ZF" + hex length padded (joblib < 0.10)


def scan_bytes(name: str, data: Data, *, limits: Limits = DEFAULT_LIMITS,
               extra_allowed: Iterable[tuple[str, str]] = (),
               base_dir: str | os.PathLike[str] | None = None) -> FileReport:
    """Inspect one in-memory file. ``name`` is used for display and format hints.

    ``base_dir`` is the model directory, used to resolve ONNX external data.
    """
    if isinstance(data, memoryview):
        data = data.tobytes()
    ctx = ScanContext(limits=limits, extra_allowed=pair_set(extra_allowed))
    try:
        fmt = _scan(name, data, ctx, 0, None if base_dir is None else str(base_dir))
    except Exception as exc:  # noqa: BLE001 - fail closed on any scanner failure (below)
        # Fail closed: an input that trips the scanner is never reported safe.
        ctx.add(MALFORMED, "scanner-error", f"could not analyse: {type(exc).__name__}: {exc}")
        fmt = "unknown"
        ctx.admission = None
    pickled = ctx.pickle_blobs > 0 or policy_format(fmt) in PICKLED_FORMATS
    return FileReport(name, fmt, len(data), ctx.findings, ctx.imports, ctx.compression,
                      pickled, admission=ctx.admission)


def scan_path(path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS,
              extra_allowed: Iterable[tuple[str, str]] = (),
              skip: Callable[[str, bool], object] | None = None) -> list[FileReport]:
    """Inspect a file, or every file under a directory (sorted, symlinks checked).

    ``skip(name, is_dir)`` (name: POSIX path relative to the directory) leaves out an
    entry when it returns something truthy; a skipped directory is not entered. The CLI
    passes the same ignore rules as ``sign``/``verify`` (``.git`` and friends by default).

    A Hugging Face cache snapshot's links are followed into its repository's ``blobs/``
    (and only there; see :func:`mgattest._hflayout.follow_blob_link`), each blob checked
    against its name (a mismatch is a ``cache-corruption`` finding); a ``--local-dir``
    download's ``.cache/huggingface/`` metadata is not scanned.
    """
    root = Path(path)
    if not root.exists() and not root.is_symlink():
        raise InspectInputError(f"no such file or directory: {root}", what="path",
                                where=str(root))
    allowed = tuple(extra_allowed)
    if not root.is_dir():
        above = snapshot_above(root)
        return [_scan_file(root, root.parent, limits, allowed, above and above[0])]
    reports: list[FileReport] = []
    real_root = root.resolve()
    snapshot = find_snapshot(real_root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        dirnames[:] = [d for d in dirnames if prefix + d != LOCAL_DIR_METADATA
                       or os.path.islink(os.path.join(dirpath, d))]
        if skip is not None:
            dirnames[:] = [d for d in dirnames if not skip(prefix + d, True)]
            filenames = [f for f in filenames if not skip(prefix + f, False)]
        dirnames.sort()
        for entry in sorted(filenames) + sorted(d for d in dirnames
                                                if os.path.islink(os.path.join(dirpath, d))):
            reports.append(_scan_file(Path(dirpath) / entry, real_root, limits, allowed,
                                      snapshot))
    return reports


def _scan_file(path: Path, root: Path, limits: Limits,
               extra_allowed: tuple[tuple[str, str], ...],
               snapshot: Snapshot | None = None, *, base_dir: Path | None = None,
               display: str | None = None) -> FileReport:
    """One file's report; a snapshot entry is scanned from its blob but shown (and its
    ONNX external data resolved) where it lives in the snapshot."""
    display = display or str(path)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise InspectInputError(f"cannot stat {path}: {exc.strerror}", where=display) from None
    if stat.S_ISLNK(st.st_mode) and snapshot is not None:
        try:
            blob = follow_blob_link(snapshot, os.path.realpath(path.parent), str(path))
        except RefusedLink as exc:
            return _single(display, "symlink", MALFORMED, "symlink",
                           f"Hugging Face snapshot link {exc.reason}; only links to a "
                           "regular file in this repository's blobs/ are followed")
        report = _scan_file(Path(blob), root, limits, extra_allowed, base_dir=path.parent,
                            display=display)
        _check_blob_name(report, Path(blob))
        return report
    if stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(path))
        real_root = root.resolve()
        if target != real_root and real_root not in target.parents:
            return _single(display, "symlink", MALFORMED, "symlink",
                           f"symlink points outside the model directory (to {target})")
        if target.is_dir():
            return _single(display, "symlink", INFO, "symlink", "symlink to a directory inside "
                           "the model; its files are scanned where they live")
        st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        return _single(display, "special", MALFORMED, "special-file",
                       "not a regular file (device, FIFO or socket)")
    if st.st_size > limits.max_file_bytes:
        return _single(display, "unknown", MALFORMED, "too-large",
                       f"{st.st_size} bytes exceeds the scan limit {limits.max_file_bytes}")
    # non-blocking and type-checked: a FIFO swapped in after the stat cannot hang the scan
    with os.fdopen(open_regular(path, what="model file"), "rb") as fh:
        if st.st_size == 0:
            return scan_bytes(display, b"", limits=limits, extra_allowed=extra_allowed,
                              base_dir=base_dir or path.parent)
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return scan_bytes(display, data, limits=limits, extra_allowed=extra_allowed,
                              base_dir=base_dir or path.parent)


def _check_blob_name(report: FileReport, blob: Path) -> None:
    """Add a ``cache-corruption`` finding when the blob's content does not hash to the
    digest its name promises (SHA-256 for LFS files, git blob id for small ones)."""
    kind = blob_digest_kind(blob.name)
    if kind is None:
        return
    size = 0
    with os.fdopen(open_regular(blob, what="cache blob"), "rb") as fh:
        hasher = blob_hasher(kind, os.fstat(fh.fileno()).st_size)
        while chunk := fh.read(1 << 20):
            hasher.update(chunk)
            size += len(chunk)
    actual = hasher.hexdigest()
    if actual != blob.name:
        report.findings.append(Finding(
            MALFORMED, "cache-corruption",
            f"Hugging Face cache corruption: blobs/{blob.name} is named by its "
            f"{'SHA-256' if kind == 'sha256' else 'git blob id'} but its {size} bytes hash "
            f"to {actual}"))


def _single(path: str, fmt: str, severity: str, kind: str, detail: str) -> FileReport:
    ctx = ScanContext()
    ctx.add(severity, kind, detail)
    return FileReport(path, fmt, 0, ctx.findings, [])


def _scan(name: str, data: Buffer, ctx: ScanContext, depth: int, base_dir: str | None) -> str:
    if depth > ctx.limits.max_archive_depth:
        ctx.add(MALFORMED, "nesting", "archives nested too deeply")
        return "archive"
    if len(data) == 0:
        # An empty __init__.py or LICENSE is ordinary; only a name that promises a
        # format with a header (pickle, safetensors, ONNX...) makes emptiness malformed.
        if name.lower().endswith(HEADERED_EXTS):
            ctx.add(MALFORMED, "empty", "empty file")
        else:
            ctx.add(INFO, "empty", "empty file")
        return "empty"
    fmt = _scan_by_content(name, data, ctx, depth, base_dir)
    _check_name(name, fmt, data, ctx)
    return fmt


def _scan_by_content(name: str, data: Buffer, ctx: ScanContext, depth: int,
                     base_dir: str | None) -> str:
    """Label ``data`` by its bytes alone and run that format's checks."""
    head = bytes(data[:512])
    fmt = "safetensors" if is_safetensors(data, ctx.limits.max_json_header_bytes) else sniff(head)
    if fmt == "pickle":
        return _scan_pickle(data, ctx, tentative=False)
    if fmt in _COMPRESSED:
        return _scan_compressed(name, fmt, data, ctx, depth, base_dir)
    if fmt == "zip":
        return _scan_zip(data, ctx, depth)
    if fmt == "tar":
        return _scan_tar(data, ctx, depth)
    by_magic = fmt is not None
    if fmt is None and head[0] in PICKLE_OPCODES:
        fmt = _scan_pickle(data, ctx, tentative=True)
        if fmt is not None:
            return fmt
    if fmt is None:
        fmt = "onnx" if looks_like_onnx(data) else text_kind(data) or "unknown"
    _CHECKS.get(fmt, _no_check)(data, ctx, base_dir if depth == 0 else None)
    _check_polyglot_zip(fmt, data, ctx, depth)
    if by_magic:
        _check_polyglot_pickle(fmt, data, ctx)
    return fmt


def _no_check(data: Buffer, ctx: ScanContext, base_dir: str | None) -> None:
    del data, ctx, base_dir


def _unrecognised(data: Buffer, ctx: ScanContext, base_dir: str | None) -> None:
    ctx.add(INFO, "unrecognised", "unrecognised format: not inspected")


def _native_code(data: Buffer, ctx: ScanContext, base_dir: str | None) -> None:
    ctx.add(INFO, "code-file", "native executable or library: not inspected; it runs only "
            "if something loads it")


_CHECKS = {
    "npy": lambda data, ctx, _base: _scan_npy(data, ctx),
    "safetensors": lambda data, ctx, _base: check_safetensors(data, ctx),
    "gguf": lambda data, ctx, _base: check_gguf(data, ctx),
    "onnx": check_onnx,
    "hdf5": lambda data, ctx, _base: check_keras_h5(data, ctx),
    "code": _native_code,
    "unknown": _unrecognised,
}


def _check_name(name: str, fmt: str, data: Buffer, ctx: ScanContext) -> None:
    """Findings for a name that promises another format (the label stays the content's).

    Content that matches no format is checked as the format its name promises, to say
    what is wrong with it.
    """
    lower = name.lower()
    unrecognised = fmt in ("unknown", "text", "json")
    if lower.endswith(PICKLE_EXTS) and (unrecognised or fmt == "code"):
        ctx.add(MALFORMED, "not-pickle", "named like a pickle, but its first byte is not a "
                "pickle opcode (pickle loaders reject it)", 0)
    elif lower.endswith(".safetensors") and fmt != "safetensors":
        if unrecognised:
            check_safetensors(data, ctx)
        ctx.add(MALFORMED, "format-mismatch", f"named .safetensors, but its content is {fmt}",
                0)
    elif lower.endswith(".onnx") and fmt != "onnx":
        if fmt == "unknown":
            check_onnx(data, ctx, None)
        ctx.add(MALFORMED, "format-mismatch", f"named .onnx, but its content is {fmt}", 0)
    elif lower.endswith(CODE_EXTS) and fmt in ("text", "unknown", "code"):
        ctx.add(INFO, "code-file", "executable code file: not inspected; it runs only if "
                "something imports or executes it (e.g. trust_remote_code)")


@overload
def _scan_pickle(data: Buffer, ctx: ScanContext, *, tentative: Literal[False]) -> str: ...
@overload
def _scan_pickle(data: Buffer, ctx: ScanContext, *, tentative: bool) -> str | None: ...
def _scan_pickle(data: Buffer, ctx: ScanContext, *, tentative: bool) -> str | None:
    """Scan ``data`` as pickle streams. ``tentative``: keep the result only if it really
    is a pickle (a stream completes, or something is imported); None otherwise."""
    if tentative:
        trial = ctx.trial()
        results = scan_pickle_blob(data, trial, joblib=True)
        if not results and _rejected_before_anything_ran(trial):
            # Not a pickle: pickle.load fails before anything could run. Names no
            # find_class can import (e.g. "nclude LICENSE" from MANIFEST.in's "include
            # LICENSE") are still listed: the report shows every lookup an unpickler
            # would attempt, but they are not findings.
            ctx.imports.extend(trial.imports)
            return None
        ctx.findings.extend(trial.findings)
        ctx.imports.extend(trial.imports)
        ctx.pickle_blobs += trial.pickle_blobs
        ctx.persistent_ids += trial.persistent_ids
        return _label_pickle(ctx, results)
    # The first stream's walk is also the restricted unpickler's admission walk.
    first, ctx.admission = walk_for_admission(data, ctx, joblib=True, max_streams=1)
    if first and is_torch_legacy_magic(first[0]):
        rest = scan_pickle_blob(data, ctx, start=first[0].end, max_streams=4,
                                streams_before=1)
        end = rest[-1].end if len(rest) == 4 else len(data)
        if end < len(data):
            ctx.add(INFO, "raw-storage",
                    f"bytes {end}-{len(data)} hold raw tensor storage that torch reads "
                    "without unpickling", end)
        return "torch-legacy"
    results = list(first)
    if first and first[0].end < len(data):
        results += scan_pickle_blob(data, ctx, joblib=True, start=first[0].end,
                                    streams_before=1)
    _check_polyglot_zip("pickle", data, ctx, 0)
    return _label_pickle(ctx, results)


def _resolvable(record: ImportRecord) -> bool:
    """Whether ``find_class`` could import this global: dotted identifiers only. A name
    the report cut short (ending in "…") is not known in full, so it counts as one."""
    return all(text.endswith("\u2026") or all(part.isidentifier() for part in text.split("."))
               for text in (record.module, record.name))


# Findings besides an import that mean an unpickler reaches code, exhausts the machine
# on the way (a "resource" finding without imports: hashing shared-item tuples), or that
# the scanner could not judge.
_REACHES_CODE = ("unresolved-global", "extension", "resource", SCAN_LIMIT)


def _rejected_before_anything_ran(trial: ScanContext) -> bool:
    """True when a tentative pickle is just data that happens to start with an opcode.

    That is the case only when the walk broke where CPython's unpicklers break too (the
    walker accepts every line and opcode they accept) and nothing before the break
    imported a global an unpickler could resolve, named an extension code or a
    persistent id. Text such as "include LICENSE" reads as INST of module
    "nclude LICENSE", which no ``find_class`` can import, so it does not count. Any other
    failure, a scanner limit above all, keeps the findings, so the file is never
    reported safe.
    """
    if any(_resolvable(i) for i in trial.imports) or trial.persistent_ids:
        return False
    # Only unresolvable imports were seen: their "import" findings reach no code.
    return not any(f.kind in _REACHES_CODE for f in trial.findings)


def _label_pickle(ctx: ScanContext, results: list[StreamResult]) -> str:
    if ctx.persistent_ids:
        ctx.add(INFO, "persistent-id", f"{ctx.persistent_ids} persistent id(s): the loader's "
                "persistent_load decides what they become")
    if any(i.module == "joblib.numpy_pickle" for i in ctx.imports):
        return "joblib"
    return "pickle"


def _scan_compressed(name: str, fmt: str, data: Buffer, ctx: ScanContext, depth: int,
                     base_dir: str | None) -> str:
    kind, start = ("zlib", _JOBLIB_ZF_HEADER) if fmt == "joblib-zf" else (fmt, 0)
    try:
        inner = compressed.decompress(kind, memoryview(data)[start:] if start else data,
                                      ctx.limits)
    except compressed.DecompressionError as exc:
        ctx.add(MALFORMED, "compression", f"{fmt} data: {exc}")
        return fmt
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix in (".gz", ".bz2", ".xz",
                                                                      ".lzma", ".z") else name
    if depth == 0:
        ctx.compression = fmt
    return _scan(stem, inner, ctx, depth + 1, base_dir)


def _nested(ctx: ScanContext, member: str) -> str | None:
    old = ctx.member
    ctx.member = member if old is None else f"{old}!{member}"
    return old


def _scan_zip(data: Buffer, ctx: ScanContext, depth: int) -> str:
    opened = archive.open_zip(data, ctx)
    if opened is None:
        return "zip"
    zf, members = opened
    names = [m.name for m in members]
    budget = [ctx.limits.max_total_decompressed_bytes]
    is_torch = any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)
    is_keras = "config.json" in names and _keras_config(zf, members, ctx)
    is_npz = bool(names) and all(n.endswith(".npy") for n in names)
    fmt = "torch-zip" if is_torch else "keras" if is_keras else "npz" if is_npz else "zip"
    if is_torch:
        prefixes = {n.split("/", 1)[0] for n in names if "/" in n}
        if len(prefixes) > 1:
            ctx.add(SUSPICIOUS, "zip-mismatch", f"torch archive has several top-level "
                    f"records {sorted(prefixes)}: readers may pick different ones")
    defined = _analyse_torchscript(zf, members, ctx, budget) if is_torch else frozenset()
    allowed_before = ctx.extra_allowed
    ctx.extra_allowed = allowed_before | defined  # its pickles may name its own classes
    try:
        _scan_zip_members(zf, members, ctx, depth, budget, is_torch, is_keras)
    finally:
        ctx.extra_allowed = allowed_before
    if is_torch and ctx.persistent_ids == 0 and not any(n.endswith(".pkl") for n in names):
        ctx.add(MALFORMED, "torch", "torch archive without data.pkl")
    return fmt


def _analyse_torchscript(zf: zipfile.ZipFile, members: list[archive.Member], ctx: ScanContext,
                         budget: list[int]) -> frozenset[tuple[str, str]]:
    """Findings for the TorchScript ``code/`` of a torch archive; the classes it defines."""
    sources: dict[str, bytes] = {}
    for member in members:
        if torchscript.code_module(member.name) is None:
            continue
        raw = archive.read_member(zf, member, ctx, budget)
        if raw is not None:
            sources[member.name] = raw
    return torchscript.analyse(sources, ctx) if sources else frozenset()


def _scan_zip_members(zf: zipfile.ZipFile, members: list[archive.Member], ctx: ScanContext, depth: int, budget: list[int],
                      is_torch: bool, is_keras: bool) -> None:
    for member in members:
        lower = member.name.lower()
        if member.name.endswith("/"):
            continue
        if is_torch and not lower.endswith(".pkl"):
            head = archive.read_member_head(zf, member, 8)
            if sniff(head) not in ("zip", "gzip", "bz2", "xz", "tar"):
                continue  # raw tensor storage, version, byteorder ...
        if is_keras and member.name == "model.weights.h5":
            continue  # weights only: Keras reads datasets from it, no model config
        raw = archive.read_member(zf, member, ctx, budget)
        if raw is None:
            continue
        old = _nested(ctx, member.name)
        try:
            if is_keras and member.name == "config.json":
                check_keras_config(raw, ctx)
            elif is_torch and lower.endswith(".pkl"):
                scan_pickle_blob(raw, ctx, joblib=False)
            else:
                _scan(member.name, raw, ctx, depth + 1, None)
        finally:
            ctx.member = old


def _keras_config(zf: zipfile.ZipFile, members: list[archive.Member], ctx: ScanContext) -> bool:
    """Is the archive's top-level ``config.json`` a Keras model config (by content)?"""
    member = next((m for m in members if m.name == "config.json"), None)
    if member is None:
        return False
    raw = archive.read_member(zf, member, ScanContext(limits=ctx.limits, deadline=ctx.deadline),
                              [ctx.limits.max_json_header_bytes])
    return raw is None or looks_like_keras_config(raw)  # unreadable: check it as Keras


def _scan_tar(data: Buffer, ctx: ScanContext, depth: int) -> str:
    budget = ctx.limits.max_total_decompressed_bytes
    try:
        with tarfile.open(fileobj=io.BytesIO(bytes(data)), mode="r:") as tf:
            for count, info in enumerate(tf):
                if count >= ctx.limits.max_archive_members:
                    ctx.add(MALFORMED, "tar", "too many tar members")
                    break
                if not info.isfile():
                    if info.issym() or info.islnk() or info.isdev():
                        ctx.add(SUSPICIOUS, "tar-link",
                                f"tar member {info.name!r} is a link or device")
                    continue
                if info.size > budget:
                    ctx.add(MALFORMED, "tar", f"tar member {info.name!r} too large")
                    break
                fh = tf.extractfile(info)
                raw = fh.read() if fh else b""
                budget -= len(raw)
                old = _nested(ctx, info.name)
                try:
                    _scan(info.name, raw, ctx, depth + 1, None)
                finally:
                    ctx.member = old
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        ctx.add(MALFORMED, "tar", f"unreadable tar archive: {exc}")
    return "tar"


def _scan_npy(data: Buffer, ctx: ScanContext) -> None:
    try:
        header = npy.parse_header(data, ctx.limits)
    except npy.NpyError as exc:
        ctx.add(MALFORMED, "npy", f".npy header: {exc}")
        return
    if header.has_object:
        ctx.add(INFO, "object-array", "object array: its data is a pickle (numpy.load needs "
                "allow_pickle=True)", header.data_offset)
        scan_pickle_blob(data, ctx, start=header.data_offset, max_streams=1)
        return
    itemsize = npy.descr_itemsize(header.descr)
    if itemsize is None:
        return
    count = 1
    for dim in header.shape:
        count *= dim
    have = len(data) - header.data_offset
    if have < count * itemsize:
        ctx.add(MALFORMED, "npy", f"array needs {count * itemsize} data bytes, file has {have}",
                header.data_offset)
    elif have > count * itemsize:
        ctx.add(SUSPICIOUS, "trailing-data", f"{have - count * itemsize} bytes after the array "
                "data", header.data_offset + count * itemsize)


def _check_polyglot_pickle(fmt: str, data: Buffer, ctx: ScanContext) -> None:
    """A file labelled by its magic bytes that ``pickle.load`` also reads as a stream."""
    if data[0] not in PICKLE_OPCODES:
        return
    trial = ctx.trial()
    if not scan_pickle_blob(data, trial, max_streams=1):
        return
    ctx.add(SUSPICIOUS, "polyglot", f"{fmt} file is also a complete pickle stream: "
            "pickle.load would read other contents", 0)
    ctx.findings.extend(f for f in trial.findings if f.severity in (DANGEROUS, SUSPICIOUS))
    ctx.imports.extend(trial.imports)
    ctx.pickle_blobs += 1


def _check_polyglot_zip(fmt: str, data: Buffer, ctx: ScanContext, depth: int) -> None:
    """A file that is not a zip at its start but carries a zip directory at its end."""
    if fmt in ("zip", "text", "json", "code") or len(data) < 22:
        return
    tail = bytes(data[max(0, len(data) - 65557):])
    if b"PK\x05\x06" not in tail:
        return
    sub = ScanContext(limits=ctx.limits, deadline=ctx.deadline)
    if archive.open_zip(data, sub) is None:
        return
    ctx.add(SUSPICIOUS, "polyglot", f"{fmt} file is also a readable zip archive: different "
            "loaders would read different contents")
