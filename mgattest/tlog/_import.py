"""Rebuilding a log database from an export or a tiles mirror (``mgattest log import``).

Nothing read from the export is trusted until it verifies, in this order:

1. the checkpoint's signature, by the log key given (never by a key the export holds);
2. every entry bundle: complete (its width), its entries' RFC 6962 leaf hashes equal to
   the level-0 hash tile beside it, each body a JSON entry declaring its kind;
3. every SET sidecar record: a valid signed entry timestamp by the log key for that
   body, index and integrated time;
3b. every attestation (``mgattest/attestation/...``, required for a bundle holding a
   dsse entry): it must hash to the ``payloadHash`` of the verified body at its index;
4. every higher hash tile equal to the tree rebuilt from those leaves, and the tree's
   root equal to the signed checkpoint's root.

The database is built in a temporary file and only moved into place (or, for an
existing database, only appended to) once all of it verified. An existing database is
accepted only if it is a prefix of the export: same log, and its leaves equal the
export's first leaves. Each failure raises :class:`~mgattest.tlog.errors.MirrorError`
(or :class:`~mgattest.tlog.errors.CheckpointError`, :class:`~mgattest.tlog.errors.SETError`)
naming the file and log index.

Search indexes (``POST /api/v1/index/retrieve``) are rebuilt from the verified entries
(:func:`~mgattest.tlog._search.rebuild_search_index`) before the store is moved into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, TypeVar

from mgattest.errors import MgattestError
from mgattest.tlog import _tiles as tiles, merkle
from mgattest.tlog._attestation_files import MAX_ATTESTATION_FILE, PAYLOAD_KINDS, \
    attestation_path, decode_attestations, needs_attestation_file
from mgattest.tlog._checkpoint import Checkpoint, verify_checkpoint
from mgattest.tlog._export import CHECKPOINT_FILE, EntryStamp, bundle_refs, decode_stamps, \
    set_path, tree_root
from mgattest.tlog._keys import LogVerifier, log_id_for
from mgattest.tlog._promise import verify_set
from mgattest.tlog._search import rebuild_search_index
from mgattest.tlog._search_terms import committed_payload_sha256, entry_terms, index_keys
from mgattest.tlog._store import DuplicateLeaf, LogStore, PendingLeaf
from mgattest.tlog.errors import LogError, MirrorError

_Item = TypeVar("_Item")

APPEND_BATCH = 16 * tiles.TILE_WIDTH  # leaves per import transaction
MAX_FILE = tiles.TILE_WIDTH * (2 + tiles.MAX_ENTRY_SIZE)  # the largest entry bundle


class TileSource(Protocol):
    """Where an export is read from: a directory or a mirror's base URL."""

    where: str

    def read(self, path: str, limit: int = MAX_FILE) -> bytes:
        """The bytes of ``path`` (``checkpoint``, ``tile/0/000`` ...), at most ``limit`` of
        them; MirrorError if absent or larger."""


