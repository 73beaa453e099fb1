"""Deserialise verified bytes, one function per format, never touching the file again.

Every loader takes the exact ``bytes`` that were hashed and verified. Code-executing
formats are loaded only through restricted paths: ``torch.load(weights_only=True)``,
``numpy.load(allow_pickle=False)`` (object arrays only through the restricted
unpickler, and only when the policy allows pickles as ``restricted``), ONNX without
external data, pickle/joblib through ``mgattest.inspect._restricted``.
"""

from __future__ import annotations

import io
import json
import math
import sys
from typing import TYPE_CHECKING, Any, Iterator, Literal, Protocol

import numpy as np
import numpy.typing as npt

from mgattest._jsonutil import DuplicateKeyError, reject_duplicate_keys
from mgattest._optional import missing, require
from mgattest.errors import InputError, VerificationError
from mgattest.inspect.errors import UnsafeContentError
from mgattest.policy import FileBytes

if TYPE_CHECKING:
    from mgattest.inspect import Admission

Framework = Literal["numpy", "torch"]
"""The array type safetensors weights are returned as."""


class LoaderError(InputError):
    """The bytes could not be deserialised as their format."""


class _Loader(Protocol):
    """One format's loader (each takes the keywords it needs and ignores the rest)."""

    def __call__(self, name: str, data: FileBytes, *, framework: Framework,
                 allow_object_arrays: bool, extra_allowed: tuple[tuple[str, str], ...],
                 admission: Admission | None) -> object: ...


def deserialize(name: str, data: FileBytes, fmt: str, *, framework: Framework = "numpy",
                allow_object_arrays: bool = False, extra_allowed: tuple[tuple[str, str], ...] = (),
                admission: Admission | None = None) -> object:
    """Deserialise *data* (the verified bytes of file *name*) as format *fmt*.

    *admission*: the content scan's admission walk over *data* (an
    :class:`mgattest.inspect._admission.Admission`), reused by the restricted unpickler
    only if it covers exactly these bytes and settings."""
    try:
        loader = _LOADERS.get(fmt, _raw)
        return check_sparse_tensors(name, loader(name, data, framework=framework,
                                                 allow_object_arrays=allow_object_arrays,
                                                 extra_allowed=extra_allowed,
                                                 admission=admission))
    except (InputError, VerificationError):
        raise
    except ImportError as exc:
        raise missing(exc.name or "?", f"{name}: loading {fmt}") from None
    except Exception as exc:  # noqa: BLE001 - third-party parsers raise anything
        raise LoaderError(f"{name}: cannot load as {fmt}: {type(exc).__name__}: "
                          f"{str(exc)[:300]}", what="loader", where=name) from None


def _safetensors(name: str, data: FileBytes, *, framework: Framework, **_: object) -> object:
    # Views into the verified buffer: no second copy of the weights (see below).
    if framework == "torch":
        return torch_views(data, name)
    if framework == "numpy":
        return numpy_views(data, name)
    raise LoaderError(f"unknown framework {framework!r} (numpy or torch)",
                      what="framework", where=name)


def _pytorch(name: str, data: FileBytes, **_: object) -> object:
    torch = require("torch", f"{name}: loading a PyTorch file")

    # torch validates sparse tensors it rebuilt (indices in range ...) only when asked
    with torch.sparse.check_sparse_tensor_invariants():
        try:
            return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        except RuntimeError as exc:
            if "sparse" in str(exc).lower() or "indices" in str(exc).lower():
                raise UnsafeContentError(f"{name}: invalid sparse tensor: {str(exc)[:300]}",
                                         what="sparse tensor", where=name) from None
            raise


_MAX_WALK = 1_000_000  # objects visited looking for sparse tensors


def check_sparse_tensors(name: str, loaded: object) -> object:
    """Return ``loaded`` after torch's own invariant checks on every sparse tensor in it.

    A sparse tensor whose indices point outside its size loads fine and corrupts memory
    on first use (``to_dense()``); whatever loader built it, it is refused here.
    """
    torch = sys.modules.get("torch")
    if torch is None:  # nothing could have built a tensor
        return loaded
    sparse = [t for t in _walk(loaded, name) if isinstance(t, torch.Tensor)
              and t.layout != torch.strided]
    if not sparse:
        return loaded
    try:
        with torch.sparse.check_sparse_tensor_invariants():
            torch._utils._sparse_tensors_to_validate.extend(sparse)
            torch._utils._validate_loaded_sparse_tensors()
    except AttributeError:  # this torch has no validator: refuse what cannot be checked
        raise UnsafeContentError(f"{name}: sparse tensors cannot be validated with this torch",
                                 what="sparse tensor", where=name) from None
    except RuntimeError as exc:
        raise UnsafeContentError(f"{name}: invalid sparse tensor: {str(exc)[:300]}",
                                 what="sparse tensor", where=name) from None
    return loaded


