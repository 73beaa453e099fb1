#!/usr/bin/env bash
# Run every benchmark at full size (or --quick) and keep each one's output in
# benchmarks/results/<name>.txt. Needs a quiet machine for meaningful figures.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mode=${1:-}
mkdir -p benchmarks/results
status=0
for bench in bench_tlog_core bench_tlog_http bench_tlog_abuse bench_search bench_tlog_export bench_monitor \
             bench_hashing bench_verify_tree bench_sign_verify bench_policy bench_load bench_scanners \
             bench_encrypt; do
  echo "== $bench $mode"
  if ! .venv/bin/python "benchmarks/$bench.py" $mode 2>&1 | tee "benchmarks/results/$bench.txt"; then
    status=1
  fi
done
exit $status
