"""Strict JSON object decoding shared by every package.

Two JSON parsers can disagree on which value a repeated key keeps, so a verifier and a
loader could see different documents in the same bytes. Everything mgattest parses for a
security decision (statements, safetensors headers) refuses duplicate keys instead.
"""

from __future__ import annotations

from typing import Any, TypeAlias

JSONValue: TypeAlias = Any
"""Any value ``json.loads`` (or ``yaml.safe_load``) returns: ``None``, ``bool``, ``int``,
``float``, ``str``, lists and string-keyed dicts of them. ``Any``, not a recursive union,
because readers index into it without narrowing; each reader checks what it uses."""

JSONObject: TypeAlias = dict[str, Any]
"""A decoded JSON object (what :func:`json.loads` returns for ``{...}``) whose members are
still arbitrary JSON: each reader checks the members it uses. Where a document's shape is
known and checked, a ``TypedDict`` or a parsed class stands in its place."""


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads` that raises on a repeated key."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out
