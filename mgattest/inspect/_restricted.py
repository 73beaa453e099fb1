"""Restricted deserialisation: only allow-listed globals can be imported.

Every loader here refuses, *before any code runs*, a pickle that names a global outside
:data:`~mgattest.inspect._allowlist.SAFE_GLOBALS` (plus ``extra_allowed``):
``find_class`` is the only door through which a pickle reaches code, and it is shut.
Allow-listed globals are not harmless in every use, so the pickle is first walked by the
scanner (:func:`~mgattest.inspect._admission.admit`: no mutation of imported objects, no
allocation far beyond the file's size), and every object ``find_class`` hands out is
checked after the load for changes (:class:`~mgattest.inspect._admission.GlobalsGuard`).
Refusals raise :class:`UnsafeContentError` (a VerificationError); corrupt data raises
:class:`RestrictedLoadError` (an InputError).
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import re
import zipfile
from typing import IO, Any, Callable, Iterable, NoReturn

from mgattest._files import open_regular
from mgattest._optional import require
from mgattest.inspect import _compressed as compressed, _npy as npy
from mgattest.inspect._admission import Admission, GlobalsGuard, admit
from mgattest.inspect._allowlist import JOBLIB_GLOBALS, SAFE_GLOBALS, normalise, pair_set
from mgattest.inspect._detect import sniff
from mgattest.inspect.errors import RestrictedLoadError, UnsafeContentError
from mgattest.inspect._limits import DEFAULT_LIMITS, Limits

Pair = tuple[str, str]

Source = bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes]
"""What the file loaders read: the bytes themselves, a path, or an open binary file."""

# Exceptions a corrupt pickle can raise from inside the unpickler.
_CORRUPT = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, ImportError, OverflowError, MemoryError, RecursionError,
            UnicodeDecodeError, LookupError, SystemError)


def _resolve(module: str, name: str, allowed: frozenset[Pair], where: str) -> Any:
    # Decide and import the *same* pair: Python 2 aliases are mapped first.
    real = normalise(module, name, 0)
    if "." in name or real not in allowed:
        raise UnsafeContentError(
            f"refused to load global {real[0]}.{real[1]}: not in the allow-list",
            what="restricted-unpickle", where=where, module=real[0], name=real[1])
    try:
        return getattr(importlib.import_module(real[0]), real[1])
    except (ImportError, AttributeError) as exc:
        raise RestrictedLoadError(f"allow-listed global {real[0]}.{real[1]} is not "
                                  f"available: {exc}", what="restricted-unpickle",
                                  where=where) from None


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only allow-listed globals.

    Use it through :func:`restricted_loads` (or call :func:`admit` on the bytes first and
    ``guard.verify()`` after): ``find_class`` alone does not stop a pickle from changing
    the allow-listed classes it imports.
    """

    def __init__(self, file: IO[bytes], *, extra_allowed: Iterable[Pair] = (),
                 where: str = "<bytes>", guard: GlobalsGuard | None = None) -> None:
        super().__init__(file)
        self._allowed = SAFE_GLOBALS | pair_set(extra_allowed)
        self._where = where
        self.guard = guard or GlobalsGuard(where)

    def find_class(self, module: str, name: str) -> object:
        return self.guard.watch(_resolve(module, name, self._allowed, self._where))

    def persistent_load(self, pid: object) -> NoReturn:
        raise UnsafeContentError("refused a pickle persistent id (only torch.load may "
                                 "resolve them)", what="restricted-unpickle",
                                 where=self._where)


def _run(loader: Callable[[], object], where: str, guard: GlobalsGuard) -> object:
    """Run ``loader``; whatever happens, undo and refuse changes to imported objects."""
    try:
        return loader()
    except (UnsafeContentError, RestrictedLoadError):
        raise
    except _CORRUPT as exc:
        raise RestrictedLoadError(f"cannot deserialise {where}: {type(exc).__name__}: {exc}",
                                  what="restricted-unpickle", where=where) from None
    finally:
        guard.verify()


def restricted_loads(data: bytes, extra_allowed: Iterable[Pair] = (), *,
                     where: str = "<bytes>", admission: Admission | None = None) -> object:
    """Unpickle one stream from ``data`` with the allow-list; trailing bytes are refused.

    *admission*: an earlier scan's walk of these bytes (see :func:`admit`); used only if
    it covers exactly ``data``, this allow-list and the default limits."""
    extra = pair_set(extra_allowed)
    admit(data, where=where, extra_allowed=extra, admission=admission)
    buf = io.BytesIO(data)
    guard = GlobalsGuard(where)
    obj = _run(lambda: RestrictedUnpickler(buf, extra_allowed=extra, where=where,
                                           guard=guard).load(), where, guard)
    if buf.tell() != len(data):
        raise UnsafeContentError(
            f"{len(data) - buf.tell()} bytes follow the pickle stream (ends at byte "
            f"{buf.tell()}): another loader would read them", what="restricted-unpickle",
            where=where)
    return obj


loads = restricted_loads


def restricted_loads_all(data: bytes, extra_allowed: Iterable[Pair] = (), *,
                         where: str = "<bytes>") -> list[object]:
    """Unpickle every concatenated stream in ``data``."""
    extra = pair_set(extra_allowed)
    admit(data, where=where, extra_allowed=extra, max_streams=None)
    buf = io.BytesIO(data)
    guard = GlobalsGuard(where)
    out: list[object] = []
    while buf.tell() < len(data):
        out.append(_run(lambda: RestrictedUnpickler(buf, extra_allowed=extra, where=where,
                                                    guard=guard).load(), where, guard))
    return out


