"""Decimal numbers in attacker-supplied text (query strings, headers, paths), shared by
every package.

``str.isdigit()`` is true for ``²`` (which ``int()`` then refuses with a ``ValueError``)
and for Arabic-Indic or fullwidth digits (which ``int()`` silently accepts as numbers);
``int()`` also takes ``+``, ``_`` and surrounding whitespace, and ``\\d`` in a regular
expression matches every Unicode digit. A number on the wire is ASCII ``0-9`` only.
"""

from __future__ import annotations

import re

_ASCII_DIGITS = re.compile(r"[0-9]+")  # a [0-9] class is ASCII-only, unlike \d

INT64_DIGITS = 19  # enough for every non-negative int64


def parse_ascii_uint(text: object, *, max_digits: int = INT64_DIGITS) -> int | None:
    """``text`` as a non-negative integer if it is 1..``max_digits`` ASCII digits, else None.

    Leading zeros are allowed (as Go's ``strconv`` allows them); signs, ``_``,
    whitespace and non-ASCII digits are not.
    """
    if not isinstance(text, str) or not 0 < len(text) <= max_digits:
        return None
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    return int(text)
