"""Audit log: one JSON line per decision, whole lines under concurrent appenders."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from mgattest.errors import InputError
from mgattest.policy._audit import append_decision, audit_record
from mgattest.policy._evaluate import evaluate
from tests.helpers.policy_facts import KEY_A, T0, attestation, digest_of, key_signer, keys_block, model, policy, safe_reports

FILES = {"m.safetensors": digest_of(b"m")}
POL = ("apiVersion: mgattest/v1\nkind: Policy\n" + keys_block(("a", KEY_A))
       + "signers:\n  a: {key: a}\nrules:\n  - id: r\n    signedBy: {anyOf: [a]}\n")


def _verdict(ok=True):
    from tests.helpers.policy_facts import KEY_B
    key = KEY_A if ok else KEY_B
    return evaluate(policy(POL), [attestation(FILES, key_signer(key))], model(FILES),
                    safe_reports(FILES), now=T0)


def test_record_fields():
    rec = audit_record(_verdict(False), model="/m", bundles=["b.json"])
    assert rec["decision"] == "deny" and rec["allowed"] is False
    assert rec["artifacts"] == [{"name": "m.safetensors", "digest": {"sha256": FILES["m.safetensors"]}}]
    assert rec["policy"]["digest"].startswith("sha256:") and rec["reasons"]
    assert rec["time"] == "2026-09-21T14:13:20Z"


def _writer(path, n, tag):
    for i in range(n):
        append_decision(path, {"writer": tag, "i": i, "pad": "x" * 3000})


def test_concurrent_appends_never_tear_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    procs = [mp.get_context("fork").Process(target=_writer, args=(path, 100, t)) for t in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 400
    seen = {(r["writer"], r["i"]) for r in map(json.loads, lines)}
    assert len(seen) == 400


def test_existing_lines_are_kept_and_huge_records_split_not_thinned(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"old": 1}\n')
    append_decision(path, {"reasons": ["r" * 1000] * 200, "artifacts": [], "time": "t"})
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"old": 1}
    assert all(len(line) < 64 * 1024 for line in lines)
    head, parts = json.loads(lines[1]), [json.loads(x) for x in lines[2:]]
    assert head["parts"] == len(parts) and head["lengths"] == {"artifacts": 0, "reasons": 200}
    assert sum((p["items"] for p in parts), []) == ["r" * 1000] * 200


def test_unwritable_audit_log_is_input_error(tmp_path):
    with pytest.raises(InputError, match="audit log"):
        append_decision(tmp_path / "missing-dir" / "a.jsonl", {"x": 1})
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "target.jsonl")
    with pytest.raises(InputError):
        append_decision(link, {"x": 1})
