"""Benchmark: verify-then-load of a safetensors file vs. hashing + plain loading.

Baseline (same run, same file, warm page cache): ``sha256(file)`` + ``safetensors
load_file``. Measured: ``mgattest.load`` with full verification (bundle signature,
log inclusion proof, content scan, policy evaluation) and deserialisation from the
verified in-memory bytes. Target: ratio ≤ 1.3 on a 1 GiB file.

    python benchmarks/bench_load.py            # 1 GiB
    python benchmarks/bench_load.py --quick    # 64 MiB
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(8 << 20)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB instead of 1 GiB")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = (64 << 20) if args.quick else (1 << 30)

    import numpy as np
    import safetensors.numpy as sn

    import mgattest
    from mgattest.attest._keys import generate_signer, public_key_pem
    from mgattest.attest._sign import sign_model, write_bundle_file

    with tempfile.TemporaryDirectory(prefix="mgattest-bench-") as tmp:
        tmpd = Path(tmp)
        os.environ["MGATTEST_HOME"] = str(tmpd / "home")
        model = tmpd / "model.safetensors"
        n = size // 4
        sn.save_file({"w": np.arange(n, dtype=np.float32) % 1024}, str(model))
        signer = generate_signer()
        (tmpd / "release.pub").write_bytes(public_key_pem(signer))
        (tmpd / "policy.yaml").write_text(
            "apiVersion: mgattest/v1\nkind: Policy\ntrust:\n  keys: [{name: r, path: release.pub}]\n"
            "signers: {r: {key: r}}\nrules:\n  - id: m\n    signedBy: {anyOf: [r]}\n"
            "    content: {formats: [safetensors]}\n")
        bundle = write_bundle_file(sign_model(model, signer).bundle, tmpd / "model.sigstore.json")
        _sha256_file(model)  # warm the page cache
        # Warm-up: one-time imports (scanner, digests, CEL) are not per-load costs.
        mgattest.load(model, policy=tmpd / "policy.yaml", bundles=[bundle])
        sn.load_file(str(model))

        base, ours = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            _sha256_file(model)
            plain = sn.load_file(str(model))
            base.append(time.perf_counter() - t)
            del plain
            t = time.perf_counter()
            loaded = mgattest.load(model, policy=tmpd / "policy.yaml", bundles=[bundle])
            ours.append(time.perf_counter() - t)
            del loaded
        b, o = statistics.median(base), statistics.median(ours)
        mib = model.stat().st_size / (1 << 20)
        print(f"file: {mib:.0f} MiB safetensors, {args.repeat} runs (median)")
        print(f"baseline sha256 + safetensors.load_file : {b * 1000:8.1f} ms  ({mib / b:7.1f} MiB/s)")
        print(f"mgattest.load (full verification)       : {o * 1000:8.1f} ms  ({mib / o:7.1f} MiB/s)")
        print(f"ratio mgattest.load / baseline           : {o / b:8.2f}   (target <= 1.30)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
