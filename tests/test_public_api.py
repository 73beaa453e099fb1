"""Every package's public surface (docs/api.md): its ``__all__``, the lazy export table
that serves it at run time, and the ``TYPE_CHECKING`` imports type checkers read agree,
and every public name resolves."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import mgattest

PACKAGES = ["mgattest.attest", "mgattest.ca", "mgattest.crypt", "mgattest.inspect", "mgattest.loading",
            "mgattest.policy", "mgattest.tlog"]


def _type_checking_names(package: str) -> set[str]:
    """The names bound under ``if TYPE_CHECKING:`` in the package's ``__init__``."""
    init = Path(mgattest.__file__).parent / package.split(".")[1] / "__init__.py"
    names: set[str] = set()
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    names.update(a.asname or a.name for a in stmt.names)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_all_matches_lazy_exports_and_resolves(package: str) -> None:
    module = importlib.import_module(package)
    lazy = set(module._EXPORTS.modules)
    assert lazy <= set(module.__all__)
    assert lazy <= _type_checking_names(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_package_loads_none_of_its_lazy_modules(package: str) -> None:
    """``import mgattest.<pkg>`` stays cheap: the modules behind the lazy names load on
    first use (``mgattest.load`` itself needs the light half of ``policy``)."""
    module = importlib.import_module(package)
    lazy_modules = sorted({t.partition(":")[0] for t in module._EXPORTS.modules.values()}
                          - {f"{package}.errors"})
    code = (f"import sys, {package}; "
            f"print(','.join(m for m in {lazy_modules!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == ""
