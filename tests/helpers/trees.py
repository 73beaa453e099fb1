"""Model directories on disk for tests: a tree of files from a name -> bytes mapping."""

from __future__ import annotations

from pathlib import Path


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Create ``files`` (relative POSIX name → bytes) under ``root``; return ``root``."""
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root
