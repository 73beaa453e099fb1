"""``provenance --log URL`` and ``verify --lineage-log URL`` against the real log server.

The chain (tests/helpers/lineage_chain.py) is signed into the embedded local log; that
same database is served by ``mgattest.tlog``'s own Starlette app on 127.0.0.1, so the
search index, the entries and the in-toto Statements kept beside them
(``attestation.data``, as Rekor's attestation storage serves them) are the real ones.
The client rebuilds each dependency's bundle from the verified entry body and the
served statement (``tlog.bundle_from_log_entry``) and verifies it like any bundle.

A lying server is the same app behind a small ASGI wrapper that rewrites the entries it
answers: a statement that is not the signed payload, or statements swapped between two
entries, must make the dependency unverifiable, never attested.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest

from mgattest.attest import default_db_path
from mgattest.attest._locallog import open_local_log
from mgattest.ca._serving import ServerThread
from mgattest.policy import ArtifactDigest, LogIndex
from mgattest.tlog import LogEntryError, bundle_from_log_entry
from mgattest.tlog._server import create_app
from tests.helpers.cli_runner import mg
from tests.helpers.lineage_chain import FULL, Chain, build_chain, run_ok, write_policy

EntryRewrite = Callable[[dict[str, Any]], dict[str, Any]]
ASGI = Callable[..., Awaitable[None]]


@pytest.fixture
def chain(tmp_path: Path) -> Chain:
    made = build_chain(tmp_path / "chain")
    run_ok("trust", "export", "--out", made.root / "root.json")
    return made


def _rewriting(app: ASGI, rewrite: EntryRewrite) -> ASGI:
    """``app`` with every 200 answer of ``GET /api/v1/log/entries/...`` rewritten."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/v1/log/entries/"):
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            if start["status"] == 200:
                body = json.dumps(rewrite(json.loads(body))).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": headers + [(b"content-length",
                                                        str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, capture)

    return wrapped


def _serve(rewrite: EntryRewrite | None = None) -> ServerThread:
    """The embedded local log (where the chain was signed), served by the real app."""
    app = create_app(open_local_log(default_db_path(), create=False))
    return ServerThread(_rewriting(app, rewrite) if rewrite else app)


@pytest.fixture
def server(chain: Chain) -> Iterator[str]:
    with _serve() as running:
        yield running.url


def _statement(entry: dict[str, Any]) -> bytes:
    (value,) = entry.values()
    return base64.b64decode(value["attestation"]["data"])


def _with_statement(entry: dict[str, Any], statement: bytes) -> dict[str, Any]:
    (uuid, value), = entry.items()
    return {uuid: {**value, "attestation": {"data": base64.b64encode(statement).decode()}}}


def _subjects(statement: bytes) -> set[str]:
    return {d for s in json.loads(statement)["subject"] for d in s["digest"].values()}


def _provenance(chain: Chain, url: str, model: str = "ft.bin") -> tuple[int, dict[str, Any]]:
    result = mg("provenance", chain.root / model, "--log", url, *chain.key_args(), "--json")
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, {n["name"]: n for n in json.loads(result.stdout)["nodes"]}


def test_the_chain_is_found_in_the_real_log_and_exactly_the_unattested_input_flagged(
        chain: Chain, server: str) -> None:
    code, nodes = _provenance(chain, server)
    assert {n: v["status"] for n, v in nodes.items()} == {
        str(chain.root / "ft.bin"): "verified", "base-model": "verified", "dataset": "verified",
        "dataset-extra": "unattested"}
    assert code == 0  # complete is not required here; the flagged input is in the graph
    for name, key in (("base-model", "b"), ("dataset", "a")):
        (attestation,) = nodes[name]["attestations"]
        assert attestation["source"].startswith(f"{server} entry ")
        assert f"sha256:{chain.fingerprints[key][:16]}" in json.dumps(attestation)
    assert mg("provenance", chain.root / "ft.bin", "--log", server, *chain.key_args(),
              "--require-complete").exit_code == 1
    ok_code, ok_nodes = _provenance(chain, server, "ft_ok.bin")
    assert ok_code == 0 and {v["status"] for v in ok_nodes.values()} == {"verified"}


def test_a_statement_that_is_not_the_signed_payload_is_unverifiable(chain: Chain) -> None:
    def doctor(entry: dict[str, Any]) -> dict[str, Any]:
        statement = _statement(entry)
        return _with_statement(entry, statement.replace(b'"_type"', b'"_type" ', 1))

    with _serve(doctor) as running:
        _, nodes = _provenance(chain, running.url)
    base = nodes["base-model"]
    assert base["status"] == "unverifiable" and not base["attestations"]
    assert "not the signed payload" in base["rejected"][0]["reason"]
    assert "dataset" not in nodes  # an unverified attestation's dependencies are not read


