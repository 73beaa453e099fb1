"""A Rekor client for our log server, Sigstore's public Rekor v1, and Rekor v2.

Every entry it returns is a Sigstore bundle ``TransparencyLogEntry`` in proto-JSON
(camelCase, int64 as strings, bytes as base64) — the shape that goes into a bundle's
``tlogEntries[]`` — whichever API produced it:

* Rekor v1 (``api_version=1``): ``POST /api/v1/log/entries`` with a hashedrekord 0.0.1
  or dsse 0.0.1 proposed entry; the v1 ``LogEntry`` (hex hashes) is converted.
  A 409 (entry already logged) fetches and returns the existing entry.
* Rekor v2 (``api_version=2``): ``POST /api/v2/log/entries`` with a
  ``{"hashedRekordRequestV002": ...}`` or ``{"dsseRequestV002": ...}`` request; the
  response already is a ``TransparencyLogEntry``.

Transport: a ``requests`` session with connect/read timeouts and bounded retries with
exponential backoff on connection errors and 5xx answers — never on 4xx. Retrying a
POST is safe because the log deduplicates identical entries (409 → existing entry).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Iterable, NotRequired, TypedDict, TypeGuard

from mgattest._jsonutil import JSONObject
from mgattest.errors import InputError, MgattestError, VerificationError
from mgattest.tlog import _tiles as tiles
from mgattest.tlog._transparency_entry import TransparencyLogEntryJSON
from mgattest.tlog._trust import TrustedLog
from mgattest.tlog._verify import verify_entry

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_ID = re.compile(r"^([0-9a-f]{16})?[0-9a-f]{64}$")
_TRANSIENT_STATUS = {500, 502, 503, 504}


class LogUnavailableError(MgattestError):
    """The log could not be reached (connection errors or 5xx after every retry)."""

    exit_code = 2


class LogRequestError(InputError):
    """The log refused a request (4xx): bad entry, unknown UUID, missing token ..."""

    def __init__(self, message: str, *, status: int, what: str | None = None,
                 where: str | None = None, **details: object) -> None:
        super().__init__(message, what=what, where=where, **details)
        self.status = status


class LogResponseError(VerificationError):
    """The log answered with something malformed; nothing from it is trusted."""


class LogInfo(TypedDict):
    """Rekor v1 ``LogInfo`` (``GET /api/v1/log``); :meth:`RekorClient.log_info` checks
    the first three members' types, ``treeID`` is passed on as the log sent it."""

    rootHash: str
    treeSize: int
    signedTreeHead: str
    treeID: NotRequired[str]


@dataclass(frozen=True)
class ConsistencyProof:
    """A consistency proof between tree sizes ``first`` and ``last`` (raw bytes)."""

    first: int
    last: int
    root_hash: bytes  # root of the tree at ``last``, as the server claims it
    hashes: list[bytes]


@dataclass(frozen=True)
class _Answer:
    """An HTTP response, fully read (bounded)."""

    status_code: int
    headers: dict[str, str]
    content: bytes
    url: str
    reason: str


