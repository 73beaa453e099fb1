"""RekorClient against real HTTP servers on 127.0.0.1: our log, a flaky front, Rekor v2."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.helpers.paths import CONFORMANCE_DIR

from tests.helpers.servers import free_port
from mgattest.tlog import merkle
from mgattest.tlog._client import (ConsistencyProof, LogRequestError, LogResponseError,
                                  LogUnavailableError, RekorClient, rekor_v1_to_bundle_entry)
from tests.helpers.log_server import dsse_entry, hashedrekord, make_log, new_key, running_server

pytestmark = pytest.mark.network


@pytest.fixture(params=["ecdsa-p256", "ed25519"])
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Any]]:
    log, _, _ = make_log(tmp_path, key_type=request.param)
    with running_server(log) as url:
        yield url, log


@contextlib.contextmanager
def http_server(handler: Callable[[http.server.BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """A real stdlib HTTP server in a thread whose every request goes to ``handler``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handler(self)

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def reply(req: http.server.BaseHTTPRequestHandler, status: int, body: bytes,
          headers: dict[str, str] | None = None) -> None:
    req.send_response(status)
    for k, v in (headers or {}).items():
        req.send_header(k, v)
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)


def trusted(log: Any) -> list[Any]:
    from mgattest.tlog._trust import TrustedLog

    return [TrustedLog.for_verifier(log.signer.verifier, origin=log.origin)]


def test_create_get_and_read_the_log(served: tuple[str, Any]) -> None:
    url, log = served
    key = new_key()
    with RekorClient(url, trusted_logs=trusted(log), origin=log.origin) as client:
        created = client.create_entry(hashedrekord(key, b"weights"))
        assert created["logIndex"] == "0"
        assert created["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.1"}
        assert base64.b64decode(created["logId"]["keyId"]) == bytes(log.log_id)
        assert created["inclusionProof"]["checkpoint"]["envelope"].startswith(log.origin)
        body = base64.b64decode(created["canonicalizedBody"])
        # identical to what the log would put in a bundle itself
        entry = log.entry_by_index(0)
        assert created == entry.to_bundle_entry(log.inclusion_proof(0, 1))

        dsse = client.create_entry(dsse_entry(key, b'{"a": 1}'))
        assert dsse["kindVersion"]["kind"] == "dsse" and dsse["logIndex"] == "1"

        uuid = merkle.leaf_hash(body).hex()
        assert client.get_entry(uuid)["canonicalizedBody"] == created["canonicalizedBody"]
        assert client.get_entry(0)["canonicalizedBody"] == created["canonicalizedBody"]
        assert client.get_entry(1)["inclusionProof"]["treeSize"] == "2"

        info = client.log_info()
        assert info["treeSize"] == 2
        assert client.checkpoint().startswith(f"{log.origin}\n2\n")
        proof = client.consistency_proof(1, 2)
        assert isinstance(proof, ConsistencyProof)
        merkle.verify_consistency(1, 2, proof.hashes, log.root_hash(1), log.root_hash(2))
        assert client.public_key().encode() == log.signer.public_pem()
        assert client.tile("tile/0/000.p/2") == log.leaf_hash(0) + log.leaf_hash(1)


def test_duplicate_returns_the_existing_entry(served: tuple[str, Any]) -> None:
    url, log = served
    proposed = hashedrekord(new_key(), b"same")
    client = RekorClient(url)
    first = client.create_entry(proposed)
    client.create_entry(hashedrekord(new_key(), b"other"))
    again = client.create_entry(proposed)
    assert again["logIndex"] == first["logIndex"] == "0"
    assert again["canonicalizedBody"] == first["canonicalizedBody"]
    assert log.size == 2


def test_rejections_are_typed_and_not_retried(served: tuple[str, Any]) -> None:
    url, log = served
    client = RekorClient(url, retries=3, backoff=5.0)  # a retry would take >5 s
    bad = hashedrekord(new_key(), b"x")
    bad["kind"] = "rekord"
    start = time.monotonic()
    with pytest.raises(LogRequestError) as info:
        client.create_entry(bad)
    assert info.value.status == 400 and "unsupported entry kind" in info.value.message
    with pytest.raises(LogRequestError) as info:
        client.get_entry("0" * 64)
    assert info.value.status == 404
    with pytest.raises(LogRequestError):
        client.consistency_proof(1, 5)
    assert time.monotonic() - start < 4
    for bad_key in (-1, "xyz", True):
        with pytest.raises(Exception) as exc_info:
            client.get_entry(bad_key)  # type: ignore[arg-type]
        assert exc_info.type.__name__ == "InputError"


