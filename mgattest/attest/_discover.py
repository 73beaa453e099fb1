"""Find the models of a repository tree: what ``audit``, ``sign --all`` and ``verify --all`` work on.

A *model* is either

* a regular file whose name matches a model pattern (``*.pt``, ``*.safetensors``, ...),
  signed by the bundle ``<file>.sigstore.json`` beside it when that exists, or
* a directory with a bundle ``<dir>.sigstore.json`` beside it: the bundle covers the
  directory as one model, so nothing inside it is reported on its own;
* a directory holding a bundle that sits beside nothing of its name (``signed.sigstore.json``
  next to no ``signed``) and whose statement's subjects name every file below the
  directory (``sign DIR --out DIR/x.sigstore.json`` makes one): one model, that bundle.
  Such a bundle whose only subject names one file of its directory signs that file.
  The subjects are read only to group files; nothing read here is trusted: the
  verification that follows checks the signature and every byte.

The walk never follows a symbolic link: a link that names a model (its name matches a
pattern, or a bundle sits beside it) or points at a directory is *refused*, as every
walk of mgattest refuses links that could lead outside what was signed; so are sockets,
FIFOs and devices that match a pattern. It skips version-control metadata (``.git``,
``.hg``, ``.svn``), ``node_modules``, ``__pycache__`` and Python virtual environments
(a directory holding ``pyvenv.cfg``): dependencies and caches, not the repository's
models. ``ignore`` globs (anchored, as ``sign --ignore``) leave out more.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from mgattest.attest._walk import MAX_DEPTH, IgnoreRules, compile_glob, name_problem
from mgattest.attest.errors import ModelPathError
from mgattest.errors import MgattestError

__all__ = ["BUNDLE_SUFFIX", "DEFAULT_MODEL_PATTERNS", "SKIPPED_DIRECTORIES", "DiscoveredModel",
           "Discovery", "RefusedEntry", "discover_models"]

#: Model artifacts found by default (matched against the file name, case-sensitive).
DEFAULT_MODEL_PATTERNS: tuple[str, ...] = (
    "*.pt", "*.pth", "*.bin", "*.safetensors", "*.onnx", "*.pb", "*.h5", "*.keras", "*.pkl",
    "*.joblib", "*.npy", "*.npz", "*.gguf")
#: Directories never entered: VCS metadata, dependency trees and caches.
SKIPPED_DIRECTORIES: frozenset[str] = frozenset(
    {".git", ".hg", ".svn", ".bzr", "node_modules", "__pycache__"})
#: The bundle beside a model: ``<model>.sigstore.json`` (what ``mgattest sign`` writes).
BUNDLE_SUFFIX = ".sigstore.json"


@dataclass(frozen=True)
class DiscoveredModel:
    """One model found in the tree.

    ``name`` is its POSIX path relative to the walked root, ``path`` the path to open,
    ``bundle`` the path of its ``<model>.sigstore.json`` (None: unsigned).
    """

    name: str
    path: str
    kind: Literal["file", "directory"]
    bundle: str | None


@dataclass(frozen=True)
class RefusedEntry:
    """An entry that looks like a model but cannot be one (a link, a FIFO...), and why."""

    name: str
    path: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    """Everything a walk found: models, refused entries, and the directories it skipped."""

    root: str
    models: tuple[DiscoveredModel, ...]
    refused: tuple[RefusedEntry, ...]
    skipped: tuple[str, ...]


class _Patterns:
    """Model patterns: a pattern without ``/`` matches the file name at any depth, one
    with ``/`` the whole relative path (anchored, attest's glob syntax)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        chosen = tuple(patterns) or DEFAULT_MODEL_PATTERNS
        self.globs = [compile_glob(p if "/" in p else "**/" + p) for p in chosen]

    def match(self, name: str) -> bool:
        return any(g.matches(name, False) for g in self.globs)


def discover_models(root: str | os.PathLike[str], *, patterns: Iterable[str] = (),
                    ignore: Iterable[str] = ()) -> Discovery:
    """Walk the directory ``root`` and find its models (see the module docstring).

    ``patterns`` replace :data:`DEFAULT_MODEL_PATTERNS` when given. Results are sorted
    by name. Raises :class:`ModelPathError` when ``root`` is not a directory.
    """
    top = os.fspath(root)
    st = os.stat(top)  # the root itself may be reached through a link the user typed
    if not stat.S_ISDIR(st.st_mode):
        raise ModelPathError(f"{top} is not a directory", what="directory", where=top)
    wanted = _Patterns(patterns)
    rules = IgnoreRules(tuple(ignore), defaults=False)
    models: list[DiscoveredModel] = []
    refused: list[RefusedEntry] = []
    skipped: list[str] = []
    stack: list[tuple[str, str, int]] = [(top, "", 0)]
    while stack:
        directory, prefix, depth = stack.pop()
        if depth > MAX_DEPTH:
            refused.append(RefusedEntry(prefix.rstrip("/"), directory,
                                        f"deeper than {MAX_DEPTH} directories"))
            continue
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        names = {e.name for e in entries}
        inner = _inner_bundles(directory, entries, names)
        if inner.whole is not None:  # the root itself may be one model, named "."
            models.append(DiscoveredModel(prefix.rstrip("/") or ".", directory, "directory",
                                          inner.whole))
            continue
        for entry in entries:
            name = prefix + entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if rules.match(name, is_dir) is not None:
                continue
            has_bundle = entry.name + BUNDLE_SUFFIX in names
            bundle = entry.path + BUNDLE_SUFFIX if has_bundle else inner.files.get(entry.name)
            has_bundle = bundle is not None
            if entry.is_symlink():
                if has_bundle or wanted.match(name) or os.path.isdir(entry.path):
                    refused.append(RefusedEntry(name, entry.path, "symbolic link: not "
                                                "followed (a model must be a regular file "
                                                "or directory inside the tree)"))
                continue
            if is_dir:
                if entry.name in SKIPPED_DIRECTORIES or _is_virtualenv(entry.path):
                    skipped.append(name)
                elif has_bundle:
                    models.append(DiscoveredModel(name, entry.path, "directory", bundle))
                else:
                    stack.append((entry.path, name + "/", depth + 1))
                continue
            if entry.name.endswith(BUNDLE_SUFFIX) or not (has_bundle or wanted.match(name)):
                continue
            if entry.is_file(follow_symlinks=False):
                models.append(DiscoveredModel(name, entry.path, "file", bundle))
            else:
                refused.append(RefusedEntry(name, entry.path, "not a regular file "
                                            "(socket, FIFO or device)"))
    return Discovery(top, tuple(sorted(models, key=lambda m: m.name)),
                     tuple(sorted(refused, key=lambda r: r.name)), tuple(sorted(skipped)))


@dataclass(frozen=True)
class _InnerBundles:
    """Bundles inside a directory that sit beside nothing of their name: one covering
    the whole directory (``whole``), or single-file ones (file name → bundle path)."""

    whole: str | None
    files: dict[str, str]


def _inner_bundles(directory: str, entries: list[os.DirEntry[str]],
                   names: set[str]) -> _InnerBundles:
    files: dict[str, str] = {}
    for entry in entries:
        stem = entry.name[:-len(BUNDLE_SUFFIX)]
        if not entry.name.endswith(BUNDLE_SUFFIX) or stem in names \
                or not entry.is_file(follow_symlinks=False):
            continue
        subjects = _subject_names(entry.path)
        if not subjects or any(name_problem(n) is not None for n in subjects):
            continue
        if _covers_every_file(directory, set(subjects)):
            return _InnerBundles(entry.path, {})
        if len(subjects) == 1 and "/" not in subjects[0] and subjects[0] in names:
            files.setdefault(subjects[0], entry.path)
    return _InnerBundles(None, files)


def _subject_names(path: str) -> list[str]:
    """The subject names of a bundle's DSSE statement ([] for anything else). Read only
    to group files into a model: the verification checks them."""
    from mgattest.attest._bundle import load_bundle  # noqa: PLC0415 - only for inner bundles

    try:
        envelope = load_bundle(path).envelope
        statement = json.loads(envelope.payload) if envelope is not None else None
    except (MgattestError, OSError, ValueError, RecursionError):
        return []
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    if not isinstance(subjects, list):
        return []
    return [s["name"] for s in subjects if isinstance(s, dict) and isinstance(s.get("name"), str)]


def _covers_every_file(directory: str, subjects: set[str]) -> bool:
    """Every regular file below ``directory`` (bundles and default ignores aside) is a
    subject, and every subject is such a file."""
    seen = 0
    defaults = IgnoreRules()
    for dirpath, dirnames, filenames in os.walk(directory):
        rel = os.path.relpath(dirpath, directory).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        dirnames[:] = [d for d in dirnames if defaults.match(prefix + d, True) is None]
        for filename in filenames:
            name = prefix + filename
            if filename.endswith(BUNDLE_SUFFIX) or defaults.match(name, False) is not None:
                continue
            if name not in subjects:
                return False
            seen += 1
    return seen == len(subjects)


def _is_virtualenv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))
