"""files.maxSize: the policy's size limit (schema, compile, the ``size`` clause)."""

from __future__ import annotations

import pytest

from mgattest.attest import FileCheck, ModelCheck
from mgattest.inspect import FileReport
from mgattest.policy import PolicyError, evaluate, policy_from_bytes

POLICY = """apiVersion: mgattest/v1
kind: Policy
mode: {mode}
rules:
  - id: weights
    match: ["**"]
    files:
      unsigned: allow
      maxSize: {limit}
    content:
      scan: "off"
"""


def _policy(limit: str, mode: str = "enforce"):
    return policy_from_bytes(POLICY.format(limit=limit, mode=mode).encode(), source="p.yaml")


@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("1024", 1024), ("'1KiB'", 1024), ("'2 GB'", 2 * 10**9), ("'3MiB'", 3 << 20),
    ("'7B'", 7), ("'1TiB'", 1 << 40),
])
def test_max_size_compiles_to_bytes(text, expected):
    assert _policy(text).rules[0].max_size == expected


@pytest.mark.parametrize("text", ["-1", "'12 parsecs'", "'1.5GB'", "'GB'", "1.5", "true"])
def test_malformed_max_size_is_a_policy_error(text):
    with pytest.raises(PolicyError) as exc:
        _policy(text)
    assert "maxSize" in str(exc.value.to_dict())


def _size_check(policy, size: int | None):
    check = ModelCheck("/m", [FileCheck("w.bin", "extra", {"sha256": "0" * 64})])
    reports = {} if size is None else {"w.bin": FileReport("w.bin", "other", size)}
    verdict = evaluate(policy, [], check, reports)
    return verdict, next(c for c in verdict.checks if c.clause == "size")


def test_size_at_the_limit_passes_one_byte_more_fails():
    policy = _policy("1000")
    verdict, check = _size_check(policy, 1000)
    assert check.status == "pass"
    verdict, check = _size_check(policy, 1001)
    assert check.status == "fail" and not verdict.allowed
    assert "1001 bytes exceeds files.maxSize 1000" in check.reason
    assert check.evidence[0]["file"] == "w.bin" and check.evidence[0]["size"] == 1001
    assert verdict.clearance["w.bin"].loadable is False  # a byte clause: not loadable


def test_unknown_size_fails_closed():
    verdict, check = _size_check(_policy("1000"), None)
    assert check.status == "fail" and "size unknown" in check.reason


def test_no_max_size_no_size_clause():
    policy = policy_from_bytes(POLICY.replace("      maxSize: {limit}\n", "")
                               .format(mode="enforce").encode(), source="p.yaml")
    check = ModelCheck("/m", [FileCheck("w.bin", "extra", {"sha256": "0" * 64})])
    verdict = evaluate(policy, [], check, {"w.bin": FileReport("w.bin", "other", 10**12)})
    assert not [c for c in verdict.checks if c.clause == "size"]
