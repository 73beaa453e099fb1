"""Walk a model (a file or a directory) safely, and open its files without following links.

The walk yields one :class:`ModelFile` per regular file, named by its POSIX path relative
to the model root. It refuses what cannot be signed honestly: sockets, FIFOs and device
nodes; symbolic links (unless allowed, and then only links that stay inside the root at
every hop); names that a subject could not carry (backslashes, undecodable bytes).

Ignore patterns are anchored globs matched against the whole relative path:

* ``*`` matches any run of characters except ``/``; ``?`` one character except ``/``;
  ``[abc]``, ``[a-z]``, ``[!abc]`` a character class (never ``/``); ``\\x`` a literal ``x``.
* ``**`` crosses ``/``: ``**/`` matches zero or more leading directories, a trailing
  ``/**`` everything below a directory, ``**`` elsewhere any characters.
* A pattern never matches by prefix alone: ``model`` matches the entry ``model`` (and,
  when it is a directory, everything below it), never ``model.bin``.
* A trailing ``/`` restricts the pattern to directories; one leading ``/`` is allowed
  and means nothing more (patterns are always anchored at the root).
"""

from __future__ import annotations

import errno
import os
import pathlib
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NoReturn

from mgattest._files import file_kind
from mgattest._hflayout import LOCAL_DIR_METADATA, RefusedLink, Snapshot, find_snapshot, \
    follow_blob_link, snapshot_above
from mgattest.attest.errors import ModelChangedError, ModelPathError, PatternError, UnsafePathError

#: Paths every walk leaves out (files or directories at the model root).
DEFAULT_IGNORES: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")

#: Symlink hops followed while resolving one link before it is called a loop.
MAX_LINK_HOPS = 40
#: Directory depth beyond which a walk gives up (guards link-built mazes).
MAX_DEPTH = 256


@dataclass(frozen=True)
class ModelFile:
    """One regular file of a model.

    ``name`` is the subject name (POSIX, relative to the root; the base name for a
    single-file model). ``path`` is the absolute path of the bytes that are hashed,
    ``target`` the same path relative to the real model root ("" for a single-file
    model): it differs from ``name`` only when the entry is an allowed symlink.
    ``dev``/``ino``/``mtime_ns`` identify the file seen by the walk, so that hashing can
    prove it opened the same file. ``base`` is the real directory ``target`` is relative
    to when that is not the model root: a Hugging Face snapshot entry's bytes are
    ``<repo>/blobs/<etag>`` (``base`` the repository folder, ``target`` ``blobs/<etag>``).
    """

    name: str
    path: str
    size: int
    target: str = ""
    dev: int = 0
    ino: int = 0
    mtime_ns: int = 0
    base: str = ""


@dataclass
class WalkResult:
    """A walk's files plus what it skipped (for reports and model-signing metadata)."""

    root: str  # real (resolved) model root
    single_file: bool
    files: list[ModelFile]
    ignored: list[str] = field(default_factory=list)  # names; directories end with "/"
    name: str = ""  # the model's name: last component of the path as given
    excluded: list[str] = field(default_factory=list)  # excluded paths' names in the root
    # the Hugging Face hub-cache snapshot the root is, when it is one (links into its
    # repository's blobs/ are followed, see mgattest._hflayout)
    hf_snapshot: Snapshot | None = None


def model_display_name(root: str | os.PathLike[str]) -> str:
    """The last component of ``root`` as the user gave it (resolved for ``.``/``..``).

    A single-file model reached through a link (e.g. a Hugging Face cache snapshot) keeps
    the name it was given, not the name of the blob it points to.
    """
    name = pathlib.PurePath(os.fspath(root)).name
    if name in ("", ".."):
        name = os.path.basename(os.path.realpath(root))
    return name


# --------------------------------------------------------------------------- names

