"""C2SP tlog-tiles: path encoding, hash tiles and entry bundles.

A log exposes its Merkle tree as immutable static files so mirrors and monitors can
read it without the Rekor API (https://c2sp.org/tlog-tiles):

* ``tile/<L>/<N>[.p/<W>]`` — ``W`` (≤ 256) consecutive hashes at tree level ``8·L``
  starting at position ``256·N``. A hash at level ``8·L``, position ``k`` is the root of
  the complete subtree over leaves ``[k·256^L, (k+1)·256^L)``.
* ``tile/entries/<N>[.p/<W>]`` — the leaf data of entries ``256·N …`` as big-endian
  uint16 length-prefixed records.

``N`` is written in 3-digit path elements, all but the last prefixed with ``x``
(1234067 → ``x001/x234/067``). A full tile has no ``.p/W`` suffix; it is served only
once the tree holds all of its 256 items.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Callable, Iterable

from mgattest._numbers import parse_ascii_uint
from mgattest.errors import InputError, VerificationError
from mgattest.tlog import merkle

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes or entries per full tile
HASH_SIZE = 32
MAX_LEVEL = 5  # tlog-tiles: <L> is 0..5
MAX_ENTRY_SIZE = 0xFFFF  # uint16 length prefix
_LEVELS = {str(level): level for level in range(MAX_LEVEL + 1)}  # canonical spellings only

# [0-9], not \d: \d also matches non-ASCII digits such as '٣'.
_INDEX_ELEMENT = re.compile(r"(x[0-9]{3}/)*[0-9]{3}")


class TilePathError(InputError):
    """A tile path that does not follow the tlog-tiles encoding."""


class TileUnavailableError(InputError):
    """A well-formed tile that the log cannot serve (yet) at its current size."""


class TileDataError(VerificationError):
    """Tile bytes that do not decode, or do not hash to the checkpoint's root."""


@dataclass(frozen=True)
class TileRef:
    """One tile: ``level`` (``None`` for entry bundles), ``index``, ``width``."""

    level: int | None
    index: int
    width: int

    @property
    def is_entries(self) -> bool:
        return self.level is None

    @property
    def path(self) -> str:
        """The tile's path below the log's prefix, e.g. ``tile/0/x001/234.p/7``."""
        kind = "entries" if self.level is None else str(self.level)
        suffix = "" if self.width == TILE_WIDTH else f".p/{self.width}"
        return f"tile/{kind}/{encode_index(self.index)}{suffix}"


def encode_index(index: int) -> str:
    """Encode a tile index as 3-digit path elements (``1234067`` → ``x001/x234/067``)."""
    if index < 0:
        raise TilePathError(f"tile index must be non-negative, got {index}", what="tile index")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def decode_index(text: str) -> int:
    """Parse ``x001/x234/067`` back to ``1234067``; reject any other spelling."""
    if len(text) > 4 * 7 or not _INDEX_ELEMENT.fullmatch(text):
        raise TilePathError(f"malformed tile index path {text!r}", what="tile index", where=text)
    parts = text.split("/")
    # The canonical encoding never has a leading all-zero element: x000/001 is invalid.
    if len(parts) > 1 and parts[0] == "x000":
        raise TilePathError(f"non-canonical tile index path {text!r}", what="tile index",
                            where=text)
    value = 0
    for part in parts:
        value = value * 1000 + int(part.lstrip("x"))
    return value


def parse_tile_path(path: str) -> TileRef:
    """Parse ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]`` (leading ``/`` ok)."""
    text = path.lstrip("/")
    if not text.startswith("tile/"):
        raise TilePathError(f"not a tile path: {path!r}", what="tile path", where=path)
    rest = text[len("tile/"):]
    kind, sep, rest = rest.partition("/")
    if not sep:
        raise TilePathError(f"not a tile path: {path!r}", what="tile path", where=path)
    if kind == "entries":
        level: int | None = None
    elif kind in _LEVELS:
        level = _LEVELS[kind]
    else:
        raise TilePathError(f"tile level must be 0..{MAX_LEVEL} or 'entries', got {kind!r}",
                            what="tile level", where=path)
    width = TILE_WIDTH
    if ".p/" in rest:
        rest, _, width_text = rest.partition(".p/")
        parsed = parse_ascii_uint(width_text, max_digits=3)
        if parsed is None or width_text != str(parsed):
            raise TilePathError(f"malformed partial tile width in {path!r}", what="tile width",
                                where=path)
        width = parsed
        if not 1 <= width < TILE_WIDTH:
            raise TilePathError(f"partial tile width must be 1..255, got {width}",
                                what="tile width", where=path)
    return TileRef(level=level, index=decode_index(rest), width=width)


def available_width(ref: TileRef, tree_size: int) -> int:
    """How many items of tile ``ref`` exist in a tree of ``tree_size`` leaves (0..256)."""
    span: int = TILE_WIDTH ** (ref.level or 0)  # leaves covered by one item of this tile
    items_at_level = tree_size // span
    return max(0, min(TILE_WIDTH, items_at_level - ref.index * TILE_WIDTH))


