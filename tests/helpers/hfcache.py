"""Hugging Face layouts built on disk the way huggingface_hub writes them.

A hub cache repository (``models--ORG--NAME``) gets content-addressed ``blobs/`` (LFS
files named by their SHA-256, small files by their git blob id), ``refs/<branch>``
holding a commit hash without a newline, and ``snapshots/<commit>/<path>`` relative
links ``../../blobs/<etag>`` (one more ``../`` per subdirectory), exactly as
``huggingface_hub.file_download`` creates them. Tests cross-check every layout with
huggingface_hub's own readers (``scan_cache_dir``, ``try_to_load_from_cache``,
``snapshot_download(local_files_only=True)``).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

#: File suffixes huggingface_hub stores through LFS in these fixtures (named by SHA-256).
LFS_SUFFIXES = (".safetensors", ".bin")

COMMIT_A = "a" * 39 + "1"
COMMIT_B = "b" * 39 + "2"


def git_blob_id(data: bytes) -> str:
    """The git blob id (the etag the hub gives a non-LFS file)."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def etag_of(name: str, data: bytes) -> str:
    """The blob name huggingface_hub would use for ``name`` holding ``data``."""
    if name.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return git_blob_id(data)


def safetensors_bytes(values: tuple[float, ...]) -> bytes:
    """A valid safetensors file with one F32 tensor ``w``."""
    data = struct.pack(f"<{len(values)}f", *values)
    header = json.dumps({"w": {"dtype": "F32", "shape": [len(values)],
                               "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def repo_dir(cache: Path, repo_id: str, repo_type: str = "model") -> Path:
    """``<cache>/models--ORG--NAME`` (datasets--, spaces--)."""
    return cache / f"{repo_type}s--{repo_id.replace('/', '--')}"


def add_revision(cache: Path, repo_id: str, commit: str, files: dict[str, bytes], *,
                 refs: tuple[str, ...] = (), repo_type: str = "model") -> Path:
    """Write one revision into the cache (blobs shared with other revisions); point
    ``refs`` at it. Returns the snapshot directory."""
    repo = repo_dir(cache, repo_id, repo_type)
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot = repo / "snapshots" / commit
    for name, data in files.items():
        etag = etag_of(name, data)
        blob = repo / "blobs" / etag
        if not blob.exists():
            blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        depth = name.count("/")
        os.symlink("../" * (depth + 2) + f"blobs/{etag}", link)
    for ref in refs:
        ref_file = repo / "refs" / ref
        ref_file.parent.mkdir(parents=True, exist_ok=True)
        ref_file.write_text(commit)
    return snapshot


def blob_of(snapshot: Path, name: str) -> Path:
    """The blob a snapshot entry links to."""
    return (snapshot / name).parent / os.readlink(snapshot / name)
