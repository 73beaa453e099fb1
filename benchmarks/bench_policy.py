"""Benchmark: evaluating a 20-rule policy (excluding hashing and signature checks).

The verdict is computed over constructed verified attestations, a model check and
content reports, so only the policy engine is timed. Every rule has signedBy (key or
keyless), transparencyLog, an SLSA provenance expectation, a digest deny-list and
content rules; every fourth rule also a CEL check. Baseline (same run): the same
model under a 1-rule policy. Target: ≤ 2 ms per 20-rule evaluation.

    python benchmarks/bench_policy.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def _policy(n_rules: int, pem: str):
    from mgattest.policy._loader import policy_from_bytes

    pem_block = "".join("        " + ln + "\n" for ln in pem.strip().splitlines())
    text = ("apiVersion: mgattest/v1\nkind: Policy\ntrust:\n  keys:\n    - name: rel\n"
            "      pem: |\n" + pem_block +
            "signers:\n  rel: {key: rel}\n  ci:\n    keyless:\n"
            "      issuer: https://token.actions.githubusercontent.com\n"
            "      subject: {regex: 'https://github\\.com/acme/.*'}\nrules:\n")
    for i in range(n_rules):
        text += (f"  - id: rule-{i}\n    match: ['**/*.safetensors', '*.safetensors', '*.json']\n"
                 "    signedBy: {anyOf: [rel, ci]}\n"
                 "    transparencyLog: {require: required, minEntries: 1}\n"
                 "    attestations:\n      - predicateType: https://slsa.dev/provenance/v1\n"
                 f"        provenance:\n          builderId: {{regex: 'https://builder/.*|https://b{i}/.*'}}\n"
                 "          dependenciesPinned: true\n"
                 f"    digests: {{deny: ['sha256:{i:064x}']}}\n"
                 "    content: {formats: [safetensors, json], pickle: deny}\n")
        if i % 4 == 0:  # a CEL check in every fourth rule
            text += (f"    cel:\n      - {{id: name, expr: 'artifact.name.size() < {200 + i}', "
                     "message: m}\n")
    return policy_from_bytes(text.encode(), source=f"{n_rules}-rules")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    iterations = 200 if args.quick else 2000

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from mgattest.attest._results import (
        FileCheck,
        LogProof,
        ModelCheck,
        SignerInfo,
        VerifiedAttestation,
        VerifiedTime,
    )
    from mgattest.policy._evaluate import evaluate

    pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = pub.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    fp = hashlib.sha256(pub.public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()
    files = {f"model-{i:02d}.safetensors": hashlib.sha256(bytes([i])).hexdigest() for i in range(4)}
    files["config.json"] = hashlib.sha256(b"c").hexdigest()
    pred = {"buildDefinition": {"buildType": "t", "externalParameters": {},
                                "resolvedDependencies": [{"uri": "git+x", "digest": {"gitCommit": "a" * 40}}]},
            "runDetails": {"builder": {"id": "https://builder/v1"}}}
    subjects = [{"name": n, "digest": {"sha256": d}} for n, d in files.items()]
    att = VerifiedAttestation("b.json", "m", {"subject": subjects, "predicate": pred},
                              "https://slsa.dev/provenance/v1", pred, subjects,
                              SignerInfo("key", fp),
                              [LogProof("ab" * 32, 7, VerifiedTime(1_790_000_000, "set", "log index 7"),
                                        "dsse", "0.0.1", True, "o", 8, True)])
    model = ModelCheck("/m", [FileCheck(n, "ok", {"sha256": d}) for n, d in files.items()])

    class Report:
        def __init__(self, name):
            self.name, self.verdict, self.findings = name, "safe", []
            self.format = name.rsplit(".", 1)[-1]  # what the scanner would have detected

    reports = [Report(n) for n in files]
    results = {}
    for n_rules in (1, 20):
        pol = _policy(n_rules, pem)
        first = evaluate(pol, [att], model, reports)
        assert first.allowed, first.reasons
        times = []
        for _ in range(iterations):
            t = time.perf_counter()
            evaluate(pol, [att], model, reports)
            times.append(time.perf_counter() - t)
        results[n_rules] = statistics.median(times)
        print(f"{n_rules:2d}-rule policy, {len(files)} files: median {results[n_rules] * 1000:7.3f} ms "
              f"(min {min(times) * 1000:.3f} ms) "
              f"(p95 {sorted(times)[int(len(times) * 0.95)] * 1000:.3f} ms, {iterations} runs)")
    print(f"ratio 20-rule / 1-rule (baseline)  : {results[20] / results[1]:7.2f}")
    print(f"20-rule evaluation vs 2 ms target  : {results[20] * 1000 / 2:7.2f} x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
