"""Hugging Face layouts on disk: hub-cache snapshots and ``--local-dir`` metadata (leaf).

A hub cache keeps one folder per repository::

    <cache>/models--ORG--NAME/
        blobs/<etag>                  file contents, named by their etag
        refs/main                     the commit a branch or tag points to
        snapshots/<commit>/<path>     symlinks ../../blobs/<etag> (one tree per revision)

The etag of an LFS file is the SHA-256 of its content (64 hex digits); that of a small
git-stored file is its git blob id, SHA-1 of ``"blob <size>\\0" + content`` (40 hex).
This module knows the layout only: which directory is a snapshot, which snapshot
links are acceptable, what a blob's name promises about its content. It imports
nothing of mgattest, so the walk (``attest``) and the scanner (``inspect``) share it.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from typing import Literal

#: The repository folder prefixes of a hub cache and the repo type each stands for.
REPO_TYPES: dict[str, str] = {"models": "model", "datasets": "dataset", "spaces": "space"}

#: What ``hf download --local-dir`` keeps beside the files (download metadata, locks,
#: ``.gitignore``, ``CACHEDIR.TAG``), relative to the model root.
LOCAL_DIR_METADATA = ".cache/huggingface"

_REPO_FOLDER = re.compile(r"(models|datasets|spaces)--(?!-)[^/]+")
_SHA256_NAME = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1_NAME = re.compile(r"[0-9a-f]{40}")

BlobDigestKind = Literal["sha256", "git-sha1"]


@dataclass(frozen=True)
class Snapshot:
    """One revision's tree in a hub cache: ``<repo_dir>/snapshots/<revision>``."""

    repo_dir: str  # real path of models--ORG--NAME (datasets--, spaces--)
    revision: str  # the snapshot folder's name (a commit hash)

    @property
    def folder(self) -> str:
        """The repository folder name, e.g. ``models--ORG--NAME``."""
        return os.path.basename(self.repo_dir)

    @property
    def blobs_dir(self) -> str:
        """The real path of the repository's ``blobs/``."""
        return os.path.join(self.repo_dir, "blobs")

    @property
    def path(self) -> str:
        """The real path of the snapshot directory."""
        return os.path.join(self.repo_dir, "snapshots", self.revision)

    @property
    def label(self) -> str:
        """``ORG--NAME@<first 12 of revision>`` (prefixed ``datasets--``/``spaces--``
        for those repo types): a file-name-safe name of this revision."""
        kind, _, name = self.folder.partition("--")
        prefix = "" if kind == "models" else kind + "--"
        return f"{prefix}{name}@{self.revision[:12]}"


def _repo_dir_of(real_dir: str) -> str | None:
    """``real_dir``'s repository folder when ``real_dir`` is ``<repo>/snapshots/<rev>``."""
    parent = os.path.dirname(real_dir)
    repo = os.path.dirname(parent)
    if os.path.basename(parent) != "snapshots" or not _REPO_FOLDER.fullmatch(
            os.path.basename(repo)):
        return None
    try:
        blobs = os.lstat(os.path.join(repo, "blobs"))
    except OSError:
        return None
    return repo if stat.S_ISDIR(blobs.st_mode) else None


def find_snapshot(path: str | os.PathLike[str]) -> Snapshot | None:
    """The snapshot ``path`` is (resolved), or None for any other directory.

    A snapshot is a directory ``(models|datasets|spaces)--*/snapshots/<rev>`` whose
    repository folder has a real ``blobs/`` directory beside ``snapshots/``.
    """
    try:
        real = os.path.realpath(path, strict=True)
    except OSError:
        return None
    if not os.path.isdir(real):
        return None
    repo = _repo_dir_of(real)
    return None if repo is None else Snapshot(repo, os.path.basename(real))


