"""Differential verdicts: mgattest against sigstore-js on real public bundles.

The corpus is the sigstore-conformance bundle-verify suite in tests/vectors/conformance
(public-good and staging bundles made by the upstream projects, with the reference
verdict and its reason); sigstore-python runs on the same cases in
tests/attest/test_conformance_verify.py. Every case's verdict from mgattest must be the
reference one; where sigstore-js differs, JS_DIFFERS says why (docs/realworld.md lists
the counts). A case in neither list that disagrees fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.peers import cli, js_unavailable, sigstore_js_verify

pytestmark = [pytest.mark.interop, pytest.mark.slow]

# sigstore-js (@sigstore/verify 3.1.0) versus the suite's reference verdict.
JS_DIFFERS = {
    "rekor2-dsse-happy-path":
        "@sigstore/verify 3.1.0 recomputes a dsse 0.0.2 (Rekor v2) entry's digest the v1 "
        "way and reports TLOG_BODY_ERROR on a valid bundle; mgattest accepts it",
    "trust-root-tlog-missing-validity-start_fail":
        "sigstore-js treats a log key without validFor.start as valid since the beginning "
        "of time; mgattest refuses such a trusted root (less safe: an unbounded key)",
}


def _cases(conformance_dir: Path) -> list[dict]:
    return json.loads((conformance_dir / "cases.json").read_text())


def _mgattest(conformance_dir: Path, case: dict) -> str:
    from tests.helpers.conformance import verify_args as conformance_args

    code, _output = cli(*conformance_args(case))
    return "pass" if code == 0 else "fail"


def _js(conformance_dir: Path, case: dict) -> str:
    base = conformance_dir
    keys = None
    identity = issuer = None
    if case["verification_mode"] == "key":
        bundle = json.loads((base / case["bundle"]).read_text())
        hint = ((bundle.get("verificationMaterial") or {}).get("publicKey") or {}).get("hint", "")
        keys = {hint: base / case["key"]}
    else:
        identity, issuer = case["expected_identity"], case["expected_issuer"]
    verdict = sigstore_js_verify(bundle=base / case["bundle"],
                                 trusted_root=base / case["trusted_root"],
                                 artifact=base / case["artifact"], identity=identity,
                                 issuer=issuer, keys=keys)
    return "pass" if verdict == "pass" else "fail"


def test_differential_conformance(conformance_dir):
    reason = js_unavailable()
    rows = []
    for case in _cases(conformance_dir):
        name = case["id"].split("/", 1)[1]
        ours = _mgattest(conformance_dir, case)
        js = None if reason else _js(conformance_dir, case)
        rows.append((name, case["expected"], ours, js))
    ours_wrong = [r for r in rows if r[2] != r[1]]
    assert not ours_wrong, ours_wrong
    if reason:
        pytest.skip(f"mgattest agrees on all {len(rows)} cases; sigstore-js skipped: {reason}")
    js_wrong = {r[0] for r in rows if r[3] != r[1]}
    assert js_wrong == set(JS_DIFFERS), sorted(js_wrong ^ set(JS_DIFFERS))
