"""mgattest inspect vs picklescan, modelscan and fickling on the test corpus.

Prints, per scanner: malicious files detected / missed / errored, benign files flagged
(false positives) or errored, and scan throughput (MB/s) on the corpus and on two large
synthetic pickles (object-heavy, array-heavy). Throughput ratios are against picklescan
measured in the same run. Peers run in their own venv (``.venv-scanners``, created here
if missing); each is timed in-process on the same files, excluding interpreter start-up.

    .venv/bin/python benchmarks/bench_scanners.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNERS_VENV = ROOT / ".venv-scanners"
PEERS = ("picklescan", "modelscan", "fickling")

# Runs inside .venv-scanners: reads "path" lines, prints one JSON line per file.
PEER_DRIVER = r'''
import json, sys, time, logging, warnings
logging.disable(logging.CRITICAL)
warnings.simplefilter("ignore")
which = sys.argv[1]
if which == "picklescan":
    from picklescan.scanner import scan_file_path
    def run(path):
        r = scan_file_path(path)
        return r.issues_count > 0 or r.infected_files > 0, bool(r.scan_err)
elif which == "modelscan":
    from modelscan.modelscan import ModelScan
    def run(path):
        r = ModelScan().scan(path)
        return r["summary"]["total_issues"] > 0, bool(r.get("errors"))
elif which == "fickling":
    from fickling.loader import scan_file
    from fickling.analysis import Severity
    def run(path):
        r = scan_file(path, graceful=True)
        return r.severity != Severity.LIKELY_SAFE, bool(r.errors)
paths = [line for line in sys.stdin.read().splitlines() if line]
for path in paths:
    t = time.perf_counter()
    try:
        flagged, error = run(path)
    except Exception as exc:
        flagged, error = False, True
    dt = time.perf_counter() - t
    print(json.dumps({"path": path, "flagged": flagged, "error": error, "seconds": dt}),
          flush=True)
'''


def ensure_scanners_venv() -> Path:
    """The peers' interpreter, creating the venv (and installing the peers) if missing."""
    python = SCANNERS_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {SCANNERS_VENV} (picklescan, modelscan, fickling) ...", flush=True)
        subprocess.run(["python3", "-m", "venv", str(SCANNERS_VENV)], check=True)
        subprocess.run([str(SCANNERS_VENV / "bin" / "pip"), "install", "-q", "picklescan",
                        "modelscan", "fickling"], check=True)
    probe = subprocess.run([str(python), "-c", "import fickling.analysis"], capture_output=True)
    if probe.returncode != 0:  # fickling 0.1.x imports typing_extensions without declaring it
        subprocess.run([str(SCANNERS_VENV / "bin" / "pip"), "install", "-q",
                        "typing_extensions"], check=True)
    return python


def run_peer(python: Path, which: str, paths: list[Path]) -> dict[str, dict]:
    proc = subprocess.run([str(python), "-c", PEER_DRIVER, which], input="\n".join(
        map(str, paths)), capture_output=True, text=True, timeout=3600)
    rows = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            rows[row["path"]] = row
    for path in paths:  # a crashed peer errs on whatever it did not report
        rows.setdefault(str(path), {"path": str(path), "flagged": False, "error": True,
                                    "seconds": 0.0})
    return rows


def run_ours(paths: list[Path]) -> dict[str, dict]:
    from mgattest.inspect import SAFE, scan_path

    rows = {}
    for path in paths:
        t = time.perf_counter()
        try:
            reports = scan_path(path)
            flagged, error = any(r.verdict != SAFE for r in reports), False
        except Exception:  # noqa: BLE001 - counted, not hidden
            flagged, error = False, True
        rows[str(path)] = {"path": str(path), "flagged": flagged, "error": error,
                           "seconds": time.perf_counter() - t}
    return rows


def big_files(workdir: Path, mb: int) -> dict[str, Path]:
    """An object-heavy pickle (many small opcodes) and an array-heavy one, ~mb MB each."""
    import numpy as np

    out = {}
    objects = [{"id": i, "name": f"tok{i}", "score": i * 0.5, "tags": ("a", "b")}
               for i in range(mb * 16_000)]
    path = workdir / "big_objects.pkl"
    path.write_bytes(pickle.dumps(objects, protocol=4))
    out["objects"] = path
    path = workdir / "big_arrays.pkl"
    path.write_bytes(pickle.dumps({f"layer{i}": np.ones(mb * 1024 * 32, dtype=np.float32)
                                   for i in range(8)}, protocol=4))
    out["arrays"] = path
    return out


