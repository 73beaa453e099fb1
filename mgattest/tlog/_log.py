"""The transparency log: append-only store + log key + origin.

``TransparencyLog.init`` creates a database and (optionally) writes the log key;
``TransparencyLog.open`` reopens it with the same key. ``append`` validates and
signature-checks a proposed Rekor entry, assigns the next index, stamps the
integrated time, signs the SET and commits — all in one ``BEGIN IMMEDIATE``
transaction, so any number of processes may append to one file.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from dataclasses import dataclass
from typing import Callable, NotRequired, Sequence, TypedDict

from cryptography.hazmat.primitives.asymmetric import ed25519

from mgattest._jsonutil import JSONObject
from mgattest.tlog import merkle
from mgattest.tlog._checkpoint import SIG_PREFIX, Checkpoint, sign_checkpoint, verify_checkpoint
from mgattest.tlog._entries import CanonicalEntry, canonicalize, check_loggable_size
from mgattest.tlog.errors import (
    DuplicateEntryError,
    EntryRejectedError,
    LogError,
    UnknownEntryError,
)
from mgattest.tlog._keys import LogSigner, log_id_for
from mgattest.tlog._promise import sign_set
from mgattest.tlog._search import MAX_SEARCH_RESULTS, SearchQuery, rebuild_search_index, \
    search_store
from mgattest.tlog._search_terms import entry_terms, index_keys
from mgattest.tlog._store import DuplicateLeaf, LogStore, PendingLeaf, StoredEntry
from mgattest.tlog._transparency_entry import (InclusionPromiseJSON, InclusionProofJSON,
                                              KindVersionJSON, LogIdJSON,
                                              TransparencyLogEntryJSON)

MAX_BATCH = 100_000


@dataclass(frozen=True)
class InclusionProof:
    """Proof that ``log_index`` is in the tree of ``tree_size`` with ``root_hash``."""

    log_index: int
    tree_size: int
    root_hash: bytes
    hashes: list[bytes]
    checkpoint: str  # signed note for tree_size


class RekorInclusionProofJSON(TypedDict):
    """Rekor v1 ``InclusionProof``: hex hashes, integer index and size."""

    checkpoint: str
    hashes: list[str]
    logIndex: int
    rootHash: str
    treeSize: int


class RekorVerificationJSON(TypedDict):
    """Rekor v1 ``verification``: the SET (base64) and, when asked for, the proof."""

    signedEntryTimestamp: str
    inclusionProof: NotRequired[RekorInclusionProofJSON]


class RekorAttestationJSON(TypedDict):
    """Rekor v1 ``attestation``: the stored attestation, base64."""

    data: str


class RekorLogEntryJSON(TypedDict):
    """The value of a Rekor v1 ``LogEntry`` (``{uuid: <this>}``)."""

    body: str
    integratedTime: int
    logID: str
    logIndex: int
    verification: RekorVerificationJSON
    attestation: NotRequired[RekorAttestationJSON]


@dataclass(frozen=True)
class LogEntry:
    """One logged entry, with its SET."""

    log_index: int
    uuid: str  # hex leaf hash
    body: bytes
    integrated_time: int
    log_id: str  # hex
    kind: str
    api_version: str
    set_signature: bytes
    attestation: bytes | None = None  # a dsse entry's in-toto Statement, if kept

    def to_rekor_json(self, proof: InclusionProof | None = None) -> dict[str, RekorLogEntryJSON]:
        """Rekor v1 ``LogEntry`` JSON: ``{uuid: {body, integratedTime, logID, ...}}``."""
        verification: RekorVerificationJSON = {
            "signedEntryTimestamp": base64.b64encode(self.set_signature).decode()}
        if proof is not None:
            verification["inclusionProof"] = {
                "checkpoint": proof.checkpoint,
                "hashes": [h.hex() for h in proof.hashes],
                "logIndex": proof.log_index,
                "rootHash": proof.root_hash.hex(),
                "treeSize": proof.tree_size,
            }
        value: RekorLogEntryJSON = {
            "body": base64.b64encode(self.body).decode(),
            "integratedTime": self.integrated_time,
            "logID": self.log_id,
            "logIndex": self.log_index,
            "verification": verification,
        }
        if self.attestation is not None:
            value["attestation"] = {"data": base64.b64encode(self.attestation).decode()}
        return {self.uuid: value}

    def to_bundle_entry(self, proof: InclusionProof | None = None) -> TransparencyLogEntryJSON:
        """protobuf-specs ``TransparencyLogEntry`` in proto-JSON form (bundle tlogEntries)."""
        log_id: LogIdJSON = {"keyId": base64.b64encode(bytes.fromhex(self.log_id)).decode()}
        kind: KindVersionJSON = {"kind": self.kind, "version": self.api_version}
        promise: InclusionPromiseJSON = {
            "signedEntryTimestamp": base64.b64encode(self.set_signature).decode()}
        body = base64.b64encode(self.body).decode()
        if proof is None:
            return {"logIndex": str(self.log_index), "logId": log_id, "kindVersion": kind,
                    "integratedTime": str(self.integrated_time), "inclusionPromise": promise,
                    "canonicalizedBody": body}
        inclusion: InclusionProofJSON = {
            "logIndex": str(proof.log_index),
            "rootHash": base64.b64encode(proof.root_hash).decode(),
            "treeSize": str(proof.tree_size),
            "hashes": [base64.b64encode(h).decode() for h in proof.hashes],
            "checkpoint": {"envelope": proof.checkpoint},
        }
        # the same keys in the same order, the proof before the body
        return {"logIndex": str(self.log_index), "logId": log_id, "kindVersion": kind,
                "integratedTime": str(self.integrated_time), "inclusionPromise": promise,
                "inclusionProof": inclusion, "canonicalizedBody": body}


def _recorder(ranges: list[tuple[int, int]]) -> Callable[[int, int], bytes]:
    """A fake ``subtree_hash`` that records the ranges a proof needs (for prefetching)."""

    def record(start: int, end: int) -> bytes:
        ranges.append((start, end))
        return b"\0" * 32

    return record


def default_origin() -> str:
    """``<hostname>/mgattest-log``."""
    host = socket.gethostname().strip().lower() or "localhost"
    return f"{host}/mgattest-log"


def _signed_as(note: str) -> str | None:
    """The key name on the first signature line of a stored signed note."""
    for line in note.splitlines():
        if line.startswith(SIG_PREFIX):
            return line[len(SIG_PREFIX):].split(" ", 1)[0]
    return None


def _check_origin(origin: str) -> str:
    if not isinstance(origin, str) or not origin or len(origin) > 256 \
            or any(c.isspace() or ord(c) < 0x20 for c in origin) or "+" in origin:
        raise LogError(f"invalid log origin {origin!r}: a non-empty line without spaces or '+'")
    return origin


class TransparencyLog:
    """A Rekor-compatible append-only log backed by one SQLite file."""

    def __init__(self, store: LogStore, signer: LogSigner, origin: str) -> None:
        self._store = store
        self.signer = signer
        self.origin = origin
        self._served_name: str | None = None
        # SHA-256 of the SPKI for ECDSA logs; the C2SP key ID (name = origin) for Ed25519.
        self.log_id = log_id_for(signer.public_key, origin)
        self._log_id_hex = self.log_id.hex()

    # --- lifecycle ---------------------------------------------------------------
    @classmethod
    def init(cls, db_path: str | os.PathLike[str], key_out: str | os.PathLike[str] | None = None, *,
             origin: str | None = None, key_type: str = "ecdsa-p256",
             signer: LogSigner | None = None) -> "TransparencyLog":
        """Create a new log database (and write its private key PEM, mode 0600)."""
        db_path = os.fspath(db_path)
        origin = _check_origin(origin if origin is not None else default_origin())
        if signer is None:
            signer = LogSigner.generate(key_type)
        if key_out is not None:
            key_out = os.fspath(key_out)
            if os.path.lexists(key_out):
                raise LogError(f"key file {key_out} already exists; refusing to overwrite",
                               where=key_out)
        store = LogStore.create(db_path, {
            "origin": origin,
            "log_id": log_id_for(signer.public_key, origin).hex(),
            "key_type": signer.key_type,
            "public_key": signer.public_pem().decode(),
            "created": str(int(time.time())),
        })
        if key_out is not None:
            try:
                fd = os.open(key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(signer.private_pem())
            except OSError as exc:
                # without its key the new log is useless: do not leave it behind
                store.close()
                for suffix in ("", "-wal", "-shm"):
                    try:
                        os.unlink(db_path + suffix)
                    except FileNotFoundError:
                        pass
                raise LogError(f"cannot write key file {key_out}: {exc.strerror or exc}",
                               where=key_out) from None
        return cls(store, signer, origin)

    @classmethod
    def open(cls, db_path: str | os.PathLike[str], signer: LogSigner) -> "TransparencyLog":
        """Open an existing log; refuses a key other than the one it was created with."""
        db_path = os.fspath(db_path)
        store = LogStore.open(db_path)
        meta = store.meta()
        given = log_id_for(signer.public_key, meta.get("origin", "")).hex()
        if meta.get("log_id") != given:
            store.close()
            raise LogError(
                f"the key given (log id {given}) is not the key log {db_path} "
                f"was created with (log id {meta.get('log_id')})", where=db_path)
        return cls(store, signer, meta["origin"])

    def close(self) -> None:
        """Close the database."""
        self._store.close()

    def __enter__(self) -> "TransparencyLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> str:
        """The database file."""
        return self._store.path

    @property
    def size(self) -> int:
        """Number of committed entries."""
        return self._store.size()

    @property
    def key_name(self) -> str:
        """The signed-note key name of checkpoint signatures: the origin, unless
        :meth:`serve_as` named the host an ECDSA/RSA log is served under."""
        return self._served_name or self.origin

    def serve_as(self, hostname: str) -> None:
        """Sign checkpoints as ``hostname``, the host clients reach the log under.

        Rekor v1 signs its checkpoints as its hostname (origin ``<hostname> - <treeID>``)
        and sigstore-js accepts a checkpoint signature only when that name matches the
        log's base URL in the trusted root, so a served log signs under its host. Only
        for ECDSA/RSA keys, whose key hint does not depend on the name; an Ed25519 log's
        key ID binds the name to its origin, so its name stays the origin.
        """
        _check_origin(hostname)
        if not isinstance(self.signer.public_key, ed25519.Ed25519PublicKey):
            self._served_name = hostname

    # --- appends -----------------------------------------------------------------
    def _stamp(self, index: int, leaf: PendingLeaf) -> tuple[int, bytes]:
        now = int(time.time())
        return now, sign_set(self.signer, leaf.body, now, self._log_id_hex, index)

    def append(self, proposed: JSONObject) -> LogEntry:
        """Validate, verify and append one proposed entry (Rekor API shape)."""
        return self.append_canonical(canonicalize(proposed))

    def append_canonical(self, entry: CanonicalEntry) -> LogEntry:
        """Append one already-canonicalised entry."""
        return self.append_many_canonical([entry])[0]

    def append_many(self, proposed: Sequence[JSONObject]) -> list[LogEntry]:
        """Validate and append several entries in one transaction (all or nothing)."""
        entries = []
        for pos, p in enumerate(proposed):
            try:
                entries.append(canonicalize(p))
            except EntryRejectedError as exc:
                raise EntryRejectedError(f"entry {pos} of the batch: {exc.message}",
                                         what=exc.what, where=exc.where) from None
        return self.append_many_canonical(entries)

    def append_many_canonical(self, entries: Sequence[CanonicalEntry]) -> list[LogEntry]:
        """Append canonical entries in one transaction (all or nothing)."""
        if len(entries) > MAX_BATCH:
            raise EntryRejectedError(f"a batch holds at most {MAX_BATCH} entries")
        leaves = []
        for e in entries:
            if not isinstance(e, CanonicalEntry) or not isinstance(e.body, bytes) or not e.body:
                raise EntryRejectedError("append_canonical needs CanonicalEntry objects")
            check_loggable_size(e.body)
            keys = tuple(index_keys(entry_terms(e.body, e.attestation)))
            leaves.append(PendingLeaf(merkle.leaf_hash(e.body), e.body, e.kind, e.api_version,
                                      keys, e.attestation))
        if not leaves:
            return []
        try:
            stored = self._store.append(leaves, self._stamp)
        except DuplicateLeaf as dup:
            if dup.existing_index is None:
                raise EntryRejectedError(
                    f"entry {dup.position} of the batch repeats an earlier entry of the same "
                    "batch", what="proposed entry") from None
            existing = self.entry_by_index(dup.existing_index)
            raise DuplicateEntryError(
                f"entry already in the log at index {existing.log_index} "
                f"(uuid {existing.uuid})", existing=existing, what="proposed entry",
                where=f"log index {existing.log_index}") from None
        return [self._to_entry(s) for s in stored]

    # --- reads -------------------------------------------------------------------
    def _to_entry(self, s: StoredEntry) -> LogEntry:
        return LogEntry(s.index, s.leaf_hash.hex(), s.body, s.integrated_time,
                        self._log_id_hex, s.kind, s.api_version, s.set_sig, s.attestation)

    def entry_by_index(self, index: int) -> LogEntry:
        """The entry at ``index``; :class:`UnknownEntryError` if none."""
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise UnknownEntryError(f"log index must be a non-negative integer, not {index!r}")
        stored = self._store.entry(index)
        if stored is None:
            raise UnknownEntryError(f"no entry at log index {index} (log size {self.size})",
                                    where=f"log index {index}")
        return self._to_entry(stored)

    def entry_by_uuid(self, uuid: str) -> LogEntry:
        """The entry with UUID ``uuid`` (64 hex, or Rekor's 80-hex tree-prefixed form)."""
        text = uuid.strip().lower() if isinstance(uuid, str) else ""
        if len(text) == 80:
            text = text[16:]
        try:
            leaf = bytes.fromhex(text)
        except ValueError:
            leaf = b""
        if len(leaf) != 32:
            raise UnknownEntryError(f"entry UUID must be 64 hex characters, not {uuid!r}")
        stored = self._store.entry_by_leaf(leaf)
        if stored is None:
            raise UnknownEntryError(f"no entry with UUID {text}", where=f"uuid {text}")
        return self._to_entry(stored)

    # --- search ------------------------------------------------------------------
    def search(self, query: SearchQuery, limit: int = MAX_SEARCH_RESULTS) -> list[str]:
        """UUIDs of the entries the search index names for ``query`` (index order)."""
        return search_store(self._store, query, limit)

    @property
    def search_index_complete(self) -> bool:
        """Whether every entry is in the search index."""
        return self._store.search_index_complete()

    def rebuild_search_index(self) -> int:
        """Index every entry (a database from before the index, or imported)."""
        return rebuild_search_index(self._store)

    def leaf_hash(self, index: int) -> bytes:
        """Leaf hash at ``index``."""
        return bytes.fromhex(self.entry_by_index(index).uuid)

    def _check_size(self, size: int, current: int, label: str = "tree size") -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > current:
            raise UnknownEntryError(f"{label} {size!r} is not between 0 and the log size "
                                    f"{current}")

    def subtree_hash(self, start: int, end: int) -> bytes:
        """``MTH`` of leaves ``[start, end)`` (within the committed tree)."""
        current = self.size
        if not (0 <= start < end <= current):
            raise UnknownEntryError(f"subtree [{start}, {end}) is not inside the log of size "
                                    f"{current}")
        return self._store.subtree_hasher()(start, end)

    def root_hash(self, size: int | None = None) -> bytes:
        """Root hash of the tree of ``size`` leaves (default: current size)."""
        current = self.size
        size = current if size is None else size
        self._check_size(size, current)
        if size == 0:
            return merkle.root_hash([])
        return self._store.subtree_hasher()(0, size)

    def signed_checkpoint(self, size: int | None = None) -> str:
        """The signed checkpoint note for ``size`` (default current); stored once issued."""
        current = self.size
        size = current if size is None else size
        self._check_size(size, current)
        return self._checkpoint_for(size, None)

    def _checkpoint_for(self, size: int, root: bytes | None) -> str:
        note = self._store.checkpoint(size)
        if note is not None and _signed_as(note) == self.key_name:
            return note
        cp = Checkpoint(self.origin, size, root if root is not None else self.root_hash(size))
        signed = sign_checkpoint(cp, self.signer, self.key_name)
        if note is not None:  # issued before under another name: same origin, size and root
            return signed
        return self._store.put_checkpoint(size, signed)

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof:
        """Inclusion proof of ``index`` in the tree of ``tree_size`` (default current)."""
        current = self.size
        tree_size = current if tree_size is None else tree_size
        self._check_size(tree_size, current)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < tree_size:
            raise UnknownEntryError(f"log index {index!r} is not inside the tree of size "
                                    f"{tree_size}", where=f"log index {index}")
        ranges: list[tuple[int, int]] = [(0, tree_size)]
        merkle.inclusion_path(index, tree_size, _recorder(ranges))
        hasher = self._store.subtree_hasher(prefetch=ranges)
        hashes = merkle.inclusion_path(index, tree_size, hasher)
        root = hasher(0, tree_size)
        return InclusionProof(index, tree_size, root, hashes,
                              self._checkpoint_for(tree_size, root))

    def consistency_proof(self, first: int, last: int | None = None) -> list[bytes]:
        """Consistency proof from tree size ``first`` to ``last`` (default current)."""
        current = self.size
        last = current if last is None else last
        self._check_size(last, current, "second tree size")
        if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first <= last:
            raise UnknownEntryError(f"first tree size {first!r} is not between 0 and {last}")
        ranges: list[tuple[int, int]] = []
        merkle.consistency_path(first, last, _recorder(ranges))
        return merkle.consistency_path(first, last, self._store.subtree_hasher(prefetch=ranges))

    def check_integrity(self) -> int:
        """Recompute every stored subtree from the leaves and re-verify every issued
        checkpoint against the tree; raise :class:`LogError` on any mismatch.

        Returns the number of leaves checked. O(n): for audits and crash recovery.
        """
        # One level at a time in a flat buffer: 32 bytes per leaf of memory at most.
        level_hashes = bytearray()
        for h in self._store.iter_leaf_hashes():
            level_hashes += h
        n = len(level_hashes) // 32
        level = 0
        while len(level_hashes) >= 64:
            level += 1
            view = memoryview(level_hashes)
            nxt = bytearray()
            for i in range(0, len(level_hashes) - 63, 64):
                nxt += merkle.node_hash(bytes(view[i:i + 32]), bytes(view[i + 32:i + 64]))
            view.release()
            expected_idx = 0
            for idx, h in self._store.iter_subtrees(level):
                if idx != expected_idx or h != nxt[idx * 32:idx * 32 + 32]:
                    raise LogError(f"log storage is corrupt: subtree at level {level} index "
                                   f"{idx} does not match the leaves", where=self.path)
                expected_idx += 1
            if expected_idx != len(nxt) // 32:
                raise LogError(f"log storage is corrupt: {expected_idx} subtrees stored at "
                               f"level {level}, {len(nxt) // 32} expected", where=self.path)
            level_hashes = nxt
        for size in self._store.checkpoint_sizes():
            note = self._store.checkpoint(size)
            try:
                cp = verify_checkpoint(note or "", [self.signer.verifier], origin=self.origin)
            except Exception as exc:  # noqa: BLE001 - any failure: the stored checkpoint is bad
                raise LogError(f"stored checkpoint for size {size} does not verify: {exc}",
                               where=self.path) from None
            if cp.size != size or size > n or cp.root_hash != self.root_hash(size):
                raise LogError(f"stored checkpoint for size {size} does not match the tree",
                               where=self.path)
        return n
