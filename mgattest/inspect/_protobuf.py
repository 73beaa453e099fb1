"""A minimal, bounded protobuf wire-format reader (enough to walk ONNX models)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeAlias

from mgattest.inspect._limits import Data

# A field's value: a varint, a length-delimited (start, end) span, or None (fixed width).
FieldValue: TypeAlias = "int | tuple[int, int] | None"


class ProtobufError(Exception):
    """The bytes are not valid protobuf wire format."""


def _varint(data: Data, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise ProtobufError(f"truncated varint at byte {pos}")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError(f"varint too long at byte {pos}")


def fields(data: Data, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, FieldValue, int]]:
    """Yield ``(field_number, wire_type, value, offset)``; length-delimited values are
    ``(start, end)`` spans into ``data``, varints are ints, fixed values are skipped (None)."""
    end = len(data) if end is None else end
    pos = start
    value: FieldValue
    while pos < end:
        at = pos
        key, pos = _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(f"field number 0 at byte {at}")
        if wire == 0:
            value, pos = _varint(data, pos, end)
        elif wire == 1:
            pos += 8
            value = None
        elif wire == 5:
            pos += 4
            value = None
        elif wire == 2:
            n, pos = _varint(data, pos, end)
            if pos + n > end:
                raise ProtobufError(f"field {number} at byte {at}: length {n} runs past its "
                                    "message")
            value = (pos, pos + n)
            pos += n
        else:
            raise ProtobufError(f"unsupported wire type {wire} at byte {at}")
        if pos > end:
            raise ProtobufError(f"truncated field {number} at byte {at}")
        yield number, wire, value, at
