"""Bounds that keep a scan of hostile input finite in time and memory."""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import TypeAlias

# What a scan reads: file bytes, a slice view of them, or the whole file mapped.
Data: TypeAlias = "bytes | bytearray | memoryview | mmap.mmap"
# What the pickle walker reads: Data with ``find`` (a memoryview is turned into bytes first).
Buffer: TypeAlias = "bytes | bytearray | mmap.mmap"


@dataclass(frozen=True)
class Limits:
    """Every knob that bounds a scan. Exceeding one yields a ``malformed`` finding."""

    max_file_bytes: int = 64 * 1024**3  # files larger than this are not read
    max_decompressed_bytes: int = 4 * 1024**3  # per compressed stream / archive member
    max_total_decompressed_bytes: int = 16 * 1024**3  # per archive
    max_compression_ratio: int = 1000  # above this (and > 1 MiB) a member is a bomb
    max_archive_members: int = 100_000
    max_archive_depth: int = 4  # nested archives
    max_pickle_streams: int = 1000  # concatenated streams in one blob
    max_opcodes: int = 500_000_000
    max_stack: int = 10_000_000
    max_memo: int = 10_000_000
    max_tracked_container: int = 256  # items kept per symbolic container
    max_name_len: int = 4096  # longer strings are opaque to the analysis
    max_json_header_bytes: int = 100 * 1024**2  # safetensors / keras config JSON
    max_npy_header_bytes: int = 1024**2
    max_gguf_entries: int = 1_000_000
    time_budget_s: float = 120.0  # per file
    # What allow-listed calls may allocate, in total: the larger of a floor and a multiple
    # of the pickle's size (legitimate pickles carry their data, so they stay far below).
    min_alloc_budget: int = 64 * 1024**2
    alloc_per_pickle_byte: int = 16
    max_decimal_exponent: int = 10_000  # Fraction/Decimal('1e...'): CPU grows with it
    # dict/set keys: equal hashes (or unknowable ones) make insertion quadratic
    max_equal_key_hashes: int = 1000
    max_computed_keys: int = 20_000
    max_expanded_tuple: int = 100_000  # tuples sharing items: hashing visits every copy
    max_key_hash_work: int = 10_000_000  # expanded tuple items hashed as dict/set keys


DEFAULT_LIMITS = Limits()