def snapshot_above(path: str | os.PathLike[str]) -> tuple[Snapshot, str] | None:
    """The snapshot holding the entry ``path`` (its last component not followed) and
    the entry's POSIX path inside it; None when ``path`` is not below a snapshot."""
    absolute = os.path.abspath(os.fspath(path))
    head, tail = os.path.split(absolute)
    try:
        current = os.path.realpath(head, strict=True)
    except OSError:
        return None
    inner = [tail]
    while current != os.path.dirname(current):
        repo = _repo_dir_of(current)
        if repo is not None:
            return Snapshot(repo, os.path.basename(current)), "/".join(reversed(inner))
        inner.append(os.path.basename(current))
        current = os.path.dirname(current)
    return None


class RefusedLink(Exception):
    """A snapshot entry's link is not one hub caches make; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def follow_blob_link(snapshot: Snapshot, link_dir: str, link_path: str) -> str:
    """The blob a snapshot link points to: ``<repo>/blobs/<name>`` (real path).

    ``link_dir`` is the real directory holding the link. Accepted: a relative link whose
    directory part leads straight to the repository's own ``blobs/`` (no detour
    through other directories), or an absolute one whose directory resolves to it; the
    final component must be a regular file, not another link. Anything else raises
    :class:`RefusedLink` saying where the link leads.
    """
    try:
        target = os.readlink(link_path)
    except OSError as exc:
        raise RefusedLink(f"cannot be read: {exc.strerror}") from None
    head, name = posixpath.split(target)
    if name in ("", ".", ".."):
        raise RefusedLink(f"points to a directory ({target!r}), not to a blob")
    if name.endswith(".incomplete"):
        raise RefusedLink(f"points to a partial download ({target!r})")
    joined = os.path.join(link_dir, head)  # an absolute head replaces link_dir
    physical = os.path.realpath(joined)
    detour = not os.path.isabs(head) and os.path.normpath(joined) != physical
    if physical != snapshot.blobs_dir or detour:
        raise RefusedLink(f"points into {_describe(snapshot, physical, detour)} "
                          f"({target!r}), not straight into this repository's blobs/")
    blob = os.path.join(snapshot.blobs_dir, name)
    try:
        st = os.lstat(blob)
    except FileNotFoundError:
        raise RefusedLink(f"is dangling: blob {name!r} does not exist") from None
    except OSError as exc:
        raise RefusedLink(f"cannot be followed: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise RefusedLink(f"points to blob {name!r}, which is itself a link (chains are "
                          "refused)")
    if stat.S_ISDIR(st.st_mode):
        raise RefusedLink(f"points to a directory (blobs/{name})")
    if not stat.S_ISREG(st.st_mode):
        raise RefusedLink(f"points to blobs/{name}, which is not a regular file")
    return blob


def _describe(snapshot: Snapshot, directory: str, detour: bool) -> str:
    """Where a refused link's directory is, in words."""
    if directory == snapshot.blobs_dir:
        return "this repository's blobs/ through a detour (another link on the way)"
    parent = os.path.dirname(directory)
    if os.path.basename(directory) == "blobs" and _REPO_FOLDER.fullmatch(
            os.path.basename(parent)):
        return f"another repository's blobs/ ({os.path.basename(parent)})"
    if directory == snapshot.repo_dir or directory.startswith(snapshot.repo_dir + os.sep):
        return "this repository outside its blobs/"
    return "a place outside this repository"


def blob_digest_kind(blob_name: str) -> BlobDigestKind | None:
    """What a blob's name promises: the SHA-256 of its content (LFS, 64 hex), its git
    blob id (40 hex), or nothing (None)."""
    if _SHA256_NAME.fullmatch(blob_name):
        return "sha256"
    if _GIT_SHA1_NAME.fullmatch(blob_name):
        return "git-sha1"
    return None


def blob_hasher(kind: BlobDigestKind, size: int) -> "hashlib._Hash":
    """A hash object to feed a blob's content to; its hexdigest is then the blob name
    the content deserves."""
    if kind == "sha256":
        return hashlib.sha256()
    h = hashlib.sha1(usedforsecurity=False)
    h.update(b"blob %d\x00" % size)
    return h
