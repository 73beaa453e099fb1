"""Key rotation: ``policy key add`` / ``policy key retire`` edit a policy file in place,
and the windows they write are judged at the *verified* signing time (the log's SET),
never at a time a bundle merely claims."""

from __future__ import annotations

import os
import stat
import time

import pytest
import yaml

from mgattest.attest._keys import generate_signer, write_keypair
from mgattest.attest._options import TrustOptions
from mgattest.attest._sign import sign_model
from mgattest.attest._verify import verify_model
from mgattest.policy import PolicyError, add_key, load_policy, retire_key
from mgattest.policy._evaluate import evaluate
from tests.helpers.bundles import iso, strip_set
from tests.helpers.cli_runner import mg
from tests.helpers.trees import make_tree

HOUR = 3600

POLICY = """\
# Release policy: owned by the ML platform team.
apiVersion: mgattest/v1
kind: Policy
metadata:
  name: release   # shown in verdicts
trust:
  keys:
    # the 2026 release key (HSM slot 3)
    - name: old
      path: old.pub

signers:
  old:
    key: old   # the only signer so far

rules:
  - id: model
    match: ["**"]
    signedBy:
      anyOf: [old]
    content: {scan: "off", pickle: restricted}
"""


@pytest.fixture
def setup(tmp_path):
    old, new = generate_signer("ecdsa-p256"), generate_signer("ed25519")
    write_keypair(old, tmp_path / "old")
    write_keypair(new, tmp_path / "new")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return tmp_path, policy, old, new


def _signed(tmp_path, name, signer):
    model = make_tree(tmp_path / name, {"weights.bin": os.urandom(2000), "config.json": b"{}"})
    return model, sign_model(model, signer).bundle


def _verdict(policy_path, model, bundle, signer):
    atts, check = verify_model(model, [bundle], trust=TrustOptions(keys=[signer.public_key]))
    return evaluate(load_policy(policy_path), atts, check)


def test_rotation_judged_at_the_verified_log_time(setup):
    tmp_path, policy, old, new = setup
    old_model, old_bundle = _signed(tmp_path, "m-old", old)
    new_model, new_bundle = _signed(tmp_path, "m-new", new)
    signed_at = int(time.time())
    # Before the rotation only the old key is accepted.
    assert _verdict(policy, old_model, old_bundle, old).allowed
    assert not _verdict(policy, new_model, new_bundle, new).allowed

    edit = add_key(policy, "new", tmp_path / "new.pub", valid_from=signed_at - HOUR,
                   signer="new", alongside="old")
    assert edit.added_to_rules == ("model",)
    retire_key(policy, "old", signed_at + HOUR)
    # Old signature logged before validUntil: still accepted. New key from validFrom: accepted.
    old_verdict = _verdict(policy, old_model, old_bundle, old)
    assert old_verdict.allowed, old_verdict.reasons
    assert _verdict(policy, new_model, new_bundle, new).allowed

    retire_key(policy, "old", signed_at - HOUR)  # retired before it signed
    verdict = _verdict(policy, old_model, old_bundle, old)
    assert not verdict.allowed
    assert "key 'old' expired at" in " ".join(verdict.reasons)
    assert "(SET" in " ".join(verdict.reasons)  # judged at the verified log time

    # A claimed (unverified) integratedTime inside the window does not reopen it.
    forged = strip_set(old_bundle, integrated_time=signed_at - 2 * HOUR - 86400)
    forged_verdict = _verdict(policy, old_model, forged, old)
    assert not forged_verdict.allowed
    assert "judged at now" in " ".join(forged_verdict.reasons)


def test_new_key_refused_before_its_valid_from(setup):
    tmp_path, policy, _, new = setup
    model, bundle = _signed(tmp_path, "m-new", new)
    add_key(policy, "new", tmp_path / "new.pub", valid_from=int(time.time()) + HOUR,
            signer="new", alongside="old")
    verdict = _verdict(policy, model, bundle, new)
    assert not verdict.allowed
    reasons = " ".join(verdict.reasons)
    assert "(new: key 'new' not valid before" in reasons and "(SET" in reasons, reasons


def test_edits_keep_comments_and_layout(setup):
    tmp_path, policy, _, _ = setup
    policy.chmod(0o640)
    add_key(policy, "new", tmp_path / "new.pub", valid_from=1800000000, signer="new",
            alongside="old")
    retire_key(policy, "old", 1810000000)
    text = policy.read_text()
    original = POLICY.splitlines()
    edited = text.splitlines()
    # every original line survives, in order (only the anyOf line gains a name)
    kept = [line for line in edited if line.replace(", new]", "]") in original]
    assert [line.replace(", new]", "]") for line in kept] == original
    assert "      anyOf: [old, new]" in edited
    added = [line for line in edited if line not in original and "anyOf" not in line]
    assert added == [f'      validUntil: "{iso(1810000000)}"', "    - name: new",
                     '      path: "new.pub"', f'      validFrom: "{iso(1800000000)}"',
                     "  new:", "    key: new"]
    # PyYAML, independently: the same document plus exactly the requested entries
    doc = yaml.safe_load(text)
    assert doc["trust"]["keys"] == [
        {"name": "old", "path": "old.pub", "validUntil": iso(1810000000)},
        {"name": "new", "path": "new.pub", "validFrom": iso(1800000000)}]
    assert doc["signers"] == {"old": {"key": "old"}, "new": {"key": "new"}}
    assert stat.S_IMODE(policy.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".policy")) == []


