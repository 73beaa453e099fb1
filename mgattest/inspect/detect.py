"""Recognise a model file's format from its first bytes (and, failing that, its name)."""

from __future__ import annotations

import pickletools

PICKLE_OPCODES = frozenset(ord(op.code) for op in pickletools.opcodes)

# Files a loader would hand to pickle; parse failures here are findings.
PICKLE_EXTS = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".jl", ".sav", ".p",
               ".mar")
# Ambiguous raw-data names (.bin holds torch pickles and ONNX external data alike).
DATA_EXTS = (".json", ".txt", ".md", ".yaml", ".yml", ".csv", ".tsv", ".model", ".vocab",
             ".merges", ".cfg", ".ini", ".toml", ".jinja", ".spm", ".tiktoken", ".license",
             ".gitattributes", ".png", ".jpg", ".jpeg", ".gif", ".svg")
CODE_EXTS = (".py", ".sh", ".js", ".so", ".dll", ".dylib", ".pyc", ".exe")


def sniff(name: str, head: bytes) -> str:
    """Format tag for a blob whose first bytes are ``head``.

    Tags: zip, npy, hdf5, gguf, gzip, bz2, xz, lzma, zlib, joblib-zf, safetensors, onnx,
    tar, pickle, data, code, unknown.
    """
    lower = name.lower()
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if head[:4] == b"GGUF":
        return "gguf"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"]\x00\x00":
        return "lzma"
    if head[:2] == b"ZF":
        return "joblib-zf"
    if len(head) >= 2 and head[0] == 0x78 and head[1] in (0x01, 0x5E, 0x9C, 0xDA):
        return "zlib"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:1] == b"\x80":
        return "pickle"
    if lower.endswith(".safetensors") or _looks_like_safetensors(head):
        return "safetensors"
    if lower.endswith(".onnx"):
        return "onnx"
    if lower.endswith(CODE_EXTS):
        return "code"
    if lower.endswith(DATA_EXTS):
        return "data"
    if head[:1] and head[0] in PICKLE_OPCODES:
        return "pickle" if lower.endswith(PICKLE_EXTS) else "maybe-pickle"
    # Not a pickle opcode: every unpickler rejects it at the first byte, nothing can run.
    return "not-pickle" if lower.endswith(PICKLE_EXTS) else "unknown"


def _looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= 100 * 1024**2 and head[8:9] == b"{" and head[9:10] in (b'"', b"}", b" ")
