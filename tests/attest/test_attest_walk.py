"""Model walking: anchored ignore globs, name safety, symlink containment, special files."""

from __future__ import annotations

import os
import socket
import string
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgattest.attest.errors import ModelChangedError, ModelPathError, PatternError, UnsafePathError
from mgattest.attest._walk import (
    IgnoreRules,
    compile_glob,
    glob_escape,
    name_problem,
    open_model_file,
    walk_model,
    walk_model_detailed,
)
from mgattest.errors import InputError
from tests.helpers.trees import make_tree as _tree


# --------------------------------------------------------------------------- globs

def _ref_match(pat: list[str], name: list[str]) -> bool:
    """Segment-wise reference semantics of the documented glob syntax."""
    if not pat:
        return not name
    if pat[0] == "**":
        if len(pat) == 1:
            return len(name) >= 1
        return _ref_match(pat[1:], name) or (bool(name) and _ref_match(pat, name[1:]))
    return bool(name) and fnmatchcase(name[0], pat[0]) and _ref_match(pat[1:], name[1:])


_seg_chars = st.sampled_from(["a", "b", ".", "-", "*", "?"])
_pat_segment = st.one_of(
    st.just("**"),
    st.lists(_seg_chars, min_size=1, max_size=4).map("".join).filter(
        lambda s: s not in (".", "..") and "**" not in s),
)
_name_segment = st.lists(st.sampled_from(["a", "b", ".", "-"]), min_size=1, max_size=4).map(
    "".join).filter(lambda s: s not in (".", ".."))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_pat_segment, min_size=1, max_size=4), st.lists(_name_segment, min_size=1,
                                                               max_size=5))
def test_glob_matches_reference_semantics(pat: list[str], name: list[str]) -> None:
    g = compile_glob("/".join(pat))
    assert g.matches("/".join(name), False) == _ref_match(pat, name)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet=string.ascii_letters + "*?[]\\!-. :", min_size=1,
                        max_size=6).filter(lambda s: s not in (".", "..")),
                min_size=1, max_size=3), st.text(alphabet="ab/", min_size=1, max_size=3))
def test_escaped_literal_matches_only_itself(segments: list[str], suffix: str) -> None:
    name = "/".join(segments)
    g = compile_glob(glob_escape(name))
    assert g.matches(name, False)
    assert g.literal == name  # the dict fast path sees the same path the regex does
    rules = IgnoreRules([glob_escape(name)], defaults=False)
    assert rules.match(name, False) == glob_escape(name)
    assert rules.match(name + suffix, False) is None
    # Anchored: never by prefix or suffix alone.
    assert not g.matches(name + suffix, False)
    assert not g.matches(suffix + name, False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_name_segment, min_size=2, max_size=5))
def test_single_star_never_crosses_slash(name: list[str]) -> None:
    assert not compile_glob("*").matches("/".join(name), False)
    assert compile_glob("**").matches("/".join(name), False)


@pytest.mark.parametrize("pattern,name,is_dir,expected", [
    ("model", "model", False, True),
    ("model", "model.bin", False, False),       # never by prefix
    ("model", "sub/model", False, False),       # anchored at the root
    ("*.md", "README.md", False, True),
    ("*.md", "docs/README.md", False, False),
    ("**/*.md", "docs/README.md", False, True),
    ("**/*.md", "README.md", False, True),
    ("docs/**", "docs/a/b", False, True),
    ("docs/**", "docs", True, False),
    ("a/**/b", "a/b", False, True),
    ("a/**/b", "a/x/y/b", False, True),
    ("a**b", "a/x/b", False, True),              # non-segment ** crosses '/'
    ("cache/", "cache", True, True),
    ("cache/", "cache", False, False),           # trailing '/' = directories only
    ("/top", "top", False, True),                # leading '/' is only an anchor
    ("[ab].bin", "a.bin", False, True),
    ("[!ab].bin", "c.bin", False, True),
    ("[!ab].bin", "a.bin", False, False),
    ("[a-c]?", "bz", False, True),
    ("?", "/", False, False),
    ("\\*", "*", False, True),
    ("\\*", "x", False, False),
    ("name with space", "name with space", False, True),
    ("a:b", "a:b", False, True),
])
def test_glob_examples(pattern: str, name: str, is_dir: bool, expected: bool) -> None:
    assert compile_glob(pattern).matches(name, is_dir) is expected
    rules = IgnoreRules([pattern], defaults=False)
    assert (rules.match(name, is_dir) == pattern) is expected


@pytest.mark.parametrize("pattern", ["", "/", "a//b", "../x", "a/../b", "./a", "x\\", "[abc",
                                     "a\x00", "[z-a]", "a/./b", "[a/b]"])