def test_token_is_sent(tmp_path: Path) -> None:
    log, _, _ = make_log(tmp_path)
    token = "a-long-enough-token-123"
    with running_server(log, token=token) as url:
        with pytest.raises(LogRequestError) as info:
            RekorClient(url).create_entry(hashedrekord(new_key(), b"x"))
        assert info.value.status == 401
        assert RekorClient(url, token=token).create_entry(
            hashedrekord(new_key(), b"x"))["logIndex"] == "0"


def test_connection_errors_retry_with_backoff_then_fail() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = RekorClient(url, retries=2, backoff=0.1, timeout=2)
    start = time.monotonic()
    with pytest.raises(LogUnavailableError, match="after 3 attempts"):
        client.log_info()
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 5  # 0.1 + 0.2 s of backoff


def test_5xx_is_retried_4xx_is_not(tmp_path: Path) -> None:
    log, _, _ = make_log(tmp_path)
    with running_server(log) as upstream:
        import requests

        calls: list[str] = []

        def flaky(req: http.server.BaseHTTPRequestHandler) -> None:
            """503 for the first two requests, then forward to the real log."""
            calls.append(req.path)
            if len(calls) <= 2:
                reply(req, 503, b'{"code": 503, "message": "busy"}')
                return
            length = int(req.headers.get("Content-Length") or 0)
            body = req.rfile.read(length) if length else None
            resp = requests.request(req.command, upstream + req.path, data=body, timeout=10,
                                    headers={"Content-Type": "application/json"})
            reply(req, resp.status_code, resp.content,
                  {k: v for k, v in resp.headers.items() if k in ("Location", "Content-Type")})

        with http_server(flaky) as url:
            client = RekorClient(url, retries=3, backoff=0.05)
            entry = client.create_entry(hashedrekord(new_key(), b"retried"))
            assert entry["logIndex"] == "0" and len(calls) == 3
            assert log.size == 1
            calls.clear()
            client = RekorClient(url, retries=1, backoff=0.05)
            with pytest.raises(LogUnavailableError, match="HTTP 503: busy"):
                client.log_info()
            assert len(calls) == 2
            calls.extend(["", ""])  # the front now forwards: a 404 must not be retried
            before = len(calls)
            with pytest.raises(LogRequestError):
                client.get_entry("1" * 64)
            assert len(calls) == before + 1


def test_malformed_responses_fail_closed() -> None:
    answers = iter([
        (201, b"not json"),
        (201, b'{"a": {"body": "!!"}}'),
        (201, b'[1, 2]'),
        (200, b'{"treeSize": "3", "rootHash": "00", "signedTreeHead": ""}'),
        (200, b'{"rootHash": "' + b"0" * 64 + b'", "hashes": ["zz"]}'),
        (200, b"no pem here"),
        (409, b'{"code": 409}'),  # duplicate without a Location header
    ])

    def canned(req: http.server.BaseHTTPRequestHandler) -> None:
        status, body = next(answers)
        reply(req, status, body)

    with http_server(canned) as url:
        client = RekorClient(url, retries=0)
        proposed = hashedrekord(new_key(), b"x")
        for call in (lambda: client.create_entry(proposed),
                     lambda: client.create_entry(proposed),
                     lambda: client.create_entry(proposed),
                     client.log_info,
                     lambda: client.consistency_proof(1, 2),
                     client.public_key,
                     lambda: client.create_entry(proposed)):
            with pytest.raises(LogResponseError):
                call()


def test_a_forged_entry_is_refused_when_trusted_logs_are_given(tmp_path: Path) -> None:
    log, _, _ = make_log(tmp_path / "a")
    other, _, _ = make_log(tmp_path / "b")
    with running_server(other) as url:
        client = RekorClient(url, trusted_logs=trusted(log))  # trusts a different log
        with pytest.raises(Exception) as info:
            client.create_entry(hashedrekord(new_key(), b"x"))
        assert getattr(info.value, "exit_code", None) == 1
        assert other.size == 1


def test_v1_conversion_matches_sigstore_python(served: tuple[str, Any]) -> None:
    """Our hex→base64 conversion agrees with sigstore-python's own parser."""
    import requests
    from sigstore.models import TransparencyLogEntry

    url, _ = served
    resp = requests.post(url + "/api/v1/log/entries", json=hashedrekord(new_key(), b"y"),
                         timeout=10)
    ours = rekor_v1_to_bundle_entry(resp.json())
    theirs = json.loads(TransparencyLogEntry._from_v1_response(resp.json())._inner.to_json())
    assert ours == theirs


