"""OpenSSF model-signing statements: byte-level agreement with model_signing 1.1.1, both ways."""

from __future__ import annotations

import copy
import hashlib
import json
import pathlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgattest.attest._digests import hash_model
from mgattest.attest.errors import DigestError, ModelSigningFormatError
from mgattest.attest._modelsigning import (
    PREDICATE_TYPE_V0_1,
    check_model_signing,
    expectations_from_model_signing,
    resources_digest,
    to_model_signing_statement,
)
from mgattest.errors import VerificationError
from tests.helpers.trees import make_tree as _tree

pytestmark = pytest.mark.interop

ms_hashing = pytest.importorskip("model_signing.hashing")
ms_signing = pytest.importorskip("model_signing._signing.signing")
ms_verifying = pytest.importorskip("model_signing.verifying")
json_format = pytest.importorskip("google.protobuf.json_format")

TREE = {
    "config.json": b'{"a": 1}',
    "weights/w-0.bin": bytes(range(256)) * 9,
    "weights/w-1.bin": b"\x07" * 1000,
    "a-b": b"dash sorts before slash as a string, after it as a path",
    "a/c": b"nested",
    "empty": b"",
    "dir with space/file name.txt": b"spaces",
    "ünïcødé/ファイル": b"unicode",
    "docs/notes.md": b"ignored by a glob",
    "README.md": b"also ignored",
}




MODEL_DIR = "my-model"
MODEL_FILES = {**TREE, ".git/HEAD": b"ref", ".gitignore": b"*.pyc"}


def _ms_config(method: str, alg: str, shard_size: int | None, ignore: list[str]) -> Any:
    cfg = ms_hashing.Config().set_ignored_paths(paths=ignore, ignore_git_paths=True)
    ms_alg = {"blake2b": "blake2"}.get(alg, alg)
    if method == "shards":
        cfg.use_shard_serialization(hashing_algorithm=ms_alg, shard_size=shard_size)
    else:
        cfg.use_file_serialization(hashing_algorithm=ms_alg)
    return cfg


def _ms_statement(path: Path, cfg: Any) -> dict[str, Any]:
    """What model_signing signs: MessageToJson of its in-toto statement."""
    manifest = cfg.hash(path)
    return json.loads(json_format.MessageToJson(ms_signing.Payload(manifest).statement.pb))


def _normalise_ms(statement: dict[str, Any]) -> dict[str, Any]:
    """Undo model_signing's two nondeterminisms/bugs: ignore_paths order, float shard_size."""
    s = copy.deepcopy(statement)
    ser = s["predicate"]["serialization"]
    if "ignore_paths" in ser:
        ser["ignore_paths"] = sorted(ser["ignore_paths"])
    if "shard_size" in ser:
        assert ser["shard_size"] == int(ser["shard_size"])
        ser["shard_size"] = int(ser["shard_size"])
    return s


def _ms_accepts(path: Path, statement: dict[str, Any]) -> None:
    """model_signing's own verify() logic after the signature check, on our statement."""
    expected = ms_signing.dsse_payload_to_manifest(json.loads(json.dumps(statement)))
    cfg = ms_verifying.Config()
    cfg._guess_hashing_config(expected)
    if "ignore_paths" in expected.serialization_type:
        cfg._hashing_config.add_ignored_paths(
            model_path=path, paths=expected.serialization_type["ignore_paths"])
    actual = cfg._hashing_config.hash(path)
    if actual != expected:
        raise AssertionError(cfg._get_manifest_diff(actual, expected))


CASES = [("files", "sha256", None), ("files", "blake2b", None), ("files", "blake3", None),
         ("shards", "sha256", 100), ("shards", "sha256", 1 << 20), ("shards", "blake2b", 333)]


@pytest.mark.parametrize("method,alg,shard_size", CASES)
def test_statement_equals_model_signing(model: Path, method: str, alg: str,
                                        shard_size: int | None) -> None:
    ours = to_model_signing_statement(
        hash_model(model, algorithm=alg, shard_size=shard_size, ignore=["README.md"]))
    theirs = _ms_statement(model, _ms_config(method, alg, shard_size, ["README.md"]))
    assert ours == _normalise_ms(theirs)
    # A glob has no model_signing equivalent: the entries it matched are recorded instead.
    ours_glob = to_model_signing_statement(
        hash_model(model, algorithm=alg, shard_size=shard_size, ignore=["*.md", "docs/**"]))
    theirs_glob = _ms_statement(model, _ms_config(method, alg, shard_size,
                                                  ["README.md", "docs/notes.md"]))
    assert ours_glob == _normalise_ms(theirs_glob)
    assert isinstance(ours["predicate"]["serialization"].get("shard_size", 0), int)


