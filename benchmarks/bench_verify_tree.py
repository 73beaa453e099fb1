#!/usr/bin/env python3
"""Whole-process ``mgattest verify`` over trees, against this machine's SHA-256 limit.

Workloads (random bytes, generated in a scratch directory that is deleted afterwards):

* small  -- 10,000 files of 2-6 KiB in 100 directories   (--quick: 2,000 files)
* big    -- one 2 GiB file, signed with 64 MiB shards      (--quick: 256 MiB)
* big1   -- the same file signed whole (one sha256 stream: at most one core)
* shards -- a directory of 4 x 384 MiB files, file mode    (--quick: 4 x 64 MiB)

Baselines measured in the same run, on the same files:

* limit     -- every core hashing a resident 1 MiB buffer with ``hashlib.sha256`` in the
               same time window: N threads, and N processes; the highest such rate,
               measured at the start and again before each case, is the limit
* sha256sum and ``openssl dgst -sha256`` over the same files (one process each)
* model_signing ``verify key`` (whole process; skipped with --no-model-signing)
* a 1-file model verified by mgattest: the fixed cost of a verify process (interpreter,
  imports, key, bundle, signature), used to report the per-file overhead

Wall-clock rates need a quiet machine. Each case also prints CPU figures, which hold up
under load: the process's user+sys time, the share of it SHA-256 needs (the bytes over
one thread's sha256 rate per CPU second), and the CPU time per file.

Each mgattest figure is a real ``mgattest verify`` subprocess (``os.wait4`` gives its
peak RSS and CPU times), repeated ``--repeat`` times: the median is reported with the
spread (min-max), and the load average before and after, because the machine may be
shared. Files live in ``--dir`` (default /dev/shm, a tmpfs: resident, like the limit's
buffer) and are read once before timing.

``--all`` times ``mgattest sign --all DIR`` / ``verify --all DIR`` (issue 13's
repository commands) instead of single-model sign/verify of each workload; it needs a
build that has them (see ``ALL_COMMANDS_HOOK``). The fixed cost stays that of a
single-model verify.

Usage: python benchmarks/bench_verify_tree.py [--quick] [--repeat N] [--dir DIR]
       [--only small,big,big1,shards] [--all] [--no-model-signing]
Targets (issue 13): throughput >= 0.80 of the limit, peak RSS <= 150 MiB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

BIN = Path(sys.executable).parent
# Children run here, so `-m mgattest` is this checkout (--checkout picks another one).
REPO = Path(__file__).resolve().parents[1]
MGATTEST = [sys.executable, "-m", "mgattest"]
MODEL_SIGNING = BIN / "model_signing"
MiB = 1 << 20
LIMIT_BYTES = 1024 * MiB  # hashed by every worker when measuring the limit


# --------------------------------------------------------------------------- the limit

def _hash_resident(total: int, out: "object | None" = None) -> tuple[float, float]:
    buf = memoryview(random.randbytes(MiB))
    h = hashlib.sha256()
    h.update(buf)  # warm up
    start = time.perf_counter()
    for _ in range(total // MiB):
        h.update(buf)
    span = (start, time.perf_counter())
    if out is not None:
        out.put(span)  # type: ignore[attr-defined]
    return span


def _window_rate(spans: list[tuple[float, float]], total: int) -> float:
    return len(spans) * total / (max(e for _, e in spans) - min(s for s, _ in spans))


def limit_threads(n: int, total: int = LIMIT_BYTES) -> float:
    """Bytes/s of ``n`` threads hashing resident buffers at once (hashlib drops the GIL)."""
    spans: list[tuple[float, float]] = []
    threads = [threading.Thread(target=lambda: spans.append(_hash_resident(total)))
               for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _window_rate(spans, total)


def limit_processes(n: int, total: int = LIMIT_BYTES) -> float:
    """Bytes/s of ``n`` processes hashing resident buffers at once."""
    ctx = get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_hash_resident, args=(total, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    spans = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return _window_rate(spans, total)


def sha256_cpu_rate(total: int = 512 * MiB) -> float:
    """Bytes per second of CPU time of one thread of hashlib.sha256 over a resident buffer:
    per CPU second, so it holds on a busy machine (wall-clock rates do not)."""
    buf = memoryview(random.randbytes(MiB))
    h = hashlib.sha256()
    h.update(buf)
    start = time.thread_time()
    for _ in range(total // MiB):
        h.update(buf)
    return total / (time.thread_time() - start)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- processes

@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    user: float
    sys: float
    rss_mib: float  # peak resident set of the child


def run(cmd: list[str], env: dict[str, str]) -> Run:
    """One child process, timed; raises SystemExit when it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=env.get("BENCH_CHECKOUT", REPO),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(cmd)}\n{stderr[-2000:]}")
    return Run(wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024)


