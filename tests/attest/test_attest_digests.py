"""Model digests: equality with coreutils, shard Merkle trees, and the check_model tamper matrix."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgattest.attest._digests import (
    check_model,
    hash_bytes_digest,
    hash_model,
    looks_like_digest,
    raise_for_model_check,
    shard_ranges,
    shard_tree_root,
    supported_algorithms,
)
from mgattest.attest.errors import (
    DigestError,
    InvalidSubjectError,
    ModelPathError,
    SubjectMismatchError,
    UnsafePathError,
)
from mgattest.errors import InputError, VerificationError
from mgattest.tlog import merkle as tlog_merkle
from tests.helpers.trees import make_tree as _tree
from mgattest.attest._options import CheckOptions


MODEL = {
    "config.json": b'{"layers": 2}',
    "weights/part-0.bin": os.urandom(5000),
    "weights/part-1.bin": os.urandom(777),
    "empty.txt": b"",
    "dir with space/na:me.bin": b"colon and space",
    "ünïcødé/модель.bin": b"unicode",
    "/".join(f"deep{i}" for i in range(30)) + "/leaf": b"deep",
}


MODEL_FILES = MODEL


def _status(check, name):  # noqa: ANN001, ANN202
    return next(f for f in check.files if f.name == name)


# --------------------------------------------------------------------------- coreutils

@pytest.mark.parametrize("algorithm,tool", [("sha256", "sha256sum"), ("sha512", "sha512sum"),
                                            ("blake2b", "b2sum")])
def test_digests_equal_coreutils(model: Path, algorithm: str, tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    digests = hash_model(model, algorithm=algorithm, workers=3)
    for f in digests.files:
        out = subprocess.run([tool, "--", str(model / f.name)], check=True,
                             capture_output=True).stdout
        assert f.digest == {algorithm: out.split()[0].decode()}, f.name
        assert f.size == (model / f.name).stat().st_size


def test_blake3_when_installed(model: Path) -> None:
    if "blake3" not in supported_algorithms():
        pytest.skip("blake3 not installed")
    import blake3

    d = hash_model(model, algorithm="blake3")
    for f in d.files:
        assert f.digest["blake3"] == blake3.blake3((model / f.name).read_bytes()).hexdigest()


def test_single_file_subject_uses_base_name(tmp_path: Path) -> None:
    p = tmp_path / "m.onnx"
    p.write_bytes(b"onnx bytes")
    d = hash_model(p)
    assert d.single_file
    assert d.subjects() == [{"name": "m.onnx",
                             "digest": {"sha256": hashlib.sha256(b"onnx bytes").hexdigest()}}]


def test_subjects_sorted_and_complete(model: Path) -> None:
    subs = hash_model(model).subjects()
    assert [s["name"] for s in subs] == sorted(MODEL)
    assert all(set(s) == {"name", "digest"} for s in subs)


def test_workers_and_progress(model: Path) -> None:
    seen: list[int] = []
    a = hash_model(model, workers=1)
    b = hash_model(model, workers=4, progress=seen.append)
    assert a.files == b.files
    assert seen == sorted(seen) and seen[-1] == sum(len(v) for v in MODEL.values())


@pytest.mark.parametrize("kwargs", [{"shard_size": 0}, {"shard_size": -5}, {"shard_size": 1.5},
                                    {"shard_size": True}, {"shard_size": "1024"},
                                    {"algorithm": "md5"}, {"algorithm": "SHA256"},
                                    {"workers": 0}, {"ignore": ["../x"]}])
def test_bad_parameters_are_input_errors(model: Path, kwargs: dict) -> None:
    with pytest.raises(InputError):
        hash_model(model, **kwargs)


def test_too_many_shards_refused(tmp_path: Path) -> None:
    _tree(tmp_path, {"big": b"x" * 200_001})
    with pytest.raises(DigestError, match="larger shard size"):
        hash_model(tmp_path, shard_size=2)


def test_ignore_and_exclude(model: Path) -> None:
    (model / "notes.md").write_bytes(b"n")
    (model / "model.sigstore.json").write_bytes(b"{}")
    (model / ".git").mkdir()
    (model / ".git" / "HEAD").write_bytes(b"x")
    d = hash_model(model, ignore=["*.md"], exclude=[model / "model.sigstore.json"])
    names = [f.name for f in d.files]
    assert "notes.md" not in names and "model.sigstore.json" not in names
    assert ".git/HEAD" not in names
    assert d.ignore == ("*.md",)
    assert d.ignored == (".git/", "notes.md")
    assert d.excluded == ("model.sigstore.json",)


# --------------------------------------------------------------------------- shard Merkle

def _ref_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256().digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _ref_root(leaves[:k]) + _ref_root(leaves[k:])).digest()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=40))
def test_shard_root_is_rfc6962_over_shard_digests(leaves: list[bytes]) -> None:
    root = shard_tree_root(leaves)
    assert root == _ref_root(leaves)
    if leaves:  # the log's independent RFC 6962 implementation agrees
        assert root == tlog_merkle.root_hash([tlog_merkle.leaf_hash(d) for d in leaves])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=20),
       st.integers(0, 19), st.binary(min_size=32, max_size=32))
def test_shard_root_changes_with_any_shard(leaves: list[bytes], i: int, other: bytes) -> None:
    i %= len(leaves)
    if other == leaves[i]:
        return
    changed = leaves[:i] + [other] + leaves[i + 1:]
    assert shard_tree_root(changed) != shard_tree_root(leaves)
    assert shard_tree_root(leaves[:-1]) != shard_tree_root(leaves)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.binary(max_size=3000), shard_size=st.integers(1, 1200))
def test_shard_mode_digests(tmp_path: Path, data: bytes, shard_size: int) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    d = hash_model(p, shard_size=shard_size, workers=2)
    (f,) = d.files
    expected = [hashlib.sha256(data[s:e]).hexdigest() for s, e in shard_ranges(len(data),
                                                                               shard_size)]
    assert f.shards == expected
    assert f.digest == {"sha256-shard-merkle":
                        _ref_root([bytes.fromhex(x) for x in expected]).hex()}
    subject = d.subjects()[0]
    assert subject["annotations"] == {"shardSize": shard_size, "shardDigests": expected}
    assert "sha256" not in subject["digest"]  # a shard root is never labelled sha256
    assert check_model(p, d.subjects()).ok


def test_shard_ranges() -> None:
    assert shard_ranges(0, 4) == []
    assert shard_ranges(4, 4) == [(0, 4)]
    assert shard_ranges(9, 4) == [(0, 4), (4, 8), (8, 9)]


# --------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("shard_size", [None, 64, 1 << 20])
def test_round_trip_ok(model: Path, shard_size: int | None) -> None:
    d = hash_model(model, shard_size=shard_size)
    check = check_model(model, d.subjects())
    assert check.ok, [f for f in check.files if f.status != "ok"]
    assert {f.name for f in check.files if f.status == "ok"} == set(MODEL)
    raise_for_model_check(check)


# --------------------------------------------------------------------------- tamper matrix

@pytest.mark.parametrize("name", sorted(n for n, v in MODEL.items() if v))
def test_byte_flip_in_any_file(model: Path, name: str) -> None:
    subjects = hash_model(model).subjects()
    p = model / name
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    check = check_model(model, subjects)
    bad = [f for f in check.files if f.status != "ok"]
    assert [(f.name, f.status) for f in bad] == [(name, "mismatch")]
    with pytest.raises(SubjectMismatchError) as ei:
        raise_for_model_check(check)
    assert name in str(ei.value) and ei.value.exit_code == 1
    assert ei.value.where.startswith(name)


@pytest.mark.parametrize("offset", [0, 63, 64, 2500, 4999])
def test_byte_flip_names_shard_and_range(model: Path, offset: int) -> None:
    subjects = hash_model(model, shard_size=64).subjects()
    p = model / "weights/part-0.bin"
    data = bytearray(p.read_bytes())
    data[offset] ^= 0x80
    p.write_bytes(bytes(data))
    check = check_model(model, subjects)
    f = _status(check, "weights/part-0.bin")
    shard = offset // 64
    start, end = shard * 64, min(shard * 64 + 64, 5000) - 1
    assert f.status == "mismatch"
    assert f.detail.startswith(f"shard {shard}, bytes {start}-{end};")
    with pytest.raises(SubjectMismatchError, match=f"shard {shard}, bytes {start}-{end}"):
        raise_for_model_check(check)


@pytest.mark.parametrize("change", ["truncate", "extend"])
def test_size_change_in_shard_mode(model: Path, change: str) -> None:
    subjects = hash_model(model, shard_size=1000).subjects()
    p = model / "weights/part-0.bin"
    data = p.read_bytes()
    p.write_bytes(data[:2500] if change == "truncate" else data + b"more")
    f = _status(check_model(model, subjects), "weights/part-0.bin")
    assert f.status == "mismatch"
    if change == "truncate":
        assert f.detail.startswith("shard 2, bytes 2000-2499;") and "size changed" in f.detail
    else:
        assert f.detail.startswith("shard 5, bytes 5000-5003;") and "size changed" in f.detail


def test_renamed_added_deleted_files(model: Path) -> None:
    subjects = hash_model(model).subjects()
    (model / "config.json").rename(model / "config2.json")
    (model / "weights/part-1.bin").unlink()
    (model / "added.bin").write_bytes(b"new")
    (model / "added-empty").write_bytes(b"")
    check = check_model(model, subjects)
    got = {f.name: f.status for f in check.files if f.status != "ok"}
    assert got == {"config.json": "missing", "config2.json": "extra",
                   "weights/part-1.bin": "missing", "added.bin": "extra",
                   "added-empty": "extra"}
    assert not check.ok
    lenient = check_model(model, subjects, options=CheckOptions(allow_unsigned_files=True))
    assert {f.name: f.status for f in lenient.files if f.status not in ("ok",)} == {
        "config.json": "missing", "config2.json": "ignored", "weights/part-1.bin": "missing",
        "added.bin": "ignored", "added-empty": "ignored"}


def test_added_empty_file_in_shard_mode_is_extra(model: Path) -> None:
    subjects = hash_model(model, shard_size=128).subjects()
    (model / "new-empty").write_bytes(b"")
    assert _status(check_model(model, subjects), "new-empty").status == "extra"
    relaxed = check_model(model, subjects, options=CheckOptions(allow_unsigned_empty_files=True))
    assert _status(relaxed, "new-empty").status == "ignored" and relaxed.ok


def test_deleted_empty_file_is_missing(model: Path) -> None:
    subjects = hash_model(model, shard_size=128).subjects()
    (model / "empty.txt").unlink()
    assert _status(check_model(model, subjects), "empty.txt").status == "missing"


def test_ignore_patterns_at_verification(model: Path) -> None:
    (model / "README.md").write_bytes(b"r")
    subjects = hash_model(model, ignore=["*.md"]).subjects()
    assert not check_model(model, subjects).ok  # README.md is extra without the pattern
    check = check_model(model, subjects, options=CheckOptions(ignore=["*.md"]))
    assert check.ok and _status(check, "README.md").status == "ignored"
    # A signed file the verifier chooses to ignore is reported, not checked.
    check = check_model(model, subjects, options=CheckOptions(ignore=["config.json"]))
    assert _status(check, "config.json").status == "ignored"


def test_symlink_escaping_root_at_verification(model: Path, tmp_path: Path) -> None:
    subjects = hash_model(model).subjects()
    (tmp_path / "evil").write_bytes(MODEL["config.json"])
    (model / "config.json").unlink()
    (model / "config.json").symlink_to(tmp_path / "evil")
    with pytest.raises(UnsafePathError):
        check_model(model, subjects)
    with pytest.raises(UnsafePathError, match="absolute"):
        check_model(model, subjects, options=CheckOptions(allow_symlinks=True))
    (model / "config.json").unlink()
    (model / "config.json").symlink_to("../evil")
    with pytest.raises(UnsafePathError, match="escapes"):
        check_model(model, subjects, options=CheckOptions(allow_symlinks=True))


def test_fifo_and_socket_refused_by_hash_and_check(model: Path) -> None:
    subjects = hash_model(model).subjects()
    os.mkfifo(model / "weights" / "pipe")
    with pytest.raises(UnsafePathError, match="'weights/pipe' is a FIFO"):
        hash_model(model)
    with pytest.raises(UnsafePathError, match="FIFO"):
        check_model(model, subjects)


# --------------------------------------------------------------------------- forged subjects

GOOD = {"sha256": "00" * 32}


@pytest.mark.parametrize("subjects,needle", [
    ([{"name": "../etc/passwd", "digest": GOOD}], "'..'"),
    ([{"name": "a/../../x", "digest": GOOD}], "'..'"),
    ([{"name": "/etc/passwd", "digest": GOOD}], "absolute"),
    ([{"name": "a\\b", "digest": GOOD}], "backslash"),
    ([{"name": "a\x00b", "digest": GOOD}], "NUL"),
    ([{"name": "a//b", "digest": GOOD}], "normalised"),
    ([{"name": "./a", "digest": GOOD}], "normalised"),
    ([{"name": "", "digest": GOOD}], "empty"),
    ([{"name": 3, "digest": GOOD}], "not a string"),
    ([{"name": "a", "digest": GOOD}, {"name": "a", "digest": GOOD}], "more than once"),
    ([{"name": "a", "digest": {}}], "no digest"),
    ([{"name": "a"}], "no digest"),
    ([{"name": "a", "digest": {"md5": "00" * 16}}], "no digest this verifier"),
    ([{"name": "a", "digest": {"sha256": "zz" * 32}}], "malformed"),
    ([{"name": "a", "digest": {"sha256": "00" * 31}}], "malformed"),
    ([{"name": "a", "digest": {"sha256-shard-merkle": "00" * 32}}], "no shard annotations"),
    ([{"name": "a", "digest": {"sha256-shard-merkle": "00" * 32},
       "annotations": {"shardSize": 1.0, "shardDigests": []}}], "shardSize"),
    ([{"name": "a", "digest": {"sha256-shard-merkle": "00" * 32},
       "annotations": {"shardSize": True, "shardDigests": []}}], "shardSize"),
    ([{"name": "a", "digest": {"sha256-shard-merkle": "00" * 32},
       "annotations": {"shardSize": 4, "shardDigests": ["00" * 32]}}], "Merkle root"),
    (["a"], "not an object"),
    ({"name": "a", "digest": GOOD}, "list"),
])
def test_forged_subjects_rejected_before_touching_fs(tmp_path: Path, subjects: object,
                                                     needle: str) -> None:
    with pytest.raises(InvalidSubjectError, match=needle) as ei:
        check_model(tmp_path / "does-not-exist", subjects)  # the FS is never reached
    assert isinstance(ei.value, VerificationError)


def test_algorithm_forced(model: Path) -> None:
    subjects = hash_model(model, algorithm="sha512").subjects()
    assert check_model(model, subjects, options=CheckOptions(algorithm="sha512")).ok
    with pytest.raises(InvalidSubjectError):
        check_model(model, subjects, options=CheckOptions(algorithm="sha256"))


def test_subject_with_several_digests_uses_supported_one(model: Path) -> None:
    subjects = hash_model(model).subjects()
    for s in subjects:
        s["digest"]["gitCommit"] = "ab" * 20
    assert check_model(model, subjects).ok


# --------------------------------------------------------------------------- single file

def test_single_file_matches_by_digest_any_name(tmp_path: Path) -> None:
    p = tmp_path / "model.bin"
    p.write_bytes(b"weights")
    third_party = [{"name": "other.tar", "digest": {"sha256": "11" * 32}},
                   {"name": "published-name.bin",
                    "digest": {"sha256": hashlib.sha256(b"weights").hexdigest()}}]
    check = check_model(p, third_party)
    assert check.ok and "published-name.bin" in check.files[0].detail
    strict = check_model(p, third_party, options=CheckOptions(single_file_match_by_digest=False))
    assert not strict.ok
    assert {f.status for f in strict.files} == {"missing", "extra"}


def test_single_file_mismatch(tmp_path: Path) -> None:
    p = tmp_path / "model.bin"
    p.write_bytes(b"x" * 300)
    subjects = hash_model(p, shard_size=100).subjects()
    p.write_bytes(b"x" * 150 + b"y" * 150)
    check = check_model(p, subjects)
    assert check.files[0].status == "mismatch"
    assert check.files[0].detail.startswith("shard 1, bytes 100-199;")
    p.write_bytes(b"z")
    check = check_model(p, [{"name": "elsewhere", "digest": GOOD}])
    assert check.files[0].status == "mismatch" and "no subject digest" in check.files[0].detail


def test_missing_model_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(ModelPathError):
        check_model(tmp_path / "nope", [{"name": "a", "digest": GOOD}])


# --------------------------------------------------------------------------- digest strings

def test_hash_bytes_digest() -> None:
    h = hashlib.sha256(b"x").hexdigest()
    spec = hash_bytes_digest(f"sha256:{h.upper()}")
    assert spec.algorithm == "sha256" and spec.hex_digest == h
    assert spec.digest_set == {"sha256": h}
    assert hash_bytes_digest("sha512:" + "ab" * 64).algorithm == "sha512"
    assert looks_like_digest("sha256:" + h) and not looks_like_digest("model.bin")
    for bad in ["sha256:abc", "md5:" + "0" * 32, "sha256" + h, "sha256:" + "g" * 64, ""]:
        with pytest.raises(DigestError):
            hash_bytes_digest(bad)


def test_mismatch_error_carries_all_failures(model: Path) -> None:
    subjects = hash_model(model).subjects()
    (model / "config.json").write_bytes(b"{}")
    (model / "new").write_bytes(b"n")
    with pytest.raises(SubjectMismatchError) as ei:
        raise_for_model_check(check_model(model, subjects))
    d = ei.value.to_dict()
    assert d["what"] == "subject digest"
    assert {f["name"] for f in d["details"]["failures"]} == {"config.json", "new"}
    assert "and 1 more" in ei.value.message


# --------------------------------------------------------------------------- changes mid-hash

@pytest.mark.parametrize("change", ["grow", "shrink", "rewrite"])
@pytest.mark.parametrize("shard_size", [None, 1 << 20])
def test_file_changing_while_hashed_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               change: str, shard_size: int | None) -> None:
    from mgattest.attest import _digests as digests_mod
    from mgattest.attest.errors import ModelChangedError

    monkeypatch.setattr(digests_mod, "BUFFER_SIZE", 4096)
    monkeypatch.setattr(digests_mod, "_PROGRESS_EVERY", 4096)
    p = tmp_path / "w.bin"
    p.write_bytes(b"a" * 64 * 1024)
    fired: list[int] = []

    def meddle(done: int) -> None:  # runs in the hashing thread after the first chunk
        if fired:
            return
        fired.append(done)
        if change == "grow":
            with open(p, "ab") as f:
                f.write(b"more")
        elif change == "shrink":
            os.truncate(p, 100)
        else:
            with open(p, "r+b") as f:
                f.seek(60_000)
                f.write(b"b")
            st = p.stat()
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))

    with pytest.raises(ModelChangedError, match="w.bin"):
        hash_model(p, shard_size=shard_size, workers=1, progress=meddle)
    assert fired


# --------------------------------------------------------------------------- random trees

_segment = st.text(alphabet="aZ09 -_.:!~ü字", min_size=1, max_size=6).filter(
    lambda s: s not in (".", ".."))


def _no_prefix_clash(names: list[str]) -> bool:
    dirs = {"/".join(n.split("/")[:k]) for n in names for k in range(1, n.count("/") + 1)}
    return not dirs & set(names)


random_trees = st.dictionaries(
    st.lists(_segment, min_size=1, max_size=4).map("/".join),
    st.binary(max_size=300), min_size=1, max_size=8,
).filter(lambda d: _no_prefix_clash(list(d)) and not (set(d) & {".git", ".gitignore",
                                                                ".github", ".gitattributes"})
         and not any(n.split("/")[0] in (".git", ".github") for n in d))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tree=random_trees, shard_size=st.one_of(st.none(), st.integers(1, 128)),
       pick=st.integers(0, 10_000))
def test_random_trees_round_trip_and_localise_tampering(tmp_path: Path, tree: dict[str, bytes],
                                                        shard_size: int | None,
                                                        pick: int) -> None:
    import tempfile

    root = _tree(Path(tempfile.mkdtemp(dir=tmp_path)), tree)
    subjects = hash_model(root, shard_size=shard_size).subjects()
    assert [s["name"] for s in subjects] == sorted(tree)
    assert check_model(root, subjects).ok
    non_empty = sorted(n for n, v in tree.items() if v)
    if not non_empty:
        return
    name = non_empty[pick % len(non_empty)]
    data = bytearray(tree[name])
    offset = pick % len(data)
    data[offset] ^= 0xFF
    (root / name).write_bytes(bytes(data))
    check = check_model(root, subjects)
    bad = [f for f in check.files if f.status != "ok"]
    assert [(f.name, f.status) for f in bad] == [(name, "mismatch")]
    if shard_size is not None:
        shard = offset // shard_size
        assert bad[0].detail.startswith(f"shard {shard}, bytes {shard * shard_size}-")


def test_single_file_through_link_keeps_given_name(tmp_path: Path) -> None:
    blob = tmp_path / "blobs" / "9f86d081884c7d65"
    blob.parent.mkdir()
    blob.write_bytes(b"tensor bytes")
    snap = tmp_path / "snapshots" / "main"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").symlink_to("../../blobs/9f86d081884c7d65")
    d = hash_model(snap / "model.safetensors")
    assert d.single_file and d.model_name == "model.safetensors"
    assert [s["name"] for s in d.subjects()] == ["model.safetensors"]
    check = check_model(snap / "model.safetensors", d.subjects(),
                        options=CheckOptions(single_file_match_by_digest=False))
    assert check.ok


def test_model_name_of_dot(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(model)
    assert hash_model(".").model_name == "model"
    assert hash_model(str(model) + "/").model_name == "model"


def test_empty_subject_list_rejected(model: Path) -> None:
    with pytest.raises(InvalidSubjectError, match="no subjects"):
        check_model(model, [])


def test_nothing_verified_fails_closed(model: Path) -> None:
    subjects = hash_model(model).subjects()
    check = check_model(model, subjects, options=CheckOptions(ignore=["**"]))
    assert check.ok and {f.status for f in check.files} == {"ignored"}
    with pytest.raises(SubjectMismatchError, match="no file was verified"):
        raise_for_model_check(check)


def test_check_shard_alone(tmp_path: Path) -> None:
    from mgattest.attest._digests import check_shard

    data = os.urandom(1000)
    p = tmp_path / "f"
    p.write_bytes(data)
    (subject,) = hash_model(p, shard_size=300).subjects()
    for i, (s, e) in enumerate(shard_ranges(1000, 300)):
        check_shard(subject, i, data[s:e])
    with pytest.raises(SubjectMismatchError, match="shard 2 .*bytes 600-899"):
        check_shard(subject, 2, data[600:899] + b"!")
    with pytest.raises(SubjectMismatchError):
        check_shard(subject, 3, data[900:999])  # truncated last shard
    with pytest.raises(DigestError):
        check_shard(subject, 4, b"")
    forged = dict(subject, annotations={"shardSize": 300,
                                        "shardDigests": [hashlib.sha256(b"x").hexdigest()] * 4})
    with pytest.raises(InvalidSubjectError, match="Merkle root"):
        check_shard(forged, 0, b"x")
    with pytest.raises(InvalidSubjectError, match="no shard digests"):
        check_shard(hash_model(p).subjects()[0], 0, data[:300])


def test_grossly_oversized_file_is_a_mismatch_without_hashing(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    subjects = hash_model(p, shard_size=1).subjects()  # 3 shards of 1 byte
    with open(p, "ab") as f:
        f.truncate(200_003)  # sparse: would be 200 003 one-byte shards, over the bound
    check = check_model(tmp_path, [dict(subjects[0], name="f")])
    (f,) = check.files
    assert f.status == "mismatch" and "size changed" in f.detail
    assert f.detail.startswith("shard 3, bytes 3-200002;")
    (single,) = check_model(p, subjects).files
    assert single.status == "mismatch" and single.detail == f.detail
    (other,) = check_model(p, [dict(subjects[0], name="other")]).files
    assert other.status == "mismatch" and "no subject digest" in other.detail
