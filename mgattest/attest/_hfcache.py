"""The Hugging Face hub cache: ``hf:ORG/NAME[@REV]`` references, and cache-blob checks.

A reference is resolved offline, the way huggingface_hub finds files in its cache: the
cache directory is ``HF_HUB_CACHE`` (or the legacy ``HUGGINGFACE_HUB_CACHE``), else
``HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``, else
``~/.cache/huggingface/hub``; ``REV`` is a branch or tag (the commit in ``refs/REV``)
or a full 40-hex commit hash, ``main`` by default. ``hf:datasets/ORG/NAME`` and
``hf:spaces/ORG/NAME`` name the other repo types. The result is the snapshot directory,
which the walk (``attest._walk``) recognises by itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from mgattest._files import read_bounded
from mgattest._hflayout import (
    REPO_TYPES,
    BlobDigestKind,
    blob_digest_kind,
    blob_hasher,
    find_snapshot,
)
from mgattest.attest._walk import ModelFile, WalkResult, open_model_file
from mgattest.attest.errors import CacheCorruptionError, ModelReferenceError

__all__ = ["HF_SCHEME", "check_cache_blobs", "hub_cache_dir", "resolve_hf_reference"]

HF_SCHEME = "hf:"

# huggingface_hub's repo-id rule: letters, digits, "-", "_", "." (no "--" or ".."),
# at most 96 characters, an optional namespace.
_REPO_PART = r"[A-Za-z0-9_.-]+"
_REPO_ID = re.compile(rf"(?:{_REPO_PART}/)?{_REPO_PART}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_MAX_REF_BYTES = 256
_READ_CHUNK = 1 << 20


def hub_cache_dir() -> Path:
    """The hub cache directory huggingface_hub would use (environment rules above)."""
    def expand(value: str) -> str:
        return os.path.expanduser(os.path.expandvars(value))

    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        value = os.environ.get(name)
        if value:
            return Path(expand(value))
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                               ".cache")
        home = os.path.join(xdg, "huggingface")
    return Path(expand(home)) / "hub"


def _bad(text: str, why: str) -> ModelReferenceError:
    return ModelReferenceError(f"Hugging Face reference {text!r} {why}",
                               what="model reference", where=text)


def _parse(text: str) -> tuple[str, str, str]:
    """``(repo folder prefix, repo id, revision)`` of ``hf:[TYPE/]ORG/NAME[@REV]``."""
    body = text[len(HF_SCHEME):]
    repo_id, at, revision = body.partition("@")
    if at and not revision:
        raise _bad(text, "has an empty revision after '@'")
    kind = "models"
    first, slash, rest = repo_id.partition("/")
    if slash and first in REPO_TYPES and "/" in rest:
        kind, repo_id = first, rest
    if not _REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id \
            or len(repo_id) > 96:
        raise _bad(text, "does not name a repository as ORG/NAME (letters, digits, '-', "
                         "'_', '.'; no '--' or '..'; at most 96 characters)")
    revision = revision or "main"
    if revision.startswith("/") or any(seg in ("", ".", "..") for seg in revision.split("/")) \
            or "\\" in revision or "\x00" in revision:
        raise _bad(text, f"has an unusable revision {revision!r}")
    return kind, repo_id, revision


def resolve_hf_reference(text: str) -> Path:
    """The snapshot directory ``hf:[TYPE/]ORG/NAME[@REV]`` names in the local cache.

    Raises :class:`ModelReferenceError` for a malformed reference, or one the cache
    cannot resolve (repository, ref or snapshot missing, a ref that is not a commit).
    """
    kind, repo_id, revision = _parse(text)
    cache = hub_cache_dir()
    repo_dir = cache / f"{kind}--{repo_id.replace('/', '--')}"
    if not repo_dir.is_dir():
        raise _bad(text, f"is not in the local cache: no {repo_dir} (download it first, "
                         "e.g. `hf download`, or set HF_HUB_CACHE / HF_HOME)")
    commit = revision if _COMMIT.fullmatch(revision) else _read_ref(text, repo_dir, revision)
    snapshot = repo_dir / "snapshots" / commit
    if find_snapshot(snapshot) is None:
        raise _bad(text, f"resolves to revision {commit}, which has no snapshot in the "
                         f"cache ({snapshot} missing, or {repo_dir}/blobs missing)")
    return snapshot


def _read_ref(text: str, repo_dir: Path, revision: str) -> str:
    ref = repo_dir / "refs" / revision
    if not ref.is_file() or ref.is_symlink():
        raise _bad(text, f"names revision {revision!r}, which the cache does not know "
                         f"(no regular file {ref}; give a full commit hash or a cached "
                         "branch/tag)")
    content = read_bounded(ref, _MAX_REF_BYTES, what="cache ref",
                           error=ModelReferenceError).decode("ascii", "replace").strip()
    if not _COMMIT.fullmatch(content):
        raise _bad(text, f"has a ref file {ref} that does not hold a commit hash")
    return content


# --------------------------------------------------------------------------- blobs

def check_cache_blobs(walk: WalkResult, sha256: Mapping[str, str],
                      contents: Mapping[str, bytes | bytearray | memoryview] | None = None
                      ) -> None:
    """Refuse a snapshot whose blobs do not hash to their names: cache corruption.

    ``sha256`` holds the whole-file SHA-256 already computed for some files (by name);
    other files are hashed from ``contents`` when given, else read again from disk
    (opened as the walk saw them). Only files reached through a snapshot link are
    checked, and only blobs whose name promises a digest (64 or 40 hex). Raises
    :class:`CacheCorruptionError` naming the snapshot entry and its blob.
    """
    snapshot = walk.hf_snapshot
    if snapshot is None:
        return
    for mf in walk.files:
        if not mf.base:
            continue
        blob = mf.target.rpartition("/")[2]
        kind = blob_digest_kind(blob)
        if kind is None:
            continue
        known = sha256.get(mf.name) if kind == "sha256" else None
        actual = known.lower() if known else _blob_digest(walk, mf, kind, contents)
        if actual != blob:
            promise = "its SHA-256 (an LFS file)" if kind == "sha256" else \
                "its git blob id (SHA-1 of 'blob <size>\\0' + content)"
            raise CacheCorruptionError(
                f"Hugging Face cache corruption: {mf.name!r} in snapshot {snapshot.path} "
                f"links to blobs/{blob}, whose name is {promise}, but its content hashes "
                f"to {actual}; re-download the file (e.g. `hf download --force-download`)",
                what="cache blob", where=f"{snapshot.path}/{mf.name} -> blobs/{blob}",
                blob=blob, file=mf.name)


def _blob_digest(walk: WalkResult, mf: ModelFile, kind: BlobDigestKind,
                 contents: Mapping[str, bytes | bytearray | memoryview] | None) -> str:
    hasher = blob_hasher(kind, mf.size)
    data = contents.get(mf.name) if contents is not None else None
    if data is not None:
        hasher.update(data)
        return hasher.hexdigest()
    fd = open_model_file(walk.root, mf, single_file=False)
    with os.fdopen(fd, "rb", buffering=0) as fh:
        while chunk := fh.read(_READ_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()