def name_problem(name: object) -> str | None:
    """Why ``name`` is not a safe relative POSIX name, or ``None`` when it is.

    Safe means: a non-empty ``str``, not absolute, no empty/``.``/``..`` segment, no
    backslash, no NUL, encodable as UTF-8.
    """
    if not isinstance(name, str):
        return "is not a string"
    if not name:
        return "is empty"
    if "\x00" in name:
        return "contains a NUL character"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is absolute"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    for segment in name.split("/"):
        if segment == "..":
            return "contains a '..' segment"
        if segment in ("", "."):
            return "is not normalised (empty or '.' segment)"
    return None


# --------------------------------------------------------------------------- globs

_DOUBLE_STAR_DIRS = "(?:.*/)?"


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise PatternError(f"ignore pattern {pattern!r} ends with a lone backslash",
                                   what="ignore pattern", where=pattern)
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif c == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                j = i
                while j < n and pattern[j] == "*":
                    j += 1
                whole_segment = (i == 0 or pattern[i - 1] == "/") and (j == n or pattern[j] == "/")
                if whole_segment and j < n:  # "**/" : zero or more directories
                    out.append(_DOUBLE_STAR_DIRS)
                    i = j + 1
                else:
                    out.append(".*")
                    i = j
            else:
                out.append("[^/]*")
                i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            i = _translate_class(pattern, i, out)
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _translate_class(pattern: str, i: int, out: list[str]) -> int:
    j = i + 1
    negate = j < len(pattern) and pattern[j] in "!^"
    if negate:
        j += 1
    items: list[str] = []
    first = True
    while True:
        if j >= len(pattern):
            raise PatternError(f"ignore pattern {pattern!r} has an unclosed '['",
                               what="ignore pattern", where=pattern)
        c = pattern[j]
        if c == "]" and not first:
            break
        if c == "\\" and j + 1 < len(pattern):
            items.append(re.escape(pattern[j + 1]))
            j += 2
        elif c == "/":
            raise PatternError(f"ignore pattern {pattern!r}: '/' cannot appear in a [class]",
                               what="ignore pattern", where=pattern)
        else:
            items.append("-" if c == "-" else re.escape(c))
            j += 1
        first = False
    body = "".join(items)
    out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
    return j + 1


@dataclass(frozen=True)
class Glob:
    """One compiled, anchored ignore pattern."""

    pattern: str
    regex: re.Pattern[str]
    dirs_only: bool
    literal: str | None = None  # the exact path matched, when the pattern has no wildcard

    def matches(self, name: str, is_dir: bool) -> bool:
        """Whether the relative POSIX ``name`` (a directory when ``is_dir``) matches."""
        if self.dirs_only and not is_dir:
            return False
        return self.regex.fullmatch(name) is not None


def compile_glob(pattern: str) -> Glob:
    """Compile one ignore pattern (see the module docstring for the syntax)."""
    if not isinstance(pattern, str) or not pattern:
        raise PatternError(f"ignore pattern {pattern!r} is empty or not a string",
                           what="ignore pattern", where=str(pattern))
    if "\x00" in pattern:
        raise PatternError("ignore pattern contains a NUL character", what="ignore pattern",
                           where=repr(pattern))
    body = pattern[1:] if pattern.startswith("/") else pattern
    dirs_only = body.endswith("/") and not body.endswith("\\/")
    if dirs_only:
        body = body[:-1]
    if not body:
        raise PatternError(f"ignore pattern {pattern!r} names the model root itself",
                           what="ignore pattern", where=pattern)
    for segment in body.split("/"):
        if segment in ("", ".", ".."):
            raise PatternError(
                f"ignore pattern {pattern!r} has an empty, '.' or '..' segment; patterns are "
                "relative to the model root and cannot leave it",
                what="ignore pattern", where=pattern)
    try:
        regex = re.compile(_translate(body), re.DOTALL)
    except re.error as exc:
        raise PatternError(f"ignore pattern {pattern!r} is malformed: {exc}",
                           what="ignore pattern", where=pattern) from None
    return Glob(pattern, regex, dirs_only, _literal(body))


def _literal(body: str) -> str | None:
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            out.append(body[i + 1])
            i += 2
            continue
        if c in "*?[":
            return None
        out.append(c)
        i += 1
    return "".join(out)


