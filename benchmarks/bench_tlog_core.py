"""Benchmark the transparency-log core: batch appends, proof generation, proof checks.

Prints figures and ratios against baselines measured in the same run:

* append rate (canonicalise [+ signature check], leaf hash, tree update, SET, commit)
  vs. a bare SQLite insert of the same bodies and vs. bare SHA-256 leaf hashing;
* inclusion-proof generation latency (p50/p99) on a large log vs. one SQLite lookup;
* inclusion-proof verification time vs. one SHA-256 of 65 bytes.

Targets: >= 8,000 appends/s, p99 proof generation < 2 ms at 1,000,000 entries,
verification < 100 us. ``--quick`` uses small sizes (a smoke run on a busy machine).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from mgattest.tlog import merkle
from mgattest.tlog._entries import CanonicalEntry, canonicalize
from mgattest.tlog._log import TransparencyLog


def proposals(n: int) -> list[dict]:
    """n signed hashedrekord proposals from one ECDSA P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    algo = ec.ECDSA(utils.Prehashed(hashes.SHA256()))
    out = []
    for i in range(n):
        digest = hashlib.sha256(b"artifact %d" % i).digest()
        out.append({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "signature": {"content": base64.b64encode(key.sign(digest, algo)).decode(),
                          "publicKey": {"content": pem}},
            "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}}}})
    return out


def bench_append(tmp: str, n: int, batch: int, verify_signatures: bool) -> dict:
    props = proposals(n)
    if not verify_signatures:
        entries = [canonicalize(p) for p in props]  # canonicalised up front, not timed
    log = TransparencyLog.init(os.path.join(tmp, f"append-{verify_signatures}.db"),
                               origin="bench.example/log")
    start = time.perf_counter()
    for i in range(0, n, batch):
        if verify_signatures:
            log.append_many(props[i:i + batch])
        else:
            log.append_many_canonical(entries[i:i + batch])
    elapsed = time.perf_counter() - start
    bodies = [log.entry_by_index(i).body for i in range(0, n, max(1, n // 1000))]
    log.close()
    return {"rate": n / elapsed, "bodies": bodies}


def baseline_sqlite_insert(tmp: str, bodies: list[bytes], n: int) -> float:
    """Rows/s of a bare WAL SQLite insert of (index, hash, body), same batching."""
    conn = sqlite3.connect(os.path.join(tmp, "baseline.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (idx INTEGER PRIMARY KEY, h BLOB UNIQUE, body BLOB)")
    rows = [(i, hashlib.sha256(b"%d" % i).digest(), bodies[i % len(bodies)]) for i in range(n)]
    start = time.perf_counter()
    for i in range(0, n, 1000):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows[i:i + 1000])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def baseline_leaf_hash(bodies: list[bytes], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        merkle.leaf_hash(bodies[i % len(bodies)])
    return n / (time.perf_counter() - start)


def build_big_log(tmp: str, size: int) -> TransparencyLog:
    log = TransparencyLog.init(os.path.join(tmp, "big.db"), origin="bench.example/big")
    chunk = 50_000
    for start in range(0, size, chunk):
        log.append_many_canonical([
            CanonicalEntry("hashedrekord", "0.0.1", b'{"apiVersion":"0.0.1","n":%d}' % i)
            for i in range(start, min(size, start + chunk))])
    log.signed_checkpoint()
    return log


def bench_proofs(log: TransparencyLog, samples: int) -> dict:
    size = log.size
    rng = random.Random(7)
    indices = [rng.randrange(size) for _ in range(samples)]
    gen, proofs = [], []
    for index in indices:
        t0 = time.perf_counter()
        proof = log.inclusion_proof(index)
        gen.append(time.perf_counter() - t0)
        proofs.append((log.leaf_hash(index), proof))
    ver = []
    for leaf, proof in proofs:
        t0 = time.perf_counter()
        merkle.verify_inclusion(leaf, proof.log_index, proof.tree_size, proof.hashes,
                                proof.root_hash)
        ver.append(time.perf_counter() - t0)
    conn = sqlite3.connect(log.path)
    lookups = []
    for index in indices[:2000]:
        t0 = time.perf_counter()
        conn.execute("SELECT leaf_hash FROM entries WHERE idx = ?", (index,)).fetchone()
        lookups.append(time.perf_counter() - t0)
    conn.close()
    t0 = time.perf_counter()
    for _ in range(20_000):
        hashlib.sha256(b"\x01" + b"x" * 64).digest()
    sha = (time.perf_counter() - t0) / 20_000
    q = statistics.quantiles
    return {"gen_p50": statistics.median(gen), "gen_p99": q(gen, n=100)[98],
            "ver_mean": statistics.fmean(ver), "ver_p99": q(ver, n=100)[98],
            "lookup_p50": statistics.median(lookups), "sha": sha,
            "path_len": statistics.fmean(len(p.hashes) for _, p in proofs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--entries", type=int, help="appends to time (default 20000)")
    parser.add_argument("--log-size", type=int, help="proof benchmark log size (1000000)")
    parser.add_argument("--batch", type=int, default=1000, help="entries per transaction")
    parser.add_argument("--verify-signatures", action="store_true",
                        help="also time canonicalisation with the signature check")
    args = parser.parse_args(argv)
    n = args.entries or (4_000 if args.quick else 20_000)
    big = args.log_size or (50_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="bench-tlog-") as tmp:
        res = bench_append(tmp, n, args.batch, False)
        sqlite_rate = baseline_sqlite_insert(tmp, res["bodies"], n)
        hash_rate = baseline_leaf_hash(res["bodies"], n * 5)
        print(f"append (canonical entries, batch {args.batch}): {res['rate']:,.0f} entries/s "
              f"(target >= 8,000)")
        print(f"  baseline bare SQLite insert: {sqlite_rate:,.0f} rows/s -> ratio "
              f"{res['rate'] / sqlite_rate:.3f}")
        print(f"  baseline bare leaf hashing: {hash_rate:,.0f} hashes/s -> ratio "
              f"{res['rate'] / hash_rate:.4f}")
        if args.verify_signatures:
            full = bench_append(tmp, n, args.batch, True)
            print(f"append with canonicalise + signature check: {full['rate']:,.0f} entries/s "
                  f"(ratio to canonical-only {full['rate'] / res['rate']:.3f})")
        t0 = time.perf_counter()
        log = build_big_log(tmp, big)
        print(f"built a {big:,}-entry log in {time.perf_counter() - t0:.1f} s "
              f"({big / (time.perf_counter() - t0):,.0f} entries/s)")
        p = bench_proofs(log, 2_000 if args.quick else 10_000)
        log.close()
        print(f"inclusion proof generation at {big:,} entries: p50 {p['gen_p50'] * 1e3:.3f} ms, "
              f"p99 {p['gen_p99'] * 1e3:.3f} ms (target p99 < 2 ms), "
              f"{p['path_len']:.1f} hashes/proof")
        print(f"  baseline one indexed SQLite lookup p50: {p['lookup_p50'] * 1e6:.1f} us -> "
              f"ratio {p['gen_p50'] / p['lookup_p50']:.1f}")
        print(f"inclusion proof verification: mean {p['ver_mean'] * 1e6:.1f} us, "
              f"p99 {p['ver_p99'] * 1e6:.1f} us (target < 100 us)")
        print(f"  baseline one SHA-256 node hash: {p['sha'] * 1e6:.2f} us -> ratio "
              f"{p['ver_mean'] / p['sha']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
