"""The hashing engine's task grouping: small files hashed in per-directory batches.

Batches share one directory descriptor between files and read a small file with one
syscall; these tests show the digests stay those of ``sha256sum``/hashlib and that every
per-file proof (no symlink followed, same inode, no growth, no shrinking, no rewrite)
still holds for a file inside a batch.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mgattest.attest import _digests as digests_mod
from mgattest.attest._digests import check_model, hash_model
from mgattest.attest._options import CheckOptions
from mgattest.attest._walk import ModelFile, WalkResult
from mgattest.attest.errors import ModelChangedError, ModelPathError, UnsafePathError
from tests.helpers.trees import make_tree

KiB = 1024


def _mixed_tree(root: Path) -> dict[str, bytes]:
    """Tiny files (one task), small ones over BATCH_FILES in one directory (several
    batches), a big file (its own task), an empty file, in nested directories."""
    files: dict[str, bytes] = {}
    for i in range(150):
        files[f"tiny/{i % 3}/t{i:03d}.json"] = os.urandom(i * 7)
    for i in range(digests_mod.BATCH_FILES + 6):
        files[f"small/s{i:03d}.bin"] = os.urandom(digests_mod.TINY_FILE + 1 + i)
    files["big.bin"] = os.urandom(digests_mod.SMALL_FILE + 12_345)
    files["empty"] = b""
    make_tree(root, files)
    return files


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_batched_digests_equal_hashlib(tmp_path: Path, workers: int) -> None:
    files = _mixed_tree(tmp_path / "m")
    got = {f.name: f.digest["sha256"] for f in hash_model(tmp_path / "m", workers=workers).files}
    assert got == {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def test_batched_digests_equal_sha256sum(tmp_path: Path) -> None:
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum not installed")
    files = _mixed_tree(tmp_path / "m")
    names = sorted(files)
    out = subprocess.run(["sha256sum", "--", *names], cwd=tmp_path / "m", check=True,
                         capture_output=True, text=True).stdout.splitlines()
    expected = {line[66:]: line[:64] for line in out}
    got = {f.name: f.digest["sha256"] for f in hash_model(tmp_path / "m", workers=2).files}
    assert got == expected


def test_tasks_group_small_files_by_directory(tmp_path: Path) -> None:
    _mixed_tree(tmp_path / "m")
    walk = digests_mod.walk_model_detailed(tmp_path / "m")
    plans = [digests_mod._Plan(f, "sha256", None) for f in walk.files]
    tasks = digests_mod._tasks(plans, digests_mod._jobs(plans), single_file=False)
    names = [[plans[j.plan].file.name for j in task] for task in tasks]
    assert names[0] == ["big.bin"]  # big ranges first
    tiny = [t for t in names if any(n.startswith("tiny/") for n in t)]
    assert len(tiny) == 1 and sorted(tiny[0]) == sorted(  # one task, by directory
        [n for n in (f.name for f in walk.files) if n.startswith("tiny/")] + ["empty"])
    dirs = [n.rpartition("/")[0] for n in tiny[0]]
    assert len(list(itertools.groupby(dirs))) == len(set(dirs))  # each directory's files together
    small = [t for t in names if t[0].startswith("small/")]
    assert [len(t) for t in small] == [digests_mod.BATCH_FILES, 6]
    assert sorted(n for task in names for n in task) == sorted(f.name for f in walk.files)


def test_linked_small_files_are_read_from_their_target_directory(tmp_path: Path) -> None:
    files = {f"blobs/b{i}": os.urandom(100 + i) for i in range(5)}
    root = make_tree(tmp_path / "m", files)
    (root / "snap").mkdir()
    for i in range(5):
        (root / "snap" / f"f{i}.json").symlink_to(f"../blobs/b{i}")
    got = {f.name: f.digest["sha256"]
           for f in hash_model(root, allow_symlinks=True, workers=2).files}
    for i in range(5):
        expected = hashlib.sha256(files[f"blobs/b{i}"]).hexdigest()
        assert got[f"snap/f{i}.json"] == got[f"blobs/b{i}"] == expected


# --------------------------------------------------------------------------- races

def _after_walk(monkeypatch: pytest.MonkeyPatch, meddle: Callable[[], object]) -> None:
    """Run ``meddle`` between the walk and the hashing of check_model."""
    real = digests_mod.walk_model_detailed

    def walk(*args: Any, **kwargs: Any) -> WalkResult:
        result = real(*args, **kwargs)
        meddle()
        return result

    monkeypatch.setattr(digests_mod, "walk_model_detailed", walk)


def _swap_file_for_link(root: Path, spare: Path) -> None:
    (root / "d" / "f17.bin").unlink()
    (root / "d" / "f17.bin").symlink_to("f03.bin")


def _swap_directory_for_link(root: Path, spare: Path) -> None:
    shutil.copytree(root / "d", spare / "d")
    shutil.rmtree(root / "d")
    (root / "d").symlink_to(spare / "d")


def _replace_by_same_size_file(root: Path, spare: Path) -> None:
    (root / "d" / "f29.bin").unlink()
    (root / "d" / "f29.bin").write_bytes(os.urandom(300))  # a new inode


def _remove_file(root: Path, spare: Path) -> None:
    (root / "d" / "f05.bin").unlink()


@pytest.mark.parametrize("meddle, error, message", [
    (_swap_file_for_link, UnsafePathError, "f17.bin.*symbolic link"),
    (_swap_directory_for_link, UnsafePathError, "symbolic link"),
    (_replace_by_same_size_file, ModelChangedError, "f29.bin"),
    (_remove_file, ModelPathError, "f05.bin.*disappeared"),
])
def test_change_between_walk_and_batch_is_caught(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meddle: Callable[[Path, Path], None],
        error: type[Exception], message: str) -> None:
    """40 files of one directory: one batch sharing a directory descriptor."""
    root = make_tree(tmp_path / "m", {f"d/f{i:02d}.bin": os.urandom(300) for i in range(40)})
    subjects = hash_model(root).subjects()
    (tmp_path / "spare").mkdir()
    _after_walk(monkeypatch, lambda: meddle(root, tmp_path / "spare"))
    with pytest.raises(error, match=message):
        check_model(root, subjects, CheckOptions(workers=2))


_CHANGES = {"grow": "grew while being hashed", "shrink": "shrank while being hashed",
            "rewrite": "changed while being hashed"}


@pytest.mark.parametrize("change, size", [
    (change, size) for change in _CHANGES for size in (0, 300, 64 * KiB, 3 * 256 * KiB)
    if not (change == "shrink" and size == 0)  # an empty file cannot shrink
])
def test_change_after_open_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     change: str, size: int) -> None:
    """A file changed after its identity was proven at open, before it is read: the one
    read of a small file (asking one byte more), or the end check of a larger one."""
    root = make_tree(tmp_path / "m", {f"d/f{i}.bin": os.urandom(size) for i in range(3)})
    subjects = hash_model(root).subjects()
    victim = root / "d" / "f1.bin"
    real_open = digests_mod.open_model_file

    def open_then_meddle(real_root: str, mf: ModelFile, **kwargs: Any) -> int:
        fd = real_open(real_root, mf, **kwargs)
        if mf.name == "d/f1.bin":
            if change == "grow":
                with open(victim, "ab") as f:
                    f.write(b"x")
            elif change == "shrink":
                os.truncate(victim, size // 2)
            else:
                st = victim.stat()
                os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        return fd

    monkeypatch.setattr(digests_mod, "open_model_file", open_then_meddle)
    with pytest.raises(ModelChangedError, match=f"d/f1.bin.*{_CHANGES[change]}"):
        check_model(root, subjects, CheckOptions(workers=2))


def test_untouched_batches_verify(tmp_path: Path) -> None:
    _mixed_tree(tmp_path / "m")
    subjects = hash_model(tmp_path / "m").subjects()
    check = check_model(tmp_path / "m", subjects, CheckOptions(workers=2))
    assert {f.status for f in check.files} == {"ok"}
    assert len(check.files) == len(subjects)
