"""Keras model checks: every place a config can name code.

A Keras v3 ``config.json`` names Python objects by ``module`` + ``class_name`` (or
``registered_name``). Keras imports and calls what it names when the model loads, so
these are findings:

* ``Lambda``/``TFOpLambda`` layers and ``__lambda__`` objects: marshalled bytecode
  (dangerous);
* function references (``class_name`` ``function`` / ``__function__``): Keras resolves
  ``module.config`` and calls it. Outside the pure-math namespaces (activations,
  losses, ...) that includes the public safe-mode bypasses such as
  ``keras.config.enable_unsafe_deserialization`` and ``keras.utils.get_file``
  (dangerous); inside them, suspicious;
* any object from ``keras.config``, ``keras.utils``, ``keras.saving``, ``keras.models``,
  ``keras.backend``, ``keras.preprocessing``, ``keras.datasets`` (loading, download or
  configuration helpers, not layers) (dangerous), except the model classes
  (``keras.src.models.functional.Functional`` ...) and the backend optimizer classes
  (``keras.src.backend.torch.optimizers.torch_adam.Adam``) that the real saving code
  writes for every functional or compiled model;
* objects from modules outside ``keras`` (custom code imported on load) (suspicious).

Keras writes its own built-in functions (``loss=keras.losses.mean_squared_error``) as
``{"module": "builtins", "class_name": "function", "config": "mean_squared_error"}`` and
resolves that name among its built-in modules only; Keras < 3.9 also falls back to
Python's ``builtins`` module, so a Python built-in name there (``exec``, ``eval``,
``open`` ...) is dangerous and any other name is Keras's own code (no finding).
"""

from __future__ import annotations

import builtins
import json
import re
from typing import Any

from mgattest.inspect._limits import Data
from mgattest.inspect._pickle_scan import ScanContext
from mgattest.inspect._report import DANGEROUS, MALFORMED, SUSPICIOUS

_LAMBDA_CLASSES = frozenset({"Lambda", "TFOpLambda"})
_FUNCTION_CLASSES = frozenset({"function", "__function__"})
# Namespaces whose functions are pure tensor math.
_MATH_NAMESPACES = ("activations", "losses", "metrics", "initializers", "regularizers",
                    "constraints", "ops")
# Namespaces that load files, download, or switch safety off: never in a model config.
_TOOL_NAMESPACES = ("config", "utils", "saving", "models", "backend", "preprocessing",
                    "datasets")
# Classes in the ``models`` namespace that are models, not loading helpers.
_MODEL_CLASSES = frozenset({"Model", "Sequential", "Functional"})
_PYTHON_BUILTINS = frozenset(dir(builtins))

_LAMBDA_H5 = re.compile(rb'"class_name":\s*"(Lambda|TFOpLambda)"')
_FUNCTION_H5 = re.compile(rb'"(function_type|function)":\s*"?(lambda|__lambda__)')
_FUNCTION_REF_H5 = re.compile(rb'(?:"module":\s*"([^"]{0,200})",\s*)?'
                              rb'"class_name":\s*"(function|__function__|__lambda__)"'
                              rb'(?:,\s*"config":\s*"([^"]{0,200})")?')
_TOOL_MODULE_H5 = re.compile(rb'"module":\s*"(keras(?:\.src)?\.(?:'
                             + "|".join(_TOOL_NAMESPACES).encode() + rb')[^"]{0,200})"'
                             rb'(?:,\s*"class_name":\s*"([^"]{1,200})")?')
_CUSTOM_H5 = re.compile(rb'"registered_name":\s*"([^"]{1,200})"')


def looks_like_keras_config(raw: bytes) -> bool:
    """True when ``raw`` is a JSON object naming a Keras object (``class_name`` at top)."""
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and isinstance(config.get("class_name"), str)


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


def _namespace(module: str) -> str | None:
    """``activations`` for ``keras.activations`` / ``keras.src.activations.relu``."""
    parts = module.split(".")
    if parts[0] != "keras":
        return None
    rest = parts[2:] if parts[1:2] == ["src"] else parts[1:]
    return rest[0] if rest else ""


