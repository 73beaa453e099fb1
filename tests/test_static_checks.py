"""The static-check scripts catch what they promise (scripts/check_imports.py,
scripts/check_comments.py), and the package passes them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers.paths import PROJECT_ROOT


def _script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (scripts/ is not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "mgattest"
    for rel, text in {"__init__.py": "", **files}.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pkg


def test_the_package_fits_its_layering():
    assert _script("check_imports").main([]) == 0


def test_an_upward_import_is_named_with_file_and_line(tmp_path, capsys):
    pkg = _package(tmp_path, {
        "tlog/__init__.py": "",
        "tlog/log.py": "def f():\n    from mgattest.attest import sign\n",
        "attest/__init__.py": "",
        "attest/sign.py": "from mgattest.tlog import log\n",
    })
    assert _script("check_imports").main([str(pkg)]) == 1
    err = capsys.readouterr().err
    assert f"{pkg / 'tlog' / 'log.py'}:2: mgattest.tlog.log (tlog) imports mgattest.attest.sign" in err
    assert "package cycle: attest -> tlog -> attest" in err


def test_a_leaf_module_may_not_import_a_package(tmp_path, capsys):
    pkg = _package(tmp_path, {"_files.py": "import mgattest.inspect.report\n",
                              "inspect/__init__.py": "", "inspect/report.py": ""})
    assert _script("check_imports").main([str(pkg)]) == 1
    assert "_files.py:1:" in capsys.readouterr().err


@pytest.mark.parametrize("statement", [
    "from mgattest.attest import _sign as signing\n",
    "from mgattest.attest._sign import sign_model\n",
    "import mgattest.attest._sign\n",
])
def test_another_packages_internal_module_is_refused(tmp_path, capsys, statement):
    pkg = _package(tmp_path, {"attest/__init__.py": "", "attest/_sign.py": "",
                              "policy/__init__.py": "", "policy/_vsa.py": statement})
    assert _script("check_imports").main([str(pkg)]) == 1
    assert "an internal module of attest" in capsys.readouterr().err


def test_a_packages_public_name_is_the_way_in(tmp_path):
    pkg = _package(tmp_path, {"attest/__init__.py": "", "attest/_sign.py": "",
                              "attest/errors.py": "",
                              "policy/__init__.py": "",
                              "policy/_vsa.py": "from mgattest.attest import sign_model\n"
                                                "from mgattest.attest.errors import X\n"})
    assert _script("check_imports").main([str(pkg)]) == 0


@pytest.mark.parametrize(("comment", "ok"), [
    ("import x  # noqa: PLC0415 - heavy, only for .pt files", True),
    ("x = f()  # type: ignore[arg-type]  # the stub is too narrow", True),
    ("import x  # noqa: PLC0415", False),
    ("import x  # noqa", False),
    ("x = f()  # type: ignore", False),
    ("x = '# noqa'", True),  # inside a string: not a comment
])
def test_every_suppression_names_codes_and_a_reason(tmp_path, comment, ok):
    path = tmp_path / "m.py"
    path.write_text(comment + "\n")
    assert (_script("check_comments").main([str(path)]) == 0) is ok


def test_the_package_suppressions_all_give_reasons():
    assert _script("check_comments").main([]) == 0
