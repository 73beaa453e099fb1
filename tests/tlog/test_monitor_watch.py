"""``log monitor --identity/--key``: scan the entries added since the last verified
checkpoint through the tiles and report every entry a watched signer signed."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mgattest.attest import EntryWatcher, WatchList
from mgattest.attest._log_watch import entry_facts
from mgattest.ca._authority import CertificateAuthority, init as ca_init
from mgattest.ca._identity import CertIdentity
from mgattest.tlog import LogMonitor, RekorClient
from mgattest.tlog._entries import CanonicalEntry, canonicalize
from mgattest.tlog._log import TransparencyLog
from mgattest.tlog._tiles import (
    TILE_WIDTH,
    TileDataError,
    TileRef,
    available_width,
    encode_entry_bundle,
    hash_tile,
    tiles_for_size,
)
from tests.helpers.cli_runner import mg
from tests.helpers.log_server import dsse_entry, hashedrekord, make_log, new_key, running_server

pytestmark = pytest.mark.network
IDENTITY, ISSUER = "release@example.com", "https://issuer.example.com"
UNRELATED = 50_000


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _cert_pem(tmp: Path, key: ec.EllipticCurvePrivateKey, identity: str = IDENTITY,
              issuer: str = ISSUER) -> bytes:
    """A real certificate from our private CA for ``key``."""
    if not (tmp / "ca").exists():
        ca_init(tmp / "ca")
    cert = CertificateAuthority.load(tmp / "ca").issue(
        key.public_key(), CertIdentity("email", identity, issuer))
    return cert.public_bytes(serialization.Encoding.PEM)


def _signed_with_cert(cert_pem: bytes, key: ec.EllipticCurvePrivateKey,
                      artifact: bytes) -> dict[str, Any]:
    entry = hashedrekord(key, artifact)
    entry["spec"]["signature"]["publicKey"]["content"] = base64.b64encode(cert_pem).decode()
    return entry


def _unrelated(count: int, start: int = 0) -> Iterator[list[CanonicalEntry]]:
    """Bodies of a real hashedrekord entry with other digests, in batches of 10,000 (the
    log does not re-check signatures on canonical appends, and the scan must read them)."""
    template = canonicalize(hashedrekord(new_key(), b"template"))
    marker = hashlib.sha256(b"template").hexdigest().encode()
    batch: list[CanonicalEntry] = []
    for i in range(start, start + count):
        digest = hashlib.sha256(b"unrelated %d" % i).hexdigest().encode()
        batch.append(CanonicalEntry("hashedrekord", "0.0.1",
                                    template.body.replace(marker, digest)))
        if len(batch) == 10_000:
            yield batch
            batch = []
    if batch:
        yield batch


def _fill(log: TransparencyLog, count: int) -> None:
    for batch in _unrelated(count, log.size):
        log.append_many_canonical(batch)


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A log: 3 entries (the monitor's first run), then 50,000 unrelated entries, one by
    the watched identity (certificate from our CA) and one by the watched key."""
    tmp = tmp_path_factory.mktemp("watch")
    log, _, _ = make_log(tmp)
    pub = tmp / "log.pub"
    pub.write_bytes(log.signer.public_pem())
    _fill(log, 3)
    first_checkpoint = log.signed_checkpoint()
    _fill(log, UNRELATED // 2)
    release_key, watched_key = new_key(), new_key()
    cert_pem = _cert_pem(tmp, release_key)
    by_identity = log.append(_signed_with_cert(cert_pem, release_key, b"model v1"))
    # the same identity under another issuer, and another identity: not hits
    other = new_key()
    log.append(_signed_with_cert(_cert_pem(tmp, other, issuer="https://evil.example"),
                                 other, b"not it"))
    log.append(_signed_with_cert(_cert_pem(tmp, other, identity="someone@example.com"),
                                 other, b"not it either"))
    _fill(log, UNRELATED // 2)
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": [
        {"name": "m", "digest": {"sha256": hashlib.sha256(b"model v2").hexdigest()}}],
        "predicateType": "https://slsa.dev/provenance/v1", "predicate": {}}).encode()
    by_key = log.append(dsse_entry(watched_key, statement))
    (tmp / "watched.pub").write_bytes(_pem(watched_key))
    return {"tmp": tmp, "log": log, "pub": pub, "first": first_checkpoint,
            "identity_index": by_identity.log_index, "key_index": by_key.log_index,
            "identity_digest": hashlib.sha256(b"model v1").hexdigest(),
            "key_digest": hashlib.sha256(statement).hexdigest()}