def test_statements_swapped_between_entries_are_unverifiable(chain: Chain, server: str
                                                           ) -> None:
    base, data = chain.digests["base.bin"], chain.digests["data.jsonl"]
    statements: dict[str, bytes] = {}
    for digest in (base, data):
        (candidate,) = LogIndex(server).find(ArtifactDigest("sha256", digest))
        assert candidate.bundle is not None, candidate.problem
        statements[digest] = base64.b64decode(candidate.bundle["dsseEnvelope"]["payload"])

    def swap(entry: dict[str, Any]) -> dict[str, Any]:
        mine = _subjects(_statement(entry))
        other = statements[data] if base in mine else statements[base]
        return _with_statement(entry, other) if mine & {base, data} else entry

    with _serve(swap) as running:
        _, nodes = _provenance(chain, running.url)
        found = LogIndex(running.url).find(ArtifactDigest("sha256", base))
    assert nodes["base-model"]["status"] == "unverifiable"
    assert "payloadHash" in nodes["base-model"]["rejected"][0]["reason"]
    assert [c.bundle for c in found] == [None]
    assert "dataset" not in nodes


def test_an_entry_served_without_its_statement_is_unverifiable(chain: Chain) -> None:
    def drop(entry: dict[str, Any]) -> dict[str, Any]:
        (uuid, value), = entry.items()
        return {uuid: {k: v for k, v in value.items() if k != "attestation"}}

    with _serve(drop) as running:
        _, nodes = _provenance(chain, running.url)
    assert nodes["base-model"]["status"] == "unverifiable"
    assert "serves no in-toto statement" in nodes["base-model"]["rejected"][0]["reason"]


def test_the_rebuilt_bundle_is_bound_to_the_entry_it_came_from(chain: Chain, server: str
                                                              ) -> None:
    """The envelope's signature and verifier come from the verified body; a matching
    statement is the only thing the log adds, and other entry kinds are refused."""
    (candidate,) = LogIndex(server).find(ArtifactDigest("sha256", chain.digests["base.bin"]))
    bundle = candidate.bundle
    assert bundle is not None
    signed = json.loads((chain.attestations / "base.bin.sigstore.json").read_text())
    assert bundle["dsseEnvelope"]["payload"] == signed["dsseEnvelope"]["payload"]
    assert bundle["dsseEnvelope"]["signatures"][0]["sig"] == \
        signed["dsseEnvelope"]["signatures"][0]["sig"]
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    body = json.loads(base64.b64decode(entry["canonicalizedBody"]))
    assert body["spec"]["payloadHash"]["value"] == hashlib.sha256(
        base64.b64decode(bundle["dsseEnvelope"]["payload"])).hexdigest()
    body["kind"] = "hashedrekord"
    raw = {"0" * 64: {"body": base64.b64encode(json.dumps(body).encode()).decode(),
                      "integratedTime": 1, "logID": "0" * 64, "logIndex": 0,
                      "verification": {"signedEntryTimestamp": "", "inclusionProof": None}}}
    with pytest.raises(LogEntryError, match="not a dsse 0.0.1 entry"):
        bundle_from_log_entry(raw, where="test")


def test_a_search_answer_that_is_not_uuids_is_refused(chain: Chain) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def retrieve(_: Any) -> JSONResponse:
        return JSONResponse(["../../etc/passwd"])

    app = Starlette(routes=[Route("/api/v1/index/retrieve", retrieve, methods=["POST"])])
    with ServerThread(app) as running:
        result = mg("provenance", chain.root / "ft.bin", "--log", running.url,
                    *chain.key_args())
    assert result.exit_code == 2
    assert "not a list of entry UUIDs" in result.output and "Traceback" not in result.output


def test_the_policy_lineage_clause_reads_the_log(chain: Chain, server: str) -> None:
    policy = write_policy(chain, FULL)
    ok = mg("verify", chain.root / "ft_ok.bin", "--policy", policy, "--lineage-log", server,
            "--json")
    assert ok.exit_code == 0, ok.output
    denied = mg("verify", chain.root / "ft.bin", "--policy", policy, "--lineage-log", server,
                "--json")
    assert denied.exit_code == 1
    assert "release.lineage: dataset 'dataset-extra' is unattested" in denied.stdout


def test_the_policy_lineage_clause_denies_a_lying_log(chain: Chain, server: str) -> None:
    base = chain.digests["base.bin"]
    (candidate,) = LogIndex(server).find(ArtifactDigest("sha256", chain.digests["data.jsonl"]))
    assert candidate.bundle is not None
    dataset_statement = base64.b64decode(candidate.bundle["dsseEnvelope"]["payload"])

    def swap(entry: dict[str, Any]) -> dict[str, Any]:
        return (_with_statement(entry, dataset_statement)
                if base in _subjects(_statement(entry)) else entry)

    policy = write_policy(chain, FULL)
    with _serve(swap) as running:
        denied = mg("verify", chain.root / "ft_ok.bin", "--policy", policy,
                    "--lineage-log", running.url, "--json")
    assert denied.exit_code == 1
    assert "release.lineage: base-model 'base-model'" in denied.stdout
