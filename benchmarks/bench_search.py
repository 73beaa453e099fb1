"""Search latency of the log's index (issue 15), in-process and over HTTP.

A log of ``--entries`` entries (default 1,000,000) is bulk-built through
``TransparencyLog.append_many_canonical`` (real leaves, subtrees, SETs and index rows;
placeholder artifact signatures), with digests, keys and identities repeating with a
Zipf-like skew. Queries of four classes are timed:

* ``rare digest``: an artifact/subject digest held by a few dozen entries;
* ``popular digest``: one held by tens of thousands (the answer is cut at the
  1,000-UUID limit, the worst case);
* ``key``: a signer key (bare keys are Zipf-distributed: many answers are cut too);
* ``identity``: a certificate SAN e-mail or URI.

In-process: ``TransparencyLog.search``. HTTP: ``POST /api/v1/index/retrieve`` to a real
``mgattest log serve`` subprocess on 127.0.0.1 over one keep-alive connection.
Baseline, same run, same database: one entry read by log index (an indexed lookup).

    python benchmarks/bench_search.py --quick        # 100,000 entries
    python benchmarks/bench_search.py --keep /tmp/search-bench   # reuse the built log
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_tlog_http import start_server
from mgattest.tlog import LogSigner, RekorClient, SearchQuery, TransparencyLog, TrustedLog, \
    search_log
from tests.helpers.search_corpus import digest_pool, fill_log, make_signers

ROUNDS = 2000


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def build(workdir: Path, entries: int) -> tuple[Any, Path, Path, dict[str, list[Any]]]:
    """Open the log in ``workdir`` (building it first if it is missing or smaller)."""
    db, key = workdir / "search.db", workdir / "search.key"
    signers = make_signers()  # fresh keys: build and queries must share them
    state = workdir / "signers.json"
    if db.exists() and state.exists():
        log = TransparencyLog.open(db, LogSigner.from_file(key))
        saved = json.loads(state.read_text())
        digests = saved["digests"]
        keys = [k.encode() for k in saved["keys"]]
        identities = saved["identities"]
    else:
        log = TransparencyLog.init(db, key, origin="bench.mgattest/search")
        digests = digest_pool(3000)
        keys = [s.key_pem for s in signers]
        identities = [s.identity for s in signers if s.identity]
        state.write_text(json.dumps({"digests": digests, "keys": [k.decode() for k in keys],
                                     "identities": identities}))
        started = time.perf_counter()
        for done in range(0, entries, 100_000):
            fill_log(log, min(100_000, entries - done), signers, digests, seed=done + 1)
            print(f"  built {log.size:,} entries", flush=True)
        took = time.perf_counter() - started
        print(f"build: {entries:,} entries in {took:.0f} s ({entries / took:,.0f} entries/s, "
              f"index kept in the append transaction)")
    if log.size < entries:
        raise SystemExit(f"{db} holds {log.size:,} entries, fewer than {entries:,}: "
                         "use another --keep directory")
    counts = {d: len(log.search(SearchQuery(sha256=d))) for d in digests[:20] + digests[-200:]}
    classes: dict[str, list[Any]] = {
        "rare digest": [SearchQuery(sha256=d) for d, n in counts.items() if 0 < n < 100][:50],
        "popular digest": [SearchQuery(sha256=d) for d, n in counts.items() if n >= 1000][:10],
        "key": [SearchQuery.by_key(k) for k in keys],
        "identity": [SearchQuery.by_identity(i) for i in identities],
    }
    return log, db, key, classes


def timed(run: Callable[[Any], int], queries: list[Any]
          ) -> tuple[list[float], list[float], int]:
    """Wall-clock and this thread's CPU milliseconds per query, and the UUIDs answered.
    CPU time leaves out the time other processes hold the cores (a shared machine)."""
    rng = random.Random(7)
    wall, cpu, answers = [], [], 0
    for _ in range(ROUNDS):
        query = rng.choice(queries)
        started, cpu_started = time.perf_counter(), time.thread_time()
        answers += run(query)
        cpu.append((time.thread_time() - cpu_started) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return wall, cpu, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 entries")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the log here")
    args = parser.parse_args()
    entries = 100_000 if args.quick else args.entries
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        log, db, key, classes = build(workdir, entries)
        size = log.size
        print(f"log: {size:,} entries, {db.stat().st_size / 1e9:.2f} GB")

        rng = random.Random(3)

        def base() -> None:
            log.entry_by_index(rng.randrange(size))

        for _ in range(200):
            base()
        baseline = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            base()
            baseline.append((time.perf_counter() - started) * 1000)
        b50, b99 = percentiles(baseline)
        print(f"baseline (one entry by index): p50 {b50:.3f} ms, p99 {b99:.3f} ms")

        print("\nin-process (TransparencyLog.search):")
        for name, queries in classes.items():
            timed(lambda q: len(log.search(q)), queries[:5])  # warm the cache
            samples, cpu, answers = timed(lambda q: len(log.search(q)), queries)
            p50, p99 = percentiles(samples)
            c50, c99 = percentiles(cpu)
            print(f"  {name:<15} p50 {p50:6.3f} ms  p99 {p99:6.3f} ms  "
                  f"(CPU p50 {c50:.3f} ms, p99 {c99:.3f} ms; {answers / ROUNDS:,.0f} "
                  f"UUIDs/answer; p99 {p99 / b99:.1f} x baseline)")
        log.close()

        proc, port = start_server(db, key)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

            def over_http(query: Any) -> int:
                conn.request("POST", "/api/v1/index/retrieve",
                             body=json.dumps(query.to_request()),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    raise SystemExit(f"HTTP {resp.status}: {data[:200]!r}")
                return len(json.loads(data))

            print("\nHTTP (POST /api/v1/index/retrieve, one keep-alive connection):")
            for name, queries in classes.items():
                timed(over_http, queries[:5])
                samples, _, answers = timed(over_http, queries)
                p50, p99 = percentiles(samples)
                print(f"  {name:<15} p50 {p50:6.3f} ms  p99 {p99:6.3f} ms  "
                      f"({answers / ROUNDS:,.0f} UUIDs/answer)")
            conn.close()

            # the client side: every UUID fetched and verified offline before it is shown
            trusted = [TrustedLog.for_verifier(LogSigner.from_file(key).verifier,
                                               origin="bench.mgattest/search")]
            with RekorClient(f"http://127.0.0.1:{port}") as client:
                rounds, hits, started = 0, 0, time.perf_counter()
                for query in classes["rare digest"][:20]:
                    result = search_log(client, query, trusted)
                    assert not result.unverifiable
                    rounds += 1
                    hits += len(result.hits)
                took = time.perf_counter() - started
            print(f"\nverified client search (search_log), rare digests: "
                  f"{took / rounds * 1000:.1f} ms per search, {took / hits * 1000:.2f} ms "
                  f"per verified hit ({hits / rounds:.1f} hits/search)")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
