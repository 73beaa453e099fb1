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
    # public name -> dotted module defining it, or "module:attribute" when the public
    # name differs from the one inside the module (``"init_ca": "mgattest.ca._authority:init"``)
    modules: Mapping[str, str]

    def load(self, name: str) -> Any:
        """The value of ``name``, importing its module now (``AttributeError`` if unknown)."""
        target = self.modules.get(name)
        if target is None:
            raise AttributeError(f"module {self.package!r} has no attribute {name!r}")
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute or name)

    def names(self) -> list[str]:
        """The public names, sorted (for ``__all__`` and ``__dir__``)."""
        return sorted(self.modules)
