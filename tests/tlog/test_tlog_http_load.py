"""Load and crash faults: concurrent HTTP appends, and `kill -9` of the server under load.

The server runs as a real `mgattest log serve` subprocess; clients are separate
processes, each with its own signing key (so every entry is distinct).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers.servers import free_port
from mgattest.tlog import merkle

pytestmark = [pytest.mark.slow, pytest.mark.network]

CLIENTS = 4
PER_CLIENT = 500


def start_server(db: Path, key: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mgattest", "log", "serve", "--db", str(db), "--key", str(key),
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url + "/api/v1/log", timeout=1)
            return proc, url
        except requests.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"server did not start: {proc.stderr.read()!r}")
            time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def client_worker(url: str, worker: int, count: int, out_path: str, deadline: float) -> None:
    """Append up to ``count`` distinct entries; record every acknowledged (201) one."""
    import http.client

    from tests.helpers.log_server import hashedrekord, new_key

    key = new_key()
    host, port = url.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    acked: list[dict[str, Any]] = []
    try:
        for i in range(count):
            if time.monotonic() > deadline:
                break
            body = json.dumps(hashedrekord(key, b"worker %d entry %d" % (worker, i))).encode()
            try:
                conn.request("POST", "/api/v1/log/entries", body=body,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                break  # the server died: stop, keeping what was acknowledged
            if resp.status != 201:
                acked.append({"error": resp.status, "text": data[:200].decode("replace")})
                break
            acked.append(json.loads(data))
    finally:
        conn.close()
        Path(out_path).write_text(json.dumps(acked))


def run_clients(url: str, tmp: Path, count: int, budget: float) -> list[Any]:
    ctx = multiprocessing.get_context("fork")
    deadline = time.monotonic() + budget
    outs = [tmp / f"client{w}.json" for w in range(CLIENTS)]
    procs = [ctx.Process(target=client_worker, args=(url, w, count, str(outs[w]), deadline))
             for w in range(CLIENTS)]
    return [procs, outs]


def collect(procs: list[Any], outs: list[Path], timeout: float) -> list[dict]:
    for p in procs:
        p.join(timeout=timeout)
        if p.is_alive():
            p.kill()
            p.join()
    results: list[dict] = []
    for out in outs:
        results += json.loads(out.read_text())
    errors = [r for r in results if "error" in r]
    assert not errors, errors[:3]
    return results


def open_log(db: Path, key: Path) -> Any:
    from mgattest.tlog._keys import LogSigner
    from mgattest.tlog._log import TransparencyLog

    return TransparencyLog.open(db, LogSigner.from_pem(key.read_bytes()))


@pytest.fixture()
def fresh_log(tmp_path: Path) -> tuple[Path, Path, Any]:
    from mgattest.tlog._log import TransparencyLog

    db, key = tmp_path / "load.db", tmp_path / "load.key"
    log = TransparencyLog.init(db, key, origin="load.test/log")
    return db, key, log


def test_four_clients_two_thousand_appends(tmp_path: Path, fresh_log: Any) -> None:
    from mgattest.tlog._trust import TrustedLog
    from mgattest.tlog._verify import verify_rekor_entry

    db, key, log = fresh_log
    proc, url = start_server(db, key)
    try:
        procs, outs = run_clients(url, tmp_path, PER_CLIENT, budget=240)
        start = time.monotonic()
        for p in procs:
            p.start()
        results = collect(procs, outs, timeout=260)
        elapsed = time.monotonic() - start
        info = requests.get(url + "/api/v1/log", timeout=10).json()
    finally:
        stop(proc)
    assert len(results) == CLIENTS * PER_CLIENT
    assert info["treeSize"] == CLIENTS * PER_CLIENT
    indexes = sorted(next(iter(r.values()))["logIndex"] for r in results)
    assert indexes == list(range(CLIENTS * PER_CLIENT))  # contiguous, no gaps, no repeats
    trusted = [TrustedLog.for_verifier(log.signer.verifier, origin=log.origin)]
    for r in results:  # every acknowledged entry's own proof, checkpoint and SET verify
        verify_rekor_entry(r, trusted, origin=log.origin)
    final = open_log(db, key)
    assert final.size == CLIENTS * PER_CLIENT
    assert final.check_integrity() == CLIENTS * PER_CLIENT
    print(f"\n{CLIENTS * PER_CLIENT} HTTP appends in {elapsed:.2f} s "
          f"({CLIENTS * PER_CLIENT / elapsed:.0f}/s)")


def test_kill_9_under_load_loses_no_acknowledged_entry(tmp_path: Path, fresh_log: Any) -> None:
    from mgattest.tlog._checkpoint import verify_checkpoint

    db, key, log = fresh_log
    verifier = log.signer.verifier
    log.close()
    proc, url = start_server(db, key)
    try:
        procs, outs = run_clients(url, tmp_path, 100_000, budget=60)
        for p in procs:
            p.start()
        # let the load build up, then kill the server without warning
        deadline = time.monotonic() + 30
        while requests.get(url + "/api/v1/log", timeout=10).json()["treeSize"] < 300:
            assert time.monotonic() < deadline, "load did not build up"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        acked = collect(procs, outs, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(acked) >= 300
    # the newest checkpoint any client was handed before the crash
    newest = max((next(iter(r.values()))["verification"]["inclusionProof"] for r in acked),
                 key=lambda p: p["treeSize"])
    old_cp = verify_checkpoint(newest["checkpoint"], [verifier], origin="load.test/log")

    proc, url = start_server(db, key)  # restart on the same file
    try:
        info = requests.get(url + "/api/v1/log", timeout=10).json()
        assert info["treeSize"] >= len(acked) and info["treeSize"] >= old_cp.size
        for r in acked:
            uuid, entry = next(iter(r.items()))
            resp = requests.get(f"{url}/api/v1/log/entries/{uuid}", timeout=10)
            assert resp.status_code == 200, (uuid, resp.text)
            assert next(iter(resp.json().values()))["logIndex"] == entry["logIndex"]
            assert next(iter(resp.json().values()))["body"] == entry["body"]
        proof = requests.get(url + "/api/v1/log/proof", timeout=10, params={
            "firstSize": old_cp.size, "lastSize": info["treeSize"]}).json()
        new_cp = verify_checkpoint(info["signedTreeHead"], [verifier], origin="load.test/log")
        merkle.verify_consistency(old_cp.size, new_cp.size,
                                  [bytes.fromhex(h) for h in proof["hashes"]],
                                  bytes(old_cp.root_hash), bytes(new_cp.root_hash))
        # the log still takes appends after the crash
        from tests.helpers.log_server import hashedrekord, new_key

        resp = requests.post(url + "/api/v1/log/entries",
                             json=hashedrekord(new_key(), b"after restart"), timeout=10)
        assert resp.status_code == 201
        assert next(iter(resp.json().values()))["logIndex"] == info["treeSize"]
    finally:
        stop(proc)
    assert open_log(db, key).check_integrity() == info["treeSize"] + 1