def summarise(name: str, rows: dict[str, dict], malicious: set[str], benign: set[str]) -> dict:
    mal = [rows[p] for p in malicious]
    ben = [rows[p] for p in benign]
    size = sum(os.path.getsize(p) for p in malicious | benign if os.path.isfile(p))
    seconds = sum(r["seconds"] for r in mal + ben)
    return {
        "scanner": name,
        "detected": sum(r["flagged"] for r in mal),
        "missed": sum(not r["flagged"] and not r["error"] for r in mal),
        "errors_on_malicious": sum(r["error"] and not r["flagged"] for r in mal),
        "false_positives": sum(r["flagged"] for r in ben),
        "errors_on_benign": sum(r["error"] for r in ben),
        "corpus_seconds": seconds,
        "corpus_mb_s": size / 1e6 / seconds if seconds else float("inf"),
        "missed_files": sorted(Path(r["path"]).name for r in mal
                               if not r["flagged"]),
        "false_positive_files": sorted(Path(r["path"]).name for r in ben if r["flagged"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI / busy box)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--peers", default=",".join(PEERS))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.helpers.corpus import build_corpus

    peers = [p for p in args.peers.split(",") if p]
    python = ensure_scanners_venv() if peers else None
    with tempfile.TemporaryDirectory(prefix="bench-scanners-") as tmp:
        corpus = build_corpus(Path(tmp) / "corpus")
        malicious = {str(p) for p, _kind in corpus.malicious.values()}
        benign = {str(p) for p in corpus.benign.values()}
        paths = [Path(p) for p in sorted(malicious | benign)]
        bigs = big_files(Path(tmp), 2 if args.quick else 40)
        results = {"mgattest": summarise("mgattest", run_ours(paths), malicious, benign)}
        big_rows = {"mgattest": run_ours(list(bigs.values()))}
        for peer in peers:
            results[peer] = summarise(peer, run_peer(python, peer, paths), malicious, benign)
            big_rows[peer] = run_peer(python, peer, list(bigs.values()))
        for name, rows in big_rows.items():
            for kind, path in bigs.items():
                row = rows[str(path)]
                mb = path.stat().st_size / 1e6
                results[name][f"{kind}_mb_s"] = (mb / row["seconds"] if row["seconds"] and
                                                 not row["error"] else 0.0)
    base = results.get("picklescan")
    for res in results.values():
        for key in ("corpus_mb_s", "objects_mb_s", "arrays_mb_s"):
            if base and base.get(key):
                res[key.replace("_mb_s", "_vs_picklescan")] = res[key] / base[key]
    if args.json:
        print(json.dumps({"quick": args.quick, "malicious": len(malicious),
                          "benign": len(benign), "results": results}, indent=2))
        return 0
    print(f"corpus: {len(malicious)} malicious, {len(benign)} benign files"
          f"{' (quick sizes)' if args.quick else ''}")
    header = (f"{'scanner':11} {'detected':>9} {'missed':>6} {'err(mal)':>8} {'FP':>4} "
              f"{'err(ben)':>8} {'corpus MB/s':>11} {'objects MB/s':>12} {'arrays MB/s':>11}"
              f" {'x picklescan (corpus/objects/arrays)':>37}")
    print(header)
    for res in results.values():
        ratio = "/".join(f"{res.get(k, 0):.2f}" for k in (
            "corpus_vs_picklescan", "objects_vs_picklescan", "arrays_vs_picklescan"))
        print(f"{res['scanner']:11} {res['detected']:>5}/{len(malicious):<3} {res['missed']:>6} "
              f"{res['errors_on_malicious']:>8} {res['false_positives']:>4} "
              f"{res['errors_on_benign']:>8} {res['corpus_mb_s']:>11.1f} "
              f"{res['objects_mb_s']:>12.1f} {res['arrays_mb_s']:>11.1f} {ratio:>37}")
    for res in results.values():
        if res["missed_files"]:
            print(f"  {res['scanner']} missed: {', '.join(res['missed_files'])}")
        if res["false_positive_files"]:
            print(f"  {res['scanner']} false positives: {', '.join(res['false_positive_files'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