def test_retire_twice_replaces_the_value_in_place(setup):
    _, policy, _, _ = setup
    retire_key(policy, "old", 1810000000)
    once = policy.read_text()
    retire_key(policy, "old", 1820000000)
    twice = policy.read_text()
    assert len(once.splitlines()) == len(twice.splitlines())
    assert twice == once.replace(iso(1810000000), iso(1820000000))


def test_block_style_signed_by_list(tmp_path, setup):
    tmp_path, policy, _, _ = setup
    policy.write_text(POLICY.replace("      anyOf: [old]\n", "      anyOf:\n        - old\n"))
    add_key(policy, "new", tmp_path / "new.pub", signer="new", alongside="old")
    assert "        - old\n        - new\n" in policy.read_text()
    assert yaml.safe_load(policy.read_text())["rules"][0]["signedBy"] == {"anyOf": ["old", "new"]}


def test_alongside_reaches_attestation_clauses(setup):
    tmp_path, policy, _, _ = setup
    policy.write_text(POLICY + """    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        signedBy:
          anyOf:
            - old   # the release key signs provenance too
""")
    edit = add_key(policy, "new", tmp_path / "new.pub", signer="new", alongside="old")
    assert edit.added_to_rules == ("model", "model attestations[0]")
    rule = yaml.safe_load(policy.read_text())["rules"][0]
    assert rule["attestations"][0]["signedBy"] == {"anyOf": ["old", "new"]}
    assert "- old   # the release key signs provenance too" in policy.read_text()


@pytest.mark.parametrize("change, call, message", [
    (None, lambda p, d: add_key(p, "old", d / "new.pub"), "already has a key named 'old'"),
    (None, lambda p, d: retire_key(p, "missing", 1), r"no key named 'missing' \(keys: old\)"),
    (None, lambda p, d: add_key(p, "new", d / "new.key"), "would not be valid"),
    (None, lambda p, d: add_key(p, "new", d / "absent.pub"), "would not be valid"),
    (None, lambda p, d: add_key(p, "bad name", d / "new.pub"), "use letters, digits"),
    (None, lambda p, d: add_key(p, "new", d / "new.pub", signer="old"), "signers already has"),
    (None, lambda p, d: add_key(p, "new", d / "new.pub", alongside="old"), "needs --signer"),
    (None, lambda p, d: add_key(p, "new", d / "new.pub", signer="n", alongside="zzz"),
     "no signedBy.anyOf list names signer 'zzz'"),
    (("anyOf: [old]", "allOf: [old]"),
     lambda p, d: add_key(p, "new", d / "new.pub", signer="n", alongside="old"),
     "changes what is required"),
    (("  keys:\n    # the 2026 release key (HSM slot 3)\n    - name: old\n      path: old.pub\n",
      "  keys: [{name: old, path: old.pub}]\n"),
     lambda p, d: add_key(p, "new", d / "new.pub"), "only block-style YAML"),
    (("  keys:\n    # the 2026 release key (HSM slot 3)\n    - name: old\n      path: old.pub\n",
      "  keys:\n    - {name: old, path: old.pub}\n"),
     lambda p, d: retire_key(p, "old", 1), "only block-style YAML"),
    (("kind: Policy", "kind: Nonsense"), lambda p, d: retire_key(p, "old", 1), "kind"),
])
def test_refusals_leave_the_file_untouched(setup, change, call, message):
    tmp_path, policy, _, _ = setup
    if change:
        policy.write_text(POLICY.replace(*change))
    before = policy.read_bytes()
    with pytest.raises(PolicyError, match=message):
        call(policy, tmp_path)
    assert policy.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".policy")] == []


def test_cli_key_add_and_retire(setup):
    tmp_path, policy, _, _ = setup
    added = mg("policy", "key", "add", policy, "--name", "new", "--key", tmp_path / "new.pub",
               "--valid-from", "2027-01-01", "--signer", "new", "--alongside", "old")
    assert added.exit_code == 0, added.output
    assert "added key 'new'" in added.output and "valid 2027-01-01T00:00:00Z → -" in added.output
    assert "accepted by rule(s): model" in added.output
    retired = mg("policy", "key", "retire", policy, "--name", "old", "--valid-until",
                 "2027-03-01T00:00:00Z")
    assert retired.exit_code == 0 and "→ 2027-03-01T00:00:00Z" in retired.output
    assert mg("policy", "lint", policy).exit_code == 0
    bad_time = mg("policy", "key", "retire", policy, "--name", "old", "--valid-until", "soon")
    assert bad_time.exit_code == 2 and "not an RFC 3339 time" in bad_time.output
    missing = mg("policy", "key", "retire", policy, "--name", "nope", "--valid-until", "2027-01-01")
    assert missing.exit_code == 2 and "Traceback" not in missing.output
