"""Model directories on disk for tests: a tree of files from a name -> bytes mapping."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RandomBytes:
    """A file of ``size`` fresh random bytes, drawn each time a tree is made."""

    size: int


FileContent = bytes | RandomBytes

# The model the ``model`` fixture makes when a test module declares no MODEL_FILES: the
# weights and tokenizer a newcomer signs in the CLI walkthrough.
DEFAULT_MODEL_FILES: dict[str, FileContent] = {
    "weights.bin": RandomBytes(4096),
    "tokenizer.json": b"{}",
}


def make_tree(root: Path, files: dict[str, FileContent]) -> Path:
    """Create ``files`` (relative POSIX name → content) under ``root``; return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(data.size) if isinstance(data, RandomBytes) else data)
    return root
