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


def _statement_bundle(path, subjects):
    """A bundle-shaped file whose DSSE statement names ``subjects`` (unsigned: discovery
    only reads the names to group files; the verification checks everything)."""
    import base64
    import json

    statement = {"_type": "https://in-toto.io/Statement/v1", "predicateType": "x",
                 "subject": [{"name": n, "digest": {"sha256": "0" * 64}} for n in subjects],
                 "predicate": {}}
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "x"}, "tlogEntries": []},
        "dsseEnvelope": {"payload": payload, "payloadType": "application/vnd.in-toto+json",
                         "signatures": [{"sig": base64.b64encode(b"s").decode()}]}}))


def test_a_bundle_inside_a_directory_naming_every_file_makes_it_one_model(tmp_path):
    model = tmp_path / "llm"
    _touch(model / "w.safetensors")
    _touch(model / "tok" / "vocab.json")
    _statement_bundle(model / "release.sigstore.json", ["w.safetensors", "tok/vocab.json"])
    # a bundle naming only part of its directory groups nothing
    _touch(tmp_path / "part" / "a.pt")
    _touch(tmp_path / "part" / "b.pt")
    _statement_bundle(tmp_path / "part" / "x.sigstore.json", ["a.pt", "b.pt", "gone.pt"])
    # a bundle naming the one file it signs, under another name
    _touch(tmp_path / "single" / "w.bin")
    _touch(tmp_path / "single" / "other.bin")
    _statement_bundle(tmp_path / "single" / "release.sigstore.json", ["w.bin"])
    found = {m.name: m for m in discover_models(tmp_path).models}
    assert sorted(found) == ["llm", "part/a.pt", "part/b.pt", "single/other.bin",
                             "single/w.bin"]
    assert found["llm"].kind == "directory"
    assert found["llm"].bundle == str(model / "release.sigstore.json")
    assert found["part/a.pt"].bundle is None
    assert found["single/w.bin"].bundle == str(tmp_path / "single" / "release.sigstore.json")
    assert found["single/other.bin"].bundle is None


def test_the_root_itself_can_be_the_model(tmp_path):
    _touch(tmp_path / "w.pt")
    _statement_bundle(tmp_path / "model.sigstore.json", ["w.pt"])
    found = discover_models(tmp_path)
    assert [(m.name, m.kind) for m in found.models] == [(".", "directory")]
