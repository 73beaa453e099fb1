"""The policy's format names: the scanner's content-based labels, in one vocabulary.

A file's format is decided once, by ``mgattest.inspect`` from its bytes
(:data:`mgattest.inspect.detect.FAMILIES`); the policy never re-derives it from the
file name, so a file the scanner calls ``unknown`` is ``other`` here whatever its name.
"""

from __future__ import annotations

from typing import Any

from mgattest.inspect.detect import PICKLED_FORMATS, POLICY_FORMATS, policy_format

# Policy formats whose loader always unpickles. Other files can need an unpickler too
# (an .npy object array, a zip holding a pickle): ``FileReport.pickled`` says so.
PICKLE_FORMATS = PICKLED_FORMATS

__all__ = ["PICKLE_FORMATS", "POLICY_FORMATS", "detect_format", "normalize_format"]


def normalize_format(fmt: str | None, name: str | None = None) -> str:
    """The policy's name for the scanner label ``fmt`` (``other`` without a label).

    ``name`` is accepted for compatibility and ignored: names never decide formats.
    """
    del name
    return policy_format(fmt)


def detect_format(name: str, data: Any) -> str:
    """The policy format of the bytes ``data``, scanned (``name`` is for messages only).

    Given only a file's head, what cannot be recognised from it is ``other`` (loaded as
    raw bytes, never deserialised).
    """
    from mgattest.inspect.scanner import scan_bytes  # noqa: PLC0415 - heavy, rarely needed

    return scan_bytes(name, data).policy_format