def _read_input(data_or_file: Source) -> tuple[bytes, str]:
    if isinstance(data_or_file, (bytes, bytearray, memoryview)):
        return bytes(data_or_file), "<bytes>"
    if isinstance(data_or_file, (str, os.PathLike)):
        fd = open_regular(data_or_file, what="file to load", error=RestrictedLoadError)
        with os.fdopen(fd, "rb") as fh:
            return fh.read(), str(data_or_file)
    if hasattr(data_or_file, "read"):
        return data_or_file.read(), getattr(data_or_file, "name", "<file>")
    raise RestrictedLoadError(f"expected bytes, a path or a file, got "
                              f"{type(data_or_file).__name__}")


def restricted_joblib_load(data_or_file: Source, extra_allowed: Iterable[Pair] = (), *,
                           limits: Limits = DEFAULT_LIMITS) -> object:
    """Load a joblib file (plain or zlib/gzip/bz2/lzma/xz compressed) with the allow-list.

    joblib's own array reader is kept (it reads raw array bytes, no code), and nested
    object-array pickles go through the same ``find_class``.
    """
    from joblib.numpy_pickle import NumpyUnpickler  # noqa: PLC0415 - optional extra (joblib), only for joblib files

    data, where = _read_input(data_or_file)
    kind = sniff(bytes(data[:512])) or "pickle"  # no magic: let the unpickler judge
    if kind in ("gzip", "zlib", "bz2", "xz", "lzma"):
        try:
            data = compressed.decompress(kind, data, limits)
        except compressed.DecompressionError as exc:
            raise RestrictedLoadError(f"{where}: {exc}", what="joblib", where=where) from None
    elif kind != "pickle":
        raise RestrictedLoadError(f"{where} is not a joblib file (detected {kind})",
                                  what="joblib", where=where)
    extra = pair_set(extra_allowed)
    admit(data, where=where, extra_allowed=extra, joblib=True, limits=limits)
    allowed = SAFE_GLOBALS | JOBLIB_GLOBALS | extra
    guard = GlobalsGuard(where)

    class _Restricted(NumpyUnpickler):  # type: ignore[misc]  # joblib ships no type information
        def find_class(self, module: str, name: str) -> object:
            return guard.watch(_resolve(module, name, allowed, where))

        def persistent_load(self, pid: object) -> NoReturn:
            raise UnsafeContentError("refused a pickle persistent id",
                                     what="restricted-unpickle", where=where)

    buf = io.BytesIO(data)
    return _run(lambda: _Restricted(where, buf, True).load(), where, guard)


def restricted_torch_load(data_or_file: Source, *, extra_allowed: Iterable[Pair] = (),
                          map_location: object = "cpu") -> object:
    """``torch.load(weights_only=True)``: tensors, state dicts and plain containers only.

    ``extra_allowed`` pairs (e.g. ``("argparse", "Namespace")``) are resolved and added
    to torch's own allow-list for this call only.
    """

    torch = require("torch", "restricted_torch_load")

    data, where = _read_input(data_or_file)
    extra = [_resolve(m, n, pair_set(extra_allowed), where)
             for m, n in extra_allowed]
    try:
        with torch.serialization.safe_globals(extra):
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL [\w.]+", str(exc))
        reason = (f"{found.group(0)} is not allowed" if found
                  else re.sub(r"\x1b\[[0-9;]*m", "", str(exc))[:300])
        raise UnsafeContentError(f"torch.load(weights_only=True) refused {where}: {reason}",
                                 what="restricted-torch", where=where) from None
    except (RuntimeError, *_CORRUPT) as exc:
        raise RestrictedLoadError(f"cannot load {where} with torch: {exc}",
                                  what="restricted-torch", where=where) from None


def restricted_numpy_load(data_or_file: Source, *, allow_pickle: bool = False,
                          extra_allowed: Iterable[Pair] = (),
                          limits: Limits = DEFAULT_LIMITS) -> object:
    """Load ``.npy`` (an array) or ``.npz`` (a dict of arrays).

    Object arrays are refused unless ``allow_pickle``; even then their pickle goes
    through the restricted unpickler, never ``pickle.load``.
    """
    import numpy as np  # noqa: PLC0415 - heavy (numpy), only for .npy/.npz payloads

    data, where = _read_input(data_or_file)
    if data[:4] == b"PK\x03\x04":
        out: dict[str, object] = {}
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    if info.file_size > limits.max_decompressed_bytes:
                        raise RestrictedLoadError(f"{where}!{info.filename} too large")
                    key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                    out[key] = restricted_numpy_load(
                        zf.read(info), allow_pickle=allow_pickle, extra_allowed=extra_allowed,
                        limits=limits)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise RestrictedLoadError(f"cannot read {where}: {exc}", where=where) from None
        return out
    try:
        header = npy.parse_header(data, limits)
    except npy.NpyError as exc:
        raise RestrictedLoadError(f"{where}: {exc}", what="npy", where=where) from None
    if not header.has_object:
        return _run(lambda: np.load(io.BytesIO(data), allow_pickle=False), where,
                    GlobalsGuard(where))
    if not allow_pickle:
        raise UnsafeContentError(f"{where} holds an object array (a pickle); refused "
                                 "because allow_pickle is False", what="npy", where=where)
    array = restricted_loads(data[header.data_offset:], extra_allowed, where=where)
    if not isinstance(array, np.ndarray):
        raise UnsafeContentError(f"{where}: object-array pickle did not produce an array",
                                 what="npy", where=where)
    return array
