"""Append-only SQLite storage of a transparency log.

Tables (SQLite, WAL mode):

* ``meta(key, value)`` — origin, log ID, key type, schema version; written once.
* ``entries(idx, leaf_hash, body, integrated_time, kind, api_version, set_sig)`` —
  one row per leaf; ``idx`` must be exactly the next index (a trigger refuses gaps),
  ``leaf_hash`` is unique (the same canonical body is never logged twice).
* ``subtrees(level, idx, hash)`` — the hash of every complete, aligned subtree of
  height ``level >= 1`` (leaves ``[idx·2^level, (idx+1)·2^level)``). Any subtree hash,
  hence any root, inclusion or consistency proof, needs O(log n) indexed reads.
* ``checkpoints(size, note)`` — every signed checkpoint the log has issued.
* ``search_keys(key, idx, leaf_hash)`` — the search index (``/api/v1/index/retrieve``):
  one row per index key of an entry (:mod:`mgattest.tlog._search_terms`) with its leaf
  hash, so an answer is one range scan; written in the entry's own append transaction.
  Meta ``search_index = complete`` says every entry is indexed (a database from before
  the index gets it from ``rebuild_search_index``).
* ``attestations(idx, data)`` — the DSSE payload (in-toto Statement) of a dsse entry,
  which the body names only by hash: served as Rekor's ``attestation.data`` so a
  client can check a subject-digest hit against it.

Triggers make every table append-only: UPDATE and DELETE raise. Appends run in
``BEGIN IMMEDIATE`` transactions so several processes serialize on one file; a crash
(even ``kill -9``) loses only the uncommitted transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, Sequence

from mgattest.tlog import merkle
from mgattest.tlog.errors import LogError

SCHEMA_VERSION = "1"
BUSY_TIMEOUT_MS = 60_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    leaf_hash BLOB NOT NULL UNIQUE CHECK (length(leaf_hash) = 32),
    body BLOB NOT NULL,
    integrated_time INTEGER NOT NULL,
    kind TEXT NOT NULL,
    api_version TEXT NOT NULL,
    set_sig BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS subtrees (
    level INTEGER NOT NULL CHECK (level >= 1),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS entries_contiguous BEFORE INSERT ON entries
WHEN NEW.idx != (SELECT COALESCE(MAX(idx), -1) + 1 FROM entries)
BEGIN SELECT RAISE(ABORT, 'entries must be appended at the next index'); END;
"""
# Added with the search index: created on open too, so older databases gain them.
_SEARCH_SCHEMA = """
CREATE TABLE IF NOT EXISTS search_keys (
    key BLOB NOT NULL CHECK (length(key) = 32),
    idx INTEGER NOT NULL,
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    PRIMARY KEY (key, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attestations (
    idx INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
"""
SEARCH_INDEX_META = "search_index"
_APPEND_ONLY_TABLES = ("meta", "entries", "subtrees", "checkpoints", "search_keys",
                       "attestations")
_ENTRY_COLUMNS = ("SELECT e.idx, e.leaf_hash, e.body, e.integrated_time, e.kind, "
                  "e.api_version, e.set_sig, a.data FROM entries AS e "
                  "LEFT JOIN attestations AS a ON a.idx = e.idx")


def _triggers() -> str:
    out = []
    for table in _APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            out.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;")
    return "\n".join(out)


def _plan(start: int, end: int, out: set[tuple[int, int]]) -> None:
    """Collect the complete subtrees ``(level, idx)`` that make up ``[start, end)``,
    splitting as :meth:`LogStore.subtree_hasher` does. Stops at 2**16 pieces."""
    stack = [(start, end)]
    while stack and len(out) < 1 << 16:
        s, e = stack.pop()
        width = e - s
        if width <= 0:
            continue
        if width & (width - 1) == 0 and s % width == 0:
            level = width.bit_length() - 1
            out.add((level, s >> level))
        else:
            k = merkle.split_point(width)
            stack.append((s, s + k))
            stack.append((s + k, e))


@dataclass(frozen=True)
class StoredEntry:
    """One row of ``entries``."""

    index: int
    leaf_hash: bytes
    body: bytes
    integrated_time: int
    kind: str
    api_version: str
    set_sig: bytes
    attestation: bytes | None = None


