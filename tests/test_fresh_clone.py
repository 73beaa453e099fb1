"""A fresh clone passes its own tests: no test data or path outside the repository.

The static checks run everywhere (fast). ``test_fresh_clone_runs_tests_that_need_data``
clones the committed HEAD into a new empty directory and runs, there, the tests that
read the vendored vectors; CI (``.ci/run``) goes further and runs the README's
commands (``scripts/test.sh``, ``scripts/walkthrough.sh``) in such a clone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import CONFORMANCE_DIR, PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"

# What a test reading outside the repository looks like (a sibling checkout, a CI-only
# mount, an environment variable pointing at one).
OUTSIDE = re.compile(r"\.\./shared|MGATTEST_SHARED|/work/|PROJECT_ROOT\.parent|"
                     r"parent\.parent\.parent")


def _git(*args: str, cwd: Path = PROJECT_ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True, timeout=120).stdout


def _in_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    try:
        return _git("rev-parse", "--show-toplevel").strip() == str(PROJECT_ROOT)
    except (subprocess.CalledProcessError, OSError):
        return False


def test_no_test_refers_to_paths_outside_the_repository():
    offenders = []
    test_code = [p for p in TESTS.rglob("*.py") if not p.is_relative_to(TESTS / "vectors")
                 and "node_modules" not in p.parts]
    for path in sorted(test_code) + [PROJECT_ROOT / "pyproject.toml"]:
        if path.name == Path(__file__).name:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def _referenced_vector_files() -> set[str]:
    cases = json.loads((CONFORMANCE_DIR / "cases.json").read_text())
    names = {"cases.json", "LICENSE", "NOTICE"}
    for case in cases:
        for field in ("bundle", "artifact", "trusted_root", "key"):
            if case.get(field):
                names.add(case[field])
    return names


def test_vendored_vectors_are_complete_with_their_licence():
    missing = sorted(n for n in _referenced_vector_files() if not (CONFORMANCE_DIR / n).is_file())
    assert missing == []
    notice = (CONFORMANCE_DIR / "NOTICE").read_text()
    assert "sigstore-conformance" in notice and "Apache License" in notice
    assert "Apache License" in (CONFORMANCE_DIR / "LICENSE").read_text()
    assert (TESTS / "vectors" / "README.md").is_file()


@pytest.mark.skipif(not _in_git_checkout(), reason="not a git checkout (e.g. an sdist)")
def test_vendored_vectors_are_committed():
    """Present on this disk is not enough: a clone only gets what git tracks."""
    tracked = set(_git("ls-files", "-z", "tests/vectors/conformance").split("\0"))
    prefix = "tests/vectors/conformance/"
    untracked = sorted(n for n in _referenced_vector_files() if prefix + n not in tracked)
    assert untracked == []


@pytest.mark.slow
@pytest.mark.skipif(not _in_git_checkout(), reason="not a git checkout (e.g. an sdist)")
def test_fresh_clone_runs_tests_that_need_data(tmp_path):
    """Clone HEAD into a new empty directory and run, there, the tests that read test
    data (the conformance suite through the CLI, bundle parsing, certificates) and the
    static checks above. Nothing may come from the original checkout or its parent."""
    clone = tmp_path / "empty" / "mgattest"
    clone.parent.mkdir()
    _git("clone", "--quiet", "--no-hardlinks", str(PROJECT_ROOT), str(clone), cwd=tmp_path)
    assert _git("rev-parse", "HEAD", cwd=clone) == _git("rev-parse", "HEAD")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MGATTEST_", "PYTEST_")) and k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(clone)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
         "-m", "not slow", "tests/test_fresh_clone.py", "tests/attest/test_conformance_verify.py",
         "tests/attest/test_certs.py", "tests/attest/test_attest_bundle.py"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    imported_from = subprocess.run(
        [sys.executable, "-c", "import mgattest, tests.helpers.paths as c; "
         "print(mgattest.__file__); print(c.CONFORMANCE_DIR)"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=60).stdout.split()
    assert all(p.startswith(str(clone)) for p in imported_from), imported_from
