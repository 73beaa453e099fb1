"""The text arguments of protocol-0 opcodes, parsed the way CPython's unpicklers do.

The scanner must accept every line that either of CPython's unpicklers (``_pickle`` in C,
``pickle._Unpickler`` in Python) accepts: if it rejected one that they load, it would stop
analysing where ``pickle.load`` goes on running opcodes. Where the two disagree, the
union is accepted. The C unpickler hands a NUL-terminated copy of the line to C parsers,
so a NUL ends the number for it (``I5\\x00junk`` loads as 5); ``INT`` goes through
``strtol(s, &end, 0)`` first (``I010`` is octal 8) and falls back to ``int(s, 0)``.

Each parser returns the value, or :data:`REJECTED` when every CPython unpickler refuses
the line. Lines too long to convert cheaply are accepted as :data:`LARGE` when they could
be numbers: over-accepting only makes the scanner read on, never miss an import.
"""

from __future__ import annotations

import re

REJECTED = object()
LARGE = object()

# Longer numerals are not converted (CPython's own default limit is 4300 digits).
_MAX_NUMERAL = 5000
_C_SPACE = b" \t\n\v\f\r"
_NUMERAL_CHARS = re.compile(rb"[\s+\-0-9a-zA-Z_.]*")


def _before_nul(line: bytes) -> bytes:
    nul = line.find(b"\0")
    return line if nul < 0 else line[:nul]


def _strtol_base0(text: bytes) -> int | None:
    """``strtol(text, &end, 0)`` when it consumes ``text`` up to its end, else None."""
    i, n = 0, len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    start = i
    if i < n and text[i] in b"+-":
        i += 1
    digits_start = i
    base = 10
    if text[i:i + 2] in (b"0x", b"0X") and i + 2 < n and text[i + 2:i + 3] in \
            b"0123456789abcdefABCDEF":
        base, digits_start = 16, i + 2
    elif text[i:i + 1] == b"0":
        base = 8
    alphabet = b"0123456789abcdef"[:base]
    j = digits_start
    while j < n and text[j:j + 1].lower() in alphabet and text[j:j + 1] != b"":
        j += 1
    if j == digits_start or j != n:
        return None
    value = int(text[digits_start:j], base)
    if text[start:start + 1] == b"-":
        value = -value
    if not -2**63 <= value < 2**63:
        return None  # ERANGE: the C unpickler falls back to int(text, 0)
    return value


def _int_base(text: bytes, base: int) -> object:
    """``int(text, base)``, or LARGE / REJECTED."""
    if len(text) > _MAX_NUMERAL:
        return LARGE if _NUMERAL_CHARS.fullmatch(text) else REJECTED
    try:
        return int(text, base)
    except ValueError as exc:
        # a process may have raised sys.set_int_max_str_digits: accept the big numeral
        return LARGE if "limit" in str(exc) else REJECTED


def parse_int(line: bytes) -> object:
    """The ``INT`` opcode's value (``00``/``01`` are the booleans)."""
    if line in (b"00", b"01"):
        return line == b"01"
    if not line:
        return REJECTED  # the C unpickler needs at least one byte before the newline
    c_text = _before_nul(line)
    if len(c_text) <= _MAX_NUMERAL:
        value = _strtol_base0(c_text)
        if value is not None:
            return value
    return _int_base(c_text, 0)


def parse_long(line: bytes) -> object:
    """The ``LONG`` opcode's value: one trailing ``L`` is dropped, then ``int(text, 0)``."""
    if not line:
        return REJECTED
    if line.endswith(b"L"):
        line = line[:-1]
    return _int_base(_before_nul(line), 0)


def parse_memo_key(line: bytes) -> object:
    """The key of a text ``PUT``/``GET`` (base 10)."""
    if not line:
        return REJECTED
    return _int_base(_before_nul(line), 10)


def parse_float(line: bytes) -> object:
    """The ``FLOAT`` opcode's value."""
    text = _before_nul(line)
    if len(text) > _MAX_NUMERAL:
        return LARGE if _NUMERAL_CHARS.fullmatch(text) else REJECTED
    try:
        return float(text)
    except ValueError:
        return REJECTED
