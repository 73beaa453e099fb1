"""The test suite's own layout (tests/README.md): test files sit in the folder of the
package they test or in a cross-cutting suite, and no test module imports another.

Shared code lives in tests/helpers/ (builders) and conftest.py files (fixtures); a test
module that imports another couples two suites and runs the imported module's top level
(and its fixtures) twice.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers.paths import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"

# One folder per mgattest package, plus the suites that test the product as a whole.
PACKAGE_FOLDERS = {"attest", "tlog", "policy", "inspect", "loading", "ca", "cli", "crypt"}
CROSS_CUTTING_FOLDERS = {"adversarial", "realworld"}
# Checks on the repository itself rather than on one package.
ROOT_TEST_FILES = {"test_layout.py", "test_fresh_clone.py", "test_static_checks.py"}
# Not Python test code: vendored vectors and the sigstore-js harness's node_modules.
SKIPPED = (TESTS / "vectors", TESTS / "realworld" / "js")
# Every package's public surface (docs/api.md), checked across the packages.
ROOT_TEST_FILES |= {"test_public_api.py"}


# The fuzz budget's run mode is read in one place (helpers/fuzz_budget.py).
RUN_MODE_READ = re.compile(r"""(environ\.get\(|environ\[|getenv\()\s*["'](MGATTEST_FUZZ|CI)["']""")


def _python_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py")
                  if not any(p.is_relative_to(skipped) for skipped in SKIPPED))


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module name) of every import in ``path``, function-local ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):  # relative: "from . import x", "from .x import y"
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def _is_test_module(dotted: str) -> bool:
    last = dotted.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest" or dotted.startswith(".")


def test_no_test_module_imports_another_test_module() -> None:
    offenders = [f"{path.relative_to(PROJECT_ROOT)}:{line}: imports {module}"
                 for path in _python_files()
                 for line, module in _imported_modules(path) if _is_test_module(module)]
    assert offenders == [], "move shared code to tests/helpers/ or a conftest.py:\n" + \
        "\n".join(offenders)


def test_every_test_file_sits_in_a_package_folder() -> None:
    allowed = PACKAGE_FOLDERS | CROSS_CUTTING_FOLDERS
    offenders = []
    for path in _python_files():
        relative = path.relative_to(TESTS)
        if not path.name.startswith("test_"):
            continue
        if len(relative.parts) == 1:
            if path.name not in ROOT_TEST_FILES:
                offenders.append(str(relative))
        elif relative.parts[0] not in allowed or len(relative.parts) > 2:
            offenders.append(str(relative))
    assert offenders == [], f"test files outside tests/{{{','.join(sorted(allowed))}}}/: " + \
        ", ".join(offenders)


def test_every_package_folder_has_its_conftest() -> None:
    missing = sorted(name for name in PACKAGE_FOLDERS
                     if not (TESTS / name / "conftest.py").is_file())
    assert missing == []


def test_helpers_are_not_test_files() -> None:
    assert sorted(p.name for p in (TESTS / "helpers").rglob("test_*.py")) == []


def test_only_the_fuzz_budget_reads_the_run_mode() -> None:
    budget = TESTS / "helpers" / "fuzz_budget.py"
    offenders = [f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
                 for path in _python_files() if path != budget
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if RUN_MODE_READ.search(line)]
    assert offenders == [], "use tests/helpers/fuzz_budget.py (fuzz, fuzz_examples, RUN_MODE)"
