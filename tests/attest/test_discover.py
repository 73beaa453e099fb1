"""attest.discover_models: which entries of a repository tree are models."""

from __future__ import annotations

import os

import pytest

from mgattest.attest import DEFAULT_MODEL_PATTERNS, discover_models
from mgattest.attest.errors import ModelPathError, PatternError


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _names(found):
    return [m.name for m in found.models]


def test_default_patterns_find_every_model_format(tmp_path):
    suffixes = [p.removeprefix("*") for p in DEFAULT_MODEL_PATTERNS]
    for i, suffix in enumerate(suffixes):
        _touch(tmp_path / f"d{i % 3}" / f"m{suffix}")
    for other in ("notes.txt", "config.json", "model.pt.bak", "PT", "weights.PT"):
        _touch(tmp_path / other)
    found = discover_models(tmp_path)
    assert sorted(m.rsplit("/", 1)[1].removeprefix("m") for m in _names(found)) == \
        sorted(suffixes)
    assert all(m.kind == "file" and m.bundle is None for m in found.models)


@pytest.mark.parametrize("skipped", [".git", ".hg", ".svn", "node_modules", "__pycache__"])
def test_vcs_and_dependency_directories_are_skipped(tmp_path, skipped):
    _touch(tmp_path / "a" / skipped / "hidden.pt")
    _touch(tmp_path / "a" / "seen.pt")
    found = discover_models(tmp_path)
    assert _names(found) == ["a/seen.pt"] and found.skipped == (f"a/{skipped}",)


def test_virtualenvs_are_skipped(tmp_path):
    _touch(tmp_path / "venv" / "pyvenv.cfg", b"home = /usr\n")
    _touch(tmp_path / "venv" / "lib" / "site-packages" / "pkg" / "weights.pt")
    _touch(tmp_path / "venvlike" / "weights.pt")  # no pyvenv.cfg: an ordinary directory
    found = discover_models(tmp_path)
    assert _names(found) == ["venvlike/weights.pt"] and found.skipped == ("venv",)


def test_a_directory_with_a_bundle_beside_it_is_one_model(tmp_path):
    _touch(tmp_path / "bert" / "model.safetensors")
    _touch(tmp_path / "bert" / "nested" / "extra.bin")
    _touch(tmp_path / "bert.sigstore.json", b"{}")
    _touch(tmp_path / "solo.onnx")
    _touch(tmp_path / "solo.onnx.sigstore.json", b"{}")
    _touch(tmp_path / "signed.tar")  # no model pattern, but a bundle signs it
    _touch(tmp_path / "signed.tar.sigstore.json", b"{}")
    found = discover_models(tmp_path)
    by_name = {m.name: m for m in found.models}
    assert sorted(by_name) == ["bert", "signed.tar", "solo.onnx"]
    assert by_name["bert"].kind == "directory"
    assert by_name["bert"].bundle == str(tmp_path / "bert.sigstore.json")
    assert by_name["solo.onnx"].bundle == str(tmp_path / "solo.onnx.sigstore.json")


def test_symlinks_and_special_files_are_refused_never_followed(tmp_path):
    real = _touch(tmp_path / "real" / "w.pt")
    (tmp_path / "link.pt").symlink_to(real)
    (tmp_path / "linkdir").symlink_to(tmp_path / "real")
    (tmp_path / "outside.txt").symlink_to("/etc/hostname")  # not a model name: left alone
    os.mkfifo(tmp_path / "pipe.bin")
    found = discover_models(tmp_path)
    assert _names(found) == ["real/w.pt"]
    refused = {r.name: r.reason for r in found.refused}
    assert sorted(refused) == ["link.pt", "linkdir", "pipe.bin"]
    assert "symbolic link" in refused["link.pt"] and "symbolic link" in refused["linkdir"]
    assert "not a regular file" in refused["pipe.bin"]


def test_patterns_replace_the_defaults_and_ignores_are_anchored(tmp_path):
    _touch(tmp_path / "a" / "w.pt")
    _touch(tmp_path / "a" / "w.ckpt")
    _touch(tmp_path / "b" / "w.ckpt")
    _touch(tmp_path / "exp" / "deep" / "w.ckpt")
    assert _names(discover_models(tmp_path, patterns=["*.ckpt"])) == [
        "a/w.ckpt", "b/w.ckpt", "exp/deep/w.ckpt"]
    assert _names(discover_models(tmp_path, patterns=["a/*"])) == ["a/w.ckpt", "a/w.pt"]
    assert _names(discover_models(tmp_path, patterns=["*.ckpt"], ignore=["b", "**/deep"])) \
        == ["a/w.ckpt"]
    with pytest.raises(PatternError):
        discover_models(tmp_path, patterns=["[unclosed"])


def test_root_must_be_a_directory(tmp_path):
    f = _touch(tmp_path / "w.pt")
    with pytest.raises(ModelPathError):
        discover_models(f)
    with pytest.raises(FileNotFoundError):
        discover_models(tmp_path / "missing")