def glob_escape(name: str) -> str:
    """A pattern that matches exactly the literal relative path ``name``."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", name)


class IgnoreRules:
    """Default ignores plus user globs; answers "is this entry ignored, and by what?"."""

    def __init__(self, patterns: Iterable[str] = (), *, defaults: bool = True) -> None:
        if isinstance(patterns, str):
            patterns = (patterns,)
        chosen = list(DEFAULT_IGNORES if defaults else ()) + list(patterns)
        compiled = [compile_glob(p) for p in chosen]
        # Literal paths (e.g. thousands of signed ignore_paths) are a dict lookup.
        self.literals: dict[str, list[Glob]] = {}
        for g in compiled:
            if g.literal is not None:
                self.literals.setdefault(g.literal, []).append(g)
        self.globs = [g for g in compiled if g.literal is None]

    def match(self, name: str, is_dir: bool) -> str | None:
        """The pattern ignoring entry ``name``, or ``None``."""
        for g in self.literals.get(name, ()):
            if is_dir or not g.dirs_only:
                return g.pattern
        for g in self.globs:
            if g.matches(name, is_dir):
                return g.pattern
        return None

    def covers(self, name: str) -> str | None:
        """The pattern ignoring file ``name`` or one of its ancestor directories."""
        parts = name.split("/")
        for k in range(1, len(parts)):
            hit = self.match("/".join(parts[:k]), True)
            if hit is not None:
                return hit
        return self.match(name, False)


# --------------------------------------------------------------------------- walking

def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _resolve_link(root: str, link_dir: str, link_path: str, shown: str) -> str:
    """Follow the link at ``link_path`` hop by hop; every hop must stay inside ``root``."""
    hops = 0
    first = os.readlink(link_path)
    pending = first.split("/")
    if first.startswith("/"):
        raise UnsafePathError(f"symlink {shown!r} has an absolute target; only relative links "
                              "inside the model are allowed", what="symlink", where=shown)
    current = link_dir
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            current = os.path.dirname(current)
            if not _inside(root, current):
                raise UnsafePathError(f"symlink {shown!r} escapes the model root",
                                      what="symlink", where=shown)
            continue
        candidate = os.path.join(current, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            raise UnsafePathError(f"symlink {shown!r} is dangling", what="symlink",
                                  where=shown) from None
        except OSError as exc:  # e.g. a path component that is a file
            raise UnsafePathError(f"symlink {shown!r} cannot be resolved: {exc.strerror}",
                                  what="symlink", where=shown) from None
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise UnsafePathError(f"symlink {shown!r} loops", what="symlink", where=shown)
            target = os.readlink(candidate)
            if target.startswith("/"):
                raise UnsafePathError(f"symlink {shown!r} reaches a link with an absolute "
                                      "target", what="symlink", where=shown)
            pending[:0] = target.split("/")
            continue
        current = candidate
    return current


def _check_name(name: str, shown_root: str) -> None:
    problem = name_problem(name)
    if problem is not None:
        raise UnsafePathError(f"model entry {name!r} in {shown_root} {problem}; it cannot be "
                              "named by a subject", what="file name", where=name)


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


@dataclass(frozen=True)
class _Exclusions:
    """The paths a walk leaves out (the bundle being verified or written).

    Only an entry at one of ``own_paths`` (the path itself, its directory resolved, its
    last component *not* followed) is left out. Another entry sharing the inode of an
    excluded file (a hard link, or an allowed symlink to it) is refused: excluding by
    inode would let a model file hard-linked to the bundle silently leave verification.
    """

    own_paths: frozenset[str]
    ids: dict[tuple[int, int], str]  # (dev, ino) -> the excluded path as given

    @classmethod
    def of(cls, exclude: Iterable[str | os.PathLike[str]]) -> "_Exclusions":
        if isinstance(exclude, (str, os.PathLike)):
            exclude = (exclude,)
        own, ids = set(), {}
        for p in exclude:
            own.add(own_path(p))
            try:
                st = os.stat(p)
            except OSError:
                continue  # e.g. the bundle about to be written
            ids[(st.st_dev, st.st_ino)] = os.fspath(p)
        return cls(frozenset(own), ids)

    def refuse_alias(self, name: str, st: os.stat_result) -> None:
        """Raise when the entry ``name`` (not an excluded path) is an excluded file."""
        bundle = self.ids.get((st.st_dev, st.st_ino))
        if bundle is not None and stat.S_ISREG(st.st_mode):
            raise UnsafePathError(
                f"model file {name!r} is the same file (hard link or symlink) as the "
                f"excluded {bundle!r}; it cannot be both model and bundle",
                what="hard link", where=name)


def own_path(path: str | os.PathLike[str]) -> str:
    """``path`` absolute, its directory resolved, its last component left as it is."""
    absolute = os.path.abspath(os.fspath(path))
    head, tail = os.path.split(absolute)
    return os.path.join(os.path.realpath(head), tail) if tail else os.path.realpath(head)


def _excluded_names(exclusions: _Exclusions, real_root: str) -> list[str]:
    prefix = real_root.rstrip("/") + "/"
    return sorted(p[len(prefix):] for p in exclusions.own_paths if p.startswith(prefix))


def walk_model_detailed(root: str | os.PathLike[str], *,
                        ignore: Iterable[str] | IgnoreRules = (),
                        exclude: Iterable[str | os.PathLike[str]] = (),
                        allow_symlinks: bool = False) -> WalkResult:
    """Walk a model and report its files and the entries it ignored.

    The root itself is resolved once (a root given through a symlink is the caller's
    choice); links *inside* the model are governed by ``allow_symlinks``, except in a
    Hugging Face hub-cache snapshot (``models--*/snapshots/<rev>`` beside a ``blobs/``):
    there every link must lead straight to a regular file in that repository's
    ``blobs/`` (:func:`mgattest._hflayout.follow_blob_link`), whatever
    ``allow_symlinks`` says, and is named by its snapshot path. A ``--local-dir``
    download's metadata folder (``.cache/huggingface/`` at the root) is always ignored.
    """
    rules = ignore if isinstance(ignore, IgnoreRules) else IgnoreRules(ignore)
    exclusions = _Exclusions.of(exclude)
    shown_root = os.fspath(root)
    try:
        real_root = os.path.realpath(shown_root, strict=True)
        st = os.stat(real_root)
    except FileNotFoundError:
        raise ModelPathError(f"model path {shown_root!r} does not exist", what="model path",
                             where=shown_root) from None
    except OSError as exc:
        raise ModelPathError(f"model path {shown_root!r} cannot be read: {exc.strerror}",
                             what="model path", where=shown_root) from None
    if stat.S_ISREG(st.st_mode):
        name = model_display_name(shown_root)
        _check_name(name, shown_root)
        if real_root in exclusions.own_paths or (st.st_dev, st.st_ino) in exclusions.ids:
            raise UnsafePathError(f"model file {shown_root!r} is itself excluded (it is, or "
                                  "is linked to, the bundle)", what="model path",
                                  where=shown_root)
        dev, ino, size, mtime = _identity(st)
        snapshot, base, target = _snapshot_file(shown_root, real_root)
        return WalkResult(real_root, True,
                          [ModelFile(name, real_root, size, target, dev, ino, mtime, base)],
                          name=name, hf_snapshot=snapshot)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"model path {shown_root!r} is {file_kind(st.st_mode)}",
                              what="model path", where=shown_root)

    snapshot = find_snapshot(real_root)
    files: list[ModelFile] = []
    ignored: list[str] = []
    # (name prefix, real directory, real ancestors for loop detection)
    stack: list[tuple[str, str, tuple[str, ...]]] = [("", real_root, (real_root,))]
    while stack:
        prefix, real_dir, ancestors = stack.pop()
        # Where this directory's entries are, relative to the root: computed once per
        # directory, not once per file (a per-file relpath was ~10 % of a 10,000-file walk).
        real_prefix = os.path.relpath(real_dir, real_root).replace(os.sep, "/") + "/"
        if real_prefix == "./":
            real_prefix = ""
        if len(ancestors) > MAX_DEPTH:
            raise UnsafePathError(f"model tree under {prefix!r} is deeper than {MAX_DEPTH}",
                                  what="model path", where=prefix)
        try:
            with os.scandir(real_dir) as it:
                entries = list(it)
        except OSError as exc:
            raise ModelPathError(f"cannot list {prefix or shown_root!r}: {exc.strerror}",
                                 what="model path", where=prefix or shown_root) from None
        for entry in entries:
            name = prefix + entry.name
            _check_name(name, shown_root)
            try:
                est = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # vanished during the walk: simply not part of the model
            except OSError as exc:
                raise ModelPathError(f"cannot stat {name!r}: {exc.strerror}",
                                     what="model path", where=name) from None
            mode = est.st_mode
            is_link = stat.S_ISLNK(mode)
            real_path = entry.path
            base = ""
            if is_link and snapshot is not None:
                real_path, est = _snapshot_blob(snapshot, real_dir, entry.path, name)
                mode, is_link, base = est.st_mode, False, snapshot.repo_dir
            if is_link:
                if not allow_symlinks:
                    if rules.match(name, False) is not None or rules.match(name, True) is not None:
                        ignored.append(name)
                        continue
                    raise UnsafePathError(
                        f"model entry {name!r} is a symbolic link; links are refused unless "
                        "explicitly allowed", what="symlink", where=name)
                try:
                    real_path = _resolve_link(real_root, real_dir, entry.path, name)
                except OSError as exc:  # the link changed under us
                    raise UnsafePathError(f"symlink {name!r} cannot be read: {exc.strerror}",
                                          what="symlink", where=name) from None
                try:
                    est = os.stat(real_path, follow_symlinks=False)
                except OSError as exc:
                    raise ModelPathError(f"cannot stat target of {name!r}: {exc.strerror}",
                                         what="symlink", where=name) from None
                mode = est.st_mode
            is_dir = stat.S_ISDIR(mode)
            hit = rules.match(name, is_dir)
            if hit is not None or (name == LOCAL_DIR_METADATA and is_dir and not is_link):
                ignored.append(name + "/" if is_dir else name)
                continue
            if entry.path in exclusions.own_paths:
                continue
            exclusions.refuse_alias(name, est)
            if is_dir:
                if real_path in ancestors:
                    raise UnsafePathError(f"symlink {name!r} creates a directory loop",
                                          what="symlink", where=name)
                stack.append((name + "/", real_path, ancestors + (real_path,)))
            elif stat.S_ISREG(mode):
                dev, ino, size, mtime = _identity(est)
                target = real_prefix + entry.name if real_path == entry.path else \
                    os.path.relpath(real_path, base or real_root).replace(os.sep, "/")
                files.append(ModelFile(name, real_path, size, target, dev, ino, mtime, base))
            else:
                raise UnsafePathError(f"model entry {name!r} is {file_kind(mode)}; only regular "
                                      "files and directories can be signed",
                                      what="file type", where=name)
    files.sort(key=lambda f: f.name)
    ignored.sort()
    return WalkResult(real_root, False, files, ignored, model_display_name(shown_root),
                      _excluded_names(exclusions, real_root), snapshot)


def _snapshot_file(shown_root: str, real_root: str) -> tuple[Snapshot | None, str, str]:
    """For a single file given inside a Hugging Face snapshot and resolving to one of
    its repository's blobs: the snapshot, ``base`` and ``target`` (so that the blob is
    checked against its name like a directory's); else ``(None, "", "")``."""
    above = snapshot_above(shown_root)
    if above is None or os.path.dirname(real_root) != above[0].blobs_dir:
        return None, "", ""
    return above[0], above[0].repo_dir, "blobs/" + os.path.basename(real_root)


