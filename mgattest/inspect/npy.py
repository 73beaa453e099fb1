"""numpy ``.npy`` headers: parse without numpy, find object arrays (which hold a pickle)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from mgattest.inspect.limits import Limits


class NpyError(Exception):
    """The header is not a valid ``.npy`` header."""


@dataclass(frozen=True)
class NpyHeader:
    descr: object
    fortran_order: bool
    shape: tuple[int, ...]
    data_offset: int

    @property
    def has_object(self) -> bool:
        return _descr_has_object(self.descr)


def _descr_has_object(descr: object, depth: int = 0) -> bool:
    if depth > 32:
        raise NpyError("dtype description nested too deeply")
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        for item in descr:
            if not isinstance(item, tuple) or len(item) < 2:
                raise NpyError("bad structured dtype field")
            if _descr_has_object(item[1], depth + 1):
                return True
        return False
    raise NpyError(f"bad dtype description {type(descr).__name__}")


def descr_itemsize(descr: object, depth: int = 0) -> int | None:
    """Bytes per element for simple and structured descrs; None when unknown."""
    if depth > 32:
        return None
    if isinstance(descr, str):
        m = re.fullmatch(r"[<>|=]?([a-zA-Z])(\d*)(?:\[.*\])?", descr)
        if not m:
            return None
        kind, digits = m.group(1), m.group(2)
        if not digits:
            return {"b": 1, "?": 1, "O": 8}.get(kind)
        size = int(digits)
        return size * 4 if kind == "U" else size
    if isinstance(descr, list):
        total = 0
        for item in descr:
            size = descr_itemsize(item[1], depth + 1)
            if size is None:
                return None
            if len(item) > 2 and isinstance(item[2], tuple):
                for dim in item[2]:
                    size *= dim
            total += size
        return total
    return None


def parse_header(data, limits: Limits) -> NpyHeader:
    """Parse a ``.npy`` header (versions 1-3)."""
    if len(data) < 10 or bytes(data[:6]) != b"\x93NUMPY":
        raise NpyError("missing .npy magic")
    major = data[6]
    if major == 1:
        hlen, start = int.from_bytes(data[8:10], "little"), 10
    elif major in (2, 3):
        if len(data) < 12:
            raise NpyError("truncated .npy header")
        hlen, start = int.from_bytes(data[8:12], "little"), 12
    else:
        raise NpyError(f"unsupported .npy version {major}")
    if hlen > limits.max_npy_header_bytes or start + hlen > len(data):
        raise NpyError(f"header length {hlen} is out of bounds")
    raw = bytes(data[start:start + hlen])
    try:
        text = raw.decode("utf-8" if major == 3 else "latin-1")
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        raise NpyError("header is not a Python literal dict") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise NpyError("header must have exactly descr, fortran_order and shape")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise NpyError(f"bad shape {shape!r}")
    if not isinstance(header["fortran_order"], bool):
        raise NpyError("fortran_order must be a bool")
    _descr_has_object(header["descr"])
    return NpyHeader(header["descr"], header["fortran_order"], shape, start + hlen)