def check_servable(ref: TileRef, tree_size: int) -> None:
    """Raise :class:`TileUnavailableError` unless ``ref`` is fully backed by the tree."""
    have = available_width(ref, tree_size)
    if have < ref.width:
        raise TileUnavailableError(
            f"{ref.path} is not available at tree size {tree_size} (only {have} items)",
            what="tile", where=ref.path)


def hash_tile(ref: TileRef, subtree_hash: Callable[[int, int], bytes]) -> bytes:
    """The bytes of hash tile ``ref``: ``width`` concatenated 32-byte subtree hashes.

    ``subtree_hash(start, end)`` returns the root of the complete subtree over leaves
    ``[start, end)``; the caller must have checked the tile is servable.
    """
    if ref.level is None:
        raise TilePathError("an entry bundle is not a hash tile", what="tile")
    span = TILE_WIDTH ** ref.level
    first = ref.index * TILE_WIDTH
    return b"".join(subtree_hash((first + k) * span, (first + k + 1) * span)
                    for k in range(ref.width))


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """Entries as big-endian uint16 length-prefixed records."""
    out = bytearray()
    for i, data in enumerate(entries):
        if len(data) > MAX_ENTRY_SIZE:
            raise TileDataError(f"entry {i} of the bundle is {len(data)} bytes, over the "
                                f"{MAX_ENTRY_SIZE}-byte tlog-tiles limit", what="entry bundle")
        out += struct.pack(">H", len(data)) + data
    return bytes(out)


def decode_entry_bundle(data: bytes, *, where: str = "entry bundle") -> list[bytes]:
    """Split an entry bundle into its entries; reject truncated or trailing bytes."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise TileDataError(f"truncated length prefix at byte {pos} of {where}",
                                what="entry bundle", where=f"{where} bytes {pos}-{len(data) - 1}")
        (length,) = struct.unpack_from(">H", data, pos)
        end = pos + 2 + length
        if end > len(data):
            raise TileDataError(f"entry {len(entries)} of {where} claims {length} bytes but "
                                f"only {len(data) - pos - 2} remain",
                                what="entry bundle", where=f"{where} bytes {pos}-{len(data) - 1}")
        entries.append(data[pos + 2:end])
        pos = end
    if len(entries) > TILE_WIDTH:
        raise TileDataError(f"{where} holds {len(entries)} entries, more than {TILE_WIDTH}",
                            what="entry bundle", where=where)
    return entries


def decode_hash_tile(data: bytes, *, where: str = "hash tile") -> list[bytes]:
    """Split a hash tile into 32-byte hashes."""
    if len(data) % HASH_SIZE or not 0 < len(data) <= HASH_SIZE * TILE_WIDTH:
        raise TileDataError(f"{where} is {len(data)} bytes, not 1..256 SHA-256 hashes",
                            what="hash tile", where=where)
    return [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def tiles_for_size(tree_size: int) -> list[TileRef]:
    """Every hash tile needed to rebuild the root of a tree of ``tree_size`` leaves.

    Full tiles below the frontier plus the right-most partial tile of each level.
    """
    refs: list[TileRef] = []
    level = 0
    while level <= MAX_LEVEL:
        span = TILE_WIDTH ** level
        items = tree_size // span
        if items == 0:
            break
        full, partial = divmod(items, TILE_WIDTH)
        refs += [TileRef(level, n, TILE_WIDTH) for n in range(full)]
        if partial:
            refs.append(TileRef(level, full, partial))
        level += 1
    return refs


def root_from_tiles(tree_size: int, fetch: Callable[[TileRef], bytes]) -> bytes:
    """Rebuild the root of a tree of ``tree_size`` leaves from its level-0 hash tiles.

    ``fetch(ref)`` returns a tile's bytes. Higher-level tiles are checked against the
    level below when present, so a mirror detects inconsistent tiles, not only a wrong
    root. Raises :class:`TileDataError` on any mismatch.
    """
    if tree_size == 0:
        return merkle.root_hash([])
    refs = tiles_for_size(tree_size)
    by_level: dict[int, list[bytes]] = {}
    for ref in refs:
        hashes = decode_hash_tile(fetch(ref), where=ref.path)
        if len(hashes) != ref.width:
            raise TileDataError(f"{ref.path} has {len(hashes)} hashes, expected {ref.width}",
                                what="hash tile", where=ref.path)
        by_level.setdefault(ref.level or 0, []).extend(hashes)
    # Each full group of 256 hashes at level L must hash to the matching level L+1 entry.
    for level in sorted(by_level):
        upper = by_level.get(level + 1)
        if upper is None:
            continue
        lower = by_level[level]
        for k, expected in enumerate(upper):
            group = lower[k * TILE_WIDTH:(k + 1) * TILE_WIDTH]
            if len(group) != TILE_WIDTH or merkle.root_hash(group) != expected:
                raise TileDataError(
                    f"tile level {level + 1} hash {k} does not match the level {level} tile below",
                    what="hash tile", where=TileRef(level + 1, k // TILE_WIDTH, TILE_WIDTH).path)
    return merkle.root_hash(by_level[0])


def leaf_hashes_from_entries(bundle: bytes, *, where: str = "entry bundle") -> list[bytes]:
    """RFC 6962 leaf hashes of every entry in an entry bundle."""
    return [merkle.leaf_hash(e) for e in decode_entry_bundle(bundle, where=where)]