class DirectorySource:
    """An export directory on disk."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.where = str(self.root)
        if not self.root.is_dir():
            raise MirrorError(f"{self.root} is not a directory", what="export directory",
                              where=self.where)

    def read(self, path: str, limit: int = MAX_FILE) -> bytes:
        file = self.root / path
        try:
            with open(file, "rb") as fh:
                data = fh.read(limit + 1)
        except FileNotFoundError:
            raise MirrorError(f"{path} is missing from the export {self.root}",
                              what="missing file", where=str(file)) from None
        except OSError as exc:
            raise MirrorError(f"cannot read {file}: {exc.strerror or exc}", what="export file",
                              where=str(file)) from None
        if len(data) > limit:
            raise MirrorError(f"{file} is larger than {limit} bytes", what="export file",
                              where=str(file))
        return data


class URLSource:
    """A tiles mirror (a static web server over an export, or ``mgattest log serve``)."""

    def __init__(self, url: str) -> None:
        from mgattest.tlog._client import RekorClient  # noqa: PLC0415 - requests only for URLs

        self._client = RekorClient(url)
        self.where = self._client.url

    def read(self, path: str, limit: int = MAX_FILE) -> bytes:
        from mgattest.tlog._client import LogRequestError  # noqa: PLC0415 - see __init__

        try:
            return self._client.static_file(path, max_bytes=limit)
        except LogRequestError as exc:
            if exc.status == 404:
                raise MirrorError(f"{path} is missing from the mirror {self.where}",
                                  what="missing file", where=f"{self.where}/{path}") from None
            raise


@dataclass(frozen=True)
class ImportResult:
    """The verified tree now in the database."""

    tree_size: int
    root_hash: bytes
    origin: str
    appended: int  # leaves added to the database by this import


def import_log(source: TileSource, db_path: str | os.PathLike[str], verifier: LogVerifier,
               *, origin: str | None = None) -> ImportResult:
    """Verify the export at ``source`` and rebuild (or extend) the database ``db_path``."""
    db_path = os.fspath(db_path)
    note = _read_text(source, CHECKPOINT_FILE)
    try:
        checkpoint = verify_checkpoint(note, [verifier], origin=origin)
    except MgattestError as exc:
        exc.where = f"{source.where}/{CHECKPOINT_FILE}" + (f": {exc.where}" if exc.where else "")
        raise
    tmp_path = f"{db_path}.import-{os.getpid()}.tmp"
    _remove_db(tmp_path)
    try:
        copy = _build_verified_copy(source, tmp_path, verifier, checkpoint, note)
        if not os.path.exists(db_path):
            copy.close()
            try:
                os.link(tmp_path, db_path)  # unlike rename, never replaces a file
            except FileExistsError:
                raise LogError(f"{db_path} appeared while importing; run the import again "
                               "to extend it", where=db_path) from None
            appended = checkpoint.size
        else:
            with closing(copy):
                appended = _extend_existing(copy, db_path, checkpoint, note)
    finally:
        _remove_db(tmp_path)
    return ImportResult(checkpoint.size, checkpoint.root_hash, checkpoint.origin, appended)


def _read_text(source: TileSource, path: str) -> str:
    try:
        return source.read(path).decode("utf-8")
    except UnicodeDecodeError:
        raise MirrorError(f"{path} is not UTF-8 text", what="checkpoint",
                          where=f"{source.where}/{path}") from None


def _build_verified_copy(source: TileSource, tmp_path: str, verifier: LogVerifier,
                         checkpoint: Checkpoint, note: str) -> LogStore:
    """A new database at ``tmp_path`` holding the export, verified end to end."""
    log_id = log_id_for(verifier.public_key, checkpoint.origin)
    store = LogStore.create(tmp_path, {
        "origin": checkpoint.origin, "log_id": log_id.hex(), "key_type": verifier.key_type,
        "public_key": verifier.public_pem().decode(), "created": str(int(time.time())),
    })
    try:
        pending: list[PendingLeaf] = []
        stamps: list[EntryStamp] = []
        for ref in bundle_refs(checkpoint.size):
            leaves, bundle_stamps = _verified_bundle(source, ref, verifier, log_id.hex())
            pending += leaves
            stamps += bundle_stamps
            if len(pending) >= APPEND_BATCH:
                _append(store, pending, stamps, source.where)
                pending, stamps = [], []
        _append(store, pending, stamps, source.where)
        _check_upper_tiles(source, store, checkpoint.size)
        if tree_root(store, checkpoint.size) != checkpoint.root_hash:
            raise MirrorError(
                f"the tree built from the entry bundles has another root than the signed "
                f"checkpoint (size {checkpoint.size})", what="checkpoint root",
                where=f"{source.where}/{CHECKPOINT_FILE}")
        rebuild_search_index(store)  # the imported log answers index/retrieve like the original
        store.put_checkpoint(checkpoint.size, note)
    except BaseException:
        store.close()
        raise
    return store


def _verified_bundle(source: TileSource, ref: tiles.TileRef, verifier: LogVerifier,
                     log_id_hex: str) -> tuple[list[PendingLeaf], list[EntryStamp]]:
    """Entries of one bundle, checked against its level-0 hash tile and SETs."""
    where = f"{source.where}/{ref.path}"
    try:
        bodies = _items(source, ref, lambda r: r.path,
                        lambda data, path: tiles.decode_entry_bundle(data, where=path))
    except tiles.TileDataError as exc:
        raise MirrorError(exc.message, what="entry bundle", where=where) from None
    first = ref.index * tiles.TILE_WIDTH
    if len(bodies) != ref.width:
        raise MirrorError(f"{ref.path} holds {len(bodies)} entries, not {ref.width} "
                          f"(log indexes {first}..{first + ref.width - 1}): truncated or padded",
                          what="entry bundle", where=where)
    hash_ref = tiles.TileRef(0, ref.index, ref.width)
    hashes = _hash_tile(source, hash_ref)
    sidecar = set_path(ref)
    stamps = _items(source, ref, set_path, lambda data, path: decode_stamps(data, where=path))
    if len(stamps) != ref.width:
        raise MirrorError(f"{sidecar} holds {len(stamps)} entry timestamps, not {ref.width}",
                          what="entry timestamps", where=f"{source.where}/{sidecar}")
    leaves = []
    for k, body in enumerate(bodies):
        index = first + k
        leaf = merkle.leaf_hash(body)
        if leaf != hashes[k]:
            raise MirrorError(
                f"log index {index}: entry {k} of {ref.path} hashes to {leaf.hex()} but "
                f"{hash_ref.path} holds {hashes[k].hex()}", what="leaf hash",
                where=f"{where} entry {k} (log index {index})")
        kind, version = _kind_of(body, f"{where} entry {k} (log index {index})")
        stamp = stamps[k]
        verify_set(verifier, stamp.set_sig, body, stamp.integrated_time, log_id_hex, index)
        leaves.append(PendingLeaf(leaf, body, kind, version))
    if needs_attestation_file(leaf.kind for leaf in leaves):
        leaves = _with_attestations(source, ref, leaves)
    return leaves, stamps


def _with_attestations(source: TileSource, ref: tiles.TileRef,
                       leaves: list[PendingLeaf]) -> list[PendingLeaf]:
    """``leaves`` (verified) with the attestations of the bundle's attestation file, each
    checked against the payloadHash its entry's body commits to."""
    path = attestation_path(ref)
    first = ref.index * tiles.TILE_WIDTH
    try:
        records = _items(source, ref, attestation_path,
                         lambda data, where: decode_attestations(data, where=where),
                         limit=MAX_ATTESTATION_FILE)
    except MirrorError as exc:
        if exc.what != "missing file":
            raise
        index = first + next(k for k, leaf in enumerate(leaves) if leaf.kind in PAYLOAD_KINDS)
        # Refused rather than imported without: the imported log would silently stop
        # finding these entries by their statements' subject digests.
        raise MirrorError(f"log index {index}: {path} is missing from {source.where}, but "
                          f"entry bundle {ref.path} holds dsse entries (the first at log "
                          f"index {index}) whose attestations it carries",
                          what="missing attestation file", where=exc.where) from None
    if len(records) != ref.width:
        raise MirrorError(f"{path} holds {len(records)} attestation records, not {ref.width}",
                          what="attestation file", where=f"{source.where}/{path}")
    out = []
    for k, (leaf, attestation) in enumerate(zip(leaves, records, strict=True)):
        if attestation is not None:
            _check_attestation(attestation, leaf.body, first + k, f"{source.where}/{path}")
        out.append(PendingLeaf(leaf.leaf_hash, leaf.body, leaf.kind, leaf.api_version,
                               attestation=attestation))
    return out


