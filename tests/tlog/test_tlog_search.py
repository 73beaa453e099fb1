"""Searching the log (issue 15): the index, ``POST /api/v1/index/retrieve`` and the
verifying client.

* A 100,000-entry log with repeated digests, keys and identities: every query's answer
  equals a scan of the generator's own record of each entry (not of our index code).
* Requests and responses validate against Rekor's openapi.yaml. sigstore-rekor-types
  0.0.18 models only proposed entries and ``Error``, not ``SearchIndex`` or
  ``LogEntry``, so the schemas below are transcribed from sigstore/rekor openapi.yaml
  (``SearchIndex``, the ``/api/v1/index/retrieve`` 200 response, ``LogEntry``) and
  checked with jsonschema; the 400 answers validate with rekor_types' ``Error`` model.
* A server lying in its index (an extra UUID, the wrong entry, a doctored attestation
  or proof) is caught by the client: such answers are never shown as matches.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import jsonschema
import pytest
import requests

from mgattest.errors import InputError
from mgattest.tlog import (
    LogError,
    SearchQuery,
    SearchQueryError,
    TrustedLog,
    rebuild_search_index,
    search_log,
)
from mgattest.tlog._search import MAX_SEARCH_RESULTS, parse_search_request
from mgattest.tlog._search_terms import certificate_identities, entry_terms
from tests.helpers.cli_runner import mg
from tests.helpers.log_server import dsse_entry, hashedrekord, in_toto_statement, make_log, \
    new_key, post, public_pem, running_server
from tests.helpers.search_corpus import GOOGLE, Truth, digest_pool, fill_log, make_signers

pytestmark = pytest.mark.network

# --- Rekor's openapi.yaml (sigstore/rekor@caf126d6, definitions SearchIndex, LogEntry
# and the 200 response of /api/v1/index/retrieve), as JSON Schema -------------------------
SEARCH_INDEX_SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "format": "email"},
        "publicKey": {
            "type": "object",
            "properties": {
                "format": {"type": "string", "enum": ["pgp", "x509", "minisign", "ssh", "tuf"]},
                "content": {"type": "string"},
                "url": {"type": "string"},
            },
            "required": ["format"],
        },
        "hash": {"type": "string",
                 "pattern": "^(sha256:)?[0-9a-fA-F]{64}$|^(sha1:)?[0-9a-fA-F]{40}$"},
        "operator": {"type": "string", "enum": ["and", "or"]},
    },
}
SEARCH_RESPONSE_SCHEMA = {
    "type": "array",
    "items": {"type": "string", "pattern": "(^[0-9a-fA-F]{64}|[0-9a-fA-F]{80}$)"},
}
LOG_ENTRY_SCHEMA = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "properties": {
            "logID": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
            "logIndex": {"type": "integer", "minimum": 0},
            "body": {},
            "integratedTime": {"type": "integer"},
            "attestation": {"type": "object", "properties": {"data": {"type": "string"}}},
            "verification": {"type": "object", "properties": {
                "signedEntryTimestamp": {"type": "string"},
                "inclusionProof": {"type": "object", "required": [
                    "logIndex", "rootHash", "treeSize", "hashes"]}}},
        },
        "required": ["logID", "logIndex", "body", "integratedTime"],
    },
}
INDEX = "/api/v1/index/retrieve"


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()
    assert "email" in checker.checkers
    return checker


def _trusted(log: Any) -> list[TrustedLog]:
    return [TrustedLog.for_verifier(log.signer.verifier, origin=log.origin)]


_statement = in_toto_statement


# --- the 100,000-entry log ------------------------------------------------------------

BIG = 100_000


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Truth, Any]]:
    log, _, _ = make_log(tmp_path_factory.mktemp("big"))
    signers = make_signers()
    digests = digest_pool(300)
    truth = fill_log(log, BIG, signers, digests)
    yield log, truth, (signers, digests)
    log.close()


def _indexes(log: Any, uuids: list[str], position: dict[str, int]) -> list[int]:
    return [position[u] for u in uuids]


def _newest(indexes: list[int]) -> list[int]:
    return sorted(indexes)[-MAX_SEARCH_RESULTS:]


@pytest.mark.slow
def test_every_query_equals_a_brute_force_scan_of_100k_entries(big_log: Any) -> None:
    log, truth, (signers, digests) = big_log
    assert log.size == BIG
    position = {leaf.hex(): i for i, leaf in enumerate(log._store.iter_leaf_hashes())}
    sizes = []
    for digest in digests:
        got = _indexes(log, log.search(SearchQuery(sha256=digest)), position)
        expected = truth.with_hash(digest)
        assert got == _newest(expected), digest
        sizes.append(len(expected))
    # the corpus has both kinds of answers: cut at the limit, and complete
    assert max(sizes) > MAX_SEARCH_RESULTS and min(sizes) < 100
    for signer in signers:
        got = _indexes(log, log.search(SearchQuery.by_key(signer.key_pem)), position)
        assert got == _newest(truth.with_key(signer.key_id))
        if signer.identity is not None:
            # the index knows no issuer: both "alice" certificates answer
            # e-mail identities are found in any case, as Rekor looks them up
            asked = signer.identity if "://" in signer.identity else signer.identity.upper()
            got = _indexes(log, log.search(SearchQuery.by_identity(asked)), position)
            assert got == _newest(truth.with_identity(signer.identity))
    # operator "and": one key AND one digest; "or" of the two
    key, digest = signers[1], digests[3]
    both = SearchQuery(sha256=digest, key=key.key_id, operator="and")
    either = SearchQuery(sha256=digest, key=key.key_id, operator="or")
    with_key, with_digest = set(truth.with_key(key.key_id)), set(truth.with_hash(digest))
    assert _indexes(log, log.search(both), position) == _newest(list(with_key & with_digest))
    assert _indexes(log, log.search(either), position) == _newest(list(with_key | with_digest))
    assert log.search(SearchQuery.by_sha256("00" * 32)) == []


@pytest.mark.slow
def test_search_over_http_verifies_hits_of_the_100k_log(big_log: Any) -> None:
    log, truth, (signers, digests) = big_log
    checker = _format_checker()
    alice_google = next(s for s in signers if s.identity == "alice@example.com"
                        and s.issuer == GOOGLE)
    rare = next(d for d in reversed(digests) if 0 < len(truth.with_hash(d)) < 60)
    with running_server(log) as url:
        for request in (SearchQuery.by_sha256(rare).to_request(),
                        SearchQuery.by_key(signers[-1].key_pem).to_request(),
                        SearchQuery.by_identity("alice@example.com", GOOGLE).to_request(),
                        {"hash": rare, "operator": "and", "email": "bob@example.com"}):
            jsonschema.validate(request, SEARCH_INDEX_SCHEMA, format_checker=checker)
            answer = requests.post(url + INDEX, json=request, timeout=30)
            assert answer.status_code == 200
            jsonschema.validate(answer.json(), SEARCH_RESPONSE_SCHEMA)
        first = requests.post(url + INDEX, json={"hash": rare}, timeout=30).json()[0]
        entry = requests.get(f"{url}/api/v1/log/entries/{first}", timeout=30).json()
        jsonschema.validate(entry, LOG_ENTRY_SCHEMA)

        result = search_log(url, SearchQuery.by_sha256(rare), _trusted(log), origin=log.origin)
        assert [h.entry.log_index for h in result.hits] == truth.with_hash(rare)
        assert result.unverifiable == [] and not result.truncated
        assert all(h.entry.set_verified and h.entry.inclusion_proof_verified
                   for h in result.hits)

        # identity + issuer: the other issuer's "alice" entries are verified and set apart
        result = search_log(url, SearchQuery.by_identity("alice@example.com", GOOGLE),
                            _trusted(log), origin=log.origin)
        expected = truth.with_identity("alice@example.com", GOOGLE)
        other = truth.with_identity("alice@example.com", "https://issuer.attacker.example")
        assert 0 < len(expected) + len(other) <= MAX_SEARCH_RESULTS
        assert [h.entry.log_index for h in result.hits] == expected
        assert result.other_issuer == len(other) and result.unverifiable == []
        assert all(alice_google.key_id in h.terms.keys for h in result.hits)


# --- a small log with real signatures --------------------------------------------------

@pytest.fixture()
def signed_log(tmp_path: Path) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """A served log with real hashedrekord and dsse entries; facts about them."""
    log, _, _ = make_log(tmp_path / "log")
    alice, bob = new_key(), new_key()
    files = {"weights.bin": b"\x00weights" * 100, "config.json": b'{"layers": 2}'}
    model = tmp_path / "model"
    model.mkdir()
    for name, data in files.items():
        (model / name).write_bytes(data)
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    with running_server(log) as url:
        assert post(url, hashedrekord(alice, b"artifact")).status_code == 201
        assert post(url, dsse_entry(bob, _statement(sorted(digests.values())))).status_code \
            == 201
        assert post(url, dsse_entry(alice, _statement(["ab" * 32]))).status_code == 201
        yield url, log, {"alice": alice, "bob": bob, "model": model, "digests": digests,
                         "artifact": hashlib.sha256(b"artifact").hexdigest(),
                         "log_key": tmp_path / "log.pub"}


def test_search_finds_real_entries_by_hash_subject_and_key(signed_log: Any) -> None:
    url, log, facts = signed_log
    trusted = _trusted(log)
    by_artifact = search_log(url, SearchQuery.by_sha256(facts["artifact"]), trusted)
    assert [(h.entry.log_index, h.entry.kind) for h in by_artifact.hits] == [(0, "hashedrekord")]
    weights = facts["digests"]["weights.bin"]
    by_subject = search_log(url, SearchQuery.by_sha256(weights.upper()), trusted)
    assert [h.entry.log_index for h in by_subject.hits] == [1]
    assert f"sha256:{weights}" in by_subject.hits[0].terms.subject_digests
    by_key = search_log(url, SearchQuery.by_key(public_pem(facts["alice"])), trusted)
    assert [h.entry.log_index for h in by_key.hits] == [0, 2]
    assert search_log(url, SearchQuery.by_sha256("cd" * 32), trusted).hits == []


def test_index_rows_commit_with_their_entry_or_not_at_all(tmp_path: Path) -> None:
    log, db, _ = make_log(tmp_path)
    key = new_key()
    first = hashedrekord(key, b"one")
    log.append(first)

    def rows() -> int:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM search_keys").fetchone()[0])

    before = rows()
    assert before == 2  # the artifact hash and the key
    # a batch of more than 8 relies on the UNIQUE constraint: the whole transaction,
    # index rows included, rolls back
    batch = [hashedrekord(key, b"new %d" % n) for n in range(10)] + [first]
    with pytest.raises(InputError):
        log.append_many(batch)
    assert rows() == before and log.size == 1
    log.append(hashedrekord(key, b"two"))
    assert rows() == before + 2  # (its hash, index 1) and (the key, index 1)


def _strip_index(db: Path) -> None:
    """Make ``db`` look like a database from before the search index."""
    with sqlite3.connect(db) as conn:
        conn.executescript("DROP TABLE search_keys; DROP TRIGGER meta_no_delete;"
                           "DELETE FROM meta WHERE key = 'search_index';")


def test_an_old_database_is_refused_until_reindexed(tmp_path: Path) -> None:
    from mgattest.tlog import LogStore, TransparencyLog

    log, db, key = make_log(tmp_path)
    signer = new_key()
    for n in range(5):
        log.append(hashedrekord(signer, b"a%d" % n))
    log.close()
    _strip_index(db)
    log = TransparencyLog.open(db, log.signer)
    assert not log.search_index_complete
    query = SearchQuery.by_key(public_pem(signer))
    with pytest.raises(LogError, match="log reindex"):
        log.search(query)
    result = mg("log", "reindex", "--db", db)
    assert result.exit_code == 0, result.output
    assert "indexed 5 entries" in result.output
    assert len(log.search(query)) == 5
    store = LogStore.open(str(db))
    assert rebuild_search_index(store) == 5  # idempotent
    store.close()
    assert len(log.search(query)) == 5


def test_serving_an_old_database_rebuilds_its_index(tmp_path: Path) -> None:
    from mgattest.tlog import TransparencyLog

    log, db, _ = make_log(tmp_path)
    signer = new_key()
    log.append(hashedrekord(signer, b"x"))
    signer_key = log.signer
    log.close()
    _strip_index(db)
    log = TransparencyLog.open(db, signer_key)
    with running_server(log) as url:
        found = search_log(url, SearchQuery.by_sha256(hashlib.sha256(b"x").hexdigest()),
                           _trusted(log))
    assert [h.entry.log_index for h in found.hits] == [0]


@pytest.mark.parametrize("request_body, message", [
    ([], "JSON object"),
    ({}, "needs a hash"),
    ({"hash": "sha256:" + "a" * 63}, "hash must be"),
    ({"hash": "md5:" + "a" * 32}, "hash must be"),
    ({"hash": "sha256:" + "a" * 64 + "\n"}, "hash must be"),
    ({"hash": "a" * 64, "operator": "xor"}, "operator"),
    ({"hash": "a" * 64, "extra": 1}, "unknown search field"),
    ({"publicKey": {"format": "x509"}}, "publicKey.content"),
    ({"publicKey": {"format": "gpg", "content": "AA=="}}, "publicKey.format"),
    ({"publicKey": {"format": "x509", "content": "%%%"}}, "not base64"),
    ({"publicKey": {"format": "x509", "content": "QUJD"}}, "not a usable x509"),
    ({"publicKey": {"format": "pgp", "content": "QUJD"}}, "not searchable"),
    ({"publicKey": {"format": "x509", "url": "http://127.0.0.1:1/key"}}, "not fetched"),
    ({"email": "not-an-address"}, "not an e-mail"),
    ({"email": "a@b.c", "identity": "https://x"}, "not both"),
    ({"identity": "x" * 2000}, "at most"),
])
def test_malformed_search_requests_are_400(served: Any, request_body: Any,
                                           message: str) -> None:
    from rekor_types import Error

    url, _ = served
    answer = requests.post(url + INDEX, json=request_body, timeout=10)
    assert answer.status_code == 400
    error = Error.model_validate(answer.json())
    assert message in (error.message or "")
    with pytest.raises(SearchQueryError):
        parse_search_request(request_body)


def test_oversized_and_non_json_search_requests(served: Any) -> None:
    url, _ = served
    big = requests.post(url + INDEX, data=b"{" + b" " * 70_000 + b"}", timeout=10,
                        headers={"Content-Type": "application/json"})
    assert big.status_code == 413
    assert requests.post(url + INDEX, data=b"{nope", timeout=10).status_code == 400


def test_a_certificate_identity_and_issuer_are_read_from_the_certificate() -> None:
    from cryptography import x509

    signers = make_signers(keys=1)
    github = next(s for s in signers if s.identity and s.identity.startswith("https://"))
    cert = x509.load_pem_x509_certificate(github.pem)
    (identity,) = certificate_identities(cert)
    assert identity.identity == github.identity and identity.issuer == github.issuer
    body = json.dumps({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": "sha256", "value": "ab" * 32}},
        "signature": {"content": "AA==", "publicKey": {
            "content": base64.b64encode(github.pem).decode()}}}}).encode()
    terms = entry_terms(body)
    assert SearchQuery.by_identity(github.identity or "", github.issuer).matches(terms)
    assert not SearchQuery.by_identity(github.identity or "", GOOGLE).matches(terms)
    assert SearchQuery.by_key(github.key_pem).matches(terms)


def test_an_attestation_counts_only_when_its_hash_is_the_payload_hash() -> None:
    statement = _statement(["ab" * 32])
    body = json.dumps({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
        "envelopeHash": {"algorithm": "sha256", "value": "11" * 32},
        "payloadHash": {"algorithm": "sha256",
                        "value": hashlib.sha256(statement).hexdigest()},
        "signatures": [{"signature": "AA==", "verifier": "AA=="}]}}).encode()
    query = SearchQuery.by_sha256("ab" * 32)
    assert query.matches(entry_terms(body, statement))
    assert not query.matches(entry_terms(body))
    doctored = statement.replace(b"abab", b"abac", 1)
    assert not SearchQuery.by_sha256("abac" + "ab" * 30).matches(entry_terms(body, doctored))


# --- a lying server --------------------------------------------------------------------

Mutator = Callable[[str, Any], Any]


class _LyingProxy:
    """Forwards to a real log; ``index`` and ``entry`` rewrite its answers."""

    def __init__(self, upstream: str, index: Mutator, entry: Mutator) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                real = requests.post(upstream + self.path, data=body, timeout=10,
                                     headers={"Content-Type": "application/json"})
                self._answer(real.status_code, index(self.path, real.json()))

            def do_GET(self) -> None:
                real = requests.get(upstream + self.path, timeout=10)
                self._answer(real.status_code, entry(self.path, real.json()))

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _same(_: str, answer: Any) -> Any:
    return answer


def _search_through(proxy_index: Mutator, proxy_entry: Mutator, url: str, log: Any,
                    query: SearchQuery) -> Any:
    proxy = _LyingProxy(url, proxy_index, proxy_entry)
    try:
        return search_log(proxy.url, query, _trusted(log))
    finally:
        proxy.close()


def _uuid(log: Any, index: int) -> str:
    return str(log.entry_by_index(index).uuid)


def test_an_extra_uuid_in_the_index_is_not_a_match(signed_log: Any) -> None:
    url, log, facts = signed_log
    query = SearchQuery.by_sha256(facts["artifact"])
    result = _search_through(lambda _, ids: ids + [_uuid(log, 1)], _same, url, log, query)
    assert [h.entry.log_index for h in result.hits] == [0]
    assert [u.uuid for u in result.unverifiable] == [_uuid(log, 1)]
    assert "does not contain" in result.unverifiable[0].reason


def test_the_wrong_entry_for_a_uuid_is_not_a_match(signed_log: Any) -> None:
    url, log, facts = signed_log
    other = log.entry_by_index(2)
    proof = log.inclusion_proof(2)

    def swap(path: str, answer: Any) -> Any:
        return other.to_rekor_json(proof) if path.endswith(_uuid(log, 0)) else answer

    result = _search_through(_same, swap, url, log, SearchQuery.by_key(
        public_pem(facts["alice"])))
    assert [h.entry.log_index for h in result.hits] == [2]
    assert any("when asked for" in u.reason for u in result.unverifiable)


def test_a_doctored_attestation_or_proof_is_not_a_match(signed_log: Any) -> None:
    url, log, facts = signed_log
    weights = facts["digests"]["weights.bin"]

    def add_subject(path: str, answer: Any) -> Any:
        (value,) = answer.values()
        data = base64.b64decode(value["attestation"]["data"])
        value["attestation"]["data"] = base64.b64encode(
            data.replace(b'"subject": [', b'"subject": [{"digest": {"sha256": "%s"}}, '
                         % (b"ef" * 32))).decode()
        return answer

    # the index and the attestation both claim entry 1 holds digest ef…: its verified
    # payloadHash says otherwise
    doctored = _search_through(lambda _, ids: [_uuid(log, 1)], add_subject, url, log,
                               SearchQuery.by_sha256("ef" * 32))
    assert doctored.hits == [] and len(doctored.unverifiable) == 1
    assert "does not contain" in doctored.unverifiable[0].reason
    honest = _search_through(_same, add_subject, url, log, SearchQuery.by_sha256(weights))
    assert honest.hits == [] and len(honest.unverifiable) == 1  # the payload no longer binds

    def break_proof(path: str, answer: Any) -> Any:
        (value,) = answer.values()
        value["verification"]["inclusionProof"]["rootHash"] = "00" * 32
        return answer

    broken = _search_through(_same, break_proof, url, log, SearchQuery.by_sha256(weights))
    assert broken.hits == [] and len(broken.unverifiable) == 1

    def bump_time(path: str, answer: Any) -> Any:
        (value,) = answer.values()
        value["integratedTime"] += 1  # the SET no longer covers it
        return answer

    shifted = _search_through(_same, bump_time, url, log, SearchQuery.by_sha256(weights))
    assert shifted.hits == [] and len(shifted.unverifiable) == 1


def test_an_index_answer_that_is_not_uuids_is_refused(signed_log: Any) -> None:
    from mgattest.tlog._client import LogResponseError

    url, log, facts = signed_log
    with pytest.raises(LogResponseError, match="not a list of entry UUIDs"):
        _search_through(lambda _, ids: {"uuids": ids}, _same, url, log,
                        SearchQuery.by_sha256(facts["artifact"]))


# --- the CLI -------------------------------------------------------------------------

def _cli_trust(log: Any, path: Path) -> list[str]:
    path.write_bytes(log.signer.public_pem())
    return ["--log-key", str(path), "--origin", log.origin]


def test_cli_search_by_model_sha256_and_key(signed_log: Any, tmp_path: Path) -> None:
    url, log, facts = signed_log
    trust = _cli_trust(log, tmp_path / "log.pub")
    result = mg("log", "search", "--model", facts["model"], "--log", url, "--json", *trust)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(h["log_index"], h["files"]) for h in report["hits"]] == \
        [(1, ["config.json", "weights.bin"])]
    assert report["hits"][0]["integrated_time_verified"] is True
    assert report["unverifiable"] == []

    result = mg("log", "search", "--sha256", facts["artifact"], "--log", url, *trust)
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()
    assert rows[0].split()[:3] == ["INDEX", "UUID", "KIND"]
    assert rows[1].split()[0] == "0" and "hashedrekord" in rows[1] and len(rows) == 2

    key = tmp_path / "alice.pub"
    key.write_bytes(public_pem(facts["alice"]))
    result = mg("log", "search", "--key", key, "--log", url, "--json", *trust)
    assert [h["log_index"] for h in json.loads(result.stdout)["hits"]] == [0, 2]


def test_cli_search_usage_errors(signed_log: Any, tmp_path: Path) -> None:
    url, log, _ = signed_log
    trust = _cli_trust(log, tmp_path / "log.pub")
    for args in (["--identity", "alice@example.com"],  # no issuer
                 ["--sha256", "ab" * 32, "--key", str(tmp_path / "log.pub")],
                 ["--sha256", "xyz"], []):
        result = mg("log", "search", *args, "--log", url, *trust)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def test_cli_search_exits_1_when_the_index_lies(signed_log: Any, tmp_path: Path) -> None:
    url, log, facts = signed_log
    proxy = _LyingProxy(url, lambda _, ids: ids + [_uuid(log, 1)], _same)
    try:
        result = mg("log", "search", "--sha256", facts["artifact"], "--log", proxy.url,
                    *_cli_trust(log, tmp_path / "log.pub"))
    finally:
        proxy.close()
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[1].split()[0] == "0"  # the true hit is still shown
    assert "unverifiable" in result.stderr and "could not be verified" in result.stderr
