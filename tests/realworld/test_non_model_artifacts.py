"""Release artifacts that are not models, verified with provenance flags (#10 item 5).

Files shaped like what PyPI serves (a wheel with empty ``__init__.py`` files, an sdist
whose MANIFEST.in reads as pickle opcodes) and this machine's ELF ``ls``: the reference verifiers
accept their signatures, so content inspection must not deny them; an unrecognised
format is "not inspected" (never "scan safe") and denies only under
``content.unknown: deny``.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers.peers import GENERIC_BUILDER, cli
from mgattest.inspect import scan_path

BUILDER = GENERIC_BUILDER + "@refs/tags/v1.9.0"



def _wheel(path: Path) -> Path:
    """A wheel laid out as pip builds them: empty package markers, metadata, RECORD."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg/__init__.py", b"")
        zf.writestr("pkg/sub/__init__.py", b"")
        zf.writestr("pkg/core.py", b"def f():\n    return 1\n")
        zf.writestr("pkg-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: pkg\n")
        zf.writestr("pkg-1.0.dist-info/RECORD", b"")
    return path


def _sdist(path: Path) -> Path:
    """An sdist whose MANIFEST.in begins with 'include' ('i' is pickle's INST opcode)."""
    files = {"pkg-1.0/MANIFEST.in": b"include CHANGES LICENSE\nrecursive-include docs *\n",
             "pkg-1.0/setup.cfg": b"[metadata]\nname = pkg\n", "pkg-1.0/LICENSE": b""}
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def artifacts(tmp_path):
    binary = tmp_path / "tool-linux-amd64"
    shutil.copyfile(shutil.which("ls") or "/bin/ls", binary)
    return {"wheel": _wheel(tmp_path / "pkg-1.0-py3-none-any.whl"),
            "sdist": _sdist(tmp_path / "pkg-1.0.tar.gz"), "binary": binary}


@pytest.mark.parametrize("kind", ["wheel", "sdist", "binary"])
def test_scanner_does_not_condemn_ordinary_release_files(artifacts, kind):
    [report] = scan_path(artifacts[kind])
    assert report.verdict == "safe", report.reasons()


def test_binary_is_not_inspected_rather_than_safe(artifacts):
    [report] = scan_path(artifacts["binary"])
    assert report.format == "code"  # a native executable: labelled, but not inspected
    assert any(f.kind == "code-file" and "not inspected" in f.detail for f in report.findings)


def test_empty_pickle_is_still_malformed(tmp_path):
    (tmp_path / "weights.pkl").write_bytes(b"")
    [report] = scan_path(tmp_path / "weights.pkl")
    assert report.verdict == "malformed"


def test_text_with_resolvable_import_is_still_scanned(tmp_path):
    """Sibling guard: a nameless file that *is* a pickle importing os.system stays dangerous."""
    (tmp_path / "notes").write_bytes(b"cos\nsystem\n(S'id'\ntR.")
    [report] = scan_path(tmp_path / "notes")
    assert report.verdict == "dangerous"


@pytest.mark.parametrize("kind", ["wheel", "sdist", "binary"])
def test_provenance_flags_allow_release_artifacts(tmp_path, artifacts, kind):
    assert cli("keygen", "--out", tmp_path / "k")[0] == 0
    target = artifacts[kind]
    code, output = cli("sign", target, "--key", tmp_path / "k.key", "--no-log",
                        "--builder-id", BUILDER)
    assert code == 0, output
    code, output = cli("verify", target, "--key", tmp_path / "k.pub", "--allow-unlogged",
                        "--builder-id", BUILDER)
    assert code == 0, output
    if kind == "binary":
        assert "not inspected" in output and "scan safe" not in output, output


def test_content_unknown_deny(tmp_path, artifacts):
    assert cli("keygen", "--out", tmp_path / "k")[0] == 0
    target = artifacts["binary"]
    assert cli("sign", target, "--key", tmp_path / "k.key", "--no-log")[0] == 0
    policy = tmp_path / "p.yaml"
    for unknown, expected in (("allow", 0), ("deny", 1)):
        policy.write_text(json.dumps({
            "apiVersion": "mgattest/v1", "kind": "Policy", "metadata": {"name": "bin"},
            "trust": {"keys": [{"name": "k", "path": "k.pub"}]},
            "signers": {"k": {"key": "k"}},
            "rules": [{"id": "all", "match": ["**"], "signedBy": {"anyOf": ["k"]},
                       "transparencyLog": {"require": "optional"},
                       "content": {"unknown": unknown}}]}))
        code, output = cli("verify", target, "--policy", policy)
        assert code == expected, output
        assert "not inspected" in output, output