def _check_attestation(attestation: bytes, body: bytes, index: int, where: str) -> None:
    """The attestation must be the payload the (verified) body at ``index`` names."""
    expected = committed_payload_sha256(json.loads(body))
    got = hashlib.sha256(attestation).hexdigest()
    if expected is None:
        raise MirrorError(f"log index {index}: {where} carries an attestation for an entry "
                          "that commits to no payload (not a dsse entry with a sha256 "
                          "payloadHash)", what="attestation", where=f"{where} log index {index}")
    if got != expected:
        raise MirrorError(f"log index {index}: the attestation in {where} hashes to "
                          f"sha256:{got}, but the entry's payloadHash is sha256:{expected}: "
                          "the entry does not commit to it", what="attestation",
                          where=f"{where} log index {index}")


def _kind_of(body: bytes, where: str) -> tuple[str, str]:
    """The ``kind`` and ``apiVersion`` a logged body declares.

    The body itself is vouched for by the tree and its SET; a full schema check
    (``parse_body``) would double the import time for nothing the log did not check.
    """
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        obj = None
    kind = obj.get("kind") if isinstance(obj, dict) else None
    version = obj.get("apiVersion") if isinstance(obj, dict) else None
    if not isinstance(kind, str) or not isinstance(version, str):
        raise MirrorError(f"{where} is not a log entry (a JSON object with kind and "
                          "apiVersion)", what="entry body", where=where)
    return kind, version


def _items(source: TileSource, ref: tiles.TileRef, path_of: Callable[[tiles.TileRef], str],
           decode: Callable[[bytes, str], list[_Item]], *, limit: int = MAX_FILE
           ) -> list[_Item]:
    """The decoded items of tile ``ref`` (a hash tile, entry bundle or side file).

    A log may delete a partial tile once the full one exists (tlog-tiles), so a missing
    partial tile is read from the full tile, whose first ``width`` items it would hold.
    """
    try:
        return decode(source.read(path_of(ref), limit), path_of(ref))
    except MirrorError as exc:
        if exc.what != "missing file" or ref.width == tiles.TILE_WIDTH:
            raise
        missing = exc
    full = tiles.TileRef(ref.level, ref.index, tiles.TILE_WIDTH)
    try:
        items = decode(source.read(path_of(full), limit), path_of(full))
    except MirrorError as exc:
        if exc.what == "missing file":
            raise missing from None
        raise
    if len(items) != tiles.TILE_WIDTH:
        raise MirrorError(f"{path_of(full)} holds {len(items)} items, not {tiles.TILE_WIDTH}",
                          what="tile", where=f"{source.where}/{path_of(full)}")
    return items[:ref.width]