def _state(big: dict[str, Any], name: str) -> Path:
    state = big["tmp"] / f"{name}.json"
    state.write_text(json.dumps({"checkpoint": big["first"]}))
    return state


@pytest.mark.slow
def test_a_watched_identity_is_found_among_50000_entries(big_log: dict[str, Any]) -> None:
    log, tmp = big_log["log"], big_log["tmp"]
    state = _state(big_log, "identity")
    args = ["log", "monitor", "--log-key", big_log["pub"], "--state", state,
            "--identity", IDENTITY, "--issuer", ISSUER]
    with running_server(log) as url:
        res = mg(*args, "--url", url, "--json")
        assert res.exit_code == 1, res.output
        report = json.loads(res.stdout)
        assert report["scanned"] == {"from": 3, "to": log.size}
        assert [h["logIndex"] for h in report["hits"]] == [big_log["identity_index"]]
        hit = report["hits"][0]
        assert hit["digests"] == [f"sha256:{big_log['identity_digest']}"]
        assert hit["signer"] == f"identity {IDENTITY} (issuer {ISSUER})"
        assert hit["expected"] is False and report["unreadable"] == []
        # not committed: the state still holds the first checkpoint
        assert json.loads(state.read_text()).get("size") is None
        expected = tmp / "expected.txt"
        expected.write_text(f"# released models\n{big_log['identity_digest']}\n")
        res = mg(*args, "--url", url, "--expected", expected)
        assert res.exit_code == 0, res.output
        assert f"expected: log index {big_log['identity_index']}" in res.stdout
        assert json.loads(state.read_text())["size"] == log.size
        # the next run has nothing new to scan
        res = mg(*args, "--url", url)
        assert res.exit_code == 0 and "scanned 0 entries" in res.stdout


@pytest.mark.slow
def test_a_watched_key_is_found_with_its_statement_digest(big_log: dict[str, Any]) -> None:
    log, tmp = big_log["log"], big_log["tmp"]
    state = _state(big_log, "key")
    args = ["log", "monitor", "--log-key", big_log["pub"], "--state", state,
            "--key", tmp / "watched.pub"]
    with running_server(log) as url:
        res = mg(*args, "--url", url)
        assert res.exit_code == 1, res.output
        lines = [line for line in res.stdout.splitlines() if "log index" in line]
        assert lines == [f"UNEXPECTED: log index {big_log['key_index']}: dsse signed by key "
                         f"sha256:{hashlib.sha256(_spki(tmp / 'watched.pub')).hexdigest()}: "
                         f"sha256:{big_log['key_digest']} (payload hash (dsse entries do "
                         "not keep the statement))"]
        expected = tmp / "expected.json"
        expected.write_text(json.dumps([f"sha256:{big_log['key_digest']}"]))
        assert mg(*args, "--url", url, "--expected", expected).exit_code == 0


def _spki(path: Path) -> bytes:
    key = serialization.load_pem_public_key(path.read_bytes())
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


class _Tampering:
    """A RekorClient whose tiles are altered on the way (a hostile mirror or proxy)."""

    def __init__(self, client: RekorClient, path_part: str, index: int) -> None:
        self.client, self.path_part, self.index = client, path_part, index
        self.url = client.url

    def checkpoint(self) -> str:
        return self.client.checkpoint()

    def tile(self, path: str) -> bytes:
        data = bytearray(self.client.tile(path))
        if self.path_part in path:
            data[self.index] ^= 0x01
        return bytes(data)


def _first_poll_then_grow(log: TransparencyLog, url: str, state: Path, before: int,
                          after: int) -> tuple[LogMonitor, ec.EllipticCurvePrivateKey]:
    """A monitor's first poll at ``before`` entries, then one entry by a fresh key (index
    ``before``) and unrelated entries up to ``after``: (the monitor, the key)."""
    _fill(log, before)
    key = new_key()
    monitor = LogMonitor(RekorClient(url), log.signer.verifier, state)
    monitor.poll(lambda i, b: None)
    log.append(hashedrekord(key, b"watched"))
    _fill(log, after - log.size)
    return monitor, key


