"""``provenance --log URL``: attestations found through a Rekor v1 search index.

The log here is a small Starlette app on 127.0.0.1 written against Rekor's documented
API (``POST /api/v1/index/retrieve`` with a ``SearchIndex`` ``{"hash": "sha256:HEX"}``
answering a list of entry UUIDs; ``GET /api/v1/log/entries/{uuid}`` answering a
``LogEntry`` with ``attestation.data``). It serves the real entries of the chain's
bundles (embedded local log), so every inclusion proof and SET is genuine; the client
verifies each one before use. When ``mgattest log serve`` gains the search index
(issue 15, search), the same test can run against it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mgattest.ca._serving import ServerThread
from mgattest.policy import ArtifactDigest, LogIndex
from mgattest.policy._lineage_sources import claimed_subject_digests
from tests.helpers.cli_runner import mg
from tests.helpers.lineage_chain import Chain, build_chain


def _hex(b64: str) -> str:
    return base64.b64decode(b64).hex()


def rekor_log_entry(bundle: dict[str, Any], envelope: dict[str, Any] | None
                    ) -> tuple[str, dict[str, Any]]:
    """(uuid, Rekor v1 LogEntry) of a bundle's first tlog entry, as Rekor serves it."""
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    body = base64.b64decode(entry["canonicalizedBody"])
    uuid = hashlib.sha256(b"\x00" + body).hexdigest()
    proof = entry["inclusionProof"]
    value: dict[str, Any] = {
        "body": entry["canonicalizedBody"], "integratedTime": int(entry["integratedTime"]),
        "logID": _hex(entry["logId"]["keyId"]), "logIndex": int(entry["logIndex"]),
        "verification": {
            "signedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
            "inclusionProof": {"checkpoint": proof["checkpoint"]["envelope"],
                               "hashes": [_hex(h) for h in proof["hashes"]],
                               "logIndex": int(proof["logIndex"]),
                               "rootHash": _hex(proof["rootHash"]),
                               "treeSize": int(proof["treeSize"])}}}
    if envelope is not None:
        value["attestation"] = {"data": base64.b64encode(json.dumps(envelope).encode()).decode()}
    return uuid, {uuid: value}


@dataclass
class FakeRekor:
    """The search index and entries of a set of bundles; knobs to misbehave."""

    index: dict[str, list[str]] = field(default_factory=dict)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    searches: list[Any] = field(default_factory=list)
    bad_uuid: bool = False

    def add(self, bundle: dict[str, Any], envelope: dict[str, Any] | None) -> str:
        uuid, entry = rekor_log_entry(bundle, envelope)
        self.entries[uuid] = entry
        for digest in claimed_subject_digests(bundle):
            self.index.setdefault(digest, []).append(uuid)
        return uuid

    def app(self) -> Starlette:
        async def retrieve(request: Request) -> JSONResponse:
            query = await request.json()
            self.searches.append(query)
            if self.bad_uuid:
                return JSONResponse(["../../etc/passwd"])
            return JSONResponse(self.index.get(query.get("hash", ""), []))

        async def entry(request: Request) -> JSONResponse:
            found = self.entries.get(request.path_params["uuid"])
            return JSONResponse(found) if found else JSONResponse({"code": 404}, 404)

        return Starlette(routes=[
            Route("/api/v1/index/retrieve", retrieve, methods=["POST"]),
            Route("/api/v1/log/entries/{uuid}", entry, methods=["GET"])])


@pytest.fixture
def chain(tmp_path: Path) -> Chain:
    return build_chain(tmp_path / "chain")


def _bundle(chain: Chain, name: str) -> dict[str, Any]:
    return json.loads((chain.attestations / f"{name}.sigstore.json").read_text())


def _serve(log: FakeRekor):
    return ServerThread(log.app())


def _provenance(chain: Chain, url: str) -> tuple[int, dict[str, dict]]:
    result = mg("provenance", chain.root / "ft.bin", "--log", url, *chain.key_args(), "--json")
    graph = json.loads(result.stdout) if result.exit_code in (0, 1) else {"nodes": []}
    return result.exit_code, {n["name"]: n for n in graph["nodes"]}


def test_dependencies_found_in_the_log_are_verified_and_followed(chain: Chain) -> None:
    log = FakeRekor()
    for name in ("base.bin", "data.jsonl"):
        bundle = _bundle(chain, name)
        log.add(bundle, bundle["dsseEnvelope"])
    with _serve(log) as server:
        code, nodes = _provenance(chain, server.url)
    assert code == 0
    assert {n: v["status"] for n, v in nodes.items() if v["depth"]} == {
        "base-model": "verified", "dataset": "verified", "dataset-extra": "unattested"}
    assert nodes["base-model"]["attestations"][0]["source"].startswith(server.url)
    assert {"hash": f"sha256:{chain.digests['extra.jsonl']}"} in log.searches


def test_an_entry_without_its_envelope_is_unverifiable(chain: Chain) -> None:
    log = FakeRekor()
    log.add(_bundle(chain, "base.bin"), None)
    with _serve(log) as server:
        _, nodes = _provenance(chain, server.url)
    assert nodes["base-model"]["status"] == "unverifiable"
    assert "serves no DSSE envelope" in nodes["base-model"]["rejected"][0]["reason"]


def test_an_envelope_swapped_under_an_entry_does_not_verify(chain: Chain) -> None:
    log = FakeRekor()
    base, data = _bundle(chain, "base.bin"), _bundle(chain, "data.jsonl")
    uuid = log.add(base, data["dsseEnvelope"])  # base's entry, the dataset's statement
    with _serve(log) as server:
        _, nodes = _provenance(chain, server.url)
        found = LogIndex(server.url).find(
            ArtifactDigest("sha256", chain.digests["base.bin"]))
    assert [c.label for c in found] == [f"{server.url} entry {uuid}"]
    assert nodes["base-model"]["status"] == "unverifiable"
    assert "dataset" not in nodes


def test_a_search_answer_that_is_not_uuids_is_refused(chain: Chain) -> None:
    log = FakeRekor(bad_uuid=True)
    with _serve(log) as server:
        result = mg("provenance", chain.root / "ft.bin", "--log", server.url,
                    *chain.key_args())
    assert result.exit_code == 2
    assert "not an entry UUID" in result.output and "Traceback" not in result.output