def repeat(cmd: list[str], env: dict[str, str], times: int) -> list[Run]:
    run(cmd, env)  # warm-up: page cache, byte-compiled modules
    return [run(cmd, env) for _ in range(times)]


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


# --------------------------------------------------------------------------- workloads

def write_small_tree(root: Path, count: int) -> None:
    block = random.randbytes(8192)
    for i in range(count):
        d = root / f"d{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        size = 2048 + (i * 37) % 4096
        (d / f"f{i:05d}.bin").write_bytes(i.to_bytes(8, "big") + block[:size - 8])


def write_file(path: Path, size: int, seed: int) -> None:
    block = random.Random(seed).randbytes(4 * MiB)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(seed.to_bytes(8, "big"))
        left = size - 8
        while left > 0:
            fh.write(block[:min(left, len(block))])
            left -= min(left, len(block))


def files_of(model: Path) -> list[Path]:
    return [model] if model.is_file() else sorted(p for p in model.rglob("*") if p.is_file())


def warm(model: Path) -> None:
    for f in files_of(model):
        with open(f, "rb") as fh:
            while fh.read(8 * MiB):
                pass


def tool_seconds(argv: list[str], files: list[Path], times: int) -> float | None:
    """Median seconds of one ``argv FILE...`` process over every file (in argv-sized chunks)."""
    if shutil.which(argv[0]) is None:
        return None
    chunks = [files[i:i + 2000] for i in range(0, len(files), 2000)]
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        for chunk in chunks:
            subprocess.run(argv + [str(f) for f in chunk], check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return median(samples)


# ALL_COMMANDS_HOOK: with --all, the repository-wide commands of issue 13 are timed
# instead of single-model sign/verify. They live on another branch at the time of
# writing; after the merge, check that these argv match their options.
def sign_argv(model: Path, bundle: Path, key: Path, shard: int | None, use_all: bool) -> list[str]:
    shard_opt = ["--shard-size", str(shard)] if shard else []
    if use_all:
        return [*MGATTEST, "sign", "--all", str(model), "--key", str(key), "--no-log", *shard_opt]
    return [*MGATTEST, "sign", str(model), "--key", str(key), "--no-log", "--out", str(bundle),
            "--force", *shard_opt]


def verify_argv(model: Path, bundle: Path, pub: Path, use_all: bool) -> list[str]:
    if use_all:
        return [*MGATTEST, "verify", "--all", str(model), "--key", str(pub), "--allow-unlogged"]
    return [*MGATTEST, "verify", str(model), "--key", str(pub), "--bundle", str(bundle),
            "--allow-unlogged"]


def model_signing_seconds(model: Path, work: Path, env: dict[str, str], times: int) -> float:
    sig = work / (model.name + ".ms.json")
    run([str(MODEL_SIGNING), "sign", "key", str(model), "--private_key", str(work / "k.key"),
         "--signature", str(sig)], env)
    runs = repeat([str(MODEL_SIGNING), "verify", "key", str(model), "--signature", str(sig),
                   "--public_key", str(work / "k.pub")], env, times)
    return median([r.wall for r in runs])


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    big_files: dict[str, int]  # name -> size of large random files
    small_files: int  # how many 2-6 KiB files (write_small_tree)
    shard: int | None  # sign with --shard-size

    def build(self, work: Path) -> Path:
        """Write the model under ``work``; return its path."""
        model = work / self.key
        if self.small_files:
            write_small_tree(model, self.small_files)
        for seed, (name, size) in enumerate(sorted(self.big_files.items()), start=1):
            write_file(model / name, size, seed)
        return model


def measure(case: Case, model: Path, work: Path, env: dict[str, str], args: argparse.Namespace,
            limit: float, per_cpu_second: float, fixed_cmd: list[str]) -> bool:
    files = files_of(model)
    nbytes = sum(f.stat().st_size for f in files)
    bundle = work / f"{case.key}.sigstore.json"
    warm(model)
    # On a shared machine the limit varies: keep the highest seen, measured next to this case.
    limit = max(limit, limit_threads(cores()), limit_processes(cores()))
    run(sign_argv(model, bundle, work / "k.key", case.shard, args.all), env)
    cmd = verify_argv(model, bundle, work / "k.pub", args.all)
    run(cmd, env)  # warm-up
    before = load()
    # The fixed cost of a verify process is measured between the runs (same load).
    fixed_runs, runs = [], []
    for _ in range(args.repeat):
        fixed_runs.append(run(fixed_cmd, env))
        runs.append(run(cmd, env))
    after = load()
    fixed = median([r.wall for r in fixed_runs])
    walls = [r.wall for r in runs]
    wall = median(walls)
    rate = nbytes / wall
    rss = max(r.rss_mib for r in runs)
    print(f"\n== {case.label}: {len(files)} file(s), {nbytes / MiB:.1f} MiB "
          f"(load before/after: {before} / {after}; limit used {limit / MiB:.0f} MiB/s)")
    print(f"  mgattest verify  median {wall:.3f} s (spread {spread(walls)}, n={len(runs)})  "
          f"{rate / MiB:8.1f} MiB/s   / limit = {rate / limit:.2f}   peak RSS {rss:.1f} MiB   "
          f"cpu user {median([r.user for r in runs]):.2f} s sys "
          f"{median([r.sys for r in runs]):.2f} s")
    hashing = nbytes / limit
    net = max(wall - fixed, 1e-9)
    print(f"  without the fixed cost of a verify process (1-file model, median {fixed:.3f} s, "
          f"spread {spread([r.wall for r in fixed_runs])}): {nbytes / net / MiB:8.1f} MiB/s"
          f"   / limit = {hashing / net:.2f}")
    # CPU figures hold up better than wall time on a busy machine: the share of the
    # process's CPU time that SHA-256 itself needs (bytes / sha256 per CPU second).
    cpu = median([r.user + r.sys for r in runs])
    fixed_cpu = median([r.user + r.sys for r in fixed_runs])
    print(f"  cpu: {cpu:.3f} s (user+sys, median; 1-file verify {fixed_cpu:.3f} s); sha256 "
          f"needs {nbytes / per_cpu_second:.3f} s of it: cpu efficiency "
          f"{nbytes / per_cpu_second / cpu:.2f}, "
          f"{nbytes / per_cpu_second / max(cpu - fixed_cpu, 1e-9):.2f} without the fixed cost")
    if len(files) >= 100:  # per-file overhead only means something for many files
        print(f"  per file (cpu): {(cpu - fixed_cpu) / len(files) * 1e6:.1f} us")
        per_file = (wall - fixed) / len(files) * 1e6
        over = (wall - fixed - hashing) / len(files) * 1e6
        print(f"  per file: {per_file:.1f} us in all, {over:.1f} us beyond hashing its bytes "
              "at the limit")
    for name, argv in (("sha256sum", ["sha256sum"]), ("openssl", ["openssl", "dgst", "-sha256"])):
        secs = tool_seconds(argv, files, max(1, args.repeat // 2))
        if secs is None:
            print(f"  {name:<16} not installed")
            continue
        print(f"  {name:<16} {secs:.3f} s  {nbytes / secs / MiB:8.1f} MiB/s   "
              f"mgattest is {secs / wall:.2f}x as fast")
    if args.model_signing and MODEL_SIGNING.exists():
        secs = model_signing_seconds(model, work, env, max(1, args.repeat // 2))
        print(f"  {'model_signing':<16} {secs:.3f} s  {nbytes / secs / MiB:8.1f} MiB/s   "
              f"mgattest is {secs / wall:.2f}x as fast")
    ok = rate / limit >= 0.8 and rss <= 150
    print(f"  target >= 0.80 of the limit and peak RSS <= 150 MiB: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs per figure (default 5)")
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                    help="scratch directory (default /dev/shm)")
    ap.add_argument("--only", default="small,big,big1,shards", help="workloads to run")
    ap.add_argument("--all", action="store_true", help="time sign --all / verify --all")
    ap.add_argument("--checkout", default=str(REPO),
                    help="the mgattest checkout to time (default: this one), e.g. to compare "
                         "two branches in the same minutes")
    ap.add_argument("--no-model-signing", dest="model_signing", action="store_false",
                    help="skip the model_signing baseline")
    args = ap.parse_args()
    args.repeat = args.repeat or (2 if args.quick else 5)
    n_small = 2000 if args.quick else 10_000
    big = 256 * MiB if args.quick else 2048 * MiB
    shard_file = 64 * MiB if args.quick else 384 * MiB
    cases = [
        Case("small", f"{n_small} small files (2-6 KiB)", {}, n_small, None),
        Case("big", f"one {big // MiB} MiB file, 64 MiB shards", {"model.bin": big}, 0, 64 * MiB),
        Case("big1", f"one {big // MiB} MiB file, signed whole (file mode)", {"model.bin": big}, 0,
             None),
        Case("shards", f"4 x {shard_file // MiB} MiB shards (file mode)",
             {f"model-{i:05d}-of-00004.safetensors": shard_file for i in range(1, 5)}, 0, None),
    ]
    wanted = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench-verify-tree-", dir=args.dir))
    env = dict(os.environ, MGATTEST_HOME=str(work / "home"), BENCH_CHECKOUT=args.checkout,
               PYTHONPATH=args.checkout,
               PYTHONPYCACHEPREFIX=str(work / "pycache"))  # compiled once, as a wheel would be
    for name in ("MGATTEST_KEY_PASSWORD", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    n = cores()
    try:
        if args.all:
            help_text = subprocess.run([*MGATTEST, "verify", "--help"], env=env,
                                       cwd=env.get("BENCH_CHECKOUT", REPO),
                                       check=True, capture_output=True, text=True).stdout
            if "--all" not in help_text:
                print("this build has no `verify --all` (see ALL_COMMANDS_HOOK)")
                return 2
        by_threads, by_procs = limit_threads(n), limit_processes(n)
        single = limit_threads(1)
        per_cpu_second = sha256_cpu_rate()
        limit = max(by_threads, by_procs)
        commit = subprocess.run(["git", "-C", args.checkout, "log", "-1", "--format=%h %s"],
                                capture_output=True, text=True).stdout.strip()[:70]
        print(f"mgattest checkout: {args.checkout} ({commit or 'not a git checkout'})")
        print(f"cores: {n}   sha256 over a resident buffer: 1 thread {single / MiB:.0f} MiB/s, "
              f"{n} threads {by_threads / MiB:.0f} MiB/s, {n} processes {by_procs / MiB:.0f} "
              f"MiB/s   limit = {limit / MiB:.0f} MiB/s ({limit / single / n:.2f} of cores x "
              f"one thread)   sha256 per CPU second: {per_cpu_second / MiB:.0f} MiB   "
              f"load: {load()}   files in: {work}")
        run([*MGATTEST, "keygen", "--out", str(work / "k")], env)
        tiny = work / "tiny"
        write_file(tiny / "model.bin", 4096, 0)
        run(sign_argv(tiny, work / "tiny.json", work / "k.key", None, False), env)
        fixed_cmd = verify_argv(tiny, work / "tiny.json", work / "k.pub", False)
        results = []
        for case in cases:
            if case.key not in wanted:
                continue
            model = case.build(work)
            results.append(measure(case, model, work, env, args, limit, per_cpu_second,
                                   fixed_cmd))
            shutil.rmtree(model)
        print(f"\nlimit re-measured at the end: {max(limit_threads(n), limit_processes(n)) / MiB:.0f}"
              f" MiB/s (start: {limit / MiB:.0f})   load: {load()}")
        print("overall:", "PASS" if all(results) else "FAIL (see above)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