def _hash_tile(source: TileSource, ref: tiles.TileRef) -> list[bytes]:
    try:
        hashes = _items(source, ref, lambda r: r.path,
                        lambda data, path: tiles.decode_hash_tile(data, where=path))
    except tiles.TileDataError as exc:
        raise MirrorError(exc.message, what="hash tile",
                          where=f"{source.where}/{ref.path}") from None
    if len(hashes) != ref.width:
        raise MirrorError(f"{ref.path} holds {len(hashes)} hashes, not {ref.width}",
                          what="hash tile", where=f"{source.where}/{ref.path}")
    return hashes


def _append(store: LogStore, leaves: list[PendingLeaf], stamps: list[EntryStamp],
            where: str) -> None:
    """Append verified leaves with their verified stamps, at the indexes they were
    verified for (a database another process appends to meanwhile is refused)."""
    if not leaves:
        return
    first = store.size()

    def stamp(index: int, leaf: PendingLeaf) -> tuple[int, bytes]:
        pos = index - first
        if not 0 <= pos < len(leaves) or leaves[pos] is not leaf:
            raise LogError(f"{store.path} grew while importing (log index {index})",
                           where=store.path)
        return stamps[pos].integrated_time, stamps[pos].set_sig

    try:
        store.append(leaves, stamp)
    except DuplicateLeaf as dup:
        raise MirrorError(f"log index {first + dup.position} repeats an earlier entry "
                          "(a log never holds the same entry twice)", what="entry bundle",
                          where=f"{where} log index {first + dup.position}") from None


def _check_upper_tiles(source: TileSource, store: LogStore, size: int) -> None:
    """Every hash tile above level 0 must equal the subtrees of the rebuilt tree."""
    for ref in tiles.tiles_for_size(size):
        if not ref.level:
            continue
        first = ref.index * tiles.TILE_WIDTH
        expected = store.level_hashes(tiles.TILE_HEIGHT * ref.level, first, first + ref.width)
        for k, got in enumerate(_hash_tile(source, ref)):
            if got != expected[k]:
                span = tiles.TILE_WIDTH ** ref.level
                start = (first + k) * span
                raise MirrorError(
                    f"{ref.path} hash {k} (leaves {start}..{start + span - 1}) does not match "
                    "the tree built from the entry bundles", what="hash tile",
                    where=f"{source.where}/{ref.path} hash {k}")


def _extend_existing(copy: LogStore, db_path: str, checkpoint: Checkpoint, note: str) -> int:
    """Append the verified ``copy``'s entries beyond the end of the existing database.

    The existing database must be of the same log and a prefix of the export.
    """
    target = LogStore.open(db_path)
    with closing(target):
        if target.meta().get("log_id") != copy.meta()["log_id"]:
            raise MirrorError(f"{db_path} is another log (log id {target.meta().get('log_id')})"
                              f" than the export (log id {copy.meta()['log_id']})",
                              what="log database", where=db_path)
        have = target.size()
        if have > checkpoint.size:
            raise MirrorError(f"{db_path} holds {have} entries, more than the export "
                              f"({checkpoint.size}): it is not a prefix of the export",
                              what="log database", where=db_path)
        for start in range(0, have, APPEND_BATCH):
            end = min(have, start + APPEND_BATCH)
            mine, theirs = target.leaf_hashes(start, end), copy.leaf_hashes(start, end)
            for k, (a, b) in enumerate(zip(mine, theirs, strict=True)):
                if a != b:
                    raise MirrorError(
                        f"{db_path} differs from the export at log index {start + k}: the "
                        "database is not a prefix of the export (a fork)",
                        what="log database", where=f"{db_path} log index {start + k}")
        for start in range(have, checkpoint.size, APPEND_BATCH):
            rows = copy.entries(start, min(checkpoint.size, start + APPEND_BATCH))
            # with the search keys and attestations the verified copy holds
            _append(target, [PendingLeaf(r.leaf_hash, r.body, r.kind, r.api_version,
                                         tuple(index_keys(entry_terms(r.body, r.attestation))),
                                         r.attestation)
                             for r in rows],
                    [EntryStamp(r.integrated_time, r.set_sig) for r in rows], db_path)
        target.put_checkpoint(checkpoint.size, note)
    return checkpoint.size - have


def _remove_db(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass
