"""The policy's format names: the scanner's content-based labels, in one vocabulary.

A file's format is decided once, by ``mgattest.inspect`` from its bytes
(:data:`mgattest.inspect.detect.FAMILIES`, mapped by
:func:`mgattest.inspect.detect.policy_format`); the policy never re-derives it from the
file name, so a file the scanner calls ``unknown`` is ``other`` here whatever its name.
"""

from __future__ import annotations

from typing import Any

__all__ = ["detect_format"]


def detect_format(name: str, data: Any) -> str:
    """The policy format of the bytes ``data``, scanned (``name`` is for messages only).

    Given only a file's head, what cannot be recognised from it is ``other`` (loaded as
    raw bytes, never deserialised).
    """
    from mgattest.inspect.scanner import scan_bytes  # noqa: PLC0415 - heavy, rarely needed

    return scan_bytes(name, data).policy_format
