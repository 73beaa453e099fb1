"""numpy ``.npy`` headers: parse without numpy, find object arrays (which hold a pickle).

Whether an array holds Python objects is decided the way numpy decides it when it reads
the header (``numpy.lib.format.descr_to_dtype`` then ``numpy.dtype``): the descr may be
a type string (``'|O'``, ``'object'``, ``'O8'``, ``'O+8'``), a comma string
(``'i4,O'``, ``'(1,)O'``, ``'2O'``), a ``(base, shape)`` tuple or a list of fields, nested.
Each form is parsed here with numpy's own rules (re-implemented, stdlib only, and tested
against ``numpy.dtype(descr).hasobject`` over generated descrs). A descr this parser
does not recognise raises :class:`NpyError` instead of guessing "no objects".
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from mgattest.inspect._limits import Data, Limits


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
        return descr_has_object(self.descr)


_MAX_DEPTH = 32
# Type names numpy looks up whole (``numpy.sctypeDict``), without a byte-order prefix.
_OBJECT_NAMES = frozenset({"object", "object_"})
_PLAIN_NAMES = frozenset({
    "a", "bool", "bool_", "byte", "bytes", "bytes_", "cdouble", "clongdouble", "complex",
    "complex128", "complex256", "complex64", "csingle", "datetime64", "double", "float",
    "float128", "float16", "float32", "float64", "half", "int", "int16", "int32", "int64",
    "int8", "int_", "intc", "intp", "long", "longdouble", "longlong", "short", "single",
    "str", "str_", "timedelta64", "ubyte", "uint", "uint16", "uint32", "uint64", "uint8",
    "uintc", "uintp", "ulong", "ulonglong", "unicode", "ushort", "void"})
# One-character type codes. 'O' is object; 'T' (StringDType) also holds references.
_OBJECT_CODES = frozenset("OT")
_PLAIN_CODES = frozenset("?bBhHiIlLqQpPefdgFDGSUVaMmc")
# kind + size ('f8', 'U10', 'O8'): numpy reads the size with C strtol, which skips leading
# whitespace and takes a sign, so 'O 8' and 'O+8' are object dtypes too.
_SIZED = re.compile(r"(.)([ \t\n\v\f\r]*[+-]?[0-9]+)", re.DOTALL)
_SIZED_KINDS = frozenset("biufcSUVaO?T")
# numpy._core._internal._commastring
_FORMAT_RE = re.compile(r"(?P<order1>[<>|=]?)(?P<repeats> *[(]?[ ,0-9]*[)]? *)"
                        r"(?P<order2>[<>|=]?)(?P<dtype>[A-Za-z0-9.?]*(?:\[[a-zA-Z0-9,.]+\])?)")
_SEP_RE = re.compile(r"\s*,\s*")
_SPACE_RE = re.compile(r"\s+$")


def descr_has_object(descr: object, depth: int = 0) -> bool:
    """True when numpy would build a dtype holding Python objects from ``descr``.

    Raises :class:`NpyError` when ``descr`` is not a form this parser knows exactly
    (the caller must not treat that as "no objects").
    """
    if depth > _MAX_DEPTH:
        raise NpyError("dtype description nested too deeply")
    if isinstance(descr, str):
        return _str_has_object(descr, depth)
    if isinstance(descr, tuple):
        # (base, shape): a subarray of base
        if len(descr) != 2 or not _is_shape(descr[1]):
            raise NpyError(f"dtype tuple {_short(descr)} is not (base, shape)")
        return descr_has_object(descr[0], depth + 1)
    if isinstance(descr, list):
        return any(_field_has_object(field, depth + 1) for field in descr)
    raise NpyError(f"bad dtype description {type(descr).__name__}")


def _field_has_object(field: object, depth: int) -> bool:
    if not isinstance(field, tuple) or len(field) not in (2, 3):
        raise NpyError("bad structured dtype field")
    if len(field) == 3 and not _is_shape(field[2]):
        raise NpyError(f"bad shape in structured dtype field {_short(field)}")
    # numpy drops nameless void padding fields; counting their objects anyway only
    # errs towards scanning the data as a pickle.
    return descr_has_object(field[1], depth)


def _is_shape(value: object) -> bool:
    def is_dim(d: object) -> bool:
        return isinstance(d, int) and not isinstance(d, bool)
    return is_dim(value) or (isinstance(value, tuple) and all(map(is_dim, value)))


def _str_has_object(text: str, depth: int) -> bool:
    """``numpy.dtype(text).hasobject`` for a type string (numpy's ``_convert_from_str``)."""
    if _is_commastring(text):
        return any(descr_has_object(item, depth + 1) for item in _commastring(text))
    body = text[1:] if len(text) > 1 and text[0] in "<>=|" else text
    if not body:
        raise NpyError("dtype string is only a byte-order character")
    if _is_datetime(body):
        return False
    if len(body) == 1:
        if body in _OBJECT_CODES:
            return True
        if body in _PLAIN_CODES:
            return False
        raise NpyError(f"unknown dtype code {_short(text)}")
    sized = _SIZED.fullmatch(body)
    if sized and sized.group(1) in _SIZED_KINDS:
        return sized.group(1) in _OBJECT_CODES
    # numpy looks the whole string (byte-order character included) up by name
    if text in _OBJECT_NAMES:
        return True
    if text in _PLAIN_NAMES:
        return False
    raise NpyError(f"unrecognised dtype string {_short(text)}")


def _is_datetime(body: str) -> bool:
    return (len(body) >= 2 and body[1] == "8" and body[0] in "Mm") or body.startswith(
        ("datetime64", "timedelta64"))


def _is_commastring(text: str) -> bool:
    """numpy's ``_check_for_commastring``: a leading digit or ``()``, or a comma outside []."""
    if text[:1].isdigit() and text[:1].isascii():
        return True
    if len(text) > 1 and text[0] in "<>=|" and "0" <= text[1] <= "9":
        return True
    if text.startswith("()") or (len(text) > 3 and text[0] in "<>=|" and text[1:3] == "()"):
        return True
    brackets = 0
    for ch in text:
        if ch == "," and brackets == 0:
            return True
        brackets += (ch == "[") - (ch == "]")
    return False


def _commastring(text: str) -> list[object]:
    """The items numpy's ``_commastring`` splits ``text`` into: strings or (str, shape)."""
    items: list[object] = []
    pos = 0
    while pos < len(text):
        match = _FORMAT_RE.match(text, pos)
        if match is None:
            raise NpyError(f"dtype string {_short(text)} is not recognised")
        order1, repeats, order2, dtype = match.groups()
        pos = match.end()
        if pos < len(text):
            if _SPACE_RE.match(text, pos):
                pos = len(text)
            else:
                sep = _SEP_RE.match(text, pos)
                if sep is None:
                    raise NpyError(f"dtype string {_short(text)} is not recognised")
                pos = sep.end()
        if order1 and order2 and order1 != order2:
            raise NpyError(f"dtype string {_short(text)} has two byte orders")
        # the byte order cannot add or remove objects; numpy drops the native ones
        if not repeats:
            items.append(dtype)
            continue
        try:
            shape = ast.literal_eval(repeats)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise NpyError(f"bad repeat count in dtype string {_short(text)}") from None
        if not _is_shape(shape):
            raise NpyError(f"bad repeat count in dtype string {_short(text)}")
        items.append((dtype, shape))
    if not items:
        raise NpyError("empty dtype string")
    return items


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


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
            item_size = descr_itemsize(item[1], depth + 1)
            if item_size is None:
                return None
            if len(item) > 2 and isinstance(item[2], tuple):
                for dim in item[2]:
                    item_size *= dim
            total += item_size
        return total
    return None


def parse_header(data: Data, limits: Limits) -> NpyHeader:
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
    descr_has_object(header["descr"])
    return NpyHeader(header["descr"], header["fortran_order"], shape, start + hlen)