def _snapshot_blob(snapshot: Snapshot, link_dir: str, link_path: str,
                   name: str) -> tuple[str, os.stat_result]:
    """The blob the snapshot link ``name`` points to, and its ``lstat``."""
    try:
        blob = follow_blob_link(snapshot, link_dir, link_path)
        return blob, os.stat(blob, follow_symlinks=False)
    except RefusedLink as exc:
        reason = exc.reason
    except OSError as exc:  # the blob vanished between the check and the stat
        reason = f"cannot be followed: {exc.strerror}"
    raise UnsafePathError(f"Hugging Face snapshot entry {name!r} {reason}; only links to a "
                          "regular file in this repository's blobs/ are followed",
                          what="symlink", where=name)


def refuse_trust_files_in_model(model: str | os.PathLike[str],
                                trust_files: Iterable[tuple[str, str | os.PathLike[str] | None]]
                                ) -> None:
    """Refuse trust anchors (policy, keys, trusted roots ...) that are part of ``model``.

    ``trust_files`` are ``(what, path)`` pairs; ``None`` paths are skipped. A trust file
    inside the model directory, or sharing its inode with a model file (a hard link),
    can be rewritten by whoever can rewrite the model, so it would vouch for anything:
    :class:`UnsafePathError`. A missing model is left for the verification to report.
    For a Hugging Face cache snapshot the whole repository folder (its ``blobs/`` hold
    the model's bytes) counts as the model.
    """
    try:
        real_root = os.path.realpath(model, strict=True)
        model_st = os.stat(real_root)
    except OSError:
        return
    snapshot = find_snapshot(real_root)
    region = snapshot.repo_dir if snapshot is not None else real_root
    for what, path in trust_files:
        if path is None:
            continue
        mine = own_path(path)
        try:
            st = os.stat(path)
        except OSError:
            st = None
        inside = _inside(region, mine) and stat.S_ISDIR(model_st.st_mode)
        if inside or (st is not None and _shares_inode(real_root, model_st, st)):
            raise UnsafePathError(
                f"{what} {os.fspath(path)!r} is part of the model it would verify (inside "
                "it, or a hard link to one of its files); whoever can change the model "
                "could change it too: keep trust anchors outside the model",
                what="trust file", where=os.fspath(path))


