"""Model hashing throughput against the machine's SHA-256 limit, sha256sum and openssl.

Two workloads, generated as random bytes in a temporary directory (deleted afterwards):

* files mode: 200 files x 10 MiB (``--quick``: 24 x 2 MiB)
* shard mode: one 2 GiB file, 64 MiB shards (``--quick``: 192 MiB, 16 MiB shards)

Baselines measured in the same run:

* limit     = cores x single-thread ``hashlib.sha256`` throughput over an in-memory buffer
* sha256sum = coreutils over the same files (one process, sequential)
* openssl   = ``openssl dgst -sha256`` over the same files (one process, sequential)

Each mgattest run happens in a fresh child process so its peak RSS (``ru_maxrss``) is its
own. Files are read from the page cache (they were just written): this measures hashing,
not the disk. Targets: >= 80 % of the limit, peak RSS <= 150 MiB.

Usage: python benchmarks/bench_hashing.py [--quick] [--dir DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MiB = 1 << 20

CHILD = r"""
import json, resource, sys, time
from mgattest.attest._digests import hash_model
root, shard, workers = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
d = hash_model(root, shard_size=int(shard) if shard != "none" else None,
               workers=int(workers) if workers != "auto" else None)
elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed, "bytes": d.total_size, "files": len(d.files),
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def single_thread_sha256(total: int) -> float:
    """Bytes/second of one thread of hashlib.sha256 over a resident buffer."""
    buf = memoryview(random.randbytes(MiB))
    h = hashlib.sha256()
    h.update(buf)  # warm up
    best = 0.0
    for _ in range(3):
        h = hashlib.sha256()
        t = time.perf_counter()
        for _ in range(total // MiB):
            h.update(buf)
        best = max(best, total / (time.perf_counter() - t))
    return best


def write_random_files(root: Path, count: int, size: int) -> None:
    block = random.randbytes(4 * MiB)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        with open(root / f"part-{i:04d}.bin", "wb") as f:
            left = size
            f.write(i.to_bytes(8, "big"))  # every file distinct
            left -= 8
            while left > 0:
                chunk = block[: min(len(block), left)]
                f.write(chunk)
                left -= len(chunk)


def run_ours(root: Path, shard: int | None, workers: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(shard or "none"), workers],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run_tool(argv: list[str], files: list[Path]) -> float | None:
    if shutil.which(argv[0]) is None:
        return None
    t = time.perf_counter()
    subprocess.run(argv + [str(f) for f in files], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def report(label: str, nbytes: int, ours: dict, limit: float, files: list[Path]) -> bool:
    rate = nbytes / ours["seconds"]
    rss = ours["maxrss_kib"] / 1024
    print(f"\n== {label}: {ours['files']} file(s), {nbytes / MiB:.0f} MiB")
    print(f"  mgattest        {rate / MiB:9.1f} MiB/s   ({ours['seconds']:.2f} s)   "
          f"peak RSS {rss:.1f} MiB")
    ratio = rate / limit
    print(f"  limit           {limit / MiB:9.1f} MiB/s   mgattest/limit = {ratio:.2f}")
    for name, argv in [("sha256sum", ["sha256sum"]), ("openssl", ["openssl", "dgst", "-sha256"])]:
        secs = run_tool(argv, files)
        if secs is None:
            print(f"  {name:<15} not installed")
            continue
        print(f"  {name:<15} {nbytes / secs / MiB:9.1f} MiB/s   ({secs:.2f} s)   "
              f"mgattest/{name} = {rate / (nbytes / secs):.2f}")
    ok = ratio >= 0.8 and rss <= 150
    print(f"  target >= 0.80 of limit and RSS <= 150 MiB: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--dir", help="where to create the temporary files (default: $TMPDIR)")
    ap.add_argument("--workers", default="auto", help="hashing threads (default: all cores)")
    args = ap.parse_args()
    n_files, file_size = (24, 2 * MiB) if args.quick else (200, 10 * MiB)
    big, shard = (192 * MiB, 16 * MiB) if args.quick else (2048 * MiB, 64 * MiB)

    n = cores()
    single = single_thread_sha256(64 * MiB if args.quick else 512 * MiB)
    limit = n * single
    print(f"cores: {n}   single-thread sha256: {single / MiB:.1f} MiB/s   "
          f"limit: {limit / MiB:.1f} MiB/s   workers: {args.workers}")

    results = []
    with tempfile.TemporaryDirectory(prefix="mgattest-bench-", dir=args.dir) as tmp:
        files_root = Path(tmp) / "files"
        write_random_files(files_root, n_files, file_size)
        files = sorted(files_root.iterdir())
        ours = run_ours(files_root, None, args.workers)
        results.append(report("files mode", n_files * file_size, ours, limit, files))
        shutil.rmtree(files_root)

        shard_root = Path(tmp) / "single"
        write_random_files(shard_root, 1, big)
        files = sorted(shard_root.iterdir())
        ours = run_ours(files[0], shard, args.workers)
        results.append(report(f"shard mode ({shard // MiB} MiB shards)", big, ours, limit,
                              files))
    print("\noverall:", "PASS" if all(results) else "FAIL (see above; quick runs on a busy "
          "machine are indicative only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