@dataclass(frozen=True)
class PendingLeaf:
    """A leaf to append: the canonical body and its kind, its search index keys and the
    attestation to keep beside it (if any)."""

    leaf_hash: bytes
    body: bytes
    kind: str
    api_version: str
    search_keys: tuple[bytes, ...] = ()
    attestation: bytes | None = None


# Called inside the append transaction with (index, leaf) -> (integrated_time, set_sig).
Stamp = Callable[[int, PendingLeaf], tuple[int, bytes]]


class DuplicateLeaf(Exception):
    """Internal: a leaf is already stored (``index``) or repeated within a batch."""

    def __init__(self, position: int, existing_index: int | None) -> None:
        super().__init__(position, existing_index)
        self.position = position
        self.existing_index = existing_index


class LogStore:
    """The SQLite file behind one log. Thread-safe (one connection, one lock)."""

    def __init__(self, path: str, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()
        self._search_complete = False

    # --- opening -----------------------------------------------------------------
    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LogError(f"log database {path} cannot use WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            return conn
        except sqlite3.DatabaseError as exc:
            raise LogError(f"cannot open log database {path}: {exc}", where=path) from None

    @classmethod
    def create(cls, path: str, meta: dict[str, str]) -> "LogStore":
        """Create a new, empty log database (refuses an existing file)."""
        if os.path.exists(path):
            raise LogError(f"log database {path} already exists", where=path)
        conn = cls._connect(path)
        try:
            conn.executescript(_SCHEMA + _SEARCH_SCHEMA + _triggers())
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)",
                             [("schema_version", SCHEMA_VERSION),
                              (SEARCH_INDEX_META, "complete"), *sorted(meta.items())])
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LogError(f"cannot create log database {path}: {exc}", where=path) from None
        return cls(path, conn)

    @classmethod
    def open(cls, path: str) -> "LogStore":
        """Open an existing log database."""
        if not os.path.isfile(path):
            raise LogError(f"log database {path} does not exist", where=path)
        conn = cls._connect(path)
        store = cls(path, conn)
        try:
            version = store.meta().get("schema_version")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LogError(f"{path} is not a mgattest log database: {exc}", where=path) \
                from None
        if version != SCHEMA_VERSION:
            conn.close()
            raise LogError(f"{path} is not a mgattest log database (schema {version!r})",
                           where=path)
        try:
            conn.executescript(_SEARCH_SCHEMA + _triggers())
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LogError(f"cannot add the search index to {path}: {exc}", where=path) \
                from None
        return store

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    # --- reads -------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """All metadata key/values."""
        with self._lock:
            return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())

    def size(self) -> int:
        """Number of leaves committed."""
        with self._lock:
            row = self._conn.execute("SELECT MAX(idx) FROM entries").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def entry(self, index: int) -> StoredEntry | None:
        """The entry at ``index`` or None."""
        with self._lock:
            row = self._conn.execute(f"{_ENTRY_COLUMNS} WHERE e.idx = ?", (index,)).fetchone()
        return StoredEntry(*row) if row else None

    def entry_by_leaf(self, leaf: bytes) -> StoredEntry | None:
        """The entry whose leaf hash is ``leaf`` or None."""
        with self._lock:
            row = self._conn.execute(f"{_ENTRY_COLUMNS} WHERE e.leaf_hash = ?",
                                     (leaf,)).fetchone()
        return StoredEntry(*row) if row else None

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes of ``[start, end)`` in order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT leaf_hash FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end)).fetchall()
        return [r[0] for r in rows]

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """The entries ``[start, end)`` with their attestations, in index order (one
        query; for exports)."""
        with self._lock:
            rows = self._conn.execute(f"{_ENTRY_COLUMNS} WHERE e.idx >= ? AND e.idx < ? "
                                      "ORDER BY e.idx", (start, end)).fetchall()
        return [StoredEntry(*row) for row in rows]

    def level_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        """Hashes of the complete subtrees ``start .. end-1`` at ``level`` (0 = leaves)."""
        if level == 0:
            return self.leaf_hashes(start, end)
        with self._lock:
            rows = self._conn.execute(
                "SELECT hash FROM subtrees WHERE level = ? AND idx >= ? AND idx < ? "
                "ORDER BY idx", (level, start, end)).fetchall()
        return [r[0] for r in rows]

    def perfect_hash(self, level: int, idx: int) -> bytes:
        """Hash of the complete subtree at ``level``/``idx`` (level 0 = a leaf)."""
        with self._lock:
            if level == 0:
                row = self._conn.execute("SELECT leaf_hash FROM entries WHERE idx = ?",
                                         (idx,)).fetchone()
            else:
                row = self._conn.execute(
                    "SELECT hash FROM subtrees WHERE level = ? AND idx = ?",
                    (level, idx)).fetchone()
        if row is None:
            raise LogError(f"log storage is missing subtree level {level} index {idx}",
                           where=self.path)
        subtree_hash: bytes = row[0]
        return subtree_hash

    def perfect_hashes(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Hashes of several complete subtrees ``(level, idx)`` in at most two queries."""
        out: dict[tuple[int, int], bytes] = {}
        leaves = sorted(i for level, i in keys if level == 0)
        nodes = sorted((level, i) for level, i in keys if level > 0)
        with self._lock:
            for pos in range(0, len(leaves), 400):
                chunk = leaves[pos:pos + 400]
                marks = ",".join("?" * len(chunk))
                for idx, h in self._conn.execute(
                        f"SELECT idx, leaf_hash FROM entries WHERE idx IN ({marks})", chunk):
                    out[(0, idx)] = h
            for pos in range(0, len(nodes), 400):
                node_chunk = nodes[pos:pos + 400]
                marks = ",".join("(?,?)" for _ in node_chunk)
                params = [v for pair in node_chunk for v in pair]
                # the VALUES list drives the join, so every row is one primary-key probe
                for level, idx, h in self._conn.execute(
                        f"WITH want(l, i) AS (VALUES {marks}) SELECT s.level, s.idx, s.hash "
                        "FROM want CROSS JOIN subtrees AS s ON s.level = want.l AND "
                        "s.idx = want.i", params):
                    out[(level, idx)] = h
        return out

    def subtree_hasher(self, prefetch: Sequence[tuple[int, int]] = ()
                       ) -> Callable[[int, int], bytes]:
        """A memoizing ``subtree_hash(start, end)`` for one proof computation.

        ``[start, end)`` must lie within the committed tree. A complete aligned
        subtree is one read; any other range splits at its largest power of two.
        The complete subtrees under the ranges in ``prefetch`` are read up front in
        one or two queries.
        """
        cache: dict[tuple[int, int], bytes] = {}
        perfect: dict[tuple[int, int], bytes] = {}
        if prefetch:
            wanted: set[tuple[int, int]] = set()
            for start, end in prefetch:
                _plan(start, end, wanted)
            perfect = self.perfect_hashes(wanted)

        def subtree(start: int, end: int) -> bytes:
            key = (start, end)
            hit = cache.get(key)
            if hit is not None:
                return hit
            width = end - start
            if width <= 0:
                raise LogError(f"empty subtree range [{start}, {end})")
            if width & (width - 1) == 0 and start % width == 0:
                level = width.bit_length() - 1
                value = perfect.get((level, start >> level)) or self.perfect_hash(
                    level, start >> level)
            else:
                k = merkle.split_point(width)
                value = merkle.node_hash(subtree(start, start + k), subtree(start + k, end))
            cache[key] = value
            return value

        return subtree

    def checkpoint(self, size: int) -> str | None:
        """The stored signed checkpoint for ``size``, if one was issued."""
        with self._lock:
            row = self._conn.execute("SELECT note FROM checkpoints WHERE size = ?",
                                     (size,)).fetchone()
        return row[0] if row else None

    def checkpoint_sizes(self) -> list[int]:
        """Sizes of all issued checkpoints, ascending."""
        with self._lock:
            return [r[0] for r in self._conn.execute(
                "SELECT size FROM checkpoints ORDER BY size").fetchall()]

    # --- writes ------------------------------------------------------------------
    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise LogError(f"log database {self.path} is busy: {exc}",
                               where=self.path) from None
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.DatabaseError as exc:
                    conn.execute("ROLLBACK")
                    raise LogError(f"cannot commit to log database {self.path}: {exc}",
                                   where=self.path) from None

    def _frontier(self, conn: sqlite3.Connection, size: int) -> list[tuple[int, bytes]]:
        """The complete subtrees covering ``[0, size)``, largest first, as (level, hash)."""
        out: list[tuple[int, bytes]] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                if level == 0:
                    row = conn.execute("SELECT leaf_hash FROM entries WHERE idx = ?",
                                       (start,)).fetchone()
                else:
                    row = conn.execute("SELECT hash FROM subtrees WHERE level = ? AND idx = ?",
                                       (level, start >> level)).fetchone()
                if row is None:
                    raise LogError(f"log storage is missing subtree level {level} at leaf "
                                   f"{start}", where=self.path)
                out.append((level, row[0]))
                start += 1 << level
        return out

    def append(self, leaves: Sequence[PendingLeaf], stamp: Stamp) -> list[StoredEntry]:
        """Append ``leaves`` in one transaction; all or nothing.

        Raises :class:`DuplicateLeaf` if a leaf is already stored or repeated.
        """
        seen: dict[bytes, int] = {}
        for pos, leaf in enumerate(leaves):
            if leaf.leaf_hash in seen:
                raise DuplicateLeaf(pos, None)
            seen[leaf.leaf_hash] = pos
        stored: list[StoredEntry] = []
        try:
            with self._immediate() as conn:
                if len(leaves) <= 8:  # cheap explicit check; big batches rely on UNIQUE
                    self._check_duplicates(conn, leaves)
                row = conn.execute("SELECT MAX(idx) FROM entries").fetchone()
                size = 0 if row[0] is None else row[0] + 1
                stack = self._frontier(conn, size)
                entry_rows = []
                subtree_rows = []
                search_rows: list[tuple[bytes, int, bytes]] = []
                attestation_rows: list[tuple[int, bytes]] = []
                for leaf in leaves:
                    index = size
                    integrated_time, set_sig = stamp(index, leaf)
                    entry_rows.append((index, leaf.leaf_hash, leaf.body, integrated_time,
                                       leaf.kind, leaf.api_version, set_sig))
                    stored.append(StoredEntry(index, leaf.leaf_hash, leaf.body,
                                              integrated_time, leaf.kind, leaf.api_version,
                                              set_sig, leaf.attestation))
                    search_rows.extend((key, index, leaf.leaf_hash) for key in leaf.search_keys)
                    if leaf.attestation is not None:
                        attestation_rows.append((index, leaf.attestation))
                    size += 1
                    level, node = 0, leaf.leaf_hash
                    while stack and stack[-1][0] == level:
                        node = merkle.node_hash(stack.pop()[1], node)
                        level += 1
                        subtree_rows.append((level, (size >> level) - 1, node))
                    stack.append((level, node))
                try:
                    conn.executemany(
                        "INSERT INTO entries(idx, leaf_hash, body, integrated_time, kind, "
                        "api_version, set_sig) VALUES (?, ?, ?, ?, ?, ?, ?)", entry_rows)
                except sqlite3.IntegrityError as exc:
                    if "leaf_hash" not in str(exc):
                        raise
                    self._check_duplicates(conn, leaves)
                    raise
                conn.executemany("INSERT INTO subtrees(level, idx, hash) VALUES (?, ?, ?)",
                                 subtree_rows)
                # the search index and attestations commit with their entries or not at all
                conn.executemany("INSERT OR IGNORE INTO search_keys(key, idx, leaf_hash) "
                                 "VALUES (?, ?, ?)", search_rows)
                conn.executemany("INSERT INTO attestations(idx, data) VALUES (?, ?)",
                                 attestation_rows)
        except sqlite3.DatabaseError as exc:
            raise LogError(f"cannot append to log database {self.path}: {exc}",
                           where=self.path) from None
        return stored

    @staticmethod
    def _check_duplicates(conn: sqlite3.Connection, leaves: Sequence[PendingLeaf]) -> None:
        for pos, leaf in enumerate(leaves):
            row = conn.execute("SELECT idx FROM entries WHERE leaf_hash = ?",
                               (leaf.leaf_hash,)).fetchone()
            if row is not None:
                raise DuplicateLeaf(pos, row[0])

    def put_checkpoint(self, size: int, note: str) -> str:
        """Store a signed checkpoint for ``size`` unless one exists; return the stored one."""
        try:
            with self._immediate() as conn:
                conn.execute("INSERT OR IGNORE INTO checkpoints(size, note) VALUES (?, ?)",
                             (size, note))
                row = conn.execute("SELECT note FROM checkpoints WHERE size = ?",
                                   (size,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise LogError(f"cannot store checkpoint in {self.path}: {exc}",
                           where=self.path) from None
        stored_note: str = row[0]
        return stored_note

    def iter_leaf_hashes(self, batch: int = 65536) -> Iterator[bytes]:
        """Every leaf hash in index order (for integrity checks)."""
        start = 0
        while True:
            chunk = self.leaf_hashes(start, start + batch)
            if not chunk:
                return
            yield from chunk
            start += len(chunk)

    def iter_subtrees(self, level: int, batch: int = 65536) -> Iterator[tuple[int, bytes]]:
        """(idx, hash) of every stored subtree at ``level``, in order (integrity checks)."""
        start = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT idx, hash FROM subtrees WHERE level = ? AND idx >= ? ORDER BY idx "
                    "LIMIT ?", (level, start, batch)).fetchall()
            if not rows:
                return
            yield from rows
            start = rows[-1][0] + 1

    # --- the search index ------------------------------------------------------------
    def search_index_complete(self) -> bool:
        """Whether every entry is in the search index (see the module docstring)."""
        if not self._search_complete:  # meta is append-only: once complete, always
            self._search_complete = self.meta().get(SEARCH_INDEX_META) == "complete"
        return self._search_complete

    def search(self, keys: Sequence[bytes], operator: Literal["and", "or"],
               limit: int) -> list[tuple[int, bytes]]:
        """``(index, leaf hash)`` of the entries under all (``and``) or any (``or``) of
        ``keys``: the newest ``limit`` of them, in index order."""
        if not keys:
            return []
        # Each key's newest ``limit`` rows come from a reverse walk of the primary key
        # (key, idx); the newest ``limit`` of a union are among them. An intersection
        # cannot be cut per key.
        if operator == "or":
            matching = " UNION ".join(
                "SELECT * FROM (SELECT idx, leaf_hash FROM search_keys WHERE key = ? "
                "ORDER BY idx DESC LIMIT ?)" for _ in keys)
            params: list[object] = [v for key in keys for v in (key, limit)]
        else:
            matching = " INTERSECT ".join("SELECT idx, leaf_hash FROM search_keys WHERE "
                                          "key = ?" for _ in keys)
            params = list(keys)
        with self._lock:
            rows = self._conn.execute(f"SELECT idx, leaf_hash FROM ({matching}) "
                                      "ORDER BY idx DESC LIMIT ?", (*params, limit)).fetchall()
        return [(idx, leaf) for idx, leaf in reversed(rows)]

    def iter_indexable(self, batch: int = 4096
                       ) -> Iterator[list[tuple[int, bytes, bytes, bytes | None]]]:
        """Batches of ``(index, leaf hash, body, attestation)`` of every entry, in order."""
        start = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT e.idx, e.leaf_hash, e.body, a.data FROM entries AS e "
                    "LEFT JOIN attestations "
                    "AS a ON a.idx = e.idx WHERE e.idx >= ? ORDER BY e.idx LIMIT ?",
                    (start, batch)).fetchall()
            if not rows:
                return
            yield rows
            start = rows[-1][0] + 1

    def add_search_keys(self, rows: Sequence[tuple[bytes, int, bytes]]) -> None:
        """Add index rows ``(key, index, leaf hash)`` (present ones are kept): rebuilding."""
        try:
            with self._immediate() as conn:
                conn.executemany("INSERT OR IGNORE INTO search_keys(key, idx, leaf_hash) "
                                 "VALUES (?, ?, ?)", rows)
        except sqlite3.DatabaseError as exc:
            raise LogError(f"cannot write the search index of {self.path}: {exc}",
                           where=self.path) from None

    def mark_search_index_complete(self) -> None:
        """Record that every entry is indexed (after a rebuild)."""
        try:
            with self._immediate() as conn:
                conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, 'complete')",
                             (SEARCH_INDEX_META,))
        except sqlite3.DatabaseError as exc:
            raise LogError(f"cannot write the search index of {self.path}: {exc}",
                           where=self.path) from None