def _shares_inode(real_root: str, model_st: os.stat_result, st: os.stat_result) -> bool:
    """Whether the file ``st`` is the model file or a file of the model directory."""
    if not stat.S_ISREG(st.st_mode):
        return False
    if stat.S_ISREG(model_st.st_mode):
        return (st.st_dev, st.st_ino) == (model_st.st_dev, model_st.st_ino)
    if st.st_nlink < 2 or st.st_dev != model_st.st_dev:
        return False  # no other name, or another filesystem: cannot be a model file
    for dirpath, _dirs, names in os.walk(real_root):
        for name in names:
            try:
                other = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                return True
    return False


def walk_model(root: str | os.PathLike[str], *, ignore: Iterable[str] = (),
               exclude: Iterable[str | os.PathLike[str]] = (),
               allow_symlinks: bool = False) -> list[ModelFile]:
    """Every regular file of the model at ``root``, sorted by name.

    ``ignore`` are anchored globs (plus the default git ignores), ``exclude`` concrete
    paths (e.g. the bundle being written), left out by their own path only: another file
    sharing an excluded file's inode is refused. Raises
    :class:`UnsafePathError` for special files, refused or escaping symlinks, and names no
    subject could carry; :class:`ModelPathError` when the root is missing or unreadable.
    """
    return walk_model_detailed(root, ignore=ignore, exclude=exclude,
                               allow_symlinks=allow_symlinks).files