@pytest.mark.parametrize("path_part,index", [("tile/entries/", 60), ("tile/1/", 5)])
def test_a_tampered_tile_is_refused_not_skipped(tmp_path: Path, path_part: str,
                                                index: int) -> None:
    """Entries 700.. come from entry bundles, the tree left of them from the level-1 hash
    tile; one flipped bit in either is refused and the state stays put."""
    log, _, _ = make_log(tmp_path)
    state = tmp_path / "state.json"
    with running_server(log) as url:
        monitor, key = _first_poll_then_grow(log, url, state, 700, 3_000)
        saved = state.read_text()
        watcher = EntryWatcher(WatchList.build([], [_pem(key)]))
        hostile = LogMonitor(_Tampering(RekorClient(url), path_part, index),  # type: ignore[arg-type]  # duck-typed source
                             log.signer.verifier, state, state=monitor.state)
        with pytest.raises(TileDataError, match="do not hash to the signed checkpoint"):
            hostile.poll(watcher)
        assert state.read_text() == saved
        honest = EntryWatcher(WatchList.build([], [_pem(key)]))
        monitor.poll(honest)
        assert [h.index for h in honest.hits] == [700]


def test_entry_kinds_show_what_they_can(tmp_path: Path) -> None:
    """hashedrekord and dsse in v0.0.1 (our log) and v0.0.2 (Rekor v2), intoto 0.0.2 with
    and without its payload: the signer and the digest each kind makes visible."""
    key = new_key()
    cert_pem = _cert_pem(tmp_path, key)
    cert_der = _der(cert_pem)
    digest = hashlib.sha256(b"model").digest()
    sig = base64.b64encode(key.sign(b"model", ec.ECDSA(hashes.SHA256()))).decode()
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": [
        {"name": "a", "digest": {"sha256": "aa" * 32}},
        {"name": "b", "digest": {"sha256": "bb" * 32}}]}).encode()
    v2_verifier = {"x509Certificate": {"rawBytes": base64.b64encode(cert_der).decode()},
                   "keyDetails": "PKIX_ECDSA_P256_SHA_256"}
    bodies = {
        "hashedrekord 0.0.2": {"apiVersion": "0.0.2", "kind": "hashedrekord", "spec": {
            "hashedRekordV002": {"data": {"algorithm": "SHA2_256",
                                          "digest": base64.b64encode(digest).decode()},
                                 "signature": {"content": sig, "verifier": v2_verifier}}}},
        "dsse 0.0.2": {"apiVersion": "0.0.2", "kind": "dsse", "spec": {"dsseV002": {
            "payloadHash": {"algorithm": "SHA2_256",
                            "digest": base64.b64encode(digest).decode()},
            "signatures": [{"content": sig, "verifier": v2_verifier}]}}},
        "intoto 0.0.2": {"apiVersion": "0.0.2", "kind": "intoto", "spec": {"content": {
            "envelope": {"payloadType": "application/vnd.in-toto+json",
                         "payload": base64.b64encode(statement).decode(),
                         "signatures": [{"sig": sig, "publicKey": base64.b64encode(
                             cert_pem).decode()}]},
            "payloadHash": {"algorithm": "sha256", "value": digest.hex()}}}},
    }
    stripped = json.loads(json.dumps(bodies["intoto 0.0.2"]))
    del stripped["spec"]["content"]["envelope"]["payload"]
    bodies["intoto 0.0.2 without payload"] = stripped
    bodies["hashedrekord 0.0.1"] = json.loads(canonicalize(
        _signed_with_cert(cert_pem, key, b"model")).body)
    watcher = EntryWatcher(WatchList.build([(IDENTITY, ISSUER)], []))
    for index, body in enumerate(bodies.values()):
        watcher(index, json.dumps(body).encode())
    seen = {h.index: (h.kind, h.digests, h.visible) for h in watcher.hits}
    model = f"sha256:{digest.hex()}"
    assert seen == {
        0: ("hashedrekord", (model,), "artifact digest"),
        1: ("dsse", (model,), "payload hash (dsse entries do not keep the statement)"),
        2: ("intoto", ("sha256:" + "aa" * 32, "sha256:" + "bb" * 32),
            "statement subject digests"),
        3: ("intoto", (model,), "payload hash (this intoto entry does not keep the payload)"),
        4: ("hashedrekord", (model,), "artifact digest"),
    }
    assert watcher.unreadable == []
    # malformed bodies of known kinds are reported, unknown kinds counted
    watcher(10, b'{"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {}}')
    watcher(11, b"not json")
    watcher(12, b'{"apiVersion": "0.0.1", "kind": "rpm", "spec": {}}')
    assert [i for i, _ in watcher.unreadable] == [10, 11]
    assert watcher.skipped_kinds == {"rpm 0.0.1": 1}
    kind, signers, _, _ = entry_facts(bodies["dsse 0.0.2"])
    assert kind == "dsse" and [(base64.b64decode(b), c) for b, c in signers] == \
        [(cert_der, True)]


