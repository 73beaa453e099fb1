"""`mgattest log serve` under abuse: an honest client's latency while an attacker works.

A real server subprocess on 127.0.0.1. The attacker uses other loopback source
addresses (127.0.0.2-6), as distinct clients would on a network:

* holds ``--slow`` connections, spread over four addresses (the server caps
  connections per client at 64), that send a request's headers one byte at a time and
  never finish (slow loris), reopening each one the server closes;
* keeps ``--crafted`` connections posting crafted ``/entries/retrieve`` requests: dsse
  entries whose 16 verifiers are RSA keys with a 3071-bit public exponent, all but one
  of which fail, so that every signature costs 31 expensive checks (before the fix, a
  few seconds of CPU per request on the log's only thread).

The honest client (127.0.0.1) reads entries and checkpoints sequentially and appends
one signed entry every ``--append-every`` reads; it prints p50/p99/max read latency and
the append outcomes.

    python benchmarks/bench_tlog_abuse.py --quick
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import math
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

HONEST = "127.0.0.1"
SLOW_SOURCES = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")  # 64 connections each
CRAFTED_SOURCE = "127.0.0.6"


# --- crafted material ------------------------------------------------------------------

def huge_exponent_rsa_key(bits: int = 3072) -> rsa.RSAPrivateKey:
    """A valid RSA key pair whose public exponent is ``bits - 1`` bits long.

    Signing (CRT, private exponent) stays cheap; every verification costs a
    ``bits``-bit modular exponentiation instead of 17 squarings.
    """
    base = rsa.generate_private_key(65537, bits).private_numbers()
    p, q = base.p, base.q
    phi = (p - 1) * (q - 1)
    while True:
        e = secrets.randbits(bits - 1) | (1 << (bits - 2)) | 1
        if math.gcd(e, phi) == 1:
            break
    d = pow(e, -1, phi)
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p),
                                    rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key()


def _pem(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def crafted_retrieve_body(key: rsa.RSAPrivateKey, entries: int = 10) -> bytes:
    """A retrieve query of ``entries`` dsse proposals that maximise signature checks.

    16 verifiers: 15 copies of a decoy (the same modulus with another huge exponent)
    and the real key last; 16 signatures by the real key. Each signature is tried
    against the decoys first. The decoy verifiers then verify nothing, so the entry is
    refused only after all of that work.
    """
    numbers = key.public_key().public_numbers()
    decoy = rsa.RSAPublicNumbers(numbers.e + 2, numbers.n).public_key()
    payload = b'{"_type":"https://in-toto.io/Statement/v1"}'
    payload_type = "application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload),
                                   payload)
    sig = base64.b64encode(key.sign(pae, padding.PKCS1v15(), hashes.SHA256())).decode()
    envelope = json.dumps({"payload": base64.b64encode(payload).decode(),
                           "payloadType": payload_type,
                           "signatures": [{"sig": sig}] * 16})
    verifiers = ([base64.b64encode(_pem(decoy)).decode()] * 15
                 + [base64.b64encode(_pem(key.public_key())).decode()])
    proposed = {"apiVersion": "0.0.1", "kind": "dsse",
                "spec": {"proposedContent": {"envelope": envelope, "verifiers": verifiers}}}
    return json.dumps({"entries": [proposed] * entries}).encode()


def signed_entry(key: ec.EllipticCurvePrivateKey, artifact: bytes) -> bytes:
    """An honest hashedrekord proposal."""
    sig = key.sign(artifact, ec.ECDSA(hashes.SHA256()))
    return json.dumps({
        "apiVersion": "0.0.1", "kind": "hashedrekord",
        "spec": {"signature": {"content": base64.b64encode(sig).decode(),
                               "publicKey": {"content": base64.b64encode(
                                   _pem(key.public_key())).decode()}},
                 "data": {"hash": {"algorithm": "sha256",
                                   "value": hashlib.sha256(artifact).hexdigest()}}}}).encode()


# --- the server ------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workdir: Path, python: str = sys.executable) -> tuple[subprocess.Popen, int]:
    """``mgattest log init`` + ``log serve`` in ``workdir``; returns (process, port)."""
    db, key = workdir / "log.db", workdir / "log.key"
    subprocess.run([python, "-m", "mgattest", "log", "init", "--db", str(db), "--key-out",
                    str(key), "--origin", "abuse.test/log"], check=True,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    proc = subprocess.Popen([python, "-m", "mgattest", "log", "serve", "--db", str(db),
                             "--key", str(key), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection((HONEST, port), timeout=1):
                return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"server did not start: {proc.stderr.read()!r}")
            time.sleep(0.1)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- the attacker ----------------------------------------------------------------------

@dataclass
class AttackStats:
    slow_opened: int = 0
    slow_closed_by_server: int = 0
    crafted_sent: int = 0
    crafted_status: dict[int, int] = field(default_factory=dict)
    crafted_seconds: list[float] = field(default_factory=list)


def slow_loris(port: int, count: int, stop: threading.Event, stats: AttackStats,
               sources: tuple[str, ...] = SLOW_SOURCES) -> None:
    """Hold ``count`` connections that trickle a request's headers and never end them."""
    head = b"POST /api/v1/log/entries HTTP/1.1\r\nHost: log\r\nX-Slow: "
    socks: list[socket.socket] = []

    def opened() -> socket.socket | None:
        source = sources[stats.slow_opened % len(sources)]
        try:
            s = socket.create_connection((HONEST, port), timeout=2,
                                         source_address=(source, 0))
            s.sendall(head)
            s.setblocking(False)
            stats.slow_opened += 1
            return s
        except OSError:
            return None

    for _ in range(count):
        s = opened()
        if s is not None:
            socks.append(s)
    while not stop.wait(0.5):
        for i, s in enumerate(socks):
            try:
                s.send(b"a")
                if s.recv(1 << 16) == b"":
                    raise OSError("closed")
            except BlockingIOError:
                continue
            except OSError:
                stats.slow_closed_by_server += 1
                s.close()
                fresh = opened()
                if fresh is not None:
                    socks[i] = fresh
    for s in socks:
        s.close()


