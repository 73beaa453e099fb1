"""Bounded decompression of single compressed streams (compressed joblib files)."""

from __future__ import annotations

import bz2
import lzma
import zlib

from mgattest.inspect._limits import Data, Limits

_STEP = 1 << 20


class DecompressionError(Exception):
    """The stream is corrupt, or inflates past the limits (a decompression bomb)."""


def _decompressor(kind: str) -> zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor:
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "zlib":
        return zlib.decompressobj()
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind in ("xz", "lzma"):
        return lzma.LZMADecompressor()
    raise DecompressionError(f"unsupported compression {kind!r}")


def decompress(kind: str, data: Data, limits: Limits) -> bytes:
    """Decompress all of ``data`` (following multi-member gzip/bz2/xz), bounded in size."""
    cap = limits.max_decompressed_bytes
    out: list[bytes] = []
    total = 0
    buf = memoryview(data)
    while True:
        dec = _decompressor(kind)
        pos = 0
        chunk: bytes | memoryview
        try:
            while not dec.eof:
                if not isinstance(dec, (bz2.BZ2Decompressor, lzma.LZMADecompressor)):  # gzip, zlib
                    if dec.unconsumed_tail:
                        chunk = dec.unconsumed_tail
                    elif pos < len(buf):
                        chunk = buf[pos:pos + _STEP]
                        pos += len(chunk)
                    else:
                        raise DecompressionError(f"truncated {kind} stream")
                    piece = dec.decompress(chunk, cap - total + 1)
                else:
                    if dec.needs_input:
                        if pos >= len(buf):
                            raise DecompressionError(f"truncated {kind} stream")
                        chunk = bytes(buf[pos:pos + _STEP])
                        pos += len(chunk)
                    else:
                        chunk = b""
                    piece = dec.decompress(chunk, max_length=cap - total + 1)
                total += len(piece)
                if total > cap:
                    raise DecompressionError(f"inflates past {cap} bytes (decompression bomb?)")
                out.append(piece)
        except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
            raise DecompressionError(f"corrupt {kind} stream: {exc}") from None
        rest = bytes(dec.unused_data) + bytes(buf[pos:])
        if kind == "zlib" or not rest.strip(b"\x00"):
            return b"".join(out)
        buf = memoryview(rest)