def _walk(root: object, name: str) -> Iterator[object]:
    """Every object reachable from ``root`` through containers and instance dicts."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(obj))
        if len(seen) > _MAX_WALK:
            raise LoaderError(f"{name}: too many objects to check", what="loader", where=name)
        yield obj
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            stack.extend(vars(obj).values())


def _numpy(name: str, data: FileBytes, *, allow_object_arrays: bool,
           extra_allowed: tuple[tuple[str, str], ...], **_: object) -> object:
    if data[:4] == b"PK\x03\x04":
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            try:
                return {k: npz[k] for k in npz.files}
            except ValueError as exc:
                raise UnsafeContentError(f"{name}: {exc} (object arrays in .npz are refused)",
                                         what="numpy object array", where=name) from None
    stream = io.BytesIO(data)
    major, _minor = np.lib.format.read_magic(stream)
    header = {1: np.lib.format.read_array_header_1_0,
              2: np.lib.format.read_array_header_2_0}.get(major)
    if header is None:
        raise LoaderError(f"{name}: unsupported .npy format version {major}", what="numpy",
                          where=name)
    shape, _fortran, dtype = header(stream)
    if not dtype.hasobject:
        return np.load(io.BytesIO(data), allow_pickle=False)
    if not allow_object_arrays:
        raise UnsafeContentError(f"{name}: numpy object array needs pickle; the policy does "
                                 "not allow pickles (content.pickle: restricted)",
                                 what="numpy object array", where=name)
    from mgattest.inspect import restricted_loads  # noqa: PLC0415 - the unpickler loads only for pickles

    array = restricted_loads(bytes(data[stream.tell():]), extra_allowed=extra_allowed, where=name)
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise LoaderError(f"{name}: object array payload does not match its header",
                          what="numpy", where=name)
    return array


def _onnx(name: str, data: FileBytes, **_: object) -> object:
    import onnx  # noqa: PLC0415 - optional dependency (the ml extra)
    from onnx.external_data_helper import uses_external_data  # noqa: PLC0415 - optional, as above

    model = onnx.load_model_from_string(bytes(data))
    for tensor in _onnx_tensors(model):
        if uses_external_data(tensor):
            raise UnsafeContentError(f"{name}: tensor {tensor.name!r} uses external data, "
                                     "which would be read from unverified files",
                                     what="onnx external data", where=name)
    return model


def _onnx_tensors(message: Any) -> Iterator[Any]:
    """Every ``TensorProto`` anywhere in *message*: initializers, sparse initializers,
    node attributes, subgraphs, functions, training info (walked by field type, so no
    place that can hold a tensor is forgotten)."""
    from onnx import TensorProto  # noqa: PLC0415 - optional dependency (the ml extra)

    stack = [message]
    while stack:
        current = stack.pop()
        if isinstance(current, TensorProto):
            yield current
        for field, value in current.ListFields():
            if field.message_type is None:
                continue
            if field.is_repeated:
                stack.extend(value)
            else:
                stack.append(value)


def _pickle(name: str, data: FileBytes, *, extra_allowed: tuple[tuple[str, str], ...],
            admission: Admission | None = None, **_: object) -> object:
    from mgattest.inspect import restricted_loads  # noqa: PLC0415 - the unpickler loads only for pickles

    return restricted_loads(data,  # type: ignore[arg-type]  # reads any buffer (io.BytesIO); inspect/ says bytes
                            extra_allowed=extra_allowed, where=name,
                            admission=admission)


def _joblib(name: str, data: FileBytes, *, extra_allowed: tuple[tuple[str, str], ...],
            **_: object) -> object:
    from mgattest.inspect import restricted_joblib_load  # noqa: PLC0415 - the unpickler loads only for pickles

    return restricted_joblib_load(bytes(data), extra_allowed=extra_allowed)


def _json(name: str, data: FileBytes, **_: object) -> object:
    return json.loads(bytes(data))


def _text(name: str, data: FileBytes, **_: object) -> object:
    return bytes(data).decode("utf-8")


def _raw(name: str, data: FileBytes, **_: object) -> object:
    return bytes(data)


_LOADERS: dict[str, _Loader] = {
    "safetensors": _safetensors, "pytorch": _pytorch, "numpy": _numpy, "onnx": _onnx,
    "pickle": _pickle, "joblib": _joblib, "json": _json, "text": _text,
}


# --------------------------------------------------------------------------- safetensors
#
# ``safetensors.numpy.load(bytes)`` copies every tensor out of the buffer; for a model
# that was just read into memory and hashed, that is a second full pass and a second
# allocation. Here each tensor is a view (``numpy.frombuffer`` / ``torch.frombuffer``)
# into the very buffer that was verified, after the header is validated as strictly as
# the safetensors library does: bounded header, no duplicate names, known dtypes,
# ``prod(shape) * itemsize == end - begin``, and tensors that tile the data region
# exactly (no gaps, no overlaps, nothing after the last one).

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library's own limit

_NUMPY_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


class SafetensorsFormatError(LoaderError):
    """The bytes are not a well-formed safetensors file."""


def parse_header(data: FileBytes, name: str = "safetensors") -> tuple[int, dict[str, tuple[str, tuple[int, ...], int, int]], dict[str, str]]:
    """Validate the header; return (data start, {tensor: (dtype, shape, begin, end)}, metadata).

    Offsets are absolute positions in *data*.
    """
    def bad(why: str) -> SafetensorsFormatError:
        return SafetensorsFormatError(f"{name}: {why}", what="safetensors header", where=name)

    if len(data) < 8:
        raise bad("shorter than the 8-byte header length")
    n = int.from_bytes(bytes(data[:8]), "little")
    if n > MAX_HEADER_BYTES or 8 + n > len(data):
        raise bad(f"header length {n} exceeds the file ({len(data)} bytes) or the limit")

    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"),
                            object_pairs_hook=reject_duplicate_keys)
    except DuplicateKeyError as exc:
        raise bad(f"duplicate header key {exc.key!r}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad(f"header is not UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise bad("__metadata__ must map strings to strings")
    start = 8 + n
    size = len(data) - start
    tensors: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
    spans = []
    for tname, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"tensor {tname!r}: expected exactly dtype, shape, data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _ITEMSIZE:
            raise bad(f"tensor {tname!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                                  and d >= 0 for d in shape):
            raise bad(f"tensor {tname!r}: shape must be a list of non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise bad(f"tensor {tname!r}: data_offsets must be [begin, end]")
        begin, end = offsets
        if not 0 <= begin <= end <= size:
            raise bad(f"tensor {tname!r}: data_offsets {offsets} outside the {size}-byte data")
        if math.prod(shape) * _ITEMSIZE[dtype] != end - begin:
            raise bad(f"tensor {tname!r}: {dtype}{shape} needs "
                      f"{math.prod(shape) * _ITEMSIZE[dtype]} bytes, data_offsets give "
                      f"{end - begin}")
        tensors[tname] = (dtype, tuple(shape), start + begin, start + end)
        spans.append((begin, end, tname))
    position = 0
    for begin, end, tname in sorted(spans):
        if begin != position:
            raise bad(f"tensor {tname!r} starts at {begin}, expected {position} "
                      "(gap or overlap in the data region)")
        position = end
    if position != size:
        raise bad(f"{size - position} bytes after the last tensor")
    return start, tensors, metadata


def numpy_views(data: FileBytes, name: str = "safetensors") -> dict[str, npt.NDArray[np.generic]]:
    """``{tensor: numpy array}`` viewing *data* (no copy)."""
    _, tensors, _ = parse_header(data, name)
    out = {}
    for tname, (dtype, shape, begin, end) in tensors.items():
        if dtype not in _NUMPY_DTYPES:
            raise SafetensorsFormatError(f"{name}: tensor {tname!r} has dtype {dtype}, which "
                                         "numpy cannot hold (use framework='torch')",
                                         what="safetensors dtype", where=name)
        dt = np.dtype(_NUMPY_DTYPES[dtype])
        out[tname] = np.frombuffer(data, dtype=dt, count=(end - begin) // dt.itemsize,
                                   offset=begin).reshape(shape)
    return out


def torch_views(data: FileBytes, name: str = "safetensors") -> dict[str, object]:
    """``{tensor: torch.Tensor}`` viewing *data* (no copy; typed ``object`` because torch
    is an optional dependency)."""
    torch = require("torch", f"{name}: framework='torch'")

    dtypes = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
              "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
              "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
              "U16": getattr(torch, "uint16", None), "U32": getattr(torch, "uint32", None),
              "U64": getattr(torch, "uint64", None),
              "F8_E4M3": getattr(torch, "float8_e4m3fn", None),
              "F8_E5M2": getattr(torch, "float8_e5m2", None)}
    _, tensors, _ = parse_header(data, name)
    out = {}
    for tname, (dtype, shape, begin, end) in tensors.items():
        tdtype = dtypes.get(dtype)
        if tdtype is None:
            raise SafetensorsFormatError(f"{name}: tensor {tname!r}: dtype {dtype} is not "
                                         "supported by this torch", what="safetensors dtype",
                                         where=name)
        if end == begin:
            out[tname] = torch.empty(shape, dtype=tdtype)
            continue
        out[tname] = torch.frombuffer(data, dtype=tdtype, count=(end - begin) // _ITEMSIZE[dtype],
                                      offset=begin).reshape(shape)
    return out
