"""An ASGI app that serves a :class:`~mgattest.tlog.log.TransparencyLog` over HTTP.

Two read/write surfaces over the same tree:

* the Rekor v1 REST API (``/api/v1/log...``) with Rekor's JSON shapes, so
  sigstore-python, cosign and our own client can post and read entries;
* the C2SP tlog-tiles read API (``/checkpoint``, ``/tile/...``), so mirrors and monitors
  can fetch the tree as immutable static files.

Every request is bounded (body size, JSON depth, list lengths) and each proposed entry
is validated (schema, field sizes, signature) before it is appended; a rejected request
never writes anything. All log work runs on one dedicated thread, off the event loop:
the log has a single writer, entries that arrive together are committed in one
transaction, and each answer's inclusion proof and checkpoint are computed right after
that commit, against the same tree head.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hmac
import json
import re
import threading
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mgattest.errors import InputError, MgattestError
from mgattest.tlog import tiles
from mgattest.tlog.errors import DuplicateEntryError, EntryRejectedError, UnknownEntryError

if TYPE_CHECKING:  # pragma: no cover
    from mgattest.tlog.log import TransparencyLog

T = TypeVar("T")
AppendResult = tuple[str, dict[str, Any], bool]  # (uuid, Rekor LogEntry JSON, created)

DEFAULT_MAX_BODY = 4 * 1024 * 1024  # bytes of a POST body
MAX_BATCH = 256  # entries appended in one transaction by the writer thread
MAX_RETRIEVE_ITEMS = 10  # per list in /entries/retrieve, as Rekor
TILE_CACHE_SIZE = 512  # full hash tiles kept in memory (8 KiB each)
MAX_CONNECTIONS = 256  # concurrent connections/requests `serve` accepts (503 beyond)
_UUID = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_ID = re.compile(r"^[0-9a-f]{16}[0-9a-f]{64}$")
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
    return JSONResponse({"code": status, "message": message}, status_code=status,
                        headers=headers)


class _LogService:
    """The log plus the one thread that is allowed to touch it."""

    def __init__(self, log: "TransparencyLog") -> None:
        self.log = log
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="mgattest-log")
        self.log_id: bytes = _as_bytes(log.log_id)
        self.tree_id = tree_id_for(self.log_id)
        self.public_pem: str = _as_text(log.signer.public_pem())
        self._pending: list[tuple[Any, concurrent.futures.Future[AppendResult]]] = []
        self._pending_lock = threading.Lock()
        self._draining = False
        self._tile_cache: dict[tiles.TileRef, bytes] = {}  # FIFO-evicted, writer thread only

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, func, *args)

    def entry_id(self, uuid_hex: str) -> str:
        return f"{self.tree_id:016x}{uuid_hex}"

    # --- everything below runs on the worker thread ---------------------------------

    def rekor_entry(self, entry: Any, tree_size: int | None = None) -> dict[str, Any]:
        proof = self.log.inclusion_proof(entry.log_index, tree_size)
        return entry.to_rekor_json(proof)

    def submit(self, proposed: dict[str, Any]) -> "concurrent.futures.Future[AppendResult]":
        """Queue one proposed entry for the writer thread; resolve when committed.

        The writer validates it (schema, sizes, signature) and appends it. Entries that
        arrive while the writer is busy are appended together in one transaction
        (group commit: one fsync and one signed checkpoint per batch).
        """
        future: concurrent.futures.Future[AppendResult] = concurrent.futures.Future()
        with self._pending_lock:
            self._pending.append((proposed, future))
            if not self._draining:
                self._draining = True
                self.executor.submit(self._drain)
        return future

    def _drain(self) -> None:
        """Append one batch; requeue behind waiting reads if more entries are pending."""
        with self._pending_lock:
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
        try:
            if batch:
                self._append_batch(batch)
        except BaseException as exc:  # never leave a request waiting forever
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        finally:
            with self._pending_lock:
                if self._pending:
                    self.executor.submit(self._drain)  # FIFO: queued reads go first
                else:
                    self._draining = False

    def _append_batch(self, batch: list[tuple[dict[str, Any],
                                              "concurrent.futures.Future[AppendResult]"]]
                      ) -> None:
        from mgattest.tlog.entries import canonicalize

        accepted = []
        for proposed, future in batch:
            try:
                accepted.append((canonicalize(proposed), future))
            except Exception as exc:  # rejected: only this request fails
                future.set_exception(exc)
        if not accepted:
            return
        try:
            logged = self.log.append_many_canonical([c for c, _ in accepted])
        except (DuplicateEntryError, EntryRejectedError):
            # A duplicate (of the log or within the batch) spoils the all-or-nothing
            # batch: append one by one so each request gets its own answer.
            logged = None
        if logged is not None:
            answers = self._rekor_entries(logged)
            for entry, answer, (_, future) in zip(logged, answers, accepted):
                future.set_result((entry.uuid, answer, True))
            return
        for canonical, future in accepted:
            try:
                entry = self.log.append_canonical(canonical)
            except DuplicateEntryError as dup:
                future.set_result((dup.existing.uuid, {}, False))
            except Exception as exc:
                future.set_exception(exc)
            else:
                future.set_result((entry.uuid, self.rekor_entry(entry), True))

    def _rekor_entries(self, logged: list[Any]) -> list[dict[str, Any]]:
        """LogEntry JSON for a batch, all proven against one tree head (shared hashes)."""
        from mgattest.tlog import merkle
        from mgattest.tlog.log import InclusionProof

        size = self.log.size
        hasher = functools.lru_cache(maxsize=None)(self.log.subtree_hash)
        root = hasher(0, size)
        note = self.log.signed_checkpoint(size)
        return [entry.to_rekor_json(InclusionProof(
            entry.log_index, size, root, merkle.inclusion_path(entry.log_index, size, hasher),
            note)) for entry in logged]

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

    def retrieve(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        from mgattest.tlog import entries, merkle

        found: list[dict[str, Any]] = []
        for raw in query.get("entryUUIDs") or []:
            uuid_hex = _parse_entry_id(raw)
            try:
                self.check_tree_id(raw)
            except UnknownEntryError:
                continue
            entry = self._find(uuid_hex)
            if entry is not None:
                found.append(self.rekor_entry(entry))
        for index in query.get("logIndexes") or []:
            if 0 <= index < self.log.size:
                found.append(self.rekor_entry(self.log.entry_by_index(index)))
        for proposed in query.get("entries") or []:
            canonical = entries.canonicalize(proposed)
            entry = self._find(merkle.leaf_hash(canonical.body).hex())
            if entry is not None:
                found.append(self.rekor_entry(entry))
        return found

    def log_info(self) -> dict[str, Any]:
        size = self.log.size
        note = _as_text(self.log.signed_checkpoint(size))
        return {
            "rootHash": _as_bytes(self.log.root_hash(size)).hex(),
            "treeSize": size,
            "signedTreeHead": note,
            "treeID": str(self.tree_id),
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
        return _as_text(self.log.signed_checkpoint())

    def tile(self, ref: tiles.TileRef) -> bytes:
        tiles.check_servable(ref, self.log.size)
        cached = self._tile_cache.get(ref)
        if cached is not None:
            return cached
        if ref.is_entries:
            first = ref.index * tiles.TILE_WIDTH
            data = tiles.encode_entry_bundle(
                _body_of(self.log.entry_by_index(first + k)) for k in range(ref.width))
        else:
            data = tiles.hash_tile(ref, lambda s, e: _as_bytes(self.log.subtree_hash(s, e)))
        if ref.width == tiles.TILE_WIDTH and not ref.is_entries:  # immutable: keep hot ones
            if len(self._tile_cache) >= TILE_CACHE_SIZE:
                self._tile_cache.pop(next(iter(self._tile_cache)))
            self._tile_cache[ref] = data
        return data

    def check_tree_id(self, raw: str) -> None:
        """An 80-hex entry ID must name this log's tree (404 otherwise, as another shard)."""
        if len(raw) == 80 and raw[:16].lower() != f"{self.tree_id:016x}":
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
    if _UUID.match(text):
        return text
    if _ENTRY_ID.match(text):
        return text[16:]
    raise _ApiError(400, f"malformed entry UUID {raw[:100]!r}: want 64 or 80 hex characters")