def _der(cert_pem: bytes) -> bytes:
    from cryptography import x509

    return x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)


def _write_tiles(log: TransparencyLog, root: Path) -> None:
    """The log as static tlog-tiles files, the way a Rekor v2 log publishes itself."""
    size = log.size
    (root / "checkpoint").write_text(log.signed_checkpoint())
    for ref in tiles_for_size(size):
        path = root / ref.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(hash_tile(ref, lambda s, e: bytes(log.subtree_hash(s, e))))
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        ref = TileRef(None, n, available_width(TileRef(None, n, TILE_WIDTH), size))
        path = root / ref.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_entry_bundle(
            bytes(log.entry_by_index(n * TILE_WIDTH + k).body) for k in range(ref.width)))


def test_a_rekor_v2_shaped_static_tile_log_is_watched(tmp_path: Path) -> None:
    """Only /checkpoint and /tile/... served as static files with Rekor v2 (0.0.2) bodies."""
    log, _, _ = make_log(tmp_path)
    key = new_key()
    cert_pem = _cert_pem(tmp_path, key)
    v2_verifier = {"x509Certificate": {"rawBytes": base64.b64encode(_der(cert_pem)).decode()},
                   "keyDetails": "PKIX_ECDSA_P256_SHA_256"}
    digest = hashlib.sha256(b"v2 model").digest()
    v2_body = json.dumps({"apiVersion": "0.0.2", "kind": "hashedrekord", "spec": {
        "hashedRekordV002": {"data": {"algorithm": "SHA2_256",
                                      "digest": base64.b64encode(digest).decode()},
                             "signature": {"content": "MEUCIQ==", "verifier": v2_verifier}}}},
                         separators=(",", ":")).encode()
    _fill(log, 10)
    site = tmp_path / "site"
    site.mkdir()
    _write_tiles(log, site)
    pub = tmp_path / "log.pub"
    pub.write_bytes(log.signer.public_pem())
    state = tmp_path / "state.json"
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    args = ["log", "monitor", "--url", url, "--log-key", pub, "--state", state,
            "--identity", IDENTITY, "--issuer", ISSUER]
    try:
        assert mg(*args).exit_code == 0  # first run: watch from the current size
        _fill(log, 290)
        log.append_many_canonical([CanonicalEntry("hashedrekord", "0.0.2", v2_body)])
        _fill(log, 20)
        _write_tiles(log, site)
        res = mg(*args)
        assert res.exit_code == 1, res.output
        assert f"UNEXPECTED: log index 300: hashedrekord signed by identity {IDENTITY}" \
            in res.stdout
        assert f"sha256:{digest.hex()}" in res.stdout
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("case", ["rekor2-happy-path", "happy-path-intoto-in-dsse-v3",
                                  "happy-path-v0.2"])
