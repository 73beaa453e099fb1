"""Names for JSON data whose shape is open (documents parsed from JSON or YAML).

Where a JSON form has a fixed shape it gets a ``TypedDict`` (``verdict.VerdictJSON``);
these aliases are for the rest: policy documents, in-toto statements and bundles,
audit records with caller-chosen extra fields, SLSA predicates.
"""

from __future__ import annotations

from typing import Any

JSONValue = Any
"""Any value ``json.dumps`` accepts (or ``json.loads`` / ``yaml.safe_load`` returns):
``None``, ``bool``, ``int``, ``float``, ``str``, lists and string-keyed dicts of them.
``Any``, not a recursive union, because readers index into it without narrowing."""

JSONObject = dict[str, JSONValue]
"""A JSON object (an arbitrary string-keyed document)."""
