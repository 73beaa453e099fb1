#!/usr/bin/env python3
"""Whole-process sign/verify timings of mgattest against model_signing, in one run.

Measures (warm page cache, best of --repeat runs, each a separate process):

* a single large file (2 GiB; --quick: 128 MiB): ``mgattest sign --shard-size`` /
  ``verify`` vs ``model_signing sign key`` / ``verify key``   (target ≥ 2×)
* 200 × 10 MiB files (--quick: 40 × 2 MiB), file mode        (target ≥ 1.3×)
* peak RSS of every mgattest process (target ≤ 150 MiB)
* a 3-file model signed end to end into the local log       (target ≤ 0.5 s)
* ``mgattest --help``                                        (target ≤ 0.3 s)

Prints every figure and the ratio model_signing time / mgattest time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
MGATTEST = str(BIN / "mgattest")
MODEL_SIGNING = str(BIN / "model_signing")
MiB = 1024 * 1024


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{stderr}")
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def best(cmd: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    runs = [run(cmd, env) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def write_random(path: Path, size: int) -> None:
    block = os.urandom(min(size, 4 * MiB))
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(block[:min(left, len(block))])
            left -= len(block)


def warm(path: Path) -> None:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(8 * MiB):
                pass


def compare(label: str, model: Path, work: Path, env: dict[str, str], repeat: int,
            shard_size: int | None, rss: list[float]) -> None:
    ours_sig, theirs_sig = work / f"{label}.mg.json", work / f"{label}.ms.json"
    shard = ["--shard-size", str(shard_size)] if shard_size else []
    warm(model)
    sign_ours, rss_sign = best([MGATTEST, "sign", str(model), "--key", str(work / "k.key"),
                                "--no-log", "--out", str(ours_sig), "--force", *shard], env, repeat)
    verify_ours, rss_verify = best([MGATTEST, "verify", str(model), "--key",
                                    str(work / "k.pub"), "--bundle", str(ours_sig),
                                    "--allow-unlogged"], env, repeat)
    sign_theirs, _ = best([MODEL_SIGNING, "sign", "key", str(model), "--private_key",
                           str(work / "k.key"), "--signature", str(theirs_sig)], env, repeat)
    verify_theirs, _ = best([MODEL_SIGNING, "verify", "key", str(model), "--signature",
                             str(theirs_sig), "--public_key", str(work / "k.pub")], env, repeat)
    rss += [rss_sign, rss_verify]
    print(f"{label}:")
    print(f"  sign    mgattest {sign_ours:7.2f} s   model_signing {sign_theirs:7.2f} s   "
          f"ratio {sign_theirs / sign_ours:5.2f}x")
    print(f"  verify  mgattest {verify_ours:7.2f} s   model_signing {verify_theirs:7.2f} s   "
          f"ratio {verify_theirs / verify_ours:5.2f}x")
    print(f"  peak RSS mgattest sign {rss_sign:.0f} MiB, verify {rss_verify:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per measurement")
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    big = 128 * MiB if args.quick else 2048 * MiB
    n_files, file_size = (40, 2 * MiB) if args.quick else (200, 10 * MiB)
    work = Path(tempfile.mkdtemp(prefix="bench-sign-", dir=args.dir))
    env = dict(os.environ, MGATTEST_HOME=str(work / "home"),
               # byte-compile once into the scratch dir, as an installed wheel would be;
               # with PYTHONDONTWRITEBYTECODE every run would recompile mgattest (~0.3 s)
               PYTHONPYCACHEPREFIX=str(work / "pycache"))
    for name in ("MGATTEST_KEY_PASSWORD", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    try:
        subprocess.run([MGATTEST, "keygen", "--out", str(work / "k")], env=env, check=True,
                       capture_output=True)
        rss: list[float] = []

        single = work / "single"
        single.mkdir()
        write_random(single / "model.bin", big)
        compare(f"single file {big // MiB} MiB (shard mode)", single, work, env, repeat,
                64 * MiB, rss)

        many = work / "many"
        many.mkdir()
        for i in range(n_files):
            write_random(many / f"shard-{i:04d}.bin", file_size)
        compare(f"{n_files} x {file_size // MiB} MiB (file mode)", many, work, env, repeat,
                None, rss)

        small = work / "small"
        small.mkdir()
        for name, size in (("config.json", 600), ("tokenizer.json", 20_000),
                           ("model.safetensors", 2 * MiB)):
            write_random(small / name, size)
        subprocess.run([MGATTEST, "sign", str(small), "--key", str(work / "k.key")], env=env,
                       check=True, capture_output=True)  # creates the local log
        # --force: each timed run replaces the bundle the previous one wrote
        small_sign, small_rss = best([MGATTEST, "sign", str(small), "--key",
                                      str(work / "k.key"), "--force"], env, max(repeat, 3))
        rss.append(small_rss)
        help_time, _ = best([MGATTEST, "--help"], env, max(repeat, 3))
        print(f"3-file model, sign into local log: {small_sign:.3f} s (target <= 0.5 s)")
        print(f"mgattest --help: {help_time:.3f} s (target <= 0.3 s)")
        print(f"peak RSS over all mgattest runs: {max(rss):.0f} MiB (target <= 150 MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