def test_real_sigstore_entries_are_matched_to_their_fulcio_identity(case: str) -> None:
    """Entries from Sigstore's public logs (Rekor v1 and v2, sigstore-conformance bundles):
    the watched identity and issuer are read from the bundle's certificate with
    cryptography alone, the digest from the bundle itself."""
    from cryptography import x509

    from tests.helpers.paths import CONFORMANCE_DIR

    path = next(CONFORMANCE_DIR.glob(f"**/bundle-verify/{case}/bundle.sigstore.json"))
    bundle = json.loads(path.read_text())
    material = bundle["verificationMaterial"]
    cert_b64 = material.get("certificate", {}).get("rawBytes") or \
        material["x509CertificateChain"]["certificates"][0]["rawBytes"]
    cert = x509.load_der_x509_certificate(base64.b64decode(cert_b64))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    identity = san.get_values_for_type(x509.UniformResourceIdentifier)[0]
    issuer_ext = cert.extensions.get_extension_for_oid(
        x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")).value.value
    issuer = issuer_ext[2:].decode()  # DER UTF8String, short form length
    assert issuer_ext[0] == 0x0C and issuer_ext[1] == len(issuer)
    if "messageSignature" in bundle:
        digest = base64.b64decode(bundle["messageSignature"]["messageDigest"]["digest"]).hex()
    else:
        digest = hashlib.sha256(base64.b64decode(bundle["dsseEnvelope"]["payload"])).hexdigest()
    entry = material["tlogEntries"][0]
    body = base64.b64decode(entry["canonicalizedBody"])
    watcher = EntryWatcher(WatchList.build([(identity, issuer)], []))
    watcher(int(entry["logIndex"]), body)
    assert [(h.index, h.kind, h.digests) for h in watcher.hits] == [
        (int(entry["logIndex"]), entry["kindVersion"]["kind"], (f"sha256:{digest}",))]
    assert watcher.hits[0].signer == f"identity {identity} (issuer {issuer})"
    # another issuer for the same SAN, or another SAN: no hit, no noise
    for pair in ((identity, "https://accounts.google.com"), (identity + "x", issuer)):
        other = EntryWatcher(WatchList.build([pair], []))
        other(0, body)
        assert other.hits == [] and other.unreadable == []


def test_watch_options_first_run_and_bad_input(tmp_path: Path) -> None:
    log, _, _ = make_log(tmp_path)
    key = new_key()
    log.append(hashedrekord(key, b"early release"))
    _fill(log, 40)
    pub, watched = tmp_path / "log.pub", tmp_path / "watched.pub"
    pub.write_bytes(log.signer.public_pem())
    watched.write_bytes(_pem(key))
    (tmp_path / "bad.txt").write_text("not-a-digest\n")
    state = tmp_path / "state.json"
    base = ["log", "monitor", "--log-key", pub, "--state", state]
    with running_server(log) as url:
        for extra, message in (
                (["--identity", IDENTITY], "one --issuer for each --identity"),
                (["--expected", tmp_path / "bad.txt"], "--expected needs"),
                (["--key", watched, "--expected", tmp_path / "bad.txt"], "not a hex digest"),
                (["--key", pub.parent / "missing.pub"], "missing.pub"),
                (["--key", watched, "--scan-from", "42"], "cannot scan from index 42"),
                (["--evidence", tmp_path / "no" / "ev.json"], "no directory")):
            res = mg(*base, "--url", url, *extra)
            assert res.exit_code == 2 and res.output.startswith("error: "), (extra, res.output)
            assert message in res.output, (extra, res.output)
        assert not state.exists()
        # a first run watches from the current size unless told to scan from an index
        res = mg(*base, "--url", url, "--key", watched)
        assert res.exit_code == 0 and "scanned 0 entries" in res.stdout, res.output
        state.unlink()
        res = mg(*base, "--url", url, "--key", watched, "--scan-from", "0")
        assert res.exit_code == 1 and "UNEXPECTED: log index 0: hashedrekord" in res.stdout
        assert not state.exists()


class _FullTilesOnly:
    """A log that dropped its partial tiles once they filled up (tlog-tiles allows it)."""

    def __init__(self, client: RekorClient, log: TransparencyLog) -> None:
        self.client, self.log, self.url = client, log, client.url
        self.partial_requests = 0

    def checkpoint(self) -> str:
        return self.client.checkpoint()

    def tile(self, path: str) -> bytes:
        from mgattest.tlog._client import LogRequestError
        from mgattest.tlog._tiles import parse_tile_path

        ref = parse_tile_path(path)
        if ref.width < TILE_WIDTH and available_width(ref, self.log.size) == TILE_WIDTH:
            self.partial_requests += 1
            raise LogRequestError(f"{path}: not found", status=404)
        return self.client.tile(path)


def test_full_tiles_stand_in_for_partial_ones_the_log_dropped(tmp_path: Path) -> None:
    log, _, _ = make_log(tmp_path)
    state = tmp_path / "state.json"
    with running_server(log) as url:
        monitor, key = _first_poll_then_grow(log, url, state, 300, 600)
        # the checkpoint seen is of size 600; by the time the tiles are read the log
        # holds 768 entries and serves only full tiles
        note = log.signed_checkpoint()
        _fill(log, 768 - log.size)
        source = _FullTilesOnly(RekorClient(url), log)
        source.checkpoint = lambda: note  # type: ignore[method-assign]  # the older head
        watcher = EntryWatcher(WatchList.build([], [_pem(key)]))
        result = LogMonitor(source, log.signer.verifier, state,  # type: ignore[arg-type]  # duck-typed source
                            state=monitor.state).poll(watcher)
    assert result.checkpoint.size == 600 and source.partial_requests > 0
    assert [h.index for h in watcher.hits] == [300]
