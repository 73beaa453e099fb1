"""Policies that require witness cosignatures on the checkpoint of a bundle's log entry.

A real key-signed bundle of the embedded log; three real witness servers on 127.0.0.1
(real Ed25519 keys) cosign its checkpoint through the C2SP tlog-witness protocol; the
bundle is then verified by the one verify pipeline and judged by a policy requiring 2
of the 3 witnesses.
"""

from __future__ import annotations

import base64
import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mgattest.attest._keys import public_key_pem
from mgattest.attest._locallog import open_local_log
from mgattest.attest._options import TrustOptions
from mgattest.attest._verify import verify_model
from mgattest.policy._evaluate import evaluate
from mgattest.policy._loader import policy_from_bytes
from mgattest.policy.errors import PolicyError
from mgattest.tlog._checkpoint import parse_signed_note
from mgattest.tlog._cosign import WitnessSigner
from mgattest.tlog._witnessing import WitnessEndpoint, request_cosignature
from tests.helpers.bundles import entry_of, signed_model
from tests.helpers.log_server import hashedrekord, new_key
from tests.helpers.witnesses import running_witness


def _policy(signer: Any, witnesses: dict[str, str], clause: str) -> Any:
    pem = textwrap.indent(public_key_pem(signer).decode().strip(), " " * 8)
    declared = "".join(f"    - name: {n}\n      key: \"{v}\"\n" for n, v in witnesses.items())
    text = f"""\
apiVersion: mgattest/v1
kind: Policy
trust:
  keys:
    - name: release
      pem: |
{pem}
  witnesses:
{declared}signers:
  release: {{key: release}}
rules:
  - id: model
    match: ["**"]
    signedBy: {{anyOf: [release]}}
    transparencyLog: {clause}
    content: {{scan: "off", pickle: restricted}}
"""
    return policy_from_bytes(text.encode(), source="witnessed.yaml", base_dir=".")


def _note(bundle: dict[str, Any]) -> str:
    return entry_of(bundle)["inclusionProof"]["checkpoint"]["envelope"]


def _with_lines(bundle: dict[str, Any], *lines: str) -> dict[str, Any]:
    """A copy whose checkpoint carries extra signature ``lines`` (the log's signature still
    covers the unchanged body, so the bundle still verifies)."""
    out = copy.deepcopy(bundle)
    entry_of(out)["inclusionProof"]["checkpoint"]["envelope"] = _note(bundle) + "".join(lines)
    return out


def _cosign(url: str, witness: Any, log: Any, note: str) -> str:
    size = parse_signed_note(note)[0].size
    held = witness.state.latest(parse_signed_note(note)[0].origin)
    old = held[0] if held else 0
    _, lines = request_cosignature(WitnessEndpoint(url, witness.signer.key), note, size, old,
                                   lambda first: log.consistency_proof(first, size))
    assert len(lines) == 1
    return lines[0] + "\n"


@pytest.fixture()
def witnessed(tmp_path: Path) -> Any:
    """(model, signer, bundle, {name: cosignature line}, {name: vkey}, extra) where the
    three witnesses cosigned the bundle's checkpoint; ``extra`` holds w2's cosignature
    over a later checkpoint of the same log and a stranger's valid cosignature."""
    model, signer, bundle = signed_model(tmp_path)
    log = open_local_log()
    note = _note(bundle)
    logs = {log.origin: log.signer.verifier}
    with running_witness(tmp_path, "w.test/1", logs) as (u1, w1), \
            running_witness(tmp_path, "w.test/2", logs) as (u2, w2), \
            running_witness(tmp_path, "w.test/3", logs) as (u3, w3):
        lines = {"w1": _cosign(u1, w1, log, note), "w2": _cosign(u2, w2, log, note),
                 "w3": _cosign(u3, w3, log, note)}
        log.append(hashedrekord(new_key(), b"a later entry"))
        later = log.signed_checkpoint()
        extra = {"w2-later": _cosign(u2, w2, log, later)}
        vkeys = {"w1": w1.signer.key.vkey(), "w2": w2.signer.key.vkey(),
                 "w3": w3.signer.key.vkey()}
    stranger = WitnessSigner.generate("w.test/stranger")
    extra["stranger"] = stranger.cosign(parse_signed_note(note)[0])
    log.close()
    return model, signer, bundle, lines, vkeys, extra