@pytest.mark.parametrize("method,alg,shard_size", CASES)
def test_model_signing_verifies_our_statement(model: Path, method: str, alg: str,
                                              shard_size: int | None) -> None:
    ours = to_model_signing_statement(
        hash_model(model, algorithm=alg, shard_size=shard_size, ignore=["*.md", "**/*.md"]))
    if alg == "blake2b":
        # model_signing 1.1.1 writes hash_type "blake2b" but only knows "blake2" on verify,
        # so it cannot verify its own blake2b signatures either (we can: see below).
        with pytest.raises(ValueError, match="blake2b"):
            _ms_accepts(model, ours)
        assert check_model_signing(model, ours).ok
        return
    assert set(ours["predicate"]["serialization"]["ignore_paths"]) >= {"README.md",
                                                                       "docs/notes.md"}
    _ms_accepts(model, ours)
    (model / "weights/w-1.bin").write_bytes(b"\x07" * 999 + b"\x08")
    with pytest.raises(AssertionError, match="w-1.bin"):
        _ms_accepts(model, ours)


def test_single_file_both_modes(tmp_path: Path) -> None:
    p = _tree(tmp_path, {"model.safetensors": b"x" * 250}) / "model.safetensors"
    for method, size in [("files", None), ("shards", 100)]:
        ours = to_model_signing_statement(hash_model(p, shard_size=size))
        assert ours == _normalise_ms(_ms_statement(p, _ms_config(method, "sha256", size, [])))
        exp = expectations_from_model_signing(ours)
        assert exp.single_file and exp.model_name == "model.safetensors"
        assert exp.check(p).ok
        if size is None:
            _ms_accepts(p, ours)


def test_empty_files_in_shard_mode(model: Path) -> None:
    ours = to_model_signing_statement(hash_model(model, shard_size=64))
    names = [r["name"] for r in ours["predicate"]["resources"]]
    assert not any(n.startswith("empty:") for n in names)  # as model_signing: unrepresentable
    check = check_model_signing(model, ours)
    assert check.ok
    f = next(f for f in check.files if f.name == "empty")
    assert f.status == "ignored" and "cannot represent" in f.detail
    (model / "new-empty").write_bytes(b"")
    (model / "new-full").write_bytes(b"!")
    check = check_model_signing(model, ours)
    assert {f.name: f.status for f in check.files if f.status not in ("ok", "ignored")} == {
        "new-full": "extra"}


def test_files_mode_keeps_empty_files(model: Path) -> None:
    ours = to_model_signing_statement(hash_model(model))
    assert "empty" in [r["name"] for r in ours["predicate"]["resources"]]
    (model / "empty").unlink()
    check = check_model_signing(model, ours)
    assert next(f for f in check.files if f.name == "empty").status == "missing"


# --------------------------------------------------------------------------- reading theirs

@pytest.mark.parametrize("method,alg,shard_size", [c for c in CASES])
def test_we_verify_model_signing_statements(model: Path, method: str, alg: str,
                                            shard_size: int | None) -> None:
    theirs = _ms_statement(model, _ms_config(method, alg, shard_size, []))
    assert check_model_signing(model, theirs).ok  # float shard_size and all
    p = model / "weights/w-0.bin"
    data = bytearray(p.read_bytes())
    data[1500] ^= 1
    p.write_bytes(bytes(data))
    check = check_model_signing(model, theirs)
    bad = [f for f in check.files if f.status != "ok" and f.status != "ignored"]
    assert [f.name for f in bad] == ["weights/w-0.bin"]
    if method == "shards" and shard_size == 100:
        assert bad[0].detail.startswith("shard 15, bytes 1500-1599;")