def test_bad_patterns_are_input_errors(pattern: str) -> None:
    with pytest.raises(PatternError) as ei:
        compile_glob(pattern)
    assert isinstance(ei.value, InputError)


# --------------------------------------------------------------------------- names

_safe_seg = st.text(alphabet=st.characters(blacklist_characters="/\\\x00",
                                           blacklist_categories=("Cs",)),
                    min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_safe_seg, min_size=1, max_size=5))
def test_safe_names_accepted(segments: list[str]) -> None:
    assert name_problem("/".join(segments)) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_safe_seg, min_size=1, max_size=4), st.integers(0, 4),
       st.sampled_from(["..", ".", "", "\\", "\x00", "/abs"]))
def test_unsafe_names_rejected(segments: list[str], pos: int, bad: str) -> None:
    pos = min(pos, len(segments))
    if bad == "/abs":
        name = "/" + "/".join(segments)
    elif bad in ("\\", "\x00"):
        segments[pos % len(segments)] += bad
        name = "/".join(segments)
    else:
        name = "/".join(segments[:pos] + [bad] + segments[pos:])
    assert name_problem(name) is not None


def test_name_problem_rejects_non_strings_and_surrogates() -> None:
    assert name_problem(None) is not None
    assert name_problem(b"a") is not None
    assert name_problem("a\udcff") is not None


# --------------------------------------------------------------------------- walking

def test_walk_names_sizes_and_default_ignores(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.bin": b"abc", "empty": b"", "d/e/f.txt": b"x" * 10, ".git/HEAD": b"r",
                     ".gitignore": b"", ".github/wf.yml": b"", "sub/.git": b"gitdir: x",
                     "name with space:and colon": b"1", "ünï/ĉødé": b"2"})
    files = walk_model(tmp_path)
    assert [f.name for f in files] == sorted([
        "a.bin", "empty", "d/e/f.txt", "sub/.git", "name with space:and colon", "ünï/ĉødé"])
    assert {f.name: f.size for f in files}["d/e/f.txt"] == 10
    res = walk_model_detailed(tmp_path)
    assert res.ignored == [".git/", ".github/", ".gitignore"]


def test_walk_single_file_uses_base_name(tmp_path: Path) -> None:
    p = tmp_path / "model.safetensors"
    p.write_bytes(b"123")
    res = walk_model_detailed(p)
    assert res.single_file and [f.name for f in res.files] == ["model.safetensors"]


def test_walk_user_ignore_and_exclude(tmp_path: Path) -> None:
    _tree(tmp_path, {"keep.bin": b"1", "notes.md": b"2", "docs/a.md": b"3", "cache/x": b"4",
                     "model.sigstore.json": b"{}"})
    files = walk_model(tmp_path, ignore=["*.md", "cache/"],
                       exclude=[tmp_path / "model.sigstore.json", tmp_path / "not-there"])
    assert [f.name for f in files] == ["docs/a.md", "keep.bin"]


def test_walk_deep_tree(tmp_path: Path) -> None:
    deep = "/".join(f"d{i}" for i in range(60)) + "/leaf"
    _tree(tmp_path, {deep: b"deep"})
    assert [f.name for f in walk_model(tmp_path)] == [deep]


def test_missing_root_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(ModelPathError):
        walk_model(tmp_path / "nope")


def test_fifo_refused(tmp_path: Path) -> None:
    _tree(tmp_path, {"a": b"1"})
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UnsafePathError, match="'pipe' is a FIFO"):
        walk_model(tmp_path)
    with pytest.raises(UnsafePathError, match="FIFO"):
        walk_model(tmp_path / "pipe")


def test_socket_refused(tmp_path: Path) -> None:
    _tree(tmp_path, {"a": b"1"})
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(tmp_path / "sock"))
        with pytest.raises(UnsafePathError, match="'sock' is a socket"):
            walk_model(tmp_path)
    finally:
        s.close()


def test_backslash_name_refused(tmp_path: Path) -> None:
    _tree(tmp_path, {"a\\b": b"1"})
    with pytest.raises(UnsafePathError, match="backslash"):
        walk_model(tmp_path)


def test_non_utf8_name_refused(tmp_path: Path) -> None:
    os.close(os.open(os.fsencode(tmp_path) + b"/bad\xff", os.O_CREAT | os.O_WRONLY))
    with pytest.raises(UnsafePathError, match="UTF-8"):
        walk_model(tmp_path)


# --------------------------------------------------------------------------- symlinks

def test_symlink_refused_by_default(tmp_path: Path) -> None:
    _tree(tmp_path, {"a": b"1"})
    (tmp_path / "link").symlink_to("a")
    with pytest.raises(UnsafePathError, match="'link' is a symbolic link"):
        walk_model(tmp_path)


