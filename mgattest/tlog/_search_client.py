"""Search a Rekor v1 log (ours or any other) and verify every hit offline.

The server's index only proposes entry UUIDs. :func:`search_log` fetches each proposed
entry and shows it as a hit only after

1. the entry verifies offline against the trusted log keys (:func:`verify_entry`:
   leaf hash, inclusion proof to a checkpoint signed by the log, SET);
2. the entry is the one asked for (its leaf hash is the UUID the index named);
3. the verified body (and, for a statement subject, the attestation whose SHA-256 is
   the body's ``payloadHash``) really contains the searched hash, key or identity
   (:func:`entry_terms`, the same definition the log indexes by).

Anything else is an :class:`UnverifiedHit` with the reason, never a match. A verified
entry with the searched identity but another OIDC issuer is an honest answer (Rekor's
index knows no issuer): it is counted in ``SearchResult.other_issuer``, not shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from mgattest.errors import MgattestError
from mgattest.tlog import merkle
from mgattest.tlog._client import LogRequestError, LogUnavailableError, RekorClient, \
    rekor_v1_to_bundle_entry
from mgattest.tlog._entry_bundle import served_attestation
from mgattest.tlog._search import MAX_SEARCH_RESULTS, SearchQuery
from mgattest.tlog._search_terms import EntryTerms, entry_terms
from mgattest.tlog._trust import TrustedLog
from mgattest.tlog._verify import VerifiedEntry, verify_entry
from mgattest.tlog.errors import LogEntryError


@dataclass(frozen=True)
class SearchHit:
    """A verified entry that contains what was searched for."""

    uuid: str  # hex leaf hash
    entry: VerifiedEntry  # proven log index and integrated time (SET) inside
    terms: EntryTerms  # hashes, keys and identities the verified entry holds
    matched: tuple[SearchQuery, ...]  # the queries it answers, issuer included


@dataclass(frozen=True)
class UnverifiedHit:
    """An entry the index named that could not be shown as a match, and why."""

    uuid: str
    reason: str


@dataclass(frozen=True)
class SearchResult:
    """Verified hits (log index order) and the index's other answers."""

    log_url: str
    hits: list[SearchHit]
    unverifiable: list[UnverifiedHit]
    # the log answered a query with its maximum number of UUIDs: there may be more
    truncated: bool
    # verified entries with the searched identity from another OIDC issuer (not hits:
    # Rekor's index cannot ask by issuer, so these are honest answers, filtered here)
    other_issuer: int = 0


def search_log(log: str | RekorClient, queries: SearchQuery | Sequence[SearchQuery],
               trusted_logs: Sequence[TrustedLog], *, origin: str | None = None,
               max_entries: int = MAX_SEARCH_RESULTS) -> SearchResult:
    """Ask the log's index for each query and verify every entry it names (see the
    module docstring). ``max_entries`` bounds the entries fetched in all.

    Raises :class:`~mgattest.tlog.LogUnavailableError` when the log cannot be reached,
    ``LogRequestError`` when it refuses a query; a bad entry never raises.
    """
    query_list = [queries] if isinstance(queries, SearchQuery) else list(queries)
    client = log if isinstance(log, RekorClient) else RekorClient(log)
    try:
        proposed: dict[str, tuple[str, list[SearchQuery]]] = {}
        truncated = False
        for query in query_list:
            ids = client.search_index(dict(query.to_request()))
            truncated |= len(ids) >= MAX_SEARCH_RESULTS
            for entry_id in ids[:MAX_SEARCH_RESULTS]:
                proposed.setdefault(entry_id[-64:], (entry_id, []))[1].append(query)
        if len(proposed) > max_entries:
            truncated = True
        hits: list[SearchHit] = []
        unverifiable: list[UnverifiedHit] = []
        other_issuer = 0
        for uuid, (entry_id, asked) in list(proposed.items())[:max_entries]:
            try:
                hit = _verified_hit(client, entry_id, uuid, asked, trusted_logs, origin)
            except LogUnavailableError:
                raise
            except MgattestError as exc:
                unverifiable.append(UnverifiedHit(uuid, exc.message))
                continue
            if hit.matched:
                hits.append(hit)
            else:
                other_issuer += 1
        hits.sort(key=lambda h: h.entry.log_index if h.entry.log_index is not None else -1)
        return SearchResult(client.url, hits, unverifiable, truncated, other_issuer)
    finally:
        if client is not log:
            client.close()


def _verified_hit(client: RekorClient, entry_id: str, uuid: str, asked: list[SearchQuery],
                  trusted_logs: Sequence[TrustedLog], origin: str | None) -> SearchHit:
    try:
        raw = client.get_entry_json(entry_id)
    except LogRequestError as exc:
        raise LogEntryError(f"the index names entry {uuid}, which the log does not serve "
                            f"(HTTP {exc.status})", what="search hit", where=uuid) from None
    where = f"entry {uuid}"
    bundle_entry = rekor_v1_to_bundle_entry(raw, where=where)
    verified = verify_entry(bundle_entry, trusted_logs, origin=origin)
    leaf = verified.leaf_hash or merkle.leaf_hash(verified.body)
    if leaf.hex() != uuid:
        raise LogEntryError(f"the log answered entry {leaf.hex()} when asked for {uuid}",
                            what="search hit", where=where)
    terms = entry_terms(verified.body, served_attestation(raw))
    if not any(q.matches(terms, check_issuer=False) for q in asked):
        wanted = " / ".join(q.describe() for q in asked)
        raise LogEntryError(f"entry at log index {verified.log_index} verifies but does not "
                            f"contain {wanted}: the index named it wrongly", what="search hit",
                            where=where)
    return SearchHit(uuid, verified, terms, tuple(q for q in asked if q.matches(terms)))