def _check_object(node: dict[str, Any], ctx: ScanContext) -> None:
    cls = node.get("class_name")
    if not isinstance(cls, str):
        return
    module = node.get("module")
    module = module if isinstance(module, str) else None
    registered = node.get("registered_name")
    inner = node.get("config")
    if cls == "__lambda__":
        ctx.add(DANGEROUS, "keras-lambda", "marshalled Python lambda (__lambda__): its "
                "bytecode runs when the model is loaded", module=str(module), name=cls)
        return
    if cls in _LAMBDA_CLASSES:
        layer = inner.get("name", "?") if isinstance(inner, dict) else "?"
        ctx.add(DANGEROUS, "keras-lambda", f"Keras {cls} layer: Python bytecode runs when the "
                f"model is loaded (layer {layer})", module=str(module), name=cls)
        return
    namespace = _namespace(module) if module else None
    if cls in _FUNCTION_CLASSES or registered == "function":
        _check_function_reference(module, namespace, cls, inner, ctx)
        return
    if module is not None and names_tool(module, cls):
        ctx.add(DANGEROUS, "keras-function", f"Keras config names {module}.{cls}, a loading or "
                "configuration helper, not a layer", module=module, name=cls)
    elif module is not None and namespace is None:
        ctx.add(SUSPICIOUS, "keras-custom",
                f"Keras custom object {cls!r} from module {module!r}: its code is imported "
                "on load", module=module, name=cls)
    elif "module" in node and module is None and isinstance(registered, str):
        ctx.add(SUSPICIOUS, "keras-custom",
                f"Keras custom object {cls!r} (registered as {registered!r}) with no module: "
                "the loader must supply its code",
                name=cls)
    elif isinstance(registered, str) and registered != cls and not registered.startswith(
            "keras"):
        ctx.add(SUSPICIOUS, "keras-custom",
                f"Keras custom object registered as {registered!r}", name=cls)


def _check_function_reference(module: str | None, namespace: str | None, cls: str,
                              inner: object, ctx: ScanContext,
                              offset: int | None = None) -> None:
    """Report a function reference by where Keras can resolve it."""
    if module == "builtins" and isinstance(inner, str) and inner not in _PYTHON_BUILTINS:
        return  # a Keras built-in function (losses, metrics, activations) saved by name
    target = f"{module}.{inner}" if isinstance(inner, str) else f"{module} ({cls})"
    severity = SUSPICIOUS if namespace in _MATH_NAMESPACES else DANGEROUS
    ctx.add(severity, "keras-function", f"Keras config names the function {target}: "
            "Keras imports and calls it on load", offset, module=module, name=str(inner))


def names_tool(module: str, cls: str | None) -> bool:
    """True when ``module.cls`` is a Keras loading/configuration helper, not a model part.

    ``cls`` None (not known) counts as a helper: fail closed.
    """
    namespace = _namespace(module)
    if namespace not in _TOOL_NAMESPACES:
        return False
    if namespace == "models":
        return cls not in _MODEL_CLASSES
    if namespace == "backend":
        return not _is_backend_optimizer_class(module, cls)
    return True


def _is_backend_optimizer_class(module: str, cls: str | None) -> bool:
    """``keras.src.backend.<name>.optimizers...`` + a class name (the torch optimizers)."""
    parts = module.split(".")
    return (parts[:3] == ["keras", "src", "backend"] and "optimizers" in parts[4:5]
            and cls is not None and cls[:1].isupper() and cls.isidentifier())


def check_keras_h5(data: Data, ctx: ScanContext) -> None:
    """Legacy ``.h5``: search the stored model_config JSON for code references.

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
    for m in _FUNCTION_REF_H5.finditer(data):
        raw_module, raw_cls, raw_inner = m.groups()
        module = raw_module.decode("utf-8", "replace") if raw_module is not None else None
        cls = raw_cls.decode("utf-8", "replace")  # the class_name group always matches
        inner = raw_inner.decode("utf-8", "replace") if raw_inner is not None else None
        if cls == "__lambda__":
            ctx.add(DANGEROUS, "keras-lambda", "marshalled Python lambda (__lambda__) in HDF5 "
                    "model config: its bytecode runs when the model is loaded", m.start())
        else:
            _check_function_reference(module, _namespace(module) if module else None, cls,
                                      inner, ctx, m.start())
    for m in _TOOL_MODULE_H5.finditer(data):
        cls = m.group(2).decode("utf-8", "replace") if m.group(2) else None
        if not names_tool(m.group(1).decode("utf-8", "replace"), cls):
            continue
        ctx.add(DANGEROUS, "keras-function", f"HDF5 model config names "
                f"{m.group(1).decode('utf-8', 'replace')}, a loading or configuration helper",
                m.start())
    for m in _CUSTOM_H5.finditer(data):
        name = m.group(1).decode("utf-8", "replace")
        if not name.startswith("keras") and name != "function":
            ctx.add(SUSPICIOUS, "keras-custom", f"custom object {name!r} in HDF5 model config",
                    m.start())
