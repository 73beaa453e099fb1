"""safetensors structural checks: header size cap, dtypes, shapes, offsets in bounds,
contiguous buffer without holes or overlap (the spec forbids both, to stop polyglots)."""

from __future__ import annotations

import json

from mgattest._jsonutil import DuplicateKeyError, reject_duplicate_keys
from mgattest.inspect._limits import Data
from mgattest.inspect._pickle_scan import ScanContext
from mgattest.inspect._report import MALFORMED

# bits per element
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16,
    "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64,
    "U64": 64, "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


def check_safetensors(data: Data, ctx: ScanContext) -> None:
    """Add a ``malformed`` finding for every structural defect of a safetensors file."""
    def bad(detail: str, offset: int | None = None) -> None:
        ctx.add(MALFORMED, "safetensors", detail, offset)

    if len(data) < 8:
        return bad("file shorter than the 8-byte header length")
    n = int.from_bytes(data[:8], "little")
    if n > ctx.limits.max_json_header_bytes:
        return bad(f"header length {n} exceeds the limit {ctx.limits.max_json_header_bytes}", 0)
    if 8 + n > len(data):
        return bad(f"header length {n} runs past the end of the file ({len(data)} bytes)", 0)
    raw = bytes(data[8:8 + n])
    if not raw.startswith(b"{"):
        return bad("header does not start with '{'", 8)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=reject_duplicate_keys)
    except DuplicateKeyError as exc:
        return bad(f"duplicate key {exc.key!r} in header", 8)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return bad(f"header is not valid UTF-8 JSON: {exc}", 8)
    if not isinstance(header, dict):
        return bad("header is not a JSON object", 8)
    buffer_len = len(data) - 8 - n
    spans: list[tuple[int, int, str]] = []
    for key, entry in header.items():
        if key == "__metadata__":
            if not isinstance(entry, dict) or not all(
                    isinstance(v, str) for v in entry.values()):
                bad("__metadata__ must map strings to strings")
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            bad(f"tensor {key!r}: entry must have exactly dtype, shape, data_offsets")
            continue
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPE_BITS:
            bad(f"tensor {key!r}: unknown dtype {dtype!r}")
            continue
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            bad(f"tensor {key!r}: shape must be a list of non-negative integers")
            continue
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            bad(f"tensor {key!r}: data_offsets must be two integers")
            continue
        begin, end = offsets
        if not 0 <= begin <= end <= buffer_len:
            bad(f"tensor {key!r}: bytes {begin}-{end} are outside the {buffer_len}-byte "
                "data buffer", 8 + n + max(begin, 0))
            continue
        count = 1
        for d in shape:
            count *= d
        bits = count * DTYPE_BITS[dtype]
        if bits % 8 or bits // 8 != end - begin:
            bad(f"tensor {key!r}: {dtype}{shape} needs {bits / 8:g} bytes but data_offsets "
                f"span {end - begin}", 8 + n + begin)
            continue
        spans.append((begin, end, key))
    spans.sort()
    cursor = 0
    for begin, end, key in spans:
        if begin < cursor:
            bad(f"tensor {key!r}: bytes {begin}-{end} overlap the previous tensor",
                8 + n + begin)
        elif begin > cursor:
            bad(f"hole in the data buffer at bytes {cursor}-{begin} before tensor {key!r}",
                8 + n + cursor)
        cursor = max(cursor, end)
    if cursor != buffer_len and not any(f.kind == "safetensors" for f in ctx.findings
                                        if f.member == ctx.member and "outside" in f.detail):
        bad(f"data buffer has {buffer_len - cursor} unindexed trailing bytes "
            f"(from byte {8 + n + cursor})", 8 + n + cursor)