def _judge(witnessed: Any, bundle: dict[str, Any], clause: str) -> Any:
    model, signer, _, _, vkeys, _ = witnessed
    atts, check = verify_model(model, [bundle], trust=TrustOptions(keys=[signer.public_key]))
    return evaluate(_policy(signer, vkeys, clause), atts, check)


TWO_OF_THREE = "{witnesses: {require: 2, of: [w1, w2, w3]}}"


def _witness_evidence(verdict: Any) -> dict[str, Any]:
    check = next(c for c in verdict.checks if c.clause == "transparencyLog")
    return check.evidence[0]["entries"][0]["witnesses"]


def test_two_of_three_denies_one_and_allows_two(witnessed: Any) -> None:
    _, _, bundle, lines, _, _ = witnessed
    none = _judge(witnessed, bundle, TWO_OF_THREE)
    assert not none.allowed and "cosigned by 2 of the witnesses" in " ".join(none.reasons)
    one = _judge(witnessed, _with_lines(bundle, lines["w1"]), TWO_OF_THREE)
    assert not one.allowed
    assert _witness_evidence(one)["cosigned"] == ["w1"]
    two = _judge(witnessed, _with_lines(bundle, lines["w1"], lines["w3"]), TWO_OF_THREE)
    assert two.allowed, two.reasons
    assert _witness_evidence(two)["cosigned"] == ["w1", "w3"]
    three = _judge(witnessed, _with_lines(bundle, *lines.values()), TWO_OF_THREE)
    assert three.allowed and _witness_evidence(three)["cosigned"] == ["w1", "w2", "w3"]


def test_the_same_witness_twice_counts_once(witnessed: Any) -> None:
    _, _, bundle, lines, _, _ = witnessed
    twice = _with_lines(bundle, lines["w1"], lines["w1"])
    assert not _judge(witnessed, twice, TWO_OF_THREE).allowed


def test_tampered_or_misplaced_cosignatures_are_not_counted(witnessed: Any) -> None:
    _, _, bundle, lines, _, extra = witnessed
    raw = bytearray(base64.b64decode(lines["w2"].split(" ")[2]))
    raw[20] ^= 1
    tampered = f"\u2014 w.test/2 {base64.b64encode(bytes(raw)).decode()}\n"
    verdict = _judge(witnessed, _with_lines(bundle, lines["w1"], tampered), TWO_OF_THREE)
    assert not verdict.allowed
    assert "does not verify" in " ".join(_witness_evidence(verdict)["problems"])
    # w2's genuine cosignature, but over a later checkpoint of the same log
    moved = _judge(witnessed, _with_lines(bundle, lines["w1"], extra["w2-later"]),
                   TWO_OF_THREE)
    assert not moved.allowed and _witness_evidence(moved)["cosigned"] == ["w1"]
    # a valid cosignature by a witness the policy does not name is ignored
    stranger = _judge(witnessed, _with_lines(bundle, lines["w1"], extra["stranger"]),
                      TWO_OF_THREE)
    assert not stranger.allowed
    # and one the policy names but leaves out of `of` does not count for that rule
    narrowed = _judge(witnessed, _with_lines(bundle, lines["w1"], lines["w3"]),
                      "{witnesses: {require: 2, of: [w1, w2]}}")
    assert not narrowed.allowed


def test_policy_lint_of_witness_clauses(witnessed: Any) -> None:
    _, signer, _, _, vkeys, _ = witnessed
    with pytest.raises(PolicyError, match="unknown witness 'w9'"):
        _policy(signer, vkeys, "{witnesses: {require: 1, of: [w1, w9]}}")
    with pytest.raises(PolicyError, match="requires 3 witnesses but only 2"):
        _policy(signer, vkeys, "{witnesses: {require: 3, of: [w1, w2]}}")
    broken = dict(vkeys, w2=vkeys["w2"].replace("+", "+0", 1))
    with pytest.raises(PolicyError, match="witness 'w2' key"):
        _policy(signer, broken, TWO_OF_THREE)
    same_name = dict(vkeys, w4=vkeys["w1"])
    with pytest.raises(PolicyError, match="same key name"):
        _policy(signer, same_name, TWO_OF_THREE)
    # `of` defaults to every declared witness
    assert _policy(signer, vkeys, "{witnesses: {require: 3}}").rules[0].tlog.witnesses.require == 3
