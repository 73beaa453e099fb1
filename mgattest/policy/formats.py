"""Classify a model file's serialisation format from its name and first bytes."""

from __future__ import annotations

import posixpath

PICKLE_FORMATS = frozenset({"pickle", "joblib"})

_BY_SUFFIX = {
    ".safetensors": "safetensors",
    ".pt": "pytorch", ".pth": "pytorch", ".bin": "pytorch", ".ckpt": "pytorch",
    ".npy": "numpy", ".npz": "numpy",
    ".onnx": "onnx",
    ".pkl": "pickle", ".pickle": "pickle", ".p": "pickle", ".dill": "pickle",
    ".joblib": "joblib",
    ".gguf": "gguf",
    ".json": "json",
    ".txt": "text", ".md": "text", ".model": "other",
}


def detect_format(name: str, head: bytes | None = None) -> str:
    """Best classification of *name*: magic bytes first (when given), then the suffix.

    Magic wins so a pickle renamed ``weights.safetensors`` is still a pickle.
    """
    if head:
        if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
            suffix = posixpath.splitext(name.lower())[1]
            return "joblib" if suffix == ".joblib" else "pickle"
        if head[:6] == b"\x93NUMPY":
            return "numpy"
        if head[:4] == b"GGUF":
            return "gguf"
        if head[:4] == b"PK\x03\x04":
            suffix = posixpath.splitext(name.lower())[1]
            return "numpy" if suffix == ".npz" else "pytorch"
    return _BY_SUFFIX.get(posixpath.splitext(name.lower())[1], "other")


_ALIASES = {
    "torch": "pytorch", "torch-zip": "pytorch", "torch-legacy": "pytorch", "pt": "pytorch",
    "npy": "numpy", "npz": "numpy", "pkl": "pickle", "maybe-pickle": "pickle",
}
_KNOWN = frozenset({"safetensors", "pytorch", "numpy", "onnx", "pickle", "joblib", "gguf",
                    "json", "text"})


def normalize_format(fmt: str | None, name: str) -> str:
    """Map a scanner's format label (``mgattest.inspect``) onto the policy's names.

    Labels that only say "some data" or "unknown" fall back to the file name; any other
    label the policy has no name for (archives, keras, code ...) is ``other``.
    """
    if not fmt or fmt in ("data", "unknown", "empty"):
        return detect_format(name)
    fmt = _ALIASES.get(fmt.lower(), fmt.lower())
    return fmt if fmt in _KNOWN else "other"
