"""An ASGI app that serves a :class:`~mgattest.tlog._log.TransparencyLog` over HTTP.

Two read/write surfaces over the same tree:

* the Rekor v1 REST API (``/api/v1/log...``) with Rekor's JSON shapes, so
  sigstore-python, cosign and our own client can post and read entries;
* the C2SP tlog-tiles read API (``/checkpoint``, ``/tile/...``), so mirrors and monitors
  can fetch the tree as immutable static files.

Every request is bounded (body size, JSON depth, list lengths, signature checks per
entry) and each proposed entry is validated (schema, field sizes, key parameters,
signature) before it is appended; a rejected request never writes anything. Nothing
slow runs on the event loop: bodies are parsed and signatures checked in a small
validation pool, reads run on reader threads with their own SQLite connections, and
the log has a single writer thread: entries that arrive together are committed in one
transaction, and each answer's inclusion proof and checkpoint are computed right after
that commit, against the same tree head. Each class of work is admitted up to a bound
(in total and per client) and answered 503 beyond it, so a flood of expensive requests
cannot make reads wait. The connection front (header/body/send deadlines, per-client
connection caps) is :mod:`mgattest._httpguard`.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import hmac
import json
import re
import sys
import threading
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, TypeVar

import uvicorn  # already loaded by mgattest._httpguard, the server's connection front
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from mgattest._httpguard import ConnectionLimits, client_key, fit_to_fd_limit, guarded_protocol, raise_fd_limit
from mgattest._numbers import parse_ascii_uint
from mgattest.errors import InputError, MgattestError
from mgattest.tlog import _entries as entries, merkle, _tiles as tiles
from mgattest.tlog._entries import canonicalize
from mgattest.tlog._attestation_files import ATTESTATION_PREFIX, attestation_path, \
    encode_attestations, needs_attestation_file
from mgattest.tlog._export import SET_PREFIX, EntryStamp, encode_stamps
from mgattest.tlog.errors import DuplicateEntryError, EntryRejectedError, UnknownEntryError
from mgattest.tlog._log import InclusionProof, LogEntry, RekorLogEntryJSON, TransparencyLog
from mgattest.tlog._search import MAX_SEARCH_REQUEST, SearchQuery, parse_search_request
from mgattest.tlog._cosign import add_signature_lines
from mgattest.tlog._witnessing import CosignatureCollector, WitnessEndpoint

T = TypeVar("T")
AppendResult = tuple[str, dict[str, Any], bool]  # (uuid, Rekor LogEntry JSON, created)

DEFAULT_MAX_BODY = 4 * 1024 * 1024  # bytes of a POST body
MAX_BATCH = 256  # entries appended in one transaction by the writer thread
MAX_RETRIEVE_ITEMS = 10  # per list in /entries/retrieve, as Rekor
TILE_CACHE_SIZE = 512  # full hash tiles kept in memory (8 KiB each)
KEEP_ALIVE_TIMEOUT = 15  # seconds an idle keep-alive connection stays open
LISTEN_BACKLOG = 2048
READ_WORKERS = 2  # reader threads, each with its own SQLite connection
VALIDATION_WORKERS = 2  # threads parsing bodies and checking signatures
MAX_VALIDATIONS = 64  # POST requests admitted at once (body read + validation)
MAX_VALIDATIONS_PER_CLIENT = 32
MAX_READS = 512  # GET/lookup requests admitted at once
MAX_READS_PER_CLIENT = 64
_UUID = re.compile(r"[0-9a-f]{64}")  # used with fullmatch: '$' would allow a final newline
_ENTRY_ID = re.compile(r"[0-9a-f]{16}[0-9a-f]{64}")
_API_PREFIX = "/api/v1/log"


class _ApiError(Exception):
    """An HTTP error answered with Rekor's ``{"code", "message"}`` body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def tree_id_for(log_id: bytes) -> int:
    """A stable positive int63 "Trillian tree ID" derived from the log ID.

    Rekor v1 clients expect a numeric ``treeID`` and accept 80-hex entry IDs
    (16-hex tree ID ‖ 64-hex UUID); ours is the first 8 bytes of the log ID.
    """
    return int.from_bytes(log_id[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A Rekor-style error; any text a client put in ``message`` is made sendable
    (a lone surrogate cannot be encoded as UTF-8 and would turn a 400 into a 500)."""
    safe = message[:2000].encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"code": status, "message": safe}, status_code=status,
                        headers=headers)


class _Admission:
    """Admits at most ``capacity`` requests of one class at once, ``per_client`` from any
    one client; beyond that the request is answered 503 at once, before its body is read.

    Used on the event loop only (no lock needed).
    """

    def __init__(self, name: str, capacity: int, per_client: int) -> None:
        self.name = name
        self.capacity = capacity
        self.per_client = per_client
        self.total = 0
        self.by_client: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def slot(self, client: str) -> Iterator[None]:
        if self.total >= self.capacity or self.by_client[client] >= self.per_client:
            raise _ApiError(503, f"server busy ({self.name}); retry shortly",
                            {"Retry-After": "1"})
        self.total += 1
        self.by_client[client] += 1
        try:
            yield
        finally:
            self.total -= 1
            self.by_client[client] -= 1
            if self.by_client[client] <= 0:
                del self.by_client[client]


class _FairPool:
    """Worker threads that serve clients round-robin: one job of each waiting client in
    turn, so a client with many queued jobs delays another client's job by at most
    one of its own (per worker), not by its whole queue."""

    def __init__(self, workers: int, name: str) -> None:
        self._queues: dict[str, collections.deque[tuple[Any, ...]]] = {}
        self._turns: collections.deque[str] = collections.deque()  # clients with work
        self._ready = threading.Condition()
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
                         for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, client: str, func: Callable[..., T], *args: Any
               ) -> "concurrent.futures.Future[T]":
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._ready:
            if self._stopping:
                raise RuntimeError("the pool is shut down")
            queue = self._queues.get(client)
            if queue is None:
                queue = self._queues[client] = collections.deque()
                self._turns.append(client)
            queue.append((future, func, args))
            self._ready.notify()
        return future

    def _next_job(self) -> tuple[Any, ...] | None:
        with self._ready:
            while not self._turns:
                if self._stopping:
                    return None
                self._ready.wait()
            client = self._turns.popleft()
            queue = self._queues[client]
            job = queue.popleft()
            if queue:
                self._turns.append(client)  # back of the line
            else:
                del self._queues[client]
            return job

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            future, func, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(func(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Finish the queued jobs, then stop the threads."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        for thread in self._threads:
            thread.join()


class _LogView:
    """The read operations of the API over one :class:`TransparencyLog` connection.

    Each worker thread has its own view (its own SQLite connection), so reads run in
    parallel with the writer and never wait for a write batch.
    """

    def __init__(self, log: "TransparencyLog", service: "_LogService") -> None:
        self.log = log
        self.service = service

    def rekor_entry(self, entry: LogEntry,
                    tree_size: int | None = None) -> dict[str, RekorLogEntryJSON]:
        witnessed = self.service.witnessed_size()
        if tree_size is None and witnessed is not None and entry.log_index < witnessed:
            tree_size = witnessed  # prove against the newest checkpoint witnesses cosigned
        proof = self.log.inclusion_proof(entry.log_index, tree_size)
        return entry.to_rekor_json(self.service.cosigned_proof(proof))

    def _find(self, uuid_hex: str) -> Any:
        try:
            return self.log.entry_by_uuid(uuid_hex)
        except UnknownEntryError:
            return None

    def by_uuid(self, uuid_hex: str) -> dict[str, Any]:
        return self.rekor_entry(self.log.entry_by_uuid(uuid_hex))

    def by_index(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.log.size:
            raise UnknownEntryError(f"no entry at log index {index} (log size {self.log.size})",
                                    what="entry", where=f"log index {index}")
        return self.rekor_entry(self.log.entry_by_index(index))

    def lookup(self, query: "_Lookup") -> list[dict[str, Any]]:
        """The entries a validated retrieve query names (unknown ones are skipped)."""
        found = [self._find(uuid_hex) for uuid_hex in query.uuids]
        size = self.log.size
        found += [self.log.entry_by_index(i) for i in query.indexes if 0 <= i < size]
        found += [self._find(uuid_hex) for uuid_hex in query.entry_uuids]
        return [self.rekor_entry(entry) for entry in found if entry is not None]

    def search(self, query: SearchQuery) -> list[str]:
        """Entry IDs (80 hex: tree ID ‖ UUID, as Rekor answers) the index names."""
        return [self.service.entry_id(uuid_hex) for uuid_hex in self.log.search(query)]

    def log_info(self) -> dict[str, Any]:
        size = self.log.size
        note = self.service.cosigned_note(_as_text(self.log.signed_checkpoint(size)), size)
        return {
            "rootHash": _as_bytes(self.log.root_hash(size)).hex(),
            "treeSize": size,
            "signedTreeHead": note,
            "treeID": str(self.service.tree_id),
        }

    def consistency(self, first: int, last: int) -> dict[str, Any]:
        size = self.log.size
        if last > size:
            raise InputError(f"lastSize {last} is beyond the log size {size}",
                             what="consistency proof")
        hashes = self.log.consistency_proof(first, last) if first < last else []
        return {"rootHash": _as_bytes(self.log.root_hash(last)).hex(),
                "hashes": [_as_bytes(h).hex() for h in hashes]}

    def checkpoint(self) -> str:
        size = self.log.size
        return self.service.cosigned_note(_as_text(self.log.signed_checkpoint(size)), size)

    def tile(self, ref: tiles.TileRef) -> bytes:
        tiles.check_servable(ref, self.log.size)
        cached = self.service.cached_tile(ref)
        if cached is not None:
            return cached
        if ref.is_entries:
            data = self._entry_bundle(ref)
        else:
            data = tiles.hash_tile(ref, lambda s, e: _as_bytes(self.log.subtree_hash(s, e)))
            if ref.width == tiles.TILE_WIDTH:  # immutable: keep hot ones
                self.service.cache_tile(ref, data)
        return data

    def _entry_bundle(self, ref: tiles.TileRef) -> bytes:
        first = ref.index * tiles.TILE_WIDTH
        try:
            return tiles.encode_entry_bundle(
                _body_of(self.log.entry_by_index(first + k)) for k in range(ref.width))
        except tiles.TileDataError as exc:
            # Only a log written before appends were capped at the tlog-tiles entry size
            # can hold such an entry; the Rekor API still serves it.
            raise tiles.TileUnavailableError(
                f"{ref.path} cannot be served: {exc.message}; read those entries through "
                f"{_API_PREFIX}/entries", what="tile", where=ref.path) from None


    def entry_stamps(self, ref: tiles.TileRef) -> bytes:
        """The SET sidecar of entry bundle ``ref`` (``mgattest/set/...``, as exported)."""
        tiles.check_servable(ref, self.log.size)
        first = ref.index * tiles.TILE_WIDTH
        entries = [self.log.entry_by_index(first + k) for k in range(ref.width)]
        return encode_stamps(EntryStamp(e.integrated_time, e.set_signature) for e in entries)

    def entry_attestations(self, ref: tiles.TileRef) -> bytes:
        """The attestation file of entry bundle ``ref`` (``mgattest/attestation/...``, as
        exported; absent, like in an export, for a bundle without dsse entries)."""
        tiles.check_servable(ref, self.log.size)
        first = ref.index * tiles.TILE_WIDTH
        entries = [self.log.entry_by_index(first + k) for k in range(ref.width)]
        if not needs_attestation_file(e.kind for e in entries):
            raise tiles.TileUnavailableError(f"{attestation_path(ref)} does not exist: that "
                                             "bundle holds no dsse entry", what="tile",
                                             where=attestation_path(ref))
        return encode_attestations(e.attestation for e in entries)

@dataclass(frozen=True)
class _Lookup:
    """A validated retrieve query: 64-hex UUIDs (of this tree), log indexes, and the
    UUIDs of the proposed entries (answered in that order, as Rekor does)."""

    uuids: tuple[str, ...]
    indexes: tuple[int, ...]
    entry_uuids: tuple[str, ...]


class _LogService:
    """The log, the one writer thread, the reader threads and the validation pool.

    * the writer thread alone appends (group commit) and proves what it appended;
    * reader threads, each with its own SQLite connection, answer every GET and the
      lookups of ``/entries/retrieve``: reads never queue behind a write batch;
    * the validation pool parses request bodies and checks schemas and signatures,
      off the event loop and off the writer.
    """

    def __init__(self, log: "TransparencyLog",
                 witnesses: Sequence[WitnessEndpoint] = ()) -> None:
        self.log = log
        self.witnessing = CosignatureCollector(self._open_reader_log, witnesses)
        self.writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="mgattest-log-writer")
        self.readers = concurrent.futures.ThreadPoolExecutor(
            max_workers=READ_WORKERS, thread_name_prefix="mgattest-log-reader")
        self.validators = _FairPool(VALIDATION_WORKERS, "mgattest-log-validate")
        self.log_id: bytes = _as_bytes(log.log_id)
        self.tree_id = tree_id_for(self.log_id)
        self.public_pem: str = _as_text(log.signer.public_pem())
        self._writer_view = _LogView(log, self)
        self._local = threading.local()
        self._opened: list["TransparencyLog"] = []
        self._opened_lock = threading.Lock()
        self._pending: list[tuple[Any, concurrent.futures.Future[AppendResult]]] = []
        self._pending_lock = threading.Lock()
        self._draining = False
        self._tile_cache: dict[tiles.TileRef, bytes] = {}  # FIFO-evicted
        self._tile_lock = threading.Lock()

    # --- running work on the right threads --------------------------------------
    async def read(self, method: Callable[..., T], *args: Any) -> T:
        """Run ``_LogView.method(*args)`` on a reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.readers, self._on_reader, method, args)

    def _on_reader(self, method: Callable[..., T], args: tuple[Any, ...]) -> T:
        view = getattr(self._local, "view", None)
        if view is None:
            view = self._local.view = _LogView(self._open_reader_log(), self)
        return method(view, *args)

    def _open_reader_log(self) -> "TransparencyLog":

        opened = TransparencyLog.open(self.log.path, self.log.signer)
        with self._opened_lock:
            self._opened.append(opened)
        return opened

    async def validate(self, client: str, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` (parsing, schema and signature checks) in the pool, in
        turn with the other clients' jobs."""
        return await asyncio.wrap_future(self.validators.submit(client, func, *args))

    def shutdown(self) -> None:
        self.witnessing.stop()
        self.validators.shutdown()
        for pool in (self.readers, self.writer):
            pool.shutdown(wait=True, cancel_futures=False)
        with self._opened_lock:
            for opened in self._opened:
                opened.close()
            self._opened.clear()

    def entry_id(self, uuid_hex: str) -> str:
        return f"{self.tree_id:016x}{uuid_hex}"

    # --- witness cosignatures (collected in the background) -----------------------
    def witnessed_size(self) -> int | None:
        """The newest tree size witnesses cosigned, if any."""
        return self.witnessing.latest_size()

    def cosigned_note(self, note: str, size: int) -> str:
        """``note`` (the log's checkpoint for ``size``) with the collected cosignatures."""
        lines = self.witnessing.lines_for(size)
        return add_signature_lines(note, lines) if lines else note

    def cosigned_proof(self, proof: InclusionProof) -> InclusionProof:
        """``proof`` whose checkpoint carries the cosignatures collected for its size."""
        note = self.cosigned_note(_as_text(proof.checkpoint), proof.tree_size)
        return proof if note == proof.checkpoint else dataclasses.replace(proof, checkpoint=note)

    def cached_tile(self, ref: tiles.TileRef) -> bytes | None:
        with self._tile_lock:
            return self._tile_cache.get(ref)

    def cache_tile(self, ref: tiles.TileRef, data: bytes) -> None:
        with self._tile_lock:
            if len(self._tile_cache) >= TILE_CACHE_SIZE:
                self._tile_cache.pop(next(iter(self._tile_cache)))
            self._tile_cache[ref] = data

    # --- appends: the writer thread ----------------------------------------------
    def submit(self, canonical: Any) -> "concurrent.futures.Future[AppendResult]":
        """Queue one validated entry for the writer thread; resolve when committed.

        Entries that arrive while the writer is busy are appended together in one
        transaction (group commit: one fsync and one signed checkpoint per batch).
        """
        future: concurrent.futures.Future[AppendResult] = concurrent.futures.Future()
        with self._pending_lock:
            self._pending.append((canonical, future))
            if not self._draining:
                self._draining = True
                self.writer.submit(self._drain)
        return future

    def _drain(self) -> None:
        """Append one batch; requeue if more entries are pending."""
        with self._pending_lock:
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
        try:
            if batch:
                self._append_batch(batch)
        except BaseException as exc:  # noqa: BLE001 - never leave a request waiting forever
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        finally:
            with self._pending_lock:
                if self._pending:
                    self.writer.submit(self._drain)
                else:
                    self._draining = False
            if batch:
                self.witnessing.notify()

    def _append_batch(self, batch: list[tuple[Any, "concurrent.futures.Future[AppendResult]"]]
                      ) -> None:
        try:
            logged = self.log.append_many_canonical([c for c, _ in batch])
        except (DuplicateEntryError, EntryRejectedError):
            # A duplicate (of the log or within the batch) spoils the all-or-nothing
            # batch: append one by one so each request gets its own answer.
            logged = None
        if logged is not None:
            answers = self._rekor_entries(logged)
            for entry, answer, (_, future) in zip(logged, answers, batch, strict=True):
                future.set_result((entry.uuid, answer, True))
            return
        for canonical, future in batch:
            try:
                entry = self.log.append_canonical(canonical)
            except DuplicateEntryError as dup:
                future.set_result((dup.existing.uuid, {}, False))
            except Exception as exc:  # noqa: BLE001 - handed to the waiting request
                future.set_exception(exc)
            else:
                future.set_result((entry.uuid, self._writer_view.rekor_entry(entry), True))

    def _rekor_entries(self, logged: list[Any]) -> list[dict[str, Any]]:
        """LogEntry JSON for a batch, all proven against one tree head (shared hashes)."""

        size = self.log.size
        hasher = functools.lru_cache(maxsize=None)(self.log.subtree_hash)
        root = hasher(0, size)
        note = self.log.signed_checkpoint(size)
        return [entry.to_rekor_json(InclusionProof(
            entry.log_index, size, root, merkle.inclusion_path(entry.log_index, size, hasher),
            note)) for entry in logged]

    # --- validation: the validation pool -----------------------------------------
    def canonical_entry(self, body: bytes) -> Any:
        """A POSTed proposed entry, parsed and validated (schema, sizes, signature)."""

        proposed = _parse_json(body)
        if not isinstance(proposed, dict):
            raise _ApiError(400, "a proposed entry must be a JSON object")
        return canonicalize(proposed)

    def retrieve_query(self, body: bytes) -> _Lookup:
        """A POSTed retrieve query, validated; proposed entries become their UUIDs."""

        query = _parse_json(body)
        if not isinstance(query, dict) or not set(query) <= {"entryUUIDs", "logIndexes",
                                                             "entries"}:
            raise _ApiError(400, "search query must be an object with entryUUIDs, "
                                 "logIndexes and/or entries")
        for name, kind in (("entryUUIDs", str), ("logIndexes", int), ("entries", dict)):
            items = query.get(name)
            if items is None:
                continue
            if not isinstance(items, list) or len(items) > MAX_RETRIEVE_ITEMS:
                raise _ApiError(400, f"{name} must be a list of at most "
                                     f"{MAX_RETRIEVE_ITEMS} items")
            if not all(isinstance(i, kind) and not isinstance(i, bool) for i in items):
                raise _ApiError(400, f"every item of {name} must be a {kind.__name__}")
            if kind is int and any(i < 0 for i in items):
                raise _ApiError(400, "logIndexes must be non-negative")
        raw_ids = query.get("entryUUIDs") or []
        parsed = [_parse_entry_id(raw) for raw in raw_ids]  # 400 on any malformed ID
        uuids = tuple(u for u, raw in zip(parsed, raw_ids, strict=True) if self.names_this_tree(raw))
        entry_uuids = tuple(merkle.leaf_hash(entries.canonicalize(proposed).body).hex()
                            for proposed in query.get("entries") or [])
        return _Lookup(uuids, tuple(query.get("logIndexes") or ()), entry_uuids)

    def search_query(self, body: bytes) -> SearchQuery:
        """A POSTed ``SearchIndex`` request, validated (400 on anything off)."""
        return parse_search_request(_parse_json(body))

    def names_this_tree(self, raw: str) -> bool:
        """Whether an entry ID is a bare UUID or an 80-hex ID naming this log's tree."""
        return len(raw) != 80 or raw[:16].lower() == f"{self.tree_id:016x}"

    def check_tree_id(self, raw: str) -> None:
        """An 80-hex entry ID must name this log's tree (404 otherwise, as another shard)."""
        if not self.names_this_tree(raw):
            raise UnknownEntryError(f"entry ID {raw} names tree {int(raw[:16], 16)}, not "
                                    f"this log's tree {self.tree_id}", what="entry")


def _body_of(entry: Any) -> bytes:
    return bytes(entry.body)


def _as_bytes(value: Any) -> bytes:
    return bytes.fromhex(value) if isinstance(value, str) else bytes(value)


def _as_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse_entry_id(raw: Any) -> str:
    """Accept a 64-hex UUID or Rekor's 80-hex tree ID ‖ UUID; return the 64-hex UUID."""
    if not isinstance(raw, str):
        raise _ApiError(400, "entry UUID must be a string")
    text = raw.lower()
    if _UUID.fullmatch(text):
        return text
    if _ENTRY_ID.fullmatch(text):
        return text[16:]
    raise _ApiError(400, f"malformed entry UUID {raw[:100]!r}: want 64 or 80 hex characters")


def _parse_int(value: str | None, name: str, *, minimum: int = 0) -> int:
    """A query parameter of 1..19 ASCII digits (400 for anything else, e.g. ``²`` or ``٣``)."""
    number = parse_ascii_uint(value)
    if number is None:
        raise _ApiError(400, f"{name} must be a non-negative integer of ASCII digits")
    if number < minimum:
        raise _ApiError(400, f"{name} must be at least {minimum}")
    return number


async def _read_body(request: Request, max_body: int) -> bytes:
    """Read at most ``max_body`` bytes (413 beyond; 400 on a bad Content-Length)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        length = parse_ascii_uint(declared)
        if length is None:
            raise _ApiError(400, "malformed Content-Length")
        if length > max_body:
            raise _ApiError(413, f"request body exceeds {max_body} bytes")
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_body:
                raise _ApiError(413, f"request body exceeds {max_body} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise _ApiError(400, "client disconnected before sending the whole body") from None
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    """Parse a request body as JSON (400 on any defect, including deep nesting)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _ApiError(400, f"request body is not valid JSON: {str(exc)[:200]}") from None


def _client_of(request: Request) -> str:

    return client_key(request.client.host if request.client else None)


def create_app(log: "TransparencyLog", token: str | None = None,
               max_body: int = DEFAULT_MAX_BODY,
               witnesses: Sequence[WitnessEndpoint] = ()) -> Starlette:
    """Build the ASGI app serving ``log``.

    ``token``: when set, every write (POST that appends) needs
    ``Authorization: Bearer <token>``; reads stay public, as on Rekor.
    ``max_body``: largest accepted request body in bytes (413 beyond).

    Admission: at most :data:`MAX_VALIDATIONS` POST requests (bodies being read,
    parsed and signature-checked) at once and :data:`MAX_VALIDATIONS_PER_CLIENT` per
    client; at most :data:`MAX_READS` reads at once, :data:`MAX_READS_PER_CLIENT` per
    client. Beyond either, 503 with ``Retry-After`` at once, before any body is read.
    """
    if not log.search_index_complete:  # a database from before the index, or imported
        log.rebuild_search_index()
    service = _LogService(log, witnesses)
    expected_auth = f"Bearer {token}".encode() if token else None
    validations = _Admission("validation", MAX_VALIDATIONS, MAX_VALIDATIONS_PER_CLIENT)
    reads = _Admission("reads", MAX_READS, MAX_READS_PER_CLIENT)

    def check_token(request: Request) -> None:
        if expected_auth is None:
            return
        given = request.headers.get("authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected_auth):
            raise _ApiError(401, "missing or wrong bearer token",
                            {"WWW-Authenticate": 'Bearer realm="mgattest-log"'})

    def location(uuid_hex: str) -> str:
        return f"{_API_PREFIX}/entries/{service.entry_id(uuid_hex)}"

    async def read(request: Request, method: Callable[..., T], *args: Any) -> T:
        with reads.slot(_client_of(request)):
            return await service.read(method, *args)

    async def create_entry(request: Request) -> Response:
        check_token(request)
        client = _client_of(request)
        with validations.slot(client):
            body = await _read_body(request, max_body)
            canonical = await service.validate(client, service.canonical_entry, body)
        uuid_hex, answer, created = await asyncio.wrap_future(service.submit(canonical))
        entry_id = service.entry_id(uuid_hex)
        if not created:
            return _error(409, f"an equivalent entry already exists in the transparency log "
                               f"with UUID {entry_id}",
                          {"Location": location(uuid_hex), "ETag": f'"{entry_id}"'})
        return JSONResponse(answer, status_code=201,
                            headers={"Location": location(uuid_hex), "ETag": f'"{entry_id}"'})

    async def get_entry(request: Request) -> Response:
        raw = request.path_params["entry_id"]
        uuid_hex = _parse_entry_id(raw)
        service.check_tree_id(raw)
        return JSONResponse(await read(request, _LogView.by_uuid, uuid_hex))

    async def get_entry_by_index(request: Request) -> Response:
        index = _parse_int(request.query_params.get("logIndex"), "logIndex")
        return JSONResponse(await read(request, _LogView.by_index, index))

    async def retrieve(request: Request) -> Response:
        client = _client_of(request)
        with validations.slot(client):
            body = await _read_body(request, max_body)
            query = await service.validate(client, service.retrieve_query, body)
        return JSONResponse(await read(request, _LogView.lookup, query))

    async def search_index(request: Request) -> Response:
        client = _client_of(request)
        with validations.slot(client):
            body = await _read_body(request, min(max_body, MAX_SEARCH_REQUEST))
            query = await service.validate(client, service.search_query, body)
        return JSONResponse(await read(request, _LogView.search, query))

    async def log_info(request: Request) -> Response:
        return JSONResponse(await read(request, _LogView.log_info))

    async def consistency(request: Request) -> Response:
        first = _parse_int(request.query_params.get("firstSize", "1"), "firstSize", minimum=1)
        last = _parse_int(request.query_params.get("lastSize"), "lastSize", minimum=1)
        if first > last:
            raise _ApiError(400, f"firstSize {first} is greater than lastSize {last}")
        return JSONResponse(await read(request, _LogView.consistency, first, last))

    async def public_key(request: Request) -> Response:
        return Response(service.public_pem, media_type="application/x-pem-file")

    async def checkpoint(request: Request) -> Response:
        note = await read(request, _LogView.checkpoint)
        return PlainTextResponse(note, headers={"Cache-Control": "no-cache"})

    async def tile(request: Request) -> Response:
        try:
            # the whole path, not the route's parameter: the route pattern's '$' would
            # drop a final newline ("/tile/0/000%0A") before the parser saw it
            ref = tiles.parse_tile_path(request.scope["path"])
        except tiles.TilePathError as exc:
            raise _ApiError(404, exc.message) from None
        data = await read(request, _LogView.tile, ref)
        cache = ("public, max-age=31536000, immutable" if ref.width == tiles.TILE_WIDTH
                 else "public, max-age=60")
        return Response(data, media_type="application/octet-stream",
                        headers={"Cache-Control": cache})

    def bundle_side_file(prefix: str, method: Callable[[_LogView, tiles.TileRef], bytes]
                         ) -> Callable[[Request], Awaitable[Response]]:
        """The handler of ``/<prefix>/<N>[.p/<W>]``: a side file named like its entry
        bundle ``tile/entries/<N>[.p/<W>]`` (SETs, attestations)."""
        async def side_file(request: Request) -> Response:
            try:
                ref = tiles.parse_tile_path("tile/entries/" + request.scope["path"][len(
                    f"/{prefix}/"):])
            except tiles.TilePathError as exc:
                raise _ApiError(404, exc.message) from None
            data = await read(request, method, ref)
            return Response(data, media_type="application/octet-stream")
        return side_file

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _ApiError)
        return _error(exc.status, exc.message, exc.headers)

    async def on_mgattest_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MgattestError)
        if isinstance(exc, (UnknownEntryError, tiles.TileUnavailableError)):
            return _error(404, exc.message)
        if isinstance(exc, InputError):
            return _error(400, exc.message)
        return _error(500, f"log error: {exc.message}")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    routes = [
        Route(f"{_API_PREFIX}/entries", create_entry, methods=["POST"]),
        Route(f"{_API_PREFIX}/entries", get_entry_by_index, methods=["GET"]),
        Route(f"{_API_PREFIX}/entries/retrieve", retrieve, methods=["POST"]),
        Route(f"{_API_PREFIX}/entries/retrieve/", retrieve, methods=["POST"]),
        Route(f"{_API_PREFIX}/entries/{{entry_id}}", get_entry, methods=["GET"]),
        Route("/api/v1/index/retrieve", search_index, methods=["POST"]),
        Route(_API_PREFIX, log_info, methods=["GET"]),
        Route(f"{_API_PREFIX}/proof", consistency, methods=["GET"]),
        Route(f"{_API_PREFIX}/publicKey", public_key, methods=["GET"]),
        Route("/checkpoint", checkpoint, methods=["GET"]),
        Route("/tile/{tile_path:path}", tile, methods=["GET"]),
        Route(f"/{SET_PREFIX}/{{set_path:path}}",
              bundle_side_file(SET_PREFIX, _LogView.entry_stamps), methods=["GET"]),
        Route(f"/{ATTESTATION_PREFIX}/{{attestation_path:path}}",
              bundle_side_file(ATTESTATION_PREFIX, _LogView.entry_attestations),
              methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.witnessing.start()
        yield
        service.shutdown()

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        _ApiError: on_api_error,
        MgattestError: on_mgattest_error,
        HTTPException: on_http_error,
    })
    app.state.log_service = service
    return app


def uvicorn_config(app: ASGIApp, *, host: str, port: int,
                   limits: "ConnectionLimits | None" = None,
                   log_level: str = "warning") -> uvicorn.Config:
    """A uvicorn ``Config`` running ``app`` behind the guarded connection front.

    The front (:mod:`mgattest._httpguard`) enforces header, body and send deadlines
    and per-client connection caps; ``limit_concurrency`` stays off because it would
    count idle connections and answer everyone 503 (the app admits work per class).
    """

    limits = fit_to_fd_limit(limits or ConnectionLimits(), raise_fd_limit())
    protocol, _ = guarded_protocol(limits)
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                          http=protocol, timeout_graceful_shutdown=5, limit_concurrency=None,
                          timeout_keep_alive=KEEP_ALIVE_TIMEOUT, backlog=LISTEN_BACKLOG)


def serve(log: "TransparencyLog", *, host: str = "127.0.0.1", port: int = 3000,
          token: str | None = None, max_body: int = DEFAULT_MAX_BODY,
          limits: "ConnectionLimits | None" = None, log_level: str = "warning",
          witnesses: Sequence[WitnessEndpoint] = ()) -> None:
    """Run the app with uvicorn until interrupted (one process: SQLite has one writer).

    ``witnesses``: C2SP tlog-witnesses asked to cosign each new checkpoint, in the
    background; their verified cosignatures are appended to served checkpoints.
    """

    # The event loop and the worker threads hand the GIL back and forth on every
    # request; the default 5 ms switch interval would add that much latency to each.
    sys.setswitchinterval(0.0005)
    app = create_app(log, token=token, max_body=max_body, witnesses=witnesses)
    uvicorn.Server(uvicorn_config(app, host=host, port=port, limits=limits,
                                  log_level=log_level)).run()