def test_allowed_symlink_inside_root(tmp_path: Path) -> None:
    _tree(tmp_path, {"real/w.bin": b"weights"})
    (tmp_path / "alias.bin").symlink_to("real/w.bin")
    (tmp_path / "dirlink").symlink_to("real")
    files = walk_model(tmp_path, allow_symlinks=True)
    by_name = {f.name: f for f in files}
    assert set(by_name) == {"alias.bin", "dirlink/w.bin", "real/w.bin"}
    assert by_name["alias.bin"].target == "real/w.bin"
    assert by_name["dirlink/w.bin"].target == "real/w.bin"


@pytest.mark.parametrize("make", ["parent", "absolute", "chain", "dir-escape", "nested-dotdot"])
def test_escaping_symlinks_refused(tmp_path: Path, make: str) -> None:
    outside = tmp_path / "outside"
    _tree(outside, {"secret": b"s", "inner/x": b"x"})
    root = _tree(tmp_path / "model", {"a": b"1", "sub/b": b"2"})
    if make == "parent":
        (root / "l").symlink_to("../outside/secret")
    elif make == "absolute":
        (root / "l").symlink_to(root / "a")  # absolute even though inside: refused
    elif make == "chain":
        (outside / "hop").symlink_to(root / "a")
        (root / "l").symlink_to("../outside/hop")
    elif make == "dir-escape":
        (root / "l").symlink_to("../outside/inner")
    else:
        (root / "sub" / "l").symlink_to("../../outside/secret")
    with pytest.raises(UnsafePathError, match="absolute|escapes"):
        walk_model(root, allow_symlinks=True)


def test_chain_through_inside_links_allowed(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"d/real": b"r"})
    (root / "d" / "hop").symlink_to("real")
    (root / "top").symlink_to("d/hop")
    names = {f.name: f.target for f in walk_model(root, allow_symlinks=True)}
    assert names["top"] == "d/real"


def test_symlink_loop_and_dangling(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", {"d/a": b"1"})
    (root / "d" / "up").symlink_to("..")
    with pytest.raises(UnsafePathError, match="loop"):
        walk_model(root, allow_symlinks=True)
    (root / "d" / "up").unlink()
    (root / "x").symlink_to("y")
    (root / "y").symlink_to("x")
    with pytest.raises(UnsafePathError, match="loops"):
        walk_model(root, allow_symlinks=True)
    (root / "x").unlink()
    (root / "y").unlink()
    (root / "dangling").symlink_to("nothing")
    with pytest.raises(UnsafePathError, match="dangling"):
        walk_model(root, allow_symlinks=True)


def test_ignored_symlink_is_not_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"a": b"1"})
    (root / "escape").symlink_to("/etc/passwd")
    assert [f.name for f in walk_model(root, ignore=["escape"])] == ["a"]


# --------------------------------------------------------------------------- open (TOCTOU)

def test_swap_for_symlink_after_walk_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", {"d/w.bin": b"good", "other": b"evil"})
    res = walk_model_detailed(root)
    mf = next(f for f in res.files if f.name == "d/w.bin")
    (root / "d" / "w.bin").unlink()
    (root / "d" / "w.bin").symlink_to("../other")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        open_model_file(res.root, mf, single_file=False)


def test_swap_directory_for_symlink_after_walk_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", {"d/w.bin": b"good"})
    _tree(tmp_path / "evil", {"w.bin": b"good"})
    res = walk_model_detailed(root)
    (root / "d" / "w.bin").unlink()
    (root / "d").rmdir()
    (root / "d").symlink_to(tmp_path / "evil")
    with pytest.raises(UnsafePathError):
        open_model_file(res.root, res.files[0], single_file=False)


def test_swap_for_fifo_after_walk_does_not_block(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", {"w.bin": b"good"})
    res = walk_model_detailed(root)
    (root / "w.bin").unlink()
    os.mkfifo(root / "w.bin")
    with pytest.raises(UnsafePathError, match="FIFO"):
        open_model_file(res.root, res.files[0], single_file=False)


def test_replaced_file_after_walk_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", {"w.bin": b"good"})
    res = walk_model_detailed(root)
    (root / "w.bin").unlink()
    (root / "w.bin").write_bytes(b"evil, and longer")
    with pytest.raises(ModelChangedError):
        open_model_file(res.root, res.files[0], single_file=False)


def test_link_through_a_file_component(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"f": b"1"})
    (root / "l").symlink_to("f/x")
    with pytest.raises(UnsafePathError, match="cannot be resolved"):
        walk_model(root, allow_symlinks=True)
