"""Writing a log as a static C2SP tlog-tiles mirror (``mgattest log export``).

An export directory is what the log serves at ``/checkpoint`` and ``/tile/...``, as
plain files, so any static web server can serve it as a read-only mirror and
``mgattest log import`` can rebuild the database from it:

* ``checkpoint`` — the signed checkpoint the export is cut at;
* ``tile/<L>/<N>[.p/<W>]`` — hash tiles; ``tile/entries/<N>[.p/<W>]`` — entry bundles
  holding the canonical entry bodies (the Merkle leaves);
* ``mgattest/set/<N>[.p/<W>]`` — one record per entry of the matching bundle: its
  integrated time (uint64) and signed entry timestamp (uint16 length + signature). The
  tree does not cover these, so import verifies every SET with the log key;
* ``mgattest/attestation/<N>[.p/<W>]`` — the in-toto Statements the log keeps beside
  the bundle's dsse entries (:mod:`mgattest.tlog._attestation_files`), for bundles that
  hold such an entry; import keeps one only if it hashes to its entry's payloadHash.

Tiles are immutable: a file already present must hold exactly the bytes this log
would write, otherwise the directory holds another history (a fork) and the export
stops with :class:`~mgattest.tlog.errors.MirrorError`. New files are written to a
temporary name and linked into place (never over an existing file); the checkpoint
is replaced last, so a reader sees either the old export or the complete new one.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from mgattest.errors import InputError, MgattestError
from mgattest.tlog import _tiles as tiles, merkle
from mgattest.tlog._attestation_files import attestation_path, encode_attestations, \
    needs_attestation_file
from mgattest.tlog._checkpoint import Checkpoint, parse_signed_note, verify_checkpoint
from mgattest.tlog._keys import LogVerifier
from mgattest.tlog._store import LogStore, StoredEntry
from mgattest.tlog.errors import MirrorError

CHECKPOINT_FILE = "checkpoint"
SET_PREFIX = "mgattest/set"
MAX_SET_RECORD = 8 + 2 + 0xFFFF
_SET_HEADER = struct.Struct(">QH")  # integrated time, signature length


@dataclass(frozen=True)
class EntryStamp:
    """What the tree does not cover about one entry: its integrated time and SET."""

    integrated_time: int
    set_sig: bytes


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote: the tree it is cut at and the files it added."""

    tree_size: int
    root_hash: bytes
    written: int  # files added by this export
    unchanged: int  # files already present with identical bytes


def set_path(bundle: tiles.TileRef) -> str:
    """The SET sidecar of entry bundle ``bundle`` (``mgattest/set/x001/234.p/7``)."""
    return SET_PREFIX + bundle.path[len("tile/entries"):]


def encode_stamps(stamps: Iterable[EntryStamp]) -> bytes:
    """SET sidecar bytes: per entry, uint64 time, uint16 length, signature."""
    return b"".join(_SET_HEADER.pack(s.integrated_time, len(s.set_sig)) + s.set_sig
                    for s in stamps)


def decode_stamps(data: bytes, *, where: str) -> list[EntryStamp]:
    """Parse a SET sidecar; reject truncated records."""
    out: list[EntryStamp] = []
    pos = 0
    while pos < len(data):
        if pos + _SET_HEADER.size > len(data):
            raise MirrorError(f"{where} is truncated at byte {pos}", what="entry timestamps",
                              where=where)
        when, length = _SET_HEADER.unpack_from(data, pos)
        start = pos + _SET_HEADER.size
        if start + length > len(data):
            raise MirrorError(f"record {len(out)} of {where} claims a {length}-byte SET but "
                              f"only {len(data) - start} bytes remain",
                              what="entry timestamps", where=where)
        out.append(EntryStamp(when, data[start:start + length]))
        pos = start + length
    return out


def bundle_refs(tree_size: int) -> list[tiles.TileRef]:
    """The entry bundles of a tree of ``tree_size`` leaves (the last one maybe partial)."""
    full, partial = divmod(tree_size, tiles.TILE_WIDTH)
    refs = [tiles.TileRef(None, n, tiles.TILE_WIDTH) for n in range(full)]
    if partial:
        refs.append(tiles.TileRef(None, full, partial))
    return refs


def tree_root(store: LogStore, size: int) -> bytes:
    """The root of the store's tree of ``size`` leaves (the empty tree's for 0)."""
    return store.subtree_hasher()(0, size) if size else merkle.root_hash([])


