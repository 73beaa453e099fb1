"""Encryption at rest: a 2 GiB file round trip, throughput and peak RSS.

One random plaintext file (2 GiB; ``--quick``: 256 MiB) in a temporary directory
(deleted afterwards). Each operation runs in a fresh child process, so its peak RSS
(``ru_maxrss``) is its own, and is repeated ``--repeat`` times (median and spread are
printed: the machine may be shared):

* encrypt         = ``mgattest.crypt.encrypt_path`` file -> file
* decrypt         = ``decrypt_path`` file -> file (authenticated, then renamed)
* encrypt->null   = the same encryption (header, wrapped key, stream) into /dev/null:
  the cost without the page-cache/disk writes of a 2 GiB output
* decrypt->memory = ``plaintext_files``, every authenticated segment discarded (what
  ``mgattest.load`` does before copying into its buffer)
* decrypt+hash    = ``plaintext_files`` + SHA-256, nothing written (what signing an
  encrypted model does)

``os.sync()`` runs before every operation (not timed), so one operation's dirty pages
do not throttle the next one's writes.

Baselines measured in the same run, on the same file:

* AES-GCM limit = ``cryptography`` AESGCM over a resident 1 MiB buffer (one core)
* openssl ctr   = ``openssl enc -aes-256-ctr`` file -> file (``openssl enc`` refuses
  AEAD modes; CTR is the same AES core without the authentication)
* cp            = copying the file (the page cache / disk cost of file -> file)
* sha256        = ``hashlib.sha256`` over the file (read + hash)

Targets (issue 14): >= 1 GB/s round trip legs, peak RSS <= 100 MiB.

Usage: python benchmarks/bench_encrypt.py [--quick] [--size-mib N] [--repeat N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MiB = 1 << 20
GB = 1e9

CHILD = r"""
import hashlib, json, resource, sys, time
from mgattest.crypt import KekKeyset, decrypt_path, encrypt_path, plaintext_files
from mgattest.crypt._container import encrypt_to, file_context
op, src, dst, keyset = sys.argv[1:5]
kek = KekKeyset(open(keyset).read(), source="bench")
t = time.perf_counter()
if op == "encrypt":
    encrypt_path(src, dst, kek)
elif op == "decrypt":
    decrypt_path(src, dst, kek)
elif op == "encrypt->null":
    with open(src, "rb", buffering=0) as fh, open("/dev/null", "wb") as sink:
        encrypt_to(fh, sink, kek, file_context("null"))
elif op == "decrypt->memory":
    _, files = plaintext_files(src, kek)
    for chunk in files[0].chunks:
        pass
elif op == "decrypt+hash":
    _, files = plaintext_files(src, kek)
    h = hashlib.sha256()
    for chunk in files[0].chunks:
        h.update(chunk)
    print(h.hexdigest(), file=sys.stderr)
elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed,
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_plaintext(path: Path, size: int) -> None:
    block = os.urandom(16 * MiB)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, len(block))
            fh.write(block[:n])
            left -= n


def file_sha256(path: Path) -> tuple[str, float]:
    import hashlib
    h = hashlib.sha256()
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(MiB)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest(), time.perf_counter() - t


def aesgcm_limit(total: int = 512 * MiB) -> float:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    key, data, nonce = AESGCM(os.urandom(32)), os.urandom(MiB), os.urandom(12)
    t = time.perf_counter()
    for _ in range(total // MiB):
        key.encrypt(nonce, data, None)
    return total / (time.perf_counter() - t)


def run_child(op: str, src: Path, dst: Path, keyset: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run([sys.executable, "-c", CHILD, op, str(src), str(dst), str(keyset)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout)


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def summary(label: str, size: int, seconds: list[float], rss: list[float] | None = None) -> dict:
    rates = sorted(size / s / GB for s in seconds)
    row = {"op": label, "median_GBps": round(statistics.median(rates), 3),
           "min_GBps": round(rates[0], 3), "max_GBps": round(rates[-1], 3), "runs": len(rates)}
    if rss:
        row["peak_rss_mib"] = round(max(rss), 1)
    print(f"{label:16s} median {row['median_GBps']:.2f} GB/s  (min {row['min_GBps']:.2f}, "
          f"max {row['max_GBps']:.2f}, n={len(rates)})"
          + (f"  peak RSS {row['peak_rss_mib']:.0f} MiB" if rss else ""))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size-mib", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    size = (args.size_mib or (256 if args.quick else 2048)) * MiB
    work = Path(tempfile.mkdtemp(prefix="bench-encrypt-", dir=args.dir))
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from mgattest.crypt import KekKeyset
        keyset = work / "kek.json"
        keyset.write_text(KekKeyset.generate().to_json())
        plain, enc, out = work / "plain.bin", work / "plain.enc", work / "plain.out"
        write_plaintext(plain, size)
        want, _ = file_sha256(plain)
        print(f"plaintext {size / MiB:.0f} MiB, {args.repeat} runs each, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}")
        limit = aesgcm_limit()
        print(f"{'AES-GCM limit':16s} {limit / GB:.2f} GB/s (one core, resident buffer)")
        results: dict[str, tuple[list[float], list[float]]] = {
            k: ([], []) for k in ("encrypt", "decrypt", "encrypt->null", "decrypt->memory",
                                  "decrypt+hash")}
        baselines: dict[str, list[float]] = {"openssl ctr": [], "cp": [], "sha256": []}
        for _ in range(args.repeat):
            for op, dst in (("encrypt", enc), ("decrypt", out), ("encrypt->null", None),
                            ("decrypt->memory", None), ("decrypt+hash", None)):
                src = plain if op.startswith("encrypt") else enc
                os.sync()
                r = run_child(op, src, dst or work / "unused", keyset)
                results[op][0].append(r["seconds"])
                results[op][1].append(r["maxrss_mib"])
                if op == "decrypt":
                    got, _ = file_sha256(out)
                    assert got == want, "round trip changed the bytes"
                    out.unlink()
            os.sync()
            baselines["openssl ctr"].append(timed(
                ["openssl", "enc", "-aes-256-ctr", "-K", "00" * 32, "-iv", "00" * 16,
                 "-in", str(plain), "-out", str(work / "ctr.bin")]))
            (work / "ctr.bin").unlink()
            os.sync()
            baselines["cp"].append(timed(["cp", str(plain), str(work / "copy.bin")]))
            (work / "copy.bin").unlink()
            baselines["sha256"].append(file_sha256(plain)[1])
            enc.unlink()
        rows = [summary(op, size, secs, rss) for op, (secs, rss) in results.items()]
        rows += [summary(op, size, secs) for op, secs in baselines.items()]
        print(json.dumps({"size_bytes": size, "aesgcm_limit_GBps": round(limit / GB, 3),
                          "rows": rows}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