def test_names_with_colon(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", {"a:b.bin": b"12345", "c": b"6"})
    files_stmt = to_model_signing_statement(hash_model(root))
    assert files_stmt == _normalise_ms(_ms_statement(root, _ms_config("files", "sha256", None,
                                                                      [])))
    assert check_model_signing(root, files_stmt).ok
    with pytest.raises(DigestError, match="a:b.bin"):
        to_model_signing_statement(hash_model(root, shard_size=2))
    # A shard statement naming "a:b.bin" (from another tool) is read from the right.
    d = hashlib.sha256
    resources = [{"name": "a:b.bin:0:2", "algorithm": "sha256-sharded-2",
                  "digest": d(b"12").hexdigest()},
                 {"name": "a:b.bin:2:4", "algorithm": "sha256-sharded-2",
                  "digest": d(b"34").hexdigest()},
                 {"name": "a:b.bin:4:5", "algorithm": "sha256-sharded-2",
                  "digest": d(b"5").hexdigest()},
                 {"name": "c:0:1", "algorithm": "sha256-sharded-2", "digest": d(b"6").hexdigest()}]
    stmt = _statement("shards", resources, shard_size=2)
    assert check_model_signing(root, stmt).ok


def test_sha512_not_expressible(model: Path) -> None:
    with pytest.raises(DigestError, match="sha512"):
        to_model_signing_statement(hash_model(model, algorithm="sha512"))


def test_v0_1_compat_statement(model: Path) -> None:
    subjects = hash_model(model).subjects()
    stmt = {"_type": "https://in-toto.io/Statement/v1", "subject": subjects,
            "predicateType": PREDICATE_TYPE_V0_1, "predicate": {}}
    assert check_model_signing(model, stmt).ok


# --------------------------------------------------------------------------- forged statements

def _statement(method: str, resources: list[dict[str, Any]], *, shard_size: int | None = None,
               name: str = "m", **ser: Any) -> dict[str, Any]:
    serialization: dict[str, Any] = {"method": method, "hash_type": "sha256",
                                     "allow_symlinks": False, **ser}
    if shard_size is not None:
        serialization["shard_size"] = shard_size
    return {"_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": name, "digest": {"sha256": resources_digest(resources)}}],
            "predicateType": "https://model_signing/signature/v1.0",
            "predicate": {"serialization": serialization, "resources": resources}}


def _valid(model: Path, shard_size: int | None = None) -> dict[str, Any]:
    return to_model_signing_statement(hash_model(model, shard_size=shard_size))


def test_subject_digest_is_verified(model: Path) -> None:
    stmt = _valid(model)
    stmt["subject"][0]["digest"]["sha256"] = "00" * 32
    with pytest.raises(ModelSigningFormatError, match="subject digest") as ei:
        expectations_from_model_signing(stmt)
    assert isinstance(ei.value, VerificationError)
    stmt = _valid(model)
    stmt["predicate"]["resources"][0]["digest"] = "11" * 32  # subject not recomputed
    with pytest.raises(ModelSigningFormatError, match="subject digest"):
        expectations_from_model_signing(stmt)
    # Forged consistently (digest and subject): the statement parses, the model check fails.
    res = stmt["predicate"]["resources"]
    stmt["subject"][0]["digest"]["sha256"] = resources_digest(res)
    check = check_model_signing(model, stmt)
    assert next(f for f in check.files if f.name == res[0]["name"]).status == "mismatch"