class RekorClient:
    """Talk to a Rekor-compatible log at ``url`` (e.g. ``https://rekor.sigstore.dev``).

    ``api_version`` picks the write API (1 or 2). ``token`` is sent as a bearer token
    (private logs that require one for writes). ``trusted_logs`` (from
    :func:`mgattest.tlog._trust.trusted_logs_from_root`), when given, makes every
    returned entry pass offline verification before it is handed back.
    """

    def __init__(self, url: str, *, api_version: int = 1, timeout: float = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, backoff: float = 0.25,
                 token: str | None = None, trusted_logs: Iterable[TrustedLog] | None = None,
                 origin: str | None = None) -> None:
        import requests  # noqa: PLC0415 - requests costs CLI start-up time; only network calls need it

        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
            raise InputError(f"log URL must be http(s)://host[:port][/prefix], got {url!r}",
                             what="log url")
        if api_version not in (1, 2):
            raise InputError(f"api_version must be 1 or 2, got {api_version!r}",
                             what="api version")
        if retries < 0 or timeout <= 0:
            raise InputError("retries must be >= 0 and timeout > 0", what="client options")
        self.url = url.rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.trusted_logs = list(trusted_logs) if trusted_logs is not None else None
        self.origin = origin
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/json",
                                      "User-Agent": "mgattest-rekor-client"})
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def __enter__(self) -> "RekorClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport --------------------------------------------------------------------

    def _request(self, method: str, path: str, *, json_body: Any = None,
                 params: dict[str, Any] | None = None, ok: tuple[int, ...] = (200,),
                 allow: tuple[int, ...] = (), max_bytes: int | None = None) -> _Answer:
        """One request with retries; returns the response, fully read (up to
        ``max_bytes``, default :data:`MAX_RESPONSE_BYTES`).

        Status codes in ``ok`` and ``allow`` are returned; other 4xx raise
        :class:`LogRequestError` at once; 5xx and connection errors are retried.
        """
        import requests  # noqa: PLC0415 - requests costs CLI start-up time; only network calls need it

        url = self.url + path
        data = None
        headers = {}
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)))
            try:
                resp = self._fetch(method, url, data, params, headers, max_bytes)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                continue
            except requests.exceptions.ContentDecodingError:
                raise LogResponseError(f"response from {url} cannot be decoded",
                                       what="log response", where=url) from None
            except requests.RequestException as exc:
                raise InputError(f"cannot send request to {url}: {exc}", what="log request",
                                 where=url) from None
            if resp.status_code in ok or resp.status_code in allow:
                return resp
            if resp.status_code in _TRANSIENT_STATUS:
                last_problem = f"HTTP {resp.status_code}: {_error_message(resp)}"
                continue
            raise LogRequestError(
                f"{method} {url} failed with HTTP {resp.status_code}: {_error_message(resp)}",
                status=resp.status_code, what="log request", where=url)
        raise LogUnavailableError(
            f"{method} {url} failed after {self.retries + 1} attempts: {last_problem}",
            what="log request", where=url)

    def _fetch(self, method: str, url: str, data: bytes | None,
               params: dict[str, Any] | None, headers: dict[str, str],
               max_bytes: int | None = None) -> "_Answer":
        """One HTTP exchange; the body is read up to ``max_bytes`` (default
        :data:`MAX_RESPONSE_BYTES`).

        Redirects are not followed: a Rekor API never redirects, and a redirected POST
        (or bearer token) must not silently go elsewhere.
        """
        with self._session.request(method, url, data=data, params=params, headers=headers,
                                   timeout=self.timeout, stream=True,
                                   allow_redirects=False) as resp:
            limit = MAX_RESPONSE_BYTES if max_bytes is None else max_bytes
            body = bytearray()
            for chunk in resp.iter_content(65536):
                body += chunk
                if len(body) > limit:
                    raise LogResponseError(f"response from {url} is larger than "
                                           f"{limit} bytes", what="log response",
                                           where=url)
            return _Answer(resp.status_code, dict(resp.headers), bytes(body), resp.url,
                           resp.reason or "")

    def _json(self, resp: "_Answer") -> Any:
        try:
            return json.loads(resp.content)
        except (ValueError, RecursionError):
            raise LogResponseError(f"response from {resp.url} is not JSON",
                                   what="log response", where=resp.url) from None

    # --- writes -----------------------------------------------------------------------

    def create_entry(self, proposed: JSONObject) -> TransparencyLogEntryJSON:
        """Submit ``proposed``; return the bundle ``TransparencyLogEntry`` JSON.

        v1: a Rekor proposed entry (``{"apiVersion", "kind", "spec"}``); if the log
        already holds it (409), the existing entry is fetched and returned.
        v2: a ``CreateEntryRequest`` (``hashedRekordRequestV002`` / ``dsseRequestV002``).
        """
        if not isinstance(proposed, dict):
            raise InputError("a proposed entry must be a JSON object", what="proposed entry")
        if self.api_version == 2:
            if len(proposed) != 1 or next(iter(proposed)) not in (
                    "hashedRekordRequestV002", "dsseRequestV002"):
                raise InputError("a Rekor v2 request must be {\"hashedRekordRequestV002\": ...}"
                                 " or {\"dsseRequestV002\": ...}", what="proposed entry")
            resp = self._request("POST", "/api/v2/log/entries", json_body=proposed,
                                 ok=(200, 201))
            entry = self._json(resp)
            _check_bundle_entry(entry, where=resp.url)
            return self._verified(entry)
        resp = self._request("POST", "/api/v1/log/entries", json_body=proposed,
                             ok=(201,), allow=(409,))
        if resp.status_code == 409:
            location = next((v for k, v in resp.headers.items() if k.lower() == "location"),
                            "")
            entry_id = location.rstrip("/").rsplit("/", 1)[-1]
            if not _ENTRY_ID.match(entry_id):
                raise LogResponseError(
                    f"409 from {resp.url} without a usable Location header ({location!r})",
                    what="log response", where=resp.url)
            return self.get_entry(entry_id)
        return self._verified(rekor_v1_to_bundle_entry(self._json(resp), where=resp.url))

    # --- reads ------------------------------------------------------------------------

    def _v1_only(self, what: str) -> None:
        if self.api_version != 1:
            raise InputError(f"{what} needs the Rekor v1 API; Rekor v2 logs are read through "
                             "/checkpoint and tiles", what="api version")

    def get_entry(self, key: str | int) -> TransparencyLogEntryJSON:
        """Fetch one entry by UUID (64 or 80 hex) or log index (Rekor v1 API)."""
        self._v1_only("entry lookup")
        if isinstance(key, bool):
            raise InputError("entry key must be a UUID or a log index", what="entry key")
        if isinstance(key, int):
            if key < 0:
                raise InputError(f"log index must be >= 0, got {key}", what="log index")
            resp = self._request("GET", "/api/v1/log/entries", params={"logIndex": key})
        else:
            text = str(key).lower()
            if not _ENTRY_ID.match(text):
                raise InputError(f"entry UUID must be 64 or 80 hex characters, got {key!r}",
                                 what="entry uuid")
            resp = self._request("GET", f"/api/v1/log/entries/{text}")
        return self._verified(rekor_v1_to_bundle_entry(self._json(resp), where=resp.url))

    def log_info(self) -> LogInfo:
        """``GET /api/v1/log``: rootHash (hex), treeSize, signedTreeHead, treeID."""
        self._v1_only("log info")
        resp = self._request("GET", "/api/v1/log")
        info = self._json(resp)
        if not _is_log_info(info):
            raise LogResponseError(f"malformed LogInfo from {resp.url}", what="log info",
                                   where=resp.url)
        return info

    def checkpoint(self) -> str:
        """The current signed checkpoint (``/checkpoint``, tlog-tiles; Rekor v2 too)."""
        resp = self._request("GET", "/checkpoint")
        try:
            return resp.content.decode("utf-8")
        except UnicodeDecodeError:
            raise LogResponseError(f"checkpoint from {resp.url} is not UTF-8",
                                   what="checkpoint", where=resp.url) from None

    def tile(self, path: str) -> bytes:
        """Raw bytes of a tlog-tiles resource, e.g. ``tile/0/000`` or ``tile/entries/000``."""

        ref = tiles.parse_tile_path(path)
        return self._request("GET", "/" + ref.path).content

    def static_file(self, path: str, max_bytes: int | None = None) -> bytes:
        """Raw bytes of a file below the log's URL (a mirror's sidecar files, say), of at
        most ``max_bytes`` (default :data:`MAX_RESPONSE_BYTES`)."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", path) or ".." in path:
            raise InputError(f"not a relative file path: {path!r}", what="log file path")
        return self._request("GET", "/" + path, max_bytes=max_bytes).content

    def consistency_proof(self, first: int, last: int) -> ConsistencyProof:
        """``GET /api/v1/log/proof``: the proof that tree ``first`` is a prefix of ``last``."""
        self._v1_only("a consistency proof")
        if isinstance(first, bool) or isinstance(last, bool) or not 1 <= first <= last:
            raise InputError(f"need 1 <= first <= last, got {first}, {last}",
                             what="consistency proof")
        resp = self._request("GET", "/api/v1/log/proof",
                             params={"firstSize": first, "lastSize": last})
        body = self._json(resp)
        hashes = body.get("hashes") if isinstance(body, dict) else None
        if (not isinstance(body, dict) or not _is_hex64(body.get("rootHash"))
                or not isinstance(hashes, list) or len(hashes) > 128
                or not all(_is_hex64(h) for h in hashes)):
            raise LogResponseError(f"malformed consistency proof from {resp.url}",
                                   what="consistency proof", where=resp.url)
        return ConsistencyProof(first, last, bytes.fromhex(body["rootHash"]),
                                [bytes.fromhex(h) for h in hashes])

    def public_key(self) -> str:
        """The log's public key in PEM (``/api/v1/log/publicKey``)."""
        self._v1_only("the public key endpoint")
        resp = self._request("GET", "/api/v1/log/publicKey")
        text = resp.content.decode("utf-8", "replace")
        if "-----BEGIN PUBLIC KEY-----" not in text:
            raise LogResponseError(f"{resp.url} did not return a PEM public key",
                                   what="public key", where=resp.url)
        return text

    def search_index(self, request: JSONObject) -> list[str]:
        """``POST /api/v1/index/retrieve``: the entry IDs (64 or 80 hex, lowercased) the
        log's index names. Nothing is verified here: see :func:`search_log`."""
        self._v1_only("the search index")
        resp = self._request("POST", "/api/v1/index/retrieve", json_body=request)
        ids = self._json(resp)
        if not isinstance(ids, list) or not all(
                isinstance(i, str) and _ENTRY_ID.match(i.lower()) for i in ids):
            raise LogResponseError(f"search answer from {resp.url} is not a list of entry "
                                   "UUIDs", what="search index", where=resp.url)
        return [i.lower() for i in ids]

    def get_entry_json(self, entry_id: str) -> Any:
        """``GET /api/v1/log/entries/{id}``: the Rekor v1 ``LogEntry`` JSON as sent
        (with its ``attestation``, which the bundle form drops); unverified."""
        self._v1_only("entry lookup")
        text = entry_id.lower()
        if not _ENTRY_ID.match(text):
            raise InputError(f"entry UUID must be 64 or 80 hex characters, got {entry_id!r}",
                             what="entry uuid")
        return self._json(self._request("GET", f"/api/v1/log/entries/{text}"))

    def _verified(self, entry: TransparencyLogEntryJSON) -> TransparencyLogEntryJSON:
        if self.trusted_logs is not None:

            verify_entry(entry, self.trusted_logs, origin=self.origin)
        return entry


