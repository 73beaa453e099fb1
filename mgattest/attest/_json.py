"""Names for JSON data that is genuinely arbitrary (parsed documents, proto-JSON).

A bundle, a trusted root or a statement arrives as JSON and is validated field by field
where it is used; until then its type is "a JSON object", and these aliases say so in
signatures instead of a bare ``dict[str, Any]``. Where a parsed, typed object exists
(``Bundle``, ``TrustedRoot``, ``TransparencyLogEntry``) signatures use that instead.
"""

from __future__ import annotations

from typing import Any, TypeAlias

JSONValue: TypeAlias = Any
"""Any JSON value (object, array, string, number, boolean or null), as ``json.loads`` returns."""

JSONObject: TypeAlias = dict[str, Any]
"""A JSON object: string keys, arbitrary JSON values."""
