"""Keras model checks: Lambda layers (marshalled Python bytecode) and custom objects."""

from __future__ import annotations

import json
import re

from mgattest.inspect.pickle_scan import ScanContext
from mgattest.inspect.report import DANGEROUS, MALFORMED, SUSPICIOUS

_LAMBDA_H5 = re.compile(rb'"class_name":\s*"(Lambda|TFOpLambda)"')
_FUNCTION_H5 = re.compile(rb'"(function_type|function)":\s*"?(lambda|__lambda__)')
_CUSTOM_H5 = re.compile(rb'"registered_name":\s*"([^"]{1,200})"')


def check_keras_config(raw: bytes, ctx: ScanContext) -> None:
    """Inspect a Keras v3 ``config.json`` (from a ``.keras`` zip)."""
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        ctx.add(MALFORMED, "keras", f"config.json is not valid JSON: {exc}")
        return
    stack = [(config, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > 200:
            ctx.add(MALFORMED, "keras", "config.json nested too deeply")
            return
        if isinstance(node, dict):
            _check_object(node, ctx)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _check_object(node: dict, ctx: ScanContext) -> None:
    cls = node.get("class_name")
    if not isinstance(cls, str):
        return
    if cls in ("Lambda", "TFOpLambda") or cls == "__lambda__":
        ctx.add(DANGEROUS, "keras-lambda",
                f"Keras {cls} layer: Python bytecode runs when the model is loaded "
                f"(layer {node.get('config', {}).get('name', '?') if isinstance(node.get('config'), dict) else '?'})",
                module=str(node.get("module")), name=cls)
        return
    module = node.get("module")
    registered = node.get("registered_name")
    if isinstance(module, str) and not (module == "keras" or module.startswith("keras.")):
        ctx.add(SUSPICIOUS, "keras-custom",
                f"Keras custom object {cls!r} from module {module!r}: its code is imported "
                "on load", module=module, name=cls)
    elif isinstance(registered, str) and registered != cls and not registered.startswith(
            "keras"):
        ctx.add(SUSPICIOUS, "keras-custom",
                f"Keras custom object registered as {registered!r}", name=cls)


def check_keras_h5(data, ctx: ScanContext) -> None:
    """Legacy ``.h5``: search the stored model_config JSON for Lambda and custom objects.

    Without an HDF5 library this is a byte-level search of the attribute text, which is
    stored uncompressed; it flags, it never clears.
    """
    for m in _LAMBDA_H5.finditer(data):
        ctx.add(DANGEROUS, "keras-lambda",
                f"Keras {m.group(1).decode()} layer in HDF5 model config: Python bytecode "
                "runs when the model is loaded", m.start())
    for m in _FUNCTION_H5.finditer(data):
        ctx.add(DANGEROUS, "keras-lambda", "marshalled Python lambda in HDF5 model config",
                m.start())
    for m in _CUSTOM_H5.finditer(data):
        name = m.group(1).decode("utf-8", "replace")
        if not name.startswith("keras"):
            ctx.add(SUSPICIOUS, "keras-custom", f"custom object {name!r} in HDF5 model config",
                    m.start())
