"""Reading a log's new entries through its tiles, verified against a signed checkpoint.

:func:`scan_tiles` fetches the entry bundles (``tile/entries/<N>``) that hold the
entries ``[start, new.size)`` and hands each entry to a visitor, then checks that the
bundles, together with the hash tiles left of them, hash to the root of the new signed
checkpoint. Nothing a visitor saw may be acted on before :func:`scan_tiles` returns: a
tampered tile raises :class:`~mgattest.tlog._tiles.TileDataError` instead.

The same subtree hashes also give the root of the first ``old.size`` entries of the new
tree (:attr:`TileScan.prefix_root`): equal to the old checkpoint's root when the new tree
extends the old one. When it is not, :meth:`TileScan.consistency_proof` is a consistency
proof built from data that hashes to the new root, which proves the fork to anyone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Protocol

from mgattest.tlog import merkle
from mgattest.tlog._checkpoint import Checkpoint
from mgattest.tlog._client import LogRequestError
from mgattest.tlog._tiles import (
    MAX_LEVEL,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileDataError,
    TileRef,
    available_width,
    decode_entry_bundle,
    decode_hash_tile,
)

__all__ = ["EntryVisitor", "TileFetcher", "TileScan", "TileTree", "fetch_tile", "scan_tiles"]

EntryVisitor = Callable[[int, bytes], None]  # (log index, leaf data)
FETCH_THREADS = 4  # concurrent tile requests
LOOKAHEAD = 8  # entry bundles fetched ahead of the one being read


class TileFetcher(Protocol):
    """Anything serving tlog-tiles paths (``RekorClient.tile``, a mirror directory ...)."""

    def tile(self, path: str) -> bytes:
        """The bytes of ``path``, e.g. ``tile/0/x001/234`` or ``tile/entries/000.p/7``."""
        ...


def _root_of(start: int, end: int, subtree: merkle.SubtreeHash) -> bytes:
    """``MTH(D[start:end])`` from perfect subtrees (``start`` aligned, as RFC 9162 splits)."""
    size = end - start
    if size & (size - 1) == 0:
        return subtree(start, end)
    k = merkle.split_point(size)
    return merkle.node_hash(subtree(start, start + k), _root_of(start + k, end, subtree))


class TileTree:
    """Perfect-subtree hashes of the tree of ``size`` leaves, read from its hash tiles.

    Unverified by itself: a caller trusts a hash only once the hashes it used reproduce a
    signed root."""

    def __init__(self, source: TileFetcher, size: int) -> None:
        self.source = source
        self.size = size
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def _tile(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key not in self._tiles:
            width = available_width(TileRef(level, index, TILE_WIDTH), self.size)
            ref = TileRef(level, index, width)
            data, served = fetch_tile(self.source, ref)
            hashes = decode_hash_tile(data, where=served.path)
            if served != ref:  # the full tile stands in for the partial one
                hashes = hashes[:width]
            if len(hashes) != width:
                raise TileDataError(f"{ref.path} has {len(hashes)} hashes, expected {width}",
                                    what="hash tile", where=ref.path)
            self._tiles[key] = hashes
        return self._tiles[key]

    def subtree(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])`` of a perfect, aligned subtree inside the tree."""
        height = (end - start).bit_length() - 1
        level = height // TILE_HEIGHT
        if level > MAX_LEVEL:  # above the highest tile level: split
            mid = start + (end - start) // 2
            return merkle.node_hash(self.subtree(start, mid), self.subtree(mid, end))
        count = 1 << (height - level * TILE_HEIGHT)
        pos = start >> (level * TILE_HEIGHT)
        hashes = self._tile(level, pos // TILE_WIDTH)
        first = pos % TILE_WIDTH
        return merkle.root_hash(hashes[first:first + count])


@dataclass
class TileScan:
    """What a verified tile scan saw: entries ``[start, end)`` of the checkpoint's tree."""

    start: int
    end: int
    bundles: int
    prefix_size: int
    prefix_root: bytes | None  # MTH of the first prefix_size leaves (None: prefix_size 0)
    _subtree: merkle.SubtreeHash = field(repr=False)

    @property
    def entries(self) -> int:
        """How many entries were handed to the visitor."""
        return self.end - self.start

    def consistency_proof(self) -> tuple[list[bytes], bytes]:
        """``(proof, seed)`` from ``prefix_size`` to ``end`` out of the verified tiles;
        ``seed`` is ``MTH(D[0:prefix_size])`` (the node a proof omits for powers of two)."""
        assert self.prefix_root is not None
        return (merkle.consistency_path(self.prefix_size, self.end, self._subtree),
                self.prefix_root)


def fetch_tile(source: TileFetcher, ref: TileRef) -> tuple[bytes, TileRef]:
    """The bytes of ``ref`` and the tile they came from: a partial tile the log no longer
    serves (it filled up since the checkpoint, and tlog-tiles lets logs drop partial
    tiles then) is read from its full tile, whose first items are the same."""
    try:
        return source.tile(ref.path), ref
    except (LogRequestError, FileNotFoundError) as exc:
        gone = isinstance(exc, FileNotFoundError) or exc.status == 404
        if ref.width == TILE_WIDTH or not gone:
            raise
    full = TileRef(ref.level, ref.index, TILE_WIDTH)
    return source.tile(full.path), full


def _prefetched(source: TileFetcher, refs: list[TileRef]) -> Iterator[tuple[TileRef, bytes]]:
    """``(ref, bytes)`` in order, fetched up to :data:`LOOKAHEAD` tiles ahead on
    :data:`FETCH_THREADS` threads: the log prepares the next bundles while this process
    reads the current one."""
    with ThreadPoolExecutor(max_workers=FETCH_THREADS,
                            thread_name_prefix="mgattest-tiles") as pool:
        queue: deque[tuple[TileRef, Future[tuple[bytes, TileRef]]]] = deque()
        pending = iter(refs)
        for ref in pending:
            queue.append((ref, pool.submit(fetch_tile, source, ref)))
            if len(queue) >= LOOKAHEAD:
                break
        try:
            while queue:
                ref, future = queue.popleft()
                following = next(pending, None)
                if following is not None:
                    queue.append((following, pool.submit(fetch_tile, source, following)))
                data, served = future.result()
                yield served, data
        finally:
            for _, future in queue:
                future.cancel()


def scan_tiles(source: TileFetcher, new: Checkpoint, start: int, visit: EntryVisitor, *,
               prefix_size: int | None = None) -> TileScan:
    """Visit entries ``[start, new.size)`` from entry bundles, then verify them.

    The bundles from ``start`` on and the hash tiles left of them must reproduce
    ``new.root_hash`` (else :class:`TileDataError`: a tampered or inconsistent tile).
    ``prefix_size`` (default ``start``) names the old tree size whose root the result
    reports as :attr:`TileScan.prefix_root`; it must lie in the scanned bundles.
    """
    n = new.size
    prefix = start if prefix_size is None else prefix_size
    if not 0 <= start <= n or not start - start % TILE_WIDTH <= prefix <= n:
        raise ValueError(f"cannot scan from {start} (prefix {prefix}) in a tree of {n}")
    first_bundle = start // TILE_WIDTH
    s0 = first_bundle * TILE_WIDTH
    left = TileTree(source, n)
    full_roots: dict[int, bytes] = {}  # bundle index -> MTH of its 256 leaves
    edge_leaves: dict[int, list[bytes]] = {}  # leaf hashes of the first and last bundles
    last_bundle = (n - 1) // TILE_WIDTH if n else first_bundle - 1
    refs = [TileRef(None, b, available_width(TileRef(None, b, TILE_WIDTH), n))
            for b in range(first_bundle, last_bundle + 1)]
    for served, data in _prefetched(source, refs):
        ref = TileRef(None, served.index, available_width(served, n))
        items = decode_entry_bundle(data, where=served.path)
        if served != ref:  # the full bundle stands in for the partial one
            items = items[:ref.width]
        if len(items) != ref.width:
            raise TileDataError(f"{ref.path} holds {len(items)} entries, expected {ref.width}",
                                what="entry bundle", where=ref.path)
        leaves = [merkle.leaf_hash(item) for item in items]
        base = ref.index * TILE_WIDTH
        for k in range(max(0, start - base), ref.width):
            visit(base + k, items[k])
        if ref.width == TILE_WIDTH:
            full_roots[ref.index] = merkle.root_hash(leaves)
        if ref.index in (first_bundle, last_bundle):
            edge_leaves[ref.index] = leaves

    def perfect(a: int, b: int) -> bytes:
        if b <= s0:
            return left.subtree(a, b)
        if a >= s0:
            if b - a >= TILE_WIDTH:
                return merkle.root_hash([full_roots[i] for i in
                                         range(a // TILE_WIDTH, b // TILE_WIDTH)])
            leaves = edge_leaves.get(a // TILE_WIDTH)
            if leaves is None:  # not kept: the level-0 hash tile holds the same hashes
                return left.subtree(a, b)
            off = a % TILE_WIDTH
            return merkle.root_hash(leaves[off:off + b - a])
        mid = a + (b - a) // 2  # straddles s0: both halves are whole tiles or more
        return merkle.node_hash(perfect(a, mid), perfect(mid, b))

    def subtree(a: int, b: int) -> bytes:  # any range RFC 9162 splitting produces
        return _root_of(a, b, perfect)

    root = _root_of(0, n, subtree) if n else merkle.root_hash([])
    if root != bytes(new.root_hash):
        raise TileDataError(
            f"the tiles served for tree size {n} do not hash to the signed checkpoint's root "
            f"(computed {root.hex()}, signed {bytes(new.root_hash).hex()}): a tile was "
            "tampered with; none of the scanned entries is trusted",
            what="tiles", where=f"tree size {n}, entries from {start}")
    prefix_root = _root_of(0, prefix, subtree) if prefix else None
    return TileScan(start, n, last_bundle - first_bundle + 1, prefix, prefix_root, subtree)