# --------------------------------------------------------------------------- opening

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _raise_open_error(mf: ModelFile, exc: OSError) -> NoReturn:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        raise UnsafePathError(f"model file {mf.name!r} was replaced by a symbolic link "
                              "after the walk", what="file type", where=mf.name) from None
    if exc.errno == errno.ENOENT:
        raise ModelPathError(f"model file {mf.name!r} disappeared after the walk",
                             what="model path", where=mf.name) from None
    raise ModelPathError(f"cannot open model file {mf.name!r}: {exc.strerror}",
                         what="model path", where=mf.name) from None


def open_model_dir(real_root: str, mf: ModelFile) -> int:
    """Open the directory holding the bytes of ``mf`` (a directory model's file).

    Components are opened one by one from the real root (``mf.base`` for a Hugging Face
    cache blob) with ``O_NOFOLLOW``, so no
    symlink is followed; errors name ``mf``. Files of one directory can then be opened
    with :func:`open_model_file`'s ``dir_fd`` without walking the path again.
    """
    dir_fd = -1
    try:
        dir_fd = os.open(mf.base or real_root, os.O_RDONLY | _O_CLOEXEC | _O_DIRECTORY)
        for part in mf.target.split("/")[:-1]:
            nxt = os.open(part, os.O_RDONLY | _O_CLOEXEC | _O_DIRECTORY | _O_NOFOLLOW,
                          dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = nxt
    except OSError as exc:
        if dir_fd >= 0:
            os.close(dir_fd)
        _raise_open_error(mf, exc)
    return dir_fd


def open_model_file(real_root: str, mf: ModelFile, *, single_file: bool,
                    dir_fd: int | None = None) -> int:
    """Open the bytes of ``mf`` without following any symlink; return a file descriptor.

    Directory components are opened one by one with ``O_NOFOLLOW`` from the real root
    (from ``mf.base``, the repository folder, for a Hugging Face cache blob; or
    ``dir_fd``, from :func:`open_model_dir` for a file of that same directory, is used),
    the file itself with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO swapped in cannot block us),
    then ``fstat`` proves it is the regular file the walk saw (device, inode, size, mtime).
    """
    file_flags = os.O_RDONLY | _O_CLOEXEC | _O_NOFOLLOW | _O_NONBLOCK
    if single_file:
        parent = -1
    else:
        parent = open_model_dir(real_root, mf) if dir_fd is None else dir_fd
    try:
        if single_file:
            fd = os.open(real_root, file_flags)
        else:
            fd = os.open(mf.target.rpartition("/")[2], file_flags, dir_fd=parent)
    except OSError as exc:
        _raise_open_error(mf, exc)
    finally:
        if dir_fd is None and parent >= 0:
            os.close(parent)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"model file {mf.name!r} is now {file_kind(st.st_mode)}",
                                  what="file type", where=mf.name)
        if (st.st_dev, st.st_ino) != (mf.dev, mf.ino) or st.st_size != mf.size \
                or st.st_mtime_ns != mf.mtime_ns:
            raise ModelChangedError(f"model file {mf.name!r} changed between the walk and "
                                    "hashing; hash a stable copy", what="file", where=mf.name)
    except BaseException:
        os.close(fd)
        raise
    return fd


def default_bundle_path(model: str | os.PathLike[str]) -> pathlib.Path:
    """``<model>.sigstore.json`` beside the model (for a directory: next to the dir).

    A Hugging Face cache snapshot (or a file in one) gets
    ``./ORG--NAME@<rev12>[--PATH].sigstore.json`` in the working directory instead: the
    cache belongs to huggingface_hub (a stray file in ``snapshots/`` is "corruption" to
    its cache scanner, and ``hf cache delete`` would take the bundle with the revision),
    and the revision in the name keeps each revision's bundle apart.
    """
    snapshot = find_snapshot(model)
    if snapshot is not None:
        return pathlib.Path(snapshot.label + ".sigstore.json")
    inside = snapshot_above(model)
    if inside is not None:
        holder, entry = inside
        return pathlib.Path(f"{holder.label}--{entry.replace('/', '--')}.sigstore.json")
    model = pathlib.Path(model)
    if model.name in ("", ".", ".."):  # "." or "..": name the directory itself
        model = model.resolve()
    return model.parent / (model.name + ".sigstore.json")
