"""Lazy package exports (PEP 562): one implementation for every package ``__init__``.

A package lists ``name -> module`` and forwards its module-level ``__getattr__`` to
:meth:`LazyExports.load`, so importing one submodule does not import the whole package.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class LazyExports:
    """The public names of ``package`` and the module each is imported from on first use."""

    package: str
    modules: Mapping[str, str]  # public name -> dotted module defining it

    def load(self, name: str) -> Any:
        """The value of ``name``, importing its module now (``AttributeError`` if unknown)."""
        module = self.modules.get(name)
        if module is None:
            raise AttributeError(f"module {self.package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def names(self) -> list[str]:
        """The public names, sorted (for ``__all__`` and ``__dir__``)."""
        return sorted(self.modules)
