"""What a file is, decided by its content, and the one vocabulary of format names.

The scanner labels every file by its bytes (:func:`sniff` for magic numbers, then the
structural tests below); a file's *name* never decides its format. Names only add
findings (a ``.safetensors`` file that is not safetensors, a ``.pkl`` that pickle
refuses). :data:`FAMILIES` maps each scanner label onto the format names policies use
(``content.formats``), so the scanner, the policy engine and ``mgattest.load`` agree.
"""

from __future__ import annotations

import json
import pickletools

from mgattest.inspect._limits import Data
from mgattest.inspect._protobuf import ProtobufError, fields

PICKLE_OPCODES = frozenset(ord(op.code) for op in pickletools.opcodes)

# The policy's format names (policy schema ``content.formats``).
POLICY_FORMATS = ("safetensors", "pytorch", "numpy", "onnx", "pickle", "joblib", "gguf",
                  "json", "text", "other")
# scanner label -> policy format; every label the scanner can return is listed.
FAMILIES = {
    "pickle": "pickle", "joblib": "joblib",
    "torch-zip": "pytorch", "torch-legacy": "pytorch",
    "npy": "numpy", "npz": "numpy",
    "safetensors": "safetensors", "onnx": "onnx", "gguf": "gguf",
    "json": "json", "text": "text",
    # everything below has no policy name of its own
    "keras": "other", "hdf5": "other", "zip": "other", "tar": "other", "archive": "other",
    "gzip": "other", "bz2": "other", "xz": "other", "lzma": "other", "zlib": "other",
    "joblib-zf": "other", "code": "other", "unknown": "other", "empty": "other",
    "symlink": "other", "special": "other",
}
# Scanner labels whose content is not inspected (no format check exists): a policy
# reports them "not inspected" and denies them only under ``content.unknown: deny``.
NOT_INSPECTED = frozenset({"unknown", "code"})
# Policy formats whose loader always unpickles (torch.load, joblib, pickle).
PICKLED_FORMATS = frozenset({"pickle", "joblib", "pytorch"})

# Name hints: they add findings, never decide the label.
PICKLE_EXTS = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".jl", ".sav", ".p",
               ".mar")
CODE_EXTS = (".py", ".sh", ".js", ".so", ".dll", ".dylib", ".pyc", ".exe")
# Names that promise a format with a header: empty, such a file is malformed.
HEADERED_EXTS = PICKLE_EXTS + (".safetensors", ".onnx", ".gguf", ".npy", ".npz", ".h5",
                               ".hdf5", ".keras", ".pb", ".tflite", ".zip", ".tar", ".gz")
_NATIVE_CODE_MAGIC = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe",
                      b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce")
_MAX_TEXT_BYTES = 256 * 1024**2  # larger files are not decoded to decide text vs unknown


def policy_format(label: str | None) -> str:
    """The policy's name for a scanner label (``other`` for anything it has no name for)."""
    return FAMILIES.get(label or "unknown", "other")


def sniff(head: bytes) -> str | None:
    """Format tag from unambiguous magic bytes at the start of a file, or None.

    Tags: zip, npy, hdf5, gguf, gzip, bz2, xz, lzma, zlib, joblib-zf, tar, pickle (a
    ``PROTO`` opcode), code (native executables). Safetensors has no magic: see
    :func:`is_safetensors`, which callers try first (a header length can begin with
    bytes that look like the gzip, zlib or lzma magic).
    """
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
    if head.startswith(_NATIVE_CODE_MAGIC):
        return "code"
    return None


def is_safetensors(data: Data, max_header: int) -> bool:
    """An 8-byte header length, then that many bytes of JSON object, inside the file."""
    if not looks_like_safetensors(bytes(data[:10])):
        return False
    n = int.from_bytes(bytes(data[:8]), "little")
    if n > max_header or 8 + n > len(data):
        return False
    try:
        return isinstance(json.loads(bytes(data[8:8 + n]).decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False


def looks_like_safetensors(head: bytes) -> bool:
    """An 8-byte little-endian header length followed by the start of a JSON object."""
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= 100 * 1024**2 and head[8:9] == b"{" and head[9:10] in (b'"', b"}", b" ")


# ModelProto field number -> wire type (0 varint, 2 length-delimited)
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 21: 2, 25: 2}


def looks_like_onnx(data: Data) -> bool:
    """True when ``data`` parses as an ONNX ``ModelProto`` with an IR version and a graph.

    Only the top-level fields are read (each nested message is skipped by its length).
    """
    seen: set[int] = set()
    try:
        for number, wire, _value, _at in fields(data):
            if _MODEL_FIELDS.get(number) != wire:
                return False
            seen.add(number)
    except ProtobufError:
        return False
    return {1, 7} <= seen


def text_kind(data: Data) -> str | None:
    """``json`` (a JSON object or array), ``text`` (UTF-8 without NUL bytes) or None."""
    if len(data) > _MAX_TEXT_BYTES:
        return None
    raw = bytes(data)
    if b"\x00" in raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped[:1] in ("{", "["):
        try:
            json.loads(stripped)
        except (ValueError, RecursionError):
            return "text"
        return "json"
    return "text"