class _ExportDir:
    """Write-once files under one directory, counting what was added."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written = 0
        self.unchanged = 0

    def put(self, rel: str, data: bytes) -> None:
        """Add ``rel`` with ``data``; an existing file must already hold ``data``."""
        path = self.root / rel
        if path.exists():
            self._same_or_fork(path, rel, data)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            try:
                os.link(tmp, path)  # atomic and, unlike rename, never replaces a file
            except FileExistsError:  # another exporter won the race: same bytes or a fork
                self._same_or_fork(path, rel, data)
                return
        finally:
            os.unlink(tmp)
        self.written += 1

    def _same_or_fork(self, path: Path, rel: str, data: bytes) -> None:
        if path.read_bytes() != data:
            raise MirrorError(
                f"{rel} in {self.root} holds other bytes than this log's: the directory "
                "holds another history (a fork, or an export of another log); refusing to "
                "overwrite it", what="exported tile", where=str(path))
        self.unchanged += 1

    def replace(self, rel: str, data: bytes) -> None:
        """Atomically replace ``rel`` (the checkpoint) with ``data``."""
        path = self.root / rel
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".export-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        self.written += 1


def _previous_checkpoint(root: Path) -> Checkpoint | None:
    path = root / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        return parse_signed_note(path.read_text(encoding="utf-8"))[0]
    except (MgattestError, UnicodeDecodeError) as exc:
        raise MirrorError(f"{path} is not a signed checkpoint ({exc}); refusing to export "
                          "over it", what="exported checkpoint", where=str(path)) from None


def export_log(db_path: str | os.PathLike[str], directory: str | os.PathLike[str], *,
               note: str | None = None) -> ExportResult:
    """Write the log in ``db_path`` to ``directory``, cut at signed checkpoint ``note``
    (issued by this log; default: the latest checkpoint it has issued).

    Only missing files are written; an existing export must be a prefix of this log
    (its checkpoint's root matches this tree at that size), else :class:`MirrorError`.
    """
    store = LogStore.open(os.fspath(db_path))
    try:
        if note is None:
            sizes = store.checkpoint_sizes()
            note = store.checkpoint(max(sizes)) if sizes else None
        if note is None:
            raise InputError(f"log {store.path} has issued no checkpoint yet: sign one for "
                             "its current size first (`mgattest log checkpoint`, or export "
                             "with --key)", what="checkpoint", where=store.path)
        return _export_store(store, Path(directory), note)
    finally:
        store.close()


def _export_store(store: LogStore, root: Path, note: str) -> ExportResult:
    meta = store.meta()
    verifier = LogVerifier.from_pem(meta["public_key"])
    checkpoint = verify_checkpoint(note, [verifier], origin=meta["origin"])
    size = checkpoint.size
    if size > store.size() or tree_root(store, size) != checkpoint.root_hash:
        raise MirrorError(f"checkpoint for size {size} does not match log {store.path}",
                          what="checkpoint", where=store.path)
    root.mkdir(parents=True, exist_ok=True)
    previous = _previous_checkpoint(root)
    if previous is not None:
        _check_prefix(previous, checkpoint, store, root)
    out = _ExportDir(root)
    for ref in bundle_refs(size):
        first = ref.index * tiles.TILE_WIDTH
        _write_bundle(out, ref, store.entries(first, first + ref.width))
    for ref in tiles.tiles_for_size(size):
        if not ref.level:
            continue  # level 0 is written with its entry bundle
        first = ref.index * tiles.TILE_WIDTH
        hashes = store.level_hashes(tiles.TILE_HEIGHT * ref.level, first, first + ref.width)
        out.put(ref.path, b"".join(hashes))
    if previous is None or previous.size < size:
        out.replace(CHECKPOINT_FILE, note.encode("utf-8"))
    return ExportResult(size, checkpoint.root_hash, out.written, out.unchanged)


def _write_bundle(out: _ExportDir, ref: tiles.TileRef, rows: list[StoredEntry]) -> None:
    """An entry bundle, its level-0 hash tile, its SET sidecar and attestation file."""
    if len(rows) != ref.width:
        raise MirrorError(f"log storage returned {len(rows)} entries for {ref.path}",
                          what="log storage", where=ref.path)
    if needs_attestation_file(r.kind for r in rows):
        out.put(attestation_path(ref), encode_attestations(r.attestation for r in rows))
    out.put(set_path(ref), encode_stamps(EntryStamp(r.integrated_time, r.set_sig)
                                         for r in rows))
    out.put(ref.path, tiles.encode_entry_bundle(r.body for r in rows))
    out.put(tiles.TileRef(0, ref.index, ref.width).path, b"".join(r.leaf_hash for r in rows))


def _check_prefix(previous: Checkpoint, current: Checkpoint, store: LogStore,
                  root: Path) -> None:
    """The export already in ``root`` must be of this log, at a size it has passed."""
    where = str(root / CHECKPOINT_FILE)
    if previous.origin != current.origin:
        raise MirrorError(f"{where} is of log {previous.origin!r}, not {current.origin!r}",
                          what="exported checkpoint", where=where)
    if previous.size > current.size:
        raise MirrorError(f"{where} is at size {previous.size}, ahead of the checkpoint "
                          f"being exported (size {current.size})",
                          what="exported checkpoint", where=where)
    if tree_root(store, previous.size) != previous.root_hash:
        raise MirrorError(f"{where} (size {previous.size}) has another root than this log "
                          "at that size: the export holds a forked history",
                          what="exported checkpoint", where=where)