def test_bad_construction_is_an_input_error() -> None:
    from mgattest.errors import InputError

    for kwargs in ({"url": "ftp://x"}, {"url": "http://x", "api_version": 3},
                   {"url": "http://x", "retries": -1}, {"url": "http://x", "timeout": 0}):
        with pytest.raises(InputError):
            RekorClient(**kwargs)


# --- Rekor v2 --------------------------------------------------------------------------

V2_CASE = "rekor2-happy-path"


def _v2_vector() -> tuple[dict, dict]:
    assert CONFORMANCE_DIR is not None
    base = CONFORMANCE_DIR / "data/sigstore+sigstore-conformance/test/assets/bundle-verify"
    bundle = json.loads((base / V2_CASE / "bundle.sigstore.json").read_text())
    root = json.loads((base / V2_CASE / "trusted_root.json").read_text())
    return bundle, root


def test_rekor_v2_create_entry() -> None:
    """POST /api/v2/log/entries to a real HTTP server that answers like rekor-tiles.

    The server holds one real staging Rekor v2 entry and returns it only for the request
    whose digest, signature and certificate are that entry's (as the log would produce
    it); the client verifies the answer against the staging trusted root.
    """
    from mgattest.tlog._trust import trusted_logs_from_root

    bundle, root = _v2_vector()
    tle = bundle["verificationMaterial"]["tlogEntries"][0]
    spec = json.loads(base64.b64decode(tle["canonicalizedBody"]))["spec"]["hashedRekordV002"]
    request = {"hashedRekordRequestV002": {
        "digest": bundle["messageSignature"]["messageDigest"]["digest"],
        "signature": {"content": bundle["messageSignature"]["signature"],
                      "verifier": {"x509Certificate": {
                          "rawBytes": bundle["verificationMaterial"]["certificate"]["rawBytes"]},
                          "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}}
    seen: list[str] = []

    def rekor_v2(req: http.server.BaseHTTPRequestHandler) -> None:
        seen.append(f"{req.command} {req.path}")
        got = json.loads(req.rfile.read(int(req.headers["Content-Length"])))
        inner = got.get("hashedRekordRequestV002", {})
        if (req.path == "/api/v2/log/entries" and inner.get("digest") == spec["data"]["digest"]
                and inner["signature"]["content"] == spec["signature"]["content"]
                and inner["signature"]["verifier"]["x509Certificate"]
                == spec["signature"]["verifier"]["x509Certificate"]):
            reply(req, 201, json.dumps(tle).encode(), {"Content-Type": "application/json"})
        else:
            reply(req, 400, b'{"code": 3, "message": "invalid request"}')

    with http_server(rekor_v2) as url:
        client = RekorClient(url, api_version=2, trusted_logs=trusted_logs_from_root(root))
        entry = client.create_entry(request)
        assert entry == tle
        assert seen == ["POST /api/v2/log/entries"]
        wrong = json.loads(json.dumps(request))
        wrong["hashedRekordRequestV002"]["digest"] = base64.b64encode(b"\x00" * 32).decode()
        with pytest.raises(LogRequestError) as info:
            client.create_entry(wrong)
        assert info.value.status == 400
        with pytest.raises(Exception) as bad:
            client.create_entry({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {}})
        assert bad.type.__name__ == "InputError"


def test_v1_reads_are_refused_for_a_v2_client() -> None:
    from mgattest.errors import InputError

    client = RekorClient("http://127.0.0.1:1", api_version=2)
    for call in (lambda: client.get_entry(0), client.log_info, client.public_key,
                 lambda: client.consistency_proof(1, 2)):
        with pytest.raises(InputError, match="Rekor v1 API"):
            call()


def test_redirects_are_not_followed_and_huge_answers_are_cut(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    import mgattest.tlog._client as client_mod

    hits: list[str] = []

    def handler(req: http.server.BaseHTTPRequestHandler) -> None:
        hits.append(req.path)
        if req.path.startswith("/api/v1/log/entries"):
            reply(req, 307, b"", {"Location": "http://127.0.0.1:1/elsewhere"})
        else:
            reply(req, 200, b"x" * 5000)

    monkeypatch.setattr(client_mod, "MAX_RESPONSE_BYTES", 4096)
    with http_server(handler) as url:
        client = RekorClient(url, retries=0, token="t" * 20)
        with pytest.raises(LogRequestError) as info:
            client.create_entry(hashedrekord(new_key(), b"x"))
        assert info.value.status == 307
        with pytest.raises(LogResponseError, match="larger than 4096"):
            client.checkpoint()
    assert hits == ["/api/v1/log/entries", "/checkpoint"]
