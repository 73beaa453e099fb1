"""Benchmark the monitor's identity scan: entries read from tiles, verified, matched.

A log of N entries (half hashedrekord by bare keys, half by certificates of our private CA
for other identities; the bodies Rekor and our log store) is scanned for one watched
identity and one watched key — everything ``mgattest log monitor --identity/--key``
does per round: fetch the signed checkpoint, the entry bundles and the hash tiles, verify
them against the signed root, parse every entry and match its signer. Two sources:

* ``mgattest log serve`` in a subprocess on 127.0.0.1 (HTTP);
* the same tiles as static files in a directory (a mirror, or a Rekor v2 bucket).

Baseline in the same run: ``json.loads`` of every body alone. Target: >= 20,000
entries/s from tiles. ``--quick`` uses 20,000 entries.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mgattest.attest import EntryWatcher, WatchList
from mgattest.errors import MgattestError
from mgattest.ca._authority import CertificateAuthority, init as ca_init
from mgattest.ca._identity import CertIdentity
from mgattest.tlog import LogMonitor, RekorClient
from mgattest.tlog._entries import CanonicalEntry, canonicalize
from mgattest.tlog._log import TransparencyLog
from mgattest.tlog._monitor import MonitorState
from mgattest.tlog._tiles import (TILE_WIDTH, TileRef, available_width, encode_entry_bundle,
                                  hash_tile, tiles_for_size)

WATCHED = ("release@example.com", "https://issuer.example.com")


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _hashedrekord(key: ec.EllipticCurvePrivateKey, verifier_pem: bytes,
                  artifact: bytes) -> CanonicalEntry:
    sig = key.sign(artifact, ec.ECDSA(hashes.SHA256()))
    return canonicalize({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "signature": {"content": base64.b64encode(sig).decode(),
                      "publicKey": {"content": base64.b64encode(verifier_pem).decode()}},
        "data": {"hash": {"algorithm": "sha256",
                          "value": hashlib.sha256(artifact).hexdigest()}}}})


def build_log(tmp: Path, n: int) -> tuple[TransparencyLog, str, bytes]:
    """The log, its first checkpoint (2 entries) and the watched key's PEM."""
    ca_init(tmp / "ca")
    ca = CertificateAuthority.load(tmp / "ca")
    templates = []
    for i in range(16):  # other signers: 8 keys, 8 certificates
        key = ec.generate_private_key(ec.SECP256R1())
        if i % 2:
            cert = ca.issue(key.public_key(), CertIdentity("email", f"dev{i}@example.com",
                                                           WATCHED[1]))
            templates.append(_hashedrekord(key, cert.public_bytes(serialization.Encoding.PEM),
                                           b"template"))
        else:
            templates.append(_hashedrekord(key, _pem(key), b"template"))
    marker = hashlib.sha256(b"template").hexdigest().encode()
    log = TransparencyLog.init(tmp / "log.db", origin="bench.example/log")
    log.append_many_canonical(templates[:2])
    first = log.signed_checkpoint()
    batch: list[CanonicalEntry] = []
    for i in range(n):
        body = templates[i % 16].body.replace(
            marker, hashlib.sha256(b"artifact %d" % i).hexdigest().encode())
        batch.append(CanonicalEntry("hashedrekord", "0.0.1", body))
        if len(batch) == 10_000:
            log.append_many_canonical(batch)
            batch = []
    log.append_many_canonical(batch)
    watched = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue(watched.public_key(), CertIdentity("email", *WATCHED))
    log.append_canonical(_hashedrekord(watched, cert.public_bytes(serialization.Encoding.PEM),
                                       b"release"))
    return log, first, _pem(watched)


class DirectoryTiles:
    """tlog-tiles read from files (a static mirror)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def checkpoint(self) -> str:
        return (self.root / "checkpoint").read_text()

    def tile(self, path: str) -> bytes:
        return (self.root / path).read_bytes()


def write_tiles(log: TransparencyLog, root: Path) -> None:
    size = log.size
    root.mkdir(parents=True, exist_ok=True)
    (root / "checkpoint").write_text(log.signed_checkpoint())
    for ref in tiles_for_size(size):
        (root / ref.path).parent.mkdir(parents=True, exist_ok=True)
        (root / ref.path).write_bytes(hash_tile(ref, lambda s, e: bytes(log.subtree_hash(s, e))))
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        ref = TileRef(None, n, available_width(TileRef(None, n, TILE_WIDTH), size))
        (root / ref.path).parent.mkdir(parents=True, exist_ok=True)
        (root / ref.path).write_bytes(encode_entry_bundle(
            bytes(log.entry_by_index(n * TILE_WIDTH + k).body) for k in range(ref.width)))


def scan(source: object, log: TransparencyLog, first: str, state: Path) -> tuple[float, int]:
    state.write_text(json.dumps({"checkpoint": first}))
    saved = MonitorState.load(state, log.signer.verifier)
    watcher = EntryWatcher(WatchList.build([WATCHED], []))
    monitor = LogMonitor(source, log.signer.verifier, state, state=saved)  # type: ignore[arg-type]  # duck-typed tile source
    start = time.perf_counter()
    result = monitor.check(watcher)
    elapsed = time.perf_counter() - start
    assert result.scan is not None and len(watcher.hits) == 1, watcher.hits
    return elapsed, result.scan.entries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--entries", type=int, default=None)
    args = parser.parse_args()
    n = args.entries or (20_000 if args.quick else 200_000)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        log, first, _ = build_log(tmp, n)
        print(f"built a {log.size}-entry log in {time.perf_counter() - t0:.1f} s")
        bodies = [bytes(log.entry_by_index(i).body) for i in range(log.size)]
        t0 = time.perf_counter()
        for body in bodies:
            json.loads(body)
        baseline = len(bodies) / (time.perf_counter() - t0)
        print(f"baseline: json.loads of every body: {baseline:,.0f} entries/s")
        write_tiles(log, tmp / "tiles")
        elapsed, count = scan(DirectoryTiles(tmp / "tiles"), log, first, tmp / "s1.json")
        print(f"scan from tile files: {count:,} entries in {elapsed:.2f} s = "
              f"{count / elapsed:,.0f} entries/s ({count / elapsed / baseline:.2f} x baseline)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        key = tmp / "log.key"
        key.write_bytes(log.signer.private_pem())
        server = subprocess.Popen(
            [sys.executable, "-m", "mgattest", "log", "serve", "--db", str(tmp / "log.db"),
             "--key", str(key), "--port", str(port)], stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    RekorClient(url, retries=0).checkpoint()
                    break
                except MgattestError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            elapsed, count = scan(RekorClient(url), log, first, tmp / "s2.json")
        finally:
            server.terminate()
            server.wait(timeout=10)
        rate = count / elapsed
        print(f"scan from `log serve` (a subprocess) over HTTP: {count:,} "
              f"entries in {elapsed:.2f} s = {rate:,.0f} entries/s "
              f"({rate / baseline:.2f} x baseline)")
        print(f"target >= 20,000 entries/s: {'met' if rate >= 20_000 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
