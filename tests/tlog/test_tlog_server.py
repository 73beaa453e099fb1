"""The log's HTTP server (Rekor v1 API + C2SP tlog-tiles) on a real uvicorn on 127.0.0.1.

The entry builders and the threaded server live in tests/helpers/log_server.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.fuzz_budget import SERVER, fuzz_examples

from mgattest.tlog import merkle, _tiles as tiles
from tests.helpers.log_server import (API, dsse_entry, hashedrekord, make_log, new_key, post,
                                      public_pem, running_server)

pytestmark = pytest.mark.network


def only_entry(resp_json: dict) -> tuple[str, dict]:
    assert len(resp_json) == 1
    return next(iter(resp_json.items()))


# --- Rekor v1 API ---------------------------------------------------------------------


def test_create_and_read_back_every_way(served: tuple[str, Any]) -> None:
    url, log = served
    key = new_key()
    first = hashedrekord(key, b"model weights")
    resp = post(url, first)
    assert resp.status_code == 201, resp.text
    key_id, entry = only_entry(resp.json())
    uuid = key_id[-64:]
    assert resp.headers["Location"].endswith(uuid)
    assert uuid in resp.headers["ETag"]
    assert entry["logIndex"] == 0 and isinstance(entry["integratedTime"], int)
    assert entry["logID"] == bytes(log.log_id).hex()
    body = base64.b64decode(entry["body"])
    assert merkle.leaf_hash(body).hex() == uuid
    proof = entry["verification"]["inclusionProof"]
    assert proof["treeSize"] == 1 and proof["rootHash"] == merkle.leaf_hash(body).hex()
    assert proof["checkpoint"].startswith("test.mgattest.local/log\n1\n")

    resp2 = post(url, dsse_entry(key, b'{"_type": "https://in-toto.io/Statement/v1"}'))
    assert resp2.status_code == 201, resp2.text
    location = resp2.headers["Location"]
    entry_id = location.rsplit("/", 1)[-1]
    assert len(entry_id) == 80

    # by 80-hex entry ID (Location), by 64-hex UUID, by index: same entry each time
    by_location = requests.get(url + location, timeout=10).json()
    by_uuid = requests.get(f"{url}{API}/entries/{entry_id[16:]}", timeout=10).json()
    by_index = requests.get(f"{url}{API}/entries", params={"logIndex": 1}, timeout=10).json()
    assert only_entry(by_location)[1]["body"] == only_entry(by_uuid)[1]["body"] \
        == only_entry(by_index)[1]["body"]
    assert only_entry(by_index)[1]["verification"]["inclusionProof"]["treeSize"] == 2

    # retrieve: by UUIDs, by indexes, by proposed entry
    got = requests.post(f"{url}{API}/entries/retrieve", timeout=10, json={
        "entryUUIDs": [uuid, "0" * 64], "logIndexes": [1, 99],
        "entries": [first]}).json()
    assert [only_entry(e)[1]["logIndex"] for e in got] == [0, 1, 0]

    info = requests.get(url + API, timeout=10).json()
    assert info["treeSize"] == 2
    assert info["rootHash"] == merkle.root_hash(
        [merkle.leaf_hash(log.entry_by_index(i).body) for i in range(2)]).hex()
    assert info["signedTreeHead"].startswith("test.mgattest.local/log\n2\n")
    assert int(info["treeID"]) > 0 and entry_id.startswith(f"{int(info['treeID']):016x}")
    # an 80-hex ID naming another tree (shard) is not this entry
    other_tree = f"{int(info['treeID']) ^ 1:016x}{entry_id[16:]}"
    assert requests.get(f"{url}{API}/entries/{other_tree}", timeout=10).status_code == 404

    pem = requests.get(url + API + "/publicKey", timeout=10)
    assert pem.text.encode() == log.signer.public_pem()


def test_inclusion_and_consistency_proofs_verify(served: tuple[str, Any]) -> None:
    url, log = served
    key = new_key()
    roots = {}
    for i in range(11):
        assert post(url, hashedrekord(key, b"artifact %d" % i)).status_code == 201
        info = requests.get(url + API, timeout=10).json()
        roots[info["treeSize"]] = bytes.fromhex(info["rootHash"])
    for first in range(1, 12):
        for last in range(first, 12):
            resp = requests.get(f"{url}{API}/proof", params={"firstSize": first,
                                                             "lastSize": last}, timeout=10)
            assert resp.status_code == 200, resp.text
            proof = resp.json()
            assert bytes.fromhex(proof["rootHash"]) == roots[last]
            merkle.verify_consistency(first, last, [bytes.fromhex(h) for h in proof["hashes"]],
                                      roots[first], roots[last])
    for index in range(11):
        _, entry = only_entry(requests.get(f"{url}{API}/entries", params={"logIndex": index},
                                           timeout=10).json())
        proof = entry["verification"]["inclusionProof"]
        merkle.verify_inclusion(merkle.leaf_hash(base64.b64decode(entry["body"])), index,
                                proof["treeSize"], [bytes.fromhex(h) for h in proof["hashes"]],
                                bytes.fromhex(proof["rootHash"]))


def test_duplicate_is_409_with_existing_location(served: tuple[str, Any]) -> None:
    url, log = served
    proposed = hashedrekord(new_key(), b"same artifact")
    first = post(url, proposed)
    assert first.status_code == 201
    again = post(url, proposed)
    assert again.status_code == 409
    assert again.headers["Location"] == first.headers["Location"]
    assert again.json()["code"] == 409 and "already exists" in again.json()["message"]
    assert log.size == 1


def _size(url: str) -> int:
    return requests.get(url + API, timeout=10).json()["treeSize"]


def test_bad_input_is_rejected_and_writes_nothing(tmp_path: Path) -> None:
    log, _, _ = make_log(tmp_path)
    with running_server(log, max_body=64 * 1024) as url:
        key = new_key()
        assert post(url, hashedrekord(key, b"seed")).status_code == 201
        good = hashedrekord(key, b"artifact")
        unknown_kind = dict(good, kind="rekord")
        wrong_version = dict(good, apiVersion="0.0.2")
        bad_sig = json.loads(json.dumps(good))
        bad_sig["spec"]["data"]["hash"]["value"] = hashlib.sha256(b"other").hexdigest()
        other_key_sig = json.loads(json.dumps(good))
        other_key_sig["spec"]["signature"]["publicKey"]["content"] = base64.b64encode(
            public_pem(new_key())).decode()
        oversized_field = json.loads(json.dumps(good))
        oversized_field["spec"]["signature"]["content"] = base64.b64encode(
            b"\x00" * 20000).decode()
        bad_hash = json.loads(json.dumps(good))
        bad_hash["spec"]["data"]["hash"]["value"] = "zz" * 32
        bad_dsse = dsse_entry(key, b"payload")
        env = json.loads(bad_dsse["spec"]["proposedContent"]["envelope"])
        env["payload"] = base64.b64encode(b"tampered").decode()
        bad_dsse["spec"]["proposedContent"]["envelope"] = json.dumps(env)
        cases: list[tuple[str, Any, int]] = [
            ("malformed JSON", b'{"kind": ', 400),
            ("not UTF-8", b"\xff\xfe{}", 400),
            ("JSON array", [good], 400),
            ("deeply nested", b"[" * 50000 + b"]" * 50000, 413),
            ("nesting under cap", b"[" * 30000 + b"]" * 30000, 400),
            ("unknown kind", unknown_kind, 400),
            ("unsupported version", wrong_version, 400),
            ("signature over another digest", bad_sig, 400),
            ("signature by another key", other_key_sig, 400),
            ("oversized signature field", oversized_field, 400),
            ("non-hex digest", bad_hash, 400),
            ("dsse payload tampered", bad_dsse, 400),
            ("body over the cap", b'{"a": "' + b"x" * 70000 + b'"}', 413),
        ]
        for label, body, status in cases:
            resp = post(url, body)
            assert resp.status_code == status, (label, resp.status_code, resp.text)
            err = resp.json()
            assert err["code"] == status and isinstance(err["message"], str), label
            assert _size(url) == 1, label
        # a lying Content-Length bigger than the cap is refused before reading
        resp = requests.post(url + API + "/entries", data=b"{}", timeout=10,
                             headers={"Content-Length": "999999999"})
        assert resp.status_code in (400, 413)
        # a chunked body over the cap is cut off at the cap
        resp = requests.post(url + API + "/entries", timeout=10,
                             data=(b"x" * 8192 for _ in range(20)))
        assert resp.status_code == 413
        assert _size(url) == 1
        assert log.size == 1


def test_bad_query_parameters_are_400_or_404(served: tuple[str, Any]) -> None:
    url, _ = served
    post(url, hashedrekord(new_key(), b"one"))
    checks = [
        (f"{API}/entries", {"logIndex": "-1"}, 400),
        (f"{API}/entries", {"logIndex": "abc"}, 400),
        (f"{API}/entries", {}, 400),
        (f"{API}/entries", {"logIndex": "5"}, 404),
        (f"{API}/entries/{'0' * 64}", {}, 404),
        (f"{API}/entries/xyz", {}, 400),
        (f"{API}/entries/{'a' * 70}", {}, 400),
        (f"{API}/proof", {"firstSize": 2, "lastSize": 1}, 400),
        (f"{API}/proof", {"firstSize": 1, "lastSize": 5}, 400),
        (f"{API}/proof", {"firstSize": 0, "lastSize": 1}, 400),
        (f"{API}/proof", {"firstSize": 1}, 400),
        (f"{API}/proof", {"firstSize": 1, "lastSize": "9" * 40}, 400),
    ]
    for path, params, status in checks:
        resp = requests.get(url + path, params=params, timeout=10)
        assert resp.status_code == status, (path, params, resp.text)
        assert resp.json()["code"] == status
    for query in ({"entryUUIDs": "x"}, {"logIndexes": [-1]}, {"logIndexes": [True]},
                  {"entryUUIDs": ["0" * 64] * 11}, {"other": []}, [], {"entries": [{"kind": 1}]}):
        resp = requests.post(f"{url}{API}/entries/retrieve", json=query, timeout=10)
        assert resp.status_code == 400, (query, resp.text)


def test_token_guards_writes_only(tmp_path: Path) -> None:
    log, _, _ = make_log(tmp_path)
    token = "s3cret-token-0123456789"
    with running_server(log, token=token) as url:
        proposed = hashedrekord(new_key(), b"artifact")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token},
                        {"Authorization": f"Bearer {token}x"}):
            resp = post(url, proposed, headers=headers)
            assert resp.status_code == 401, headers
            assert resp.json()["code"] == 401
        assert _size(url) == 0
        resp = post(url, proposed, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 201
        assert requests.get(url + API, timeout=10).status_code == 200  # reads are public


# --- tlog-tiles -----------------------------------------------------------------------


def test_tiles_rebuild_the_logs_root(tmp_path: Path) -> None:
    from mgattest.tlog._checkpoint import verify_checkpoint

    log, _, _ = make_log(tmp_path)
    key = new_key()
    # Append locally (fast), then read the tree over HTTP as a mirror would.
    for i in range(300):
        log.append(hashedrekord(key, b"tile artifact %d" % i))
    with running_server(log) as url:
        note = requests.get(url + "/checkpoint", timeout=10).text
        cp = verify_checkpoint(note, [log.signer.verifier], origin=log.origin)
        assert cp.size == 300

        def fetch(ref: tiles.TileRef) -> bytes:
            resp = requests.get(f"{url}/{ref.path}", timeout=10)
            assert resp.status_code == 200, (ref.path, resp.text)
            assert resp.headers["content-type"] == "application/octet-stream"
            return resp.content

        assert tiles.root_from_tiles(cp.size, fetch) == bytes(cp.root_hash)
        assert tiles.root_from_tiles(cp.size, fetch) == bytes(cp.root_hash)  # from the cache

        # entry bundles carry the leaves: their hashes equal the level-0 tiles
        leaves = tiles.leaf_hashes_from_entries(fetch(tiles.TileRef(None, 0, 256)))
        leaves += tiles.leaf_hashes_from_entries(fetch(tiles.TileRef(None, 1, 44)))
        assert b"".join(leaves[:256]) == fetch(tiles.TileRef(0, 0, 256))
        assert merkle.root_hash(leaves) == bytes(cp.root_hash)
        # a partial tile narrower than the tree is a prefix of the wider one
        assert fetch(tiles.TileRef(0, 1, 10)) == fetch(tiles.TileRef(0, 1, 44))[:320]

        for path, status in [("tile/0/001", 404),          # full tile not yet complete
                             ("tile/0/001.p/45", 404),     # wider than the tree
                             ("tile/1/000", 404),
                             ("tile/entries/002.p/1", 404),
                             ("tile/6/000", 404), ("tile/0/1", 404), ("tile/0/x000/001", 404),
                             ("tile/0/000.p/256", 404), ("tile/0/000.p/0", 404),
                             ("tile/0/-01", 404), ("tile/abc/000", 404),
                             ("tile/1/000.p/1", 200)]:
            resp = requests.get(f"{url}/{path}", timeout=10)
            assert resp.status_code == status, (path, resp.status_code, resp.text)


# --- tiles encoding, property-based ------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**15))
def test_tile_index_round_trip(index: int) -> None:
    text = tiles.encode_index(index)
    assert all(len(p.lstrip("x")) == 3 for p in text.split("/"))
    assert tiles.decode_index(text) == index
    ref = tiles.parse_tile_path(f"tile/3/{text}.p/17")
    assert (ref.level, ref.index, ref.width) == (3, index, 17)
    assert tiles.parse_tile_path(ref.path) == ref


def test_tile_index_examples() -> None:
    assert tiles.encode_index(1234067) == "x001/x234/067"
    assert tiles.encode_index(0) == "000"
    assert tiles.encode_index(1000) == "x001/000"
    for bad in ("1234067", "x001/234/067", "001/x234", "x000/067", "x01/067", "",
                "x001/x234/067/", "0a1"):
        with pytest.raises(tiles.TilePathError):
            tiles.decode_index(bad)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2000), st.integers(min_value=0, max_value=2**32))
def test_root_from_tiles_matches_merkle_root(size: int, seed: int) -> None:
    leaves = [merkle.leaf_hash(b"%d-%d" % (seed, i)) for i in range(size)]
    subtree = merkle.hashes_subtree(leaves)
    assert tiles.root_from_tiles(size, lambda ref: tiles.hash_tile(ref, subtree)) \
        == merkle.root_hash(leaves)


def test_root_from_tiles_detects_a_tampered_tile() -> None:
    leaves = [merkle.leaf_hash(b"%d" % i) for i in range(600)]
    subtree = merkle.hashes_subtree(leaves)

    def tampered_upper(ref: tiles.TileRef) -> bytes:
        data = tiles.hash_tile(ref, subtree)
        return data if ref.level == 0 else bytes(32) + data[32:]

    with pytest.raises(tiles.TileDataError, match="does not match"):
        tiles.root_from_tiles(600, tampered_upper)
    with pytest.raises(tiles.TileDataError):
        tiles.root_from_tiles(600, lambda ref: tiles.hash_tile(ref, subtree)[:-1])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=40))
def test_entry_bundle_round_trip_and_truncation(entries: list[bytes]) -> None:
    data = tiles.encode_entry_bundle(entries)
    assert tiles.decode_entry_bundle(data) == entries
    if data:
        # every entry ends in a length prefix or data: dropping a byte always breaks it
        with pytest.raises(tiles.TileDataError):
            tiles.decode_entry_bundle(data[:-1])


def test_entry_bundle_refuses_oversized_entries() -> None:
    with pytest.raises(tiles.TileDataError):
        tiles.encode_entry_bundle([b"x" * 65536])


# --- fuzz: nothing a client sends yields a 500 or a write ------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["apiVersion", "kind", "spec", "signature", "data",
                                       "hash", "content", "publicKey", "proposedContent",
                                       "envelope", "verifiers", "x"]), children, max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    log, _, _ = make_log(tmp_path_factory.mktemp("fuzz"))
    with running_server(log, max_body=16 * 1024) as url:
        yield url, log


@settings(max_examples=fuzz_examples(60, SERVER), deadline=None)
@given(body=_json, kind=st.sampled_from(["hashedrekord", "dsse", "intoto", "rekord", 7]),
       version=st.sampled_from(["0.0.1", "0.0.2", None]))
def test_fuzzed_entries_are_400_and_write_nothing(fuzz_server: tuple[str, Any], body: Any,
                                                  kind: Any, version: Any) -> None:
    url, log = fuzz_server
    for candidate in (body, {"apiVersion": version, "kind": kind, "spec": body}):
        resp = post(url, candidate)
        assert resp.status_code in (400, 413), (candidate, resp.status_code, resp.text)
        assert resp.json()["code"] == resp.status_code
    assert log.size == 0


@settings(max_examples=fuzz_examples(60, SERVER), deadline=None)
@given(path=st.text(alphabet="0123456789abcdefx./-p%", max_size=40))
def test_fuzzed_read_paths_never_fail_the_server(fuzz_server: tuple[str, Any],
                                                 path: str) -> None:
    url, _ = fuzz_server
    for prefix in ("/tile/", "/tile/entries/", f"{API}/entries/", f"{API}/proof?firstSize=",
                   f"{API}/entries?logIndex="):
        resp = requests.get(url + prefix + path, timeout=10)
        assert resp.status_code in (200, 400, 404, 405), (prefix + path, resp.text)
