"""Careful zip reading: the checks that make zip readers agree, and bounded extraction.

Zip readers disagree about damaged archives (CRC errors, encryption and data-descriptor
flag bits, local names that differ from central-directory names, duplicate or
overlapping members). Each such disagreement is a finding; member contents are only
ever read through a size- and ratio-bounded stream.
"""

from __future__ import annotations

import io
import itertools
import mmap
import struct
import zipfile
import zlib
from dataclasses import dataclass

from mgattest.inspect._limits import Data
from mgattest.inspect._pickle_scan import ScanContext
from mgattest.inspect._report import MALFORMED, SUSPICIOUS

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_SUPPORTED_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                      zipfile.ZIP_LZMA}


class ArchiveError(Exception):
    """The archive (or one member) cannot be read safely."""


class _MmapFile(io.RawIOBase):
    """A seekable read-only file view of an mmap (mmap itself lacks ``seekable``)."""

    def __init__(self, data: mmap.mmap) -> None:
        super().__init__()
        self._data, self._pos = data, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._data)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # io declares the Buffer protocol (3.12+)
        chunk = self._data[self._pos:self._pos + len(buffer)]
        buffer[:len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


@dataclass
class Member:
    name: str
    info: zipfile.ZipInfo


def open_zip(data: Data, ctx: ScanContext) -> tuple[zipfile.ZipFile, list[Member]] | None:
    """Open ``data`` as a zip and check its structure; None (with a finding) if unusable."""

    source = _MmapFile(data) if isinstance(data, mmap.mmap) else io.BytesIO(data)
    try:
        zf = zipfile.ZipFile(source)
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError,
            NotImplementedError, struct.error) as exc:
        ctx.add(MALFORMED, "zip", f"unreadable zip archive: {exc}")
        return None
    if len(infos) > ctx.limits.max_archive_members:
        ctx.add(MALFORMED, "zip", f"zip archive has {len(infos)} members (limit "
                f"{ctx.limits.max_archive_members})")
        return None
    seen: set[str] = set()
    ranges: list[tuple[int, int, str]] = []
    members: list[Member] = []
    for info in infos:
        name = info.filename
        where = f"member {name!r}"
        if name in seen:
            ctx.add(SUSPICIOUS, "zip-duplicate",
                    f"duplicate zip {where}: readers disagree about which copy wins")
        seen.add(name)
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") \
                or (len(name) > 1 and name[1] == ":"):
            ctx.add(SUSPICIOUS, "zip-path", f"zip {where} has an absolute or escaping path")
        if info.flag_bits & 0x1:
            ctx.add(MALFORMED, "zip-encrypted", f"zip {where} is encrypted")
            continue
        if info.compress_type not in _SUPPORTED_METHODS:
            ctx.add(MALFORMED, "zip-method",
                    f"zip {where} uses unsupported compression method {info.compress_type}")
            continue
        data_start = _check_local_header(data, info, ctx)
        if data_start is None:
            continue
        if data_start + info.compress_size > len(data):
            ctx.add(MALFORMED, "zip-truncated", f"zip {where} data runs past the end of file",
                    offset=data_start)
            continue
        ranges.append((data_start, data_start + info.compress_size, name))
        members.append(Member(name, info))
    ranges.sort()
    for (_s1, e1, n1), (s2, _e2, n2) in itertools.pairwise(ranges):
        if s2 < e1:
            ctx.add(MALFORMED, "zip-overlap",
                    f"zip members {n1!r} and {n2!r} overlap (a zip-bomb technique)", offset=s2)
    return zf, members


def _check_local_header(data: Data, info: zipfile.ZipInfo, ctx: ScanContext) -> int | None:
    off = info.header_offset
    where = f"member {info.filename!r}"
    if off < 0 or off + _LOCAL.size > len(data):
        ctx.add(MALFORMED, "zip-header", f"zip {where}: local header outside the file")
        return None
    (sig, _ver, flags, method, _t, _d, crc, csize, usize, nlen, xlen) = _LOCAL.unpack_from(
        data, off)
    if sig != b"PK\x03\x04":
        ctx.add(MALFORMED, "zip-header", f"zip {where}: bad local header signature",
                offset=off)
        return None
    raw_name = bytes(data[off + _LOCAL.size: off + _LOCAL.size + nlen])
    try:
        local_name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
    except UnicodeDecodeError:
        local_name = raw_name.decode("latin-1")
    if local_name != info.orig_filename:
        ctx.add(SUSPICIOUS, "zip-mismatch",
                f"zip {where}: local header names it {local_name!r}; readers disagree",
                offset=off)
    if method != info.compress_type:
        ctx.add(SUSPICIOUS, "zip-mismatch",
                f"zip {where}: local and central compression methods differ", offset=off)
    if (flags & 0x1) != (info.flag_bits & 0x1):
        ctx.add(SUSPICIOUS, "zip-mismatch",
                f"zip {where}: local and central encryption flags differ", offset=off)
    if not flags & 0x8 and (crc, csize) != (info.CRC, info.compress_size) \
            and csize != 0xFFFFFFFF:
        ctx.add(SUSPICIOUS, "zip-mismatch",
                f"zip {where}: local and central CRC/size differ", offset=off)
    del usize
    data_start: int = off + _LOCAL.size + nlen + xlen
    return data_start


def read_member(zf: zipfile.ZipFile, member: Member, ctx: ScanContext,
                budget: list[int], limit: int | None = None) -> bytes | None:
    """Read one member fully, bounded in size and ratio; CRC is checked at the end.

    ``budget`` is a one-item list holding the bytes still allowed for the whole archive.
    Returns None (with a finding) when the member is unreadable or too large.
    """
    info = member.info
    cap = min(limit or ctx.limits.max_decompressed_bytes, budget[0])
    where = f"zip member {member.name!r}"
    if info.file_size > cap:
        ctx.add(MALFORMED, "zip-bomb", f"{where} declares {info.file_size} bytes "
                f"(limit {cap})")
        return None
    chunks: list[bytes] = []
    total = 0
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if total > cap or total > info.file_size:
                    ctx.add(MALFORMED, "zip-bomb",
                            f"{where} inflates past its declared size or the limit")
                    return None
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as exc:
        ctx.add(MALFORMED, "zip-member", f"{where} unreadable: {exc}")
        return None
    if total > 1 << 20 and info.compress_size and total // max(info.compress_size, 1) > \
            ctx.limits.max_compression_ratio:
        ctx.add(MALFORMED, "zip-bomb", f"{where} compression ratio "
                f"{total // info.compress_size}:1 exceeds the limit")
        return None
    budget[0] -= total
    return b"".join(chunks)


def read_member_head(zf: zipfile.ZipFile, member: Member, n: int = 64) -> bytes:
    """The first ``n`` bytes of a member (for format sniffing), b"" if unreadable."""
    try:
        with zf.open(member.info) as fh:
            return fh.read(n)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError):
        return b""