def _mutations(model: Path) -> list[tuple[str, dict[str, Any], str]]:
    out: list[tuple[str, dict[str, Any], str]] = []

    def add(label: str, needle: str, fn, shard: bool = False) -> None:  # noqa: ANN001
        s = _valid(model, 100 if shard else None)
        fn(s)
        res = s["predicate"].get("resources")
        if isinstance(res, list) and all(isinstance(r, dict) and isinstance(r.get("digest"), str)
                                         and len(r["digest"]) % 2 == 0 for r in res):
            try:
                s["subject"][0]["digest"]["sha256"] = resources_digest(res)
            except ValueError:
                pass
        out.append((label, s, needle))

    ser = lambda s: s["predicate"]["serialization"]  # noqa: E731
    r0 = lambda s: s["predicate"]["resources"][0]  # noqa: E731
    add("type", "in-toto", lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"))
    add("ptype", "predicate type", lambda s: s.update(predicateType="x"))
    add("two subjects", "exactly one", lambda s: s["subject"].append(s["subject"][0]))
    add("method", "method", lambda s: ser(s).update(method="tensors"))
    add("hash", "hash_type", lambda s: ser(s).update(hash_type="md5"))
    add("symlinks", "allow_symlinks", lambda s: ser(s).update(allow_symlinks="false"))
    add("ignore dotdot", "inside the model", lambda s: ser(s).update(ignore_paths=["../x"]))
    add("ignore abs", "inside the model", lambda s: ser(s).update(ignore_paths=["/etc"]))
    add("algorithm", "algorithm", lambda s: r0(s).update(algorithm="sha512"))
    add("name dotdot", "'..'", lambda s: r0(s).update(name="../x"))
    add("name abs", "absolute", lambda s: r0(s).update(name="/x"))
    add("dup", "more than once", lambda s: s["predicate"]["resources"].append(r0(s)))
    add("hex", "malformed digest", lambda s: r0(s).update(digest="XY" * 32))
    add("resources", "resources", lambda s: s["predicate"].update(resources={}))
    add("shard size 0", "shard_size", lambda s: ser(s).update(shard_size=0), True)
    add("shard size frac", "shard_size", lambda s: ser(s).update(shard_size=1.5), True)
    add("shard size str", "shard_size", lambda s: ser(s).update(shard_size="100"), True)
    add("shard alg", "expected", lambda s: r0(s).update(algorithm="sha256-sharded-99"), True)
    add("shard name", "path:start:end", lambda s: r0(s).update(name="config.json"), True)
    add("shard offsets", "malformed offsets",
        lambda s: r0(s).update(name=r0(s)["name"].rsplit(":", 2)[0] + ":00:8"), True)
    add("shard gap", "gap", lambda s: s["predicate"]["resources"].remove(
        next(r for r in s["predicate"]["resources"] if r["name"] == "weights/w-0.bin:100:200")),
        True)
    add("shard dup", "more than once", lambda s: s["predicate"]["resources"].append(r0(s)), True)
    add("shard oversize", "not a shard",
        lambda s: r0(s).update(name=r0(s)["name"].rsplit(":", 2)[0] + ":0:101"), True)
    return out


def test_malformed_statements_rejected(model: Path) -> None:
    for label, stmt, needle in _mutations(model):
        with pytest.raises(ModelSigningFormatError, match=needle):
            expectations_from_model_signing(stmt)
            pytest.fail(f"mutation {label!r} accepted")


def test_ignore_paths_are_honoured_literally(model: Path) -> None:
    stmt = _valid(model)
    assert stmt["predicate"]["serialization"]["ignore_paths"] == [
        ".git", ".gitattributes", ".github", ".gitignore"]
    (model / "*").write_bytes(b"star")  # a literal '*' path must not act as a glob
    res = [r for r in stmt["predicate"]["resources"]]
    forged = _statement("files", res, ignore_paths=["*"])
    check = check_model_signing(model, forged)
    assert next(f for f in check.files if f.name == "*").status == "ignored"
    assert next(f for f in check.files if f.name == "config.json").status == "ok"


def test_model_name_defaults_and_override(model: Path) -> None:
    d = hash_model(model)
    assert to_model_signing_statement(d)["subject"][0]["name"] == "my-model"
    assert to_model_signing_statement(d, model_name="x")["subject"][0]["name"] == "x"


def test_allow_symlinks_recorded(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", {"real": b"r"})
    (root / "link").symlink_to("real")
    stmt = to_model_signing_statement(hash_model(root, allow_symlinks=True))
    assert stmt["predicate"]["serialization"]["allow_symlinks"] is True
    assert check_model_signing(root, stmt).ok
    assert pathlib.Path(root / "link").is_symlink()


# --------------------------------------------------------------------------- random trees


_segment = st.text(alphabet="aZ0 -_.!~ü", min_size=1, max_size=5).filter(
    lambda s: s not in (".", "..") and not s.startswith(".git"))


def _no_prefix_clash(names: list[str]) -> bool:
    dirs = {"/".join(n.split("/")[:k]) for n in names for k in range(1, n.count("/") + 1)}
    return not dirs & set(names)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tree=st.dictionaries(st.lists(_segment, min_size=1, max_size=3).map("/".join),
                            st.binary(max_size=200), min_size=1, max_size=6).filter(
           lambda d: _no_prefix_clash(list(d))),
       shard_size=st.one_of(st.none(), st.integers(1, 64)))
def test_random_trees_equal_model_signing(tmp_path: Path, tree: dict[str, bytes],
                                          shard_size: int | None) -> None:
    import tempfile

    root = _tree(Path(tempfile.mkdtemp(dir=tmp_path)) / "m", tree)
    method = "files" if shard_size is None else "shards"
    theirs = _ms_statement(root, _ms_config(method, "sha256", shard_size, []))
    if not any(tree.values()) and shard_size is not None:
        # Only empty files: shard mode covers nothing. We refuse to write or accept that.
        with pytest.raises(DigestError, match="nothing to sign"):
            to_model_signing_statement(hash_model(root, shard_size=shard_size))
        assert theirs["predicate"]["resources"] == []
        with pytest.raises(ModelSigningFormatError, match="covers no file"):
            check_model_signing(root, theirs)
        return
    ours = to_model_signing_statement(hash_model(root, shard_size=shard_size))
    assert ours == _normalise_ms(_ms_statement(root, _ms_config(method, "sha256", shard_size,
                                                                [])))
    assert check_model_signing(root, ours).ok
    _ms_accepts(root, ours)