def crafted_retriever(port: int, body: bytes, stop: threading.Event, stats: AttackStats,
                      source: str = CRAFTED_SOURCE) -> None:
    """Post crafted retrieve queries back to back."""
    while not stop.is_set():
        conn = http.client.HTTPConnection(HONEST, port, timeout=120,
                                          source_address=(source, 0))
        started = time.monotonic()
        try:
            conn.request("POST", "/api/v1/log/entries/retrieve", body=body,
                         headers={"Content-Type": "application/json"})
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException):
            status = 0
        finally:
            conn.close()
        stats.crafted_sent += 1
        stats.crafted_status[status] = stats.crafted_status.get(status, 0) + 1
        stats.crafted_seconds.append(time.monotonic() - started)


# --- the honest client -----------------------------------------------------------------

@dataclass
class HonestStats:
    read_latencies: list[float] = field(default_factory=list)
    read_failures: list[str] = field(default_factory=list)
    append_status: dict[int, int] = field(default_factory=dict)
    append_latencies: list[float] = field(default_factory=list)


def _timed(port: int, method: str, path: str, body: bytes | None = None,
           timeout: float = 30) -> tuple[int, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection(HONEST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.monotonic() - started
    finally:
        conn.close()


def honest_client(port: int, duration: float, append_every: int, stats: HonestStats) -> None:
    """Sequential reads (a new connection each: the worst case for a flooded server) and
    an append every ``append_every`` reads, for ``duration`` seconds."""
    key = ec.generate_private_key(ec.SECP256R1())
    deadline = time.monotonic() + duration
    n = 0
    while time.monotonic() < deadline:
        n += 1
        if n % append_every == 1:
            try:
                status, took = _timed(port, "POST", "/api/v1/log/entries",
                                      signed_entry(key, b"honest %d" % n))
            except (OSError, http.client.HTTPException) as exc:
                status, took = 0, 0.0
                stats.read_failures.append(f"append: {exc!r}")
            stats.append_status[status] = stats.append_status.get(status, 0) + 1
            stats.append_latencies.append(took)
            continue
        path = "/checkpoint" if n % 2 else "/api/v1/log/entries?logIndex=0"
        try:
            status, took = _timed(port, "GET", path)
        except (OSError, http.client.HTTPException) as exc:
            stats.read_failures.append(f"{path}: {exc!r}")
            stats.read_latencies.append(30.0)
            continue
        if status != 200:
            stats.read_failures.append(f"{path}: HTTP {status}")
        stats.read_latencies.append(took)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run_abuse(workdir: Path, *, duration: float = 15.0, slow: int = 256, crafted: int = 3,
              append_every: int = 10, python: str = sys.executable) -> dict[str, Any]:
    """Start a server, attack it, measure the honest client; always stops everything."""
    key = huge_exponent_rsa_key()
    body = crafted_retrieve_body(key)
    proc, port = start_server(workdir, python)
    stop = threading.Event()
    attack = AttackStats()
    honest = HonestStats()
    threads: list[threading.Thread] = []
    try:
        # one entry to read back
        status, _ = _timed(port, "POST", "/api/v1/log/entries",
                           signed_entry(ec.generate_private_key(ec.SECP256R1()), b"first"))
        assert status == 201, status
        threads.append(threading.Thread(target=slow_loris, args=(port, slow, stop, attack),
                                        daemon=True))
        threads += [threading.Thread(target=crafted_retriever,
                                     args=(port, body, stop, attack), daemon=True)
                    for _ in range(crafted)]
        for t in threads:
            t.start()
        time.sleep(min(2.0, duration / 5))  # let the attack take hold
        honest_client(port, duration, append_every, honest)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        stop_server(proc)
    reads = honest.read_latencies
    return {
        "reads": len(reads),
        "read_p50_ms": percentile(reads, 0.50) * 1000,
        "read_p99_ms": percentile(reads, 0.99) * 1000,
        "read_max_ms": max(reads, default=float("nan")) * 1000,
        "read_failures": honest.read_failures,
        "append_status": honest.append_status,
        "append_p99_ms": percentile(honest.append_latencies, 0.99) * 1000,
        "slow_opened": attack.slow_opened,
        "slow_closed_by_server": attack.slow_closed_by_server,
        "crafted_sent": attack.crafted_sent,
        "crafted_status": attack.crafted_status,
        "crafted_median_s": statistics.median(attack.crafted_seconds)
        if attack.crafted_seconds else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s instead of 30 s")
    parser.add_argument("--slow", type=int, default=256, help="slow-loris connections")
    parser.add_argument("--crafted", type=int, default=3, help="crafted retrieve clients")
    parser.add_argument("--append-every", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_abuse(Path(tmp), duration=10.0 if args.quick else 30.0, slow=args.slow,
                           crafted=args.crafted, append_every=args.append_every)
    print(f"attacker: {result['slow_opened']} slow connections opened "
          f"({result['slow_closed_by_server']} closed by the server), "
          f"{result['crafted_sent']} crafted retrieves {result['crafted_status']} "
          f"(median {result['crafted_median_s']:.3f} s)")
    print(f"honest reads: {result['reads']}  p50 {result['read_p50_ms']:.1f} ms  "
          f"p99 {result['read_p99_ms']:.1f} ms  max {result['read_max_ms']:.1f} ms  "
          f"failures {len(result['read_failures'])}")
    print(f"honest appends: {result['append_status']}  p99 {result['append_p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()
