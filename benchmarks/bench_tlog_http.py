"""HTTP append throughput of `mgattest log serve`, against in-process appends.

Four client processes post distinct, freshly signed hashedrekord entries to a real
server subprocess on 127.0.0.1; the server verifies every signature, appends in group
commits and answers each request with the entry, its SET and an inclusion proof
against a signed checkpoint. Each client keeps ``--inflight`` requests in flight
(1 = strictly sequential clients).

Baseline, measured in the same run on the same disk: ``TransparencyLog.append`` called
in-process one entry at a time (same signature check and durable commit, no HTTP).

    python benchmarks/bench_tlog_http.py --quick
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

CLIENTS = 4


def proposed_entries(worker: int, count: int, tag: str) -> list[bytes]:
    """``count`` distinct hashedrekord proposals signed by a fresh key, as JSON bytes."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    out = []
    for i in range(count):
        artifact = f"{tag} worker {worker} artifact {i}".encode()
        sig = key.sign(artifact, ec.ECDSA(hashes.SHA256()))
        out.append(json.dumps({
            "apiVersion": "0.0.1", "kind": "hashedrekord",
            "spec": {"signature": {"content": base64.b64encode(sig).decode(),
                                   "publicKey": {"content": base64.b64encode(pem).decode()}},
                     "data": {"hash": {"algorithm": "sha256",
                                       "value": hashlib.sha256(artifact).hexdigest()}}}},
            separators=(",", ":")).encode())
    return out


def client(port: int, worker: int, count: int, inflight: int, tag: str,
           ready: "multiprocessing.synchronize.Barrier", results: "multiprocessing.Queue") -> None:
    bodies = proposed_entries(worker, count, tag)
    chunks = [bodies[i::inflight] for i in range(inflight)]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def connection(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local = []
        for body in chunk:
            start = time.perf_counter()
            conn.request("POST", "/api/v1/log/entries", body=body,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            local.append(time.perf_counter() - start)
            if resp.status != 201:
                with lock:
                    failures.append(f"HTTP {resp.status}")
        conn.close()
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=connection, args=(c,)) for c in chunks]
    ready.wait()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put((latencies, failures))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, key: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mgattest", "log", "serve", "--db", str(db),
                             "--key", str(key), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def http_run(workdir: Path, per_client: int, inflight: int) -> dict[str, float]:
    from mgattest.tlog._log import TransparencyLog

    db, key = workdir / f"http-{inflight}.db", workdir / f"http-{inflight}.key"
    TransparencyLog.init(db, key, origin="bench.mgattest/log").close()
    proc, port = start_server(db, key)
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Barrier(CLIENTS + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=client, args=(port, w, per_client, inflight,
                                              f"inflight{inflight}", ready, results))
             for w in range(CLIENTS)]
    try:
        for p in procs:
            p.start()
        ready.wait()  # every client has built and signed its entries
        cpu0, start = cpu_seconds(proc.pid), time.perf_counter()
        collected = [results.get(timeout=600) for _ in procs]
        elapsed = time.perf_counter() - start
        server_cpu = cpu_seconds(proc.pid) - cpu0
        for p in procs:
            p.join(timeout=30)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    latencies = sorted(x for lat, _ in collected for x in lat)
    failures = [f for _, fails in collected for f in fails]
    if failures:
        raise SystemExit(f"{len(failures)} appends failed: {failures[:3]}")
    total = CLIENTS * per_client
    log = TransparencyLog.open(db, _signer(key))
    if log.size != total:
        raise SystemExit(f"log holds {log.size} entries, expected {total}")
    return {"rate": total / elapsed, "elapsed": elapsed,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
            "server_cpu_ms": 1000 * server_cpu / total}


def _signer(key: Path):  # noqa: ANN202
    from mgattest.tlog._keys import LogSigner

    return LogSigner.from_pem(key.read_bytes())


def baseline_run(workdir: Path, count: int) -> float:
    """In-process ``TransparencyLog.append``, one entry per call."""
    from mgattest.tlog._log import TransparencyLog

    log = TransparencyLog.init(workdir / "base.db", workdir / "base.key", origin="bench/base")
    proposals = [json.loads(b) for b in proposed_entries(0, count, "baseline")]
    start = time.perf_counter()
    for p in proposals:
        log.append(p)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--per-client", type=int, help="entries per client")
    parser.add_argument("--inflight", type=int, default=8,
                        help="concurrent requests per client (also runs 1)")
    parser.add_argument("--dir", help="directory for the SQLite files (default: a temp dir)")
    args = parser.parse_args()
    per_client = args.per_client or (100 if args.quick else 1000)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        workdir = Path(tmp)
        base = baseline_run(workdir, min(CLIENTS * per_client, 1000))
        print(f"baseline  in-process append, 1 entry/call : {base:8.0f} entries/s")
        for inflight in sorted({1, args.inflight}):
            r = http_run(workdir, per_client, inflight)
            print(f"HTTP      {CLIENTS} clients x {inflight:2d} in flight      : "
                  f"{r['rate']:8.0f} entries/s  (ratio to baseline {r['rate'] / base:5.2f}; "
                  f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms; "
                  f"server CPU {r['server_cpu_ms']:.2f} ms/entry; "
                  f"{CLIENTS * per_client} entries in {r['elapsed']:.2f} s)")
    print("target: >= 800 entries/s over HTTP with 4 concurrent clients")


if __name__ == "__main__":
    main()
