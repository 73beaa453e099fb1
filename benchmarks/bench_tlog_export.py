"""Benchmark `log export` / `log import` (backup and mirror as C2SP tlog-tiles).

Builds a log of N entries (default 100,000) for each log key type, exports it, imports
the export into a new database, and prints both times with baselines measured in the
same run:

* export vs. ``sqlite3 .backup``-style copy of the database (the plain backup);
* import vs. verifying N signed entry timestamps alone (import verifies every SET with
  the log key, and that dominates its cost).

``--quick`` uses 5,000 entries (a smoke run on a busy machine).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import tempfile
import time

from mgattest.tlog import CanonicalEntry, DirectorySource, LogSigner, TransparencyLog, \
    export_log, import_log
from mgattest.tlog._promise import verify_set


def body(i: int) -> bytes:
    digest = hashlib.sha256(b"%d" % i).hexdigest()
    return (b'{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":'
            b'{"algorithm":"sha256","value":"%s"}},"signature":{"content":"c2ln",'
            b'"publicKey":{"content":"a2V5"}}}}' % digest.encode())


def build(path: str, n: int, key_type: str) -> TransparencyLog:
    log = TransparencyLog.init(path, origin="bench.example/log",
                               signer=LogSigner.generate(key_type))
    for s in range(0, n, 20_000):
        log.append_many_canonical([CanonicalEntry("hashedrekord", "0.0.1", body(i))
                                   for i in range(s, min(n, s + 20_000))])
    log.signed_checkpoint()
    return log


def run(tmp: str, n: int, key_type: str) -> None:
    log = build(os.path.join(tmp, f"{key_type}.db"), n, key_type)
    start = time.perf_counter()
    with sqlite3.connect(log.path) as src, sqlite3.connect(
            os.path.join(tmp, f"{key_type}-backup.db")) as dst:
        src.backup(dst)
    backup_s = time.perf_counter() - start
    start = time.perf_counter()
    export_log(log.path, os.path.join(tmp, f"{key_type}-export"))
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(n):
        e = log.entry_by_index(i)
        verify_set(log.signer.verifier, e.set_signature, e.body, e.integrated_time,
                   e.log_id, i)
    sets_s = time.perf_counter() - start
    start = time.perf_counter()
    result = import_log(DirectorySource(os.path.join(tmp, f"{key_type}-export")),
                        os.path.join(tmp, f"{key_type}-import.db"), log.signer.verifier)
    import_s = time.perf_counter() - start
    assert result.root_hash == log.root_hash()
    print(f"{key_type}, {n:,} entries: export {export_s:.1f} s "
          f"({export_s / backup_s:.1f} x sqlite backup {backup_s:.2f} s); import "
          f"{import_s:.1f} s ({import_s / sets_s:.2f} x verifying the {n:,} SETs alone, "
          f"{sets_s:.1f} s)")
    log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--key-type", action="append", choices=["ed25519", "ecdsa-p256"])
    args = parser.parse_args()
    n = 5_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        for key_type in args.key_type or ["ecdsa-p256", "ed25519"]:
            run(tmp, n, key_type)


if __name__ == "__main__":
    main()