def _is_log_info(info: object) -> TypeGuard[LogInfo]:
    """The members of :class:`LogInfo` a client relies on are there, with their types."""
    return (isinstance(info, dict) and isinstance(info.get("treeSize"), int)
            and isinstance(info.get("signedTreeHead"), str) and _is_hex64(info.get("rootHash")))


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and bool(_HEX64.match(value))


def _error_message(resp: _Answer) -> str:
    try:
        body = json.loads(resp.content[:65536])
        message = body.get("message") if isinstance(body, dict) else None
        if isinstance(message, str):
            return message[:500]
    except (ValueError, RecursionError):
        pass
    return resp.content[:200].decode("utf-8", "replace") or resp.reason or "no detail"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def rekor_v1_to_bundle_entry(response: object, *,
                             where: str = "Rekor v1 LogEntry") -> TransparencyLogEntryJSON:
    """Convert a Rekor v1 ``LogEntry`` (``{uuid: {...}}``) to bundle proto-JSON.

    Hex hashes and log ID become base64, integers become strings, and the kind and
    version are read from the canonicalized body — as sigstore-python does. Any
    missing or mistyped field raises :class:`LogResponseError`.
    """
    def bad(msg: str) -> LogResponseError:
        return LogResponseError(f"malformed Rekor v1 LogEntry: {msg}", what="log entry",
                                where=where)

    if not isinstance(response, dict) or len(response) != 1:
        raise bad("expected an object with exactly one {uuid: entry} member")
    (entry,) = response.values()
    if not isinstance(entry, dict):
        raise bad("entry is not an object")
    try:
        body_b64 = entry["body"]
        body = base64.b64decode(body_b64, validate=True)
        kind_body = json.loads(body)
        kind, version = kind_body["kind"], kind_body["apiVersion"]
        log_index, integrated_time = entry["logIndex"], entry["integratedTime"]
        log_id = entry["logID"]
        verification = entry["verification"]
        set_b64 = verification["signedEntryTimestamp"]
        base64.b64decode(set_b64, validate=True)
        raw_proof = verification["inclusionProof"]
    except (KeyError, TypeError, ValueError, binascii.Error, RecursionError) as exc:
        raise bad(f"{type(exc).__name__}: {exc}") from None
    if not (isinstance(kind, str) and isinstance(version, str)):
        raise bad("body kind/apiVersion are not strings")
    for name, value in (("logIndex", log_index), ("integratedTime", integrated_time)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(f"{name} is not a non-negative integer")
    if not _is_hex64(log_id):
        raise bad("logID is not 64 hex characters")
    out: TransparencyLogEntryJSON = {
        "logIndex": str(log_index),
        "logId": {"keyId": _b64(bytes.fromhex(log_id))},
        "kindVersion": {"kind": kind, "version": version},
        "integratedTime": str(integrated_time),
        "inclusionPromise": {"signedEntryTimestamp": set_b64},
        "canonicalizedBody": body_b64,
    }
    if raw_proof is not None:
        try:
            hashes = raw_proof["hashes"] or []
            proof_index, tree_size = raw_proof["logIndex"], raw_proof["treeSize"]
            root_hash, checkpoint = raw_proof["rootHash"], raw_proof["checkpoint"]
        except (KeyError, TypeError) as exc:
            raise bad(f"inclusionProof: {type(exc).__name__}: {exc}") from None
        if not (isinstance(hashes, list) and all(_is_hex64(h) for h in hashes)
                and _is_hex64(root_hash) and isinstance(checkpoint, str)
                and isinstance(proof_index, int) and isinstance(tree_size, int)):
            raise bad("inclusionProof fields have the wrong types")
        out["inclusionProof"] = {
            "logIndex": str(proof_index),
            "rootHash": _b64(bytes.fromhex(root_hash)),
            "treeSize": str(tree_size),
            "hashes": [_b64(bytes.fromhex(h)) for h in hashes],
            "checkpoint": {"envelope": checkpoint},
        }
    return out


def _check_bundle_entry(entry: object, *, where: str) -> None:
    """Shape check of a proto-JSON TransparencyLogEntry (Rekor v2 responses)."""
    ok = (isinstance(entry, dict) and isinstance(entry.get("logIndex"), (str, int))
          and isinstance(entry.get("logId"), dict)
          and isinstance(entry.get("kindVersion"), dict)
          and isinstance(entry.get("canonicalizedBody"), str)
          and isinstance(entry.get("inclusionProof"), dict))
    if not ok:
        raise LogResponseError(f"malformed TransparencyLogEntry from {where}",
                               what="log entry", where=where)
