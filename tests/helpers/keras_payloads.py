"""Pieces of Keras model configs for the scanner tests."""

from __future__ import annotations


def function_ref(module: str, name: str, class_name: str = "function") -> dict:
    """A Keras serialized reference to the function ``module.name``."""
    return {"module": module, "class_name": class_name, "config": name,
            "registered_name": "function"}