def _parse_int(value: str | None, name: str, *, minimum: int = 0) -> int:
    if value is None or not value.isdigit() or len(value) > 19:
        raise _ApiError(400, f"{name} must be a non-negative integer")
    number = int(value)
    if number < minimum:
        raise _ApiError(400, f"{name} must be at least {minimum}")
    return number


async def _read_json(request: Request, max_body: int) -> Any:
    """Read at most ``max_body`` bytes (413 beyond) and parse JSON (400 on any defect)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _ApiError(400, "malformed Content-Length")
        if int(declared) > max_body:
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
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as exc:
        raise _ApiError(400, f"request body is not valid JSON: {str(exc)[:200]}") from None


def create_app(log: "TransparencyLog", token: str | None = None,
               max_body: int = DEFAULT_MAX_BODY) -> Starlette:
    """Build the ASGI app serving ``log``.

    ``token``: when set, every write (POST that appends) needs
    ``Authorization: Bearer <token>``; reads stay public, as on Rekor.
    ``max_body``: largest accepted request body in bytes (413 beyond).
    """
    service = _LogService(log)
    expected_auth = f"Bearer {token}".encode() if token else None

    def check_token(request: Request) -> None:
        if expected_auth is None:
            return
        given = request.headers.get("authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected_auth):
            raise _ApiError(401, "missing or wrong bearer token",
                            {"WWW-Authenticate": 'Bearer realm="mgattest-log"'})

    def location(uuid_hex: str) -> str:
        return f"{_API_PREFIX}/entries/{service.entry_id(uuid_hex)}"

    async def create_entry(request: Request) -> Response:
        check_token(request)
        proposed = await _read_json(request, max_body)
        if not isinstance(proposed, dict):
            raise _ApiError(400, "a proposed entry must be a JSON object")
        uuid_hex, body, created = await asyncio.wrap_future(service.submit(proposed))
        entry_id = service.entry_id(uuid_hex)
        if not created:
            return _error(409, f"an equivalent entry already exists in the transparency log "
                               f"with UUID {entry_id}",
                          {"Location": location(uuid_hex), "ETag": f'"{entry_id}"'})
        return JSONResponse(body, status_code=201,
                            headers={"Location": location(uuid_hex), "ETag": f'"{entry_id}"'})

    async def get_entry(request: Request) -> Response:
        raw = request.path_params["entry_id"]
        uuid_hex = _parse_entry_id(raw)
        service.check_tree_id(raw)
        return JSONResponse(await service.run(service.by_uuid, uuid_hex))

    async def get_entry_by_index(request: Request) -> Response:
        index = _parse_int(request.query_params.get("logIndex"), "logIndex")
        return JSONResponse(await service.run(service.by_index, index))

    async def retrieve(request: Request) -> Response:
        query = await _read_json(request, max_body)
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
        return JSONResponse(await service.run(service.retrieve, query))

    async def log_info(request: Request) -> Response:
        return JSONResponse(await service.run(service.log_info))

    async def consistency(request: Request) -> Response:
        first = _parse_int(request.query_params.get("firstSize", "1"), "firstSize", minimum=1)
        last = _parse_int(request.query_params.get("lastSize"), "lastSize", minimum=1)
        if first > last:
            raise _ApiError(400, f"firstSize {first} is greater than lastSize {last}")
        return JSONResponse(await service.run(service.consistency, first, last))

    async def public_key(request: Request) -> Response:
        return Response(service.public_pem, media_type="application/x-pem-file")

    async def checkpoint(request: Request) -> Response:
        note = await service.run(service.checkpoint)
        return PlainTextResponse(note, headers={"Cache-Control": "no-cache"})

    async def tile(request: Request) -> Response:
        try:
            ref = tiles.parse_tile_path("tile/" + request.path_params["tile_path"])
        except tiles.TilePathError as exc:
            raise _ApiError(404, exc.message) from None
        data = await service.run(service.tile, ref)
        cache = ("public, max-age=31536000, immutable" if ref.width == tiles.TILE_WIDTH
                 else "public, max-age=60")
        return Response(data, media_type="application/octet-stream",
                        headers={"Cache-Control": cache})

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
        Route(_API_PREFIX, log_info, methods=["GET"]),
        Route(f"{_API_PREFIX}/proof", consistency, methods=["GET"]),
        Route(f"{_API_PREFIX}/publicKey", public_key, methods=["GET"]),
        Route("/checkpoint", checkpoint, methods=["GET"]),
        Route("/tile/{tile_path:path}", tile, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service.executor.shutdown(wait=True, cancel_futures=False)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        _ApiError: on_api_error,
        MgattestError: on_mgattest_error,
        HTTPException: on_http_error,
    })
    app.state.log_service = service
    return app


def serve(log: "TransparencyLog", *, host: str = "127.0.0.1", port: int = 3000,
          token: str | None = None, max_body: int = DEFAULT_MAX_BODY,
          log_level: str = "warning") -> None:
    """Run the app with uvicorn until interrupted (one process: SQLite has one writer)."""
    import sys

    import uvicorn

    # The event loop and the writer thread hand the GIL back and forth on every
    # request; the default 5 ms switch interval would add that much latency to each.
    sys.setswitchinterval(0.0005)
    app = create_app(log, token=token, max_body=max_body)
    # Bounded concurrency (503 beyond) caps memory: at most this many bodies in flight.
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=5, limit_concurrency=MAX_CONNECTIONS,
                timeout_keep_alive=15)

