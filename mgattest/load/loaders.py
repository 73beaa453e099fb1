"""Deserialise verified bytes, one function per format, never touching the file again.

Every loader takes the exact ``bytes`` that were hashed and verified. Code-executing
formats are loaded only through restricted paths: ``torch.load(weights_only=True)``,
``numpy.load(allow_pickle=False)`` (object arrays only through the restricted
unpickler, and only when the policy allows pickles as ``restricted``), ONNX without
external data, pickle/joblib through ``mgattest.inspect.restricted``.
"""

from __future__ import annotations

import io
import json
from typing import Any

from mgattest.errors import InputError, VerificationError


class LoaderError(InputError):
    """The bytes could not be deserialised as their format."""


class UnsafeContentError(VerificationError):
    """Deserialising would need a capability the policy does not grant."""


def deserialize(name: str, data: bytes, fmt: str, *, framework: str = "numpy",
                allow_object_arrays: bool = False, extra_allowed: tuple[tuple[str, str], ...] = ()) -> Any:
    """Deserialise *data* (the verified bytes of file *name*) as format *fmt*."""
    try:
        loader = _LOADERS.get(fmt, _raw)
        return loader(name, data, framework=framework, allow_object_arrays=allow_object_arrays,
                      extra_allowed=extra_allowed)
    except (InputError, VerificationError):
        raise
    except ImportError as exc:
        raise LoaderError(f"{name}: loading {fmt} needs the optional package {exc.name!r}",
                          what="loader", where=name) from None
    except Exception as exc:  # noqa: BLE001 - third-party parsers raise anything
        raise LoaderError(f"{name}: cannot load as {fmt}: {type(exc).__name__}: "
                          f"{str(exc)[:300]}", what="loader", where=name) from None


def _safetensors(name: str, data: bytes, *, framework: str, **_: Any) -> Any:
    if framework == "torch":
        from safetensors.torch import load  # noqa: PLC0415
    elif framework == "numpy":
        from safetensors.numpy import load  # noqa: PLC0415
    else:
        raise LoaderError(f"unknown framework {framework!r} (numpy or torch)",
                          what="framework", where=name)
    return load(data)


def _pytorch(name: str, data: bytes, **_: Any) -> Any:
    import torch  # noqa: PLC0415

    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _numpy(name: str, data: bytes, *, allow_object_arrays: bool,
           extra_allowed: tuple[tuple[str, str], ...], **_: Any) -> Any:
    import numpy as np  # noqa: PLC0415

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
    from mgattest.inspect.restricted import restricted_loads  # noqa: PLC0415

    array = restricted_loads(data[stream.tell():], extra_allowed=extra_allowed, where=name)
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise LoaderError(f"{name}: object array payload does not match its header",
                          what="numpy", where=name)
    return array


def _onnx(name: str, data: bytes, **_: Any) -> Any:
    import onnx  # noqa: PLC0415
    from onnx.external_data_helper import uses_external_data  # noqa: PLC0415

    model = onnx.load_model_from_string(data)
    for tensor in _onnx_tensors(model.graph):
        if uses_external_data(tensor):
            raise UnsafeContentError(f"{name}: tensor {tensor.name!r} uses external data, "
                                     "which would be read from unverified files",
                                     what="onnx external data", where=name)
    return model


def _onnx_tensors(graph: Any) -> Any:
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _onnx_tensors(attr.g)
            for g in attr.graphs:
                yield from _onnx_tensors(g)


def _pickle(name: str, data: bytes, *, extra_allowed: tuple[tuple[str, str], ...], **_: Any) -> Any:
    from mgattest.inspect.restricted import restricted_loads  # noqa: PLC0415

    return restricted_loads(data, extra_allowed=extra_allowed, where=name)


def _joblib(name: str, data: bytes, *, extra_allowed: tuple[tuple[str, str], ...], **_: Any) -> Any:
    from mgattest.inspect.restricted import restricted_joblib_load  # noqa: PLC0415

    return restricted_joblib_load(data, extra_allowed=extra_allowed)


def _json(name: str, data: bytes, **_: Any) -> Any:
    return json.loads(data)


def _text(name: str, data: bytes, **_: Any) -> Any:
    return data.decode("utf-8")


def _raw(name: str, data: bytes, **_: Any) -> Any:
    return data


_LOADERS = {
    "safetensors": _safetensors, "pytorch": _pytorch, "numpy": _numpy, "onnx": _onnx,
    "pickle": _pickle, "joblib": _joblib, "json": _json, "text": _text,
}
