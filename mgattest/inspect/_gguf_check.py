"""GGUF header sanity: counts, string and array lengths, tensor infos and data bounds."""

from __future__ import annotations

import itertools
import struct

from mgattest.inspect._limits import Data
from mgattest.inspect._pickle_scan import ScanContext
from mgattest.inspect._report import MALFORMED, SUSPICIOUS

_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
# ggml type -> (elements per block, bytes per block), from ggml's type traits. A tensor
# of a type not listed here cannot be size-checked, so it is malformed (fail closed).
_GGML = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
         8: (32, 34), 9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144),
         13: (256, 176), 14: (256, 210), 15: (256, 292),
         16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
         21: (256, 110), 22: (256, 82), 23: (256, 136),  # IQ2_XXS .. IQ4_XS
         24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
         29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17)}
_TEMPLATE_RED_FLAGS = ("__class__", "__globals__", "__subclasses__", "__builtins__",
                       "__import__", "__init__", "popen", "os.system", "subprocess", "eval(")


class _Bad(Exception):
    def __init__(self, detail: str, offset: int) -> None:
        super().__init__(detail)
        self.detail, self.offset = detail, offset


class _Reader:
    def __init__(self, data: Data, ctx: ScanContext) -> None:
        self.data, self.pos, self.ctx = data, 0, ctx

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _Bad(f"truncated GGUF: {what} needs {n} bytes", self.pos)
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def u32(self, what: str) -> int:
        (number,) = struct.unpack("<I", self.take(4, what))
        return int(number)

    def u64(self, what: str) -> int:
        (number,) = struct.unpack("<Q", self.take(8, what))
        return int(number)

    def string(self, what: str) -> str:
        n = self.u64(f"{what} length")
        if n > len(self.data) - self.pos:
            raise _Bad(f"{what} length {n} runs past the end of the file", self.pos - 8)
        try:
            return self.take(n, what).decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad(f"{what} is not UTF-8", self.pos - n) from None

    def value(self, vtype: int, what: str, depth: int = 0) -> int | str | None:
        if vtype in _SCALARS:
            raw = self.take(_SCALARS[vtype], what)
            return int.from_bytes(raw, "little") if vtype in (0, 2, 4, 10) else None
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            if depth > 2:
                raise _Bad(f"{what}: arrays nested too deeply", self.pos)
            etype = self.u32(f"{what} element type")
            count = self.u64(f"{what} element count")
            min_size = _SCALARS.get(etype, 8)
            if etype not in _SCALARS and etype not in (_STRING, _ARRAY):
                raise _Bad(f"{what}: unknown array element type {etype}", self.pos - 12)
            if count * min_size > len(self.data) - self.pos:
                raise _Bad(f"{what}: array of {count} elements cannot fit in the file",
                           self.pos - 8)
            if etype in _SCALARS:
                self.take(count * min_size, what)
                return None
            for _ in range(count):
                self.value(etype, what, depth + 1)
            return None
        raise _Bad(f"{what}: unknown value type {vtype}", self.pos - 4)


def check_gguf(data: Data, ctx: ScanContext) -> None:
    """Add findings for a GGUF file whose header is inconsistent with its size."""
    r = _Reader(data, ctx)
    try:
        if r.take(4, "magic") != b"GGUF":
            raise _Bad("missing GGUF magic", 0)
        version = r.u32("version")
        if version not in (2, 3):
            raise _Bad(f"unsupported GGUF version {version}", 4)
        n_tensors = r.u64("tensor count")
        n_kv = r.u64("metadata count")
        lim = ctx.limits.max_gguf_entries
        if n_tensors > lim or n_kv > lim:
            raise _Bad(f"absurd counts: {n_tensors} tensors, {n_kv} metadata entries", 8)
        alignment = 32
        for i in range(n_kv):
            key = r.string(f"metadata key {i}")
            vtype = r.u32(f"metadata {key!r} type")
            start = r.pos
            value = r.value(vtype, f"metadata {key!r}")
            if key == "general.alignment" and vtype == 4 and isinstance(value, int):  # u32
                alignment = value or 0
            if key.endswith("chat_template") and vtype == _STRING:
                text = bytes(data[start + 8:r.pos]).decode("utf-8", "replace")
                flags = [f for f in _TEMPLATE_RED_FLAGS if f in text]
                if flags:
                    ctx.add(SUSPICIOUS, "gguf-template",
                            f"chat template {key!r} reaches Python internals "
                            f"({', '.join(flags)}): server-side template injection", start)
        if alignment <= 0 or alignment & (alignment - 1):
            raise _Bad(f"general.alignment {alignment} is not a power of two", r.pos)
        tensors = []
        names: set[str] = set()
        for i in range(n_tensors):
            name = r.string(f"tensor {i} name")
            if name in names:
                raise _Bad(f"duplicate tensor name {name!r}", r.pos)
            names.add(name)
            n_dims = r.u32(f"tensor {name!r} n_dims")
            if n_dims > 8:
                raise _Bad(f"tensor {name!r} has {n_dims} dimensions", r.pos - 4)
            count = 1
            for _ in range(n_dims):
                count *= r.u64(f"tensor {name!r} dimension")
            gtype = r.u32(f"tensor {name!r} type")
            offset = r.u64(f"tensor {name!r} offset")
            tensors.append((name, count, gtype, offset))
        data_start = (r.pos + alignment - 1) // alignment * alignment
        data_len = len(data) - data_start
        spans = []
        for name, count, gtype, offset in tensors:
            if offset % alignment:
                raise _Bad(f"tensor {name!r} offset {offset} is not {alignment}-aligned",
                           data_start)
            if gtype not in _GGML:
                raise _Bad(f"tensor {name!r} has unknown ggml type {gtype}: its size cannot "
                           "be checked", data_start)
            block, block_bytes = _GGML[gtype]
            if count % block:
                raise _Bad(f"tensor {name!r}: {count} elements is not a multiple of "
                           f"the block size {block}", data_start)
            size = count // block * block_bytes
            if offset + size > data_len:
                raise _Bad(f"tensor {name!r} bytes {offset}-{offset + size} run past the "
                           f"{data_len}-byte data section", data_start + min(offset, data_len))
            spans.append((offset, offset + size, name))
        spans.sort()
        for (_s1, e1, n1), (s2, _e2, n2) in itertools.pairwise(spans):
            if s2 < e1:
                raise _Bad(f"tensors {n1!r} and {n2!r} overlap", data_start + s2)
    except _Bad as exc:
        ctx.add(MALFORMED, "gguf", exc.detail, exc.offset)
