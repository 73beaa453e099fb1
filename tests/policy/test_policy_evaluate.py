"""Policy evaluation matrix: each clause allows a conforming artifact and denies a
non-conforming one, with the reason naming the clause."""

from __future__ import annotations

import pytest

from mgattest.policy._evaluate import evaluate
from tests.helpers.policy_facts import (GH_ISSUER, KEY_A, KEY_B, KEY_C, LOG_ID, SLSA, T0, Report,
                            attestation, cert_signer, digest_of, key_signer, keys_block, log,
                            model, policy, provenance, safe_reports)
from mgattest.attest._options import CheckOptions

W = "model.safetensors"
FILES = {W: digest_of(b"weights")}
HEAD = "apiVersion: mgattest/v1\nkind: Policy\n"


def key_policy(rule_extra: str = "", *, keys: str | None = None, top: str = "",
               signed_by: str = "signedBy: {anyOf: [a]}") -> object:
    keys = keys or keys_block(("a", KEY_A), ("b", KEY_B), ("c", KEY_C))
    text = (HEAD + top + keys + "signers:\n  a: {key: a}\n  b: {key: b}\n  c: {key: c}\n"
            "rules:\n  - id: weights\n    match: ['**']\n    " + signed_by + "\n")
    for line in rule_extra.strip("\n").splitlines():
        text += "    " + line + "\n"
    return policy(text)


def run(pol, atts, files=FILES, reports=None, statuses=None, now=T0):
    return evaluate(pol, atts, model(files, statuses),
                    safe_reports(files) if reports is None else reports, now=now)


def failed(verdict) -> dict[str, str]:
    return {c.id: c.reason for c in verdict.checks if c.status == "fail"}


def test_key_signed_allows_and_records_evidence():
    v = run(key_policy(), [attestation(FILES, key_signer(KEY_A))])
    assert v.allowed and v.decision == "allow", v.reasons
    sb = next(c for c in v.checks if c.id == "weights.signedBy")
    assert sb.status == "pass" and sb.evidence[0]["satisfied"] == {"a": f"key:{KEY_A[1]}"}


def test_wrong_key_denied_naming_signed_by():
    v = run(key_policy(), [attestation(FILES, key_signer(KEY_B))])
    assert not v.allowed
    assert "weights.signedBy" in failed(v)
    assert "satisfied: none" in failed(v)["weights.signedBy"]


def test_no_attestation_covering_file_denied():
    other = {W: digest_of(b"other bytes")}
    v = run(key_policy(), [attestation(other, key_signer(KEY_A))])
    assert "weights.files" in failed(v) and "not covered" in failed(v)["weights.files"]


def test_multi_file_subject_name_must_match():
    files = {"a.bin": digest_of(b"1"), "b.bin": digest_of(b"2")}
    swapped = {"a.bin": files["b.bin"], "b.bin": files["a.bin"]}
    pol = key_policy()
    assert run(pol, [attestation(files, key_signer(KEY_A))], files=files).allowed
    v = run(pol, [attestation(swapped, key_signer(KEY_A))], files=files)
    assert not v.allowed and "weights.files" in failed(v)


def test_threshold_not_met_by_one_signer_with_two_signatures():
    pol = key_policy(signed_by="signedBy: {threshold: 2, of: [a, b, c]}")
    same_twice = [attestation(FILES, key_signer(KEY_A), source="one.json"),
                  attestation(FILES, key_signer(KEY_A), source="two.json")]
    v = run(pol, same_twice)
    assert not v.allowed and "weights.signedBy" in failed(v)
    two = [attestation(FILES, key_signer(KEY_A)), attestation(FILES, key_signer(KEY_C))]
    assert run(pol, two).allowed


def test_threshold_one_signer_matching_two_named_signers_counts_once():
    # Two named signers that are the same key: one real signer must not satisfy both.
    keys = keys_block(("a", KEY_A), ("b", KEY_A), ("c", KEY_C))
    pol = key_policy(keys=keys, signed_by="signedBy: {allOf: [a, b]}")
    v = run(pol, [attestation(FILES, key_signer(KEY_A))])
    assert not v.allowed and "weights.signedBy" in failed(v)


def test_all_of_needs_each_named_signer():
    pol = key_policy(signed_by="signedBy: {allOf: [a, b]}")
    assert not run(pol, [attestation(FILES, key_signer(KEY_A))]).allowed
    assert run(pol, [attestation(FILES, key_signer(KEY_A)),
                     attestation(FILES, key_signer(KEY_B))]).allowed


def test_expired_key_denies_and_window_respected():
    keys = keys_block(("a", KEY_A), extra="validUntil: '2026-01-01T00:00:00Z'")
    keys += keys_block(("b", KEY_B)).split("keys:\n", 1)[1]
    keys += keys_block(("c", KEY_C)).split("keys:\n", 1)[1]
    pol = key_policy(keys=keys)
    v = run(pol, [attestation(FILES, key_signer(KEY_A))])  # logged at T0-3600 (2026-09)
    assert not v.allowed and "expired" in failed(v)["weights.signedBy"]
    early = attestation(FILES, key_signer(KEY_A), logs=[log(time=1_700_000_000)])
    assert run(pol, [early]).allowed


def test_expired_policy_denies_even_in_warn_mode():
    pol = key_policy(top="mode: warn\nexpires: '2026-01-01'\n")
    v = run(pol, [attestation(FILES, key_signer(KEY_A))])
    assert not v.allowed and "policy.expires" in failed(v)


def test_warn_mode_allows_but_records_failure():
    pol = key_policy(top="mode: warn\n")
    v = run(pol, [attestation(FILES, key_signer(KEY_B))])
    assert v.allowed
    warn = [c for c in v.checks if c.status == "warn"]
    assert any(c.id == "weights.signedBy" and "[warn mode]" in c.reason for c in warn)


def test_transparency_log_required_and_min_entries():
    pol = key_policy("transparencyLog: {require: required, minEntries: 2}")
    one = attestation(FILES, key_signer(KEY_A))
    v = run(pol, [one])
    assert not v.allowed and "weights.transparencyLog" in failed(v)
    two = attestation(FILES, key_signer(KEY_A), logs=[log(1), log(2)])
    assert run(pol, [two]).allowed
    # The same entry twice is one entry.
    dup = attestation(FILES, key_signer(KEY_A), logs=[log(1), log(1)])
    assert not run(pol, [dup]).allowed


def test_unlogged_denied_by_default_allowed_when_optional():
    unlogged = attestation(FILES, key_signer(KEY_A), logs=[])
    assert not run(key_policy(), [unlogged]).allowed
    assert run(key_policy("transparencyLog: {require: optional}"), [unlogged]).allowed


def test_log_must_be_the_named_log(tmp_path):
    from tests.helpers.policy_facts import new_key
    log_pem, log_fp = new_key()
    block = keys_block(("a", KEY_A), ("b", KEY_B), ("c", KEY_C))
    block += "  logs:\n    - name: private\n      publicKey: |\n"
    block += "".join("        " + ln + "\n" for ln in log_pem.strip().splitlines())
    pol = key_policy("transparencyLog: {logs: [private]}", keys=block)
    wrong = attestation(FILES, key_signer(KEY_A), logs=[log(log_id=LOG_ID)])
    assert not run(pol, [wrong]).allowed
    right = attestation(FILES, key_signer(KEY_A), logs=[log(log_id=log_fp)])
    assert run(pol, [right]).allowed


def test_digest_allow_and_deny_lists():
    good = f"sha256:{FILES[W]}"
    bad = f"sha256:{digest_of(b'x')}"
    att = [attestation(FILES, key_signer(KEY_A))]
    assert run(key_policy(f"digests: {{allow: ['{good}']}}"), att).allowed
    v = run(key_policy(f"digests: {{allow: ['{bad}']}}"), att)
    assert "weights.digests" in failed(v) and "allow-list" in failed(v)["weights.digests"]
    v = run(key_policy(f"digests: {{deny: ['{good}']}}"), att)
    assert "deny-list" in failed(v)["weights.digests"]


def test_exception_waives_until_it_expires():
    import yaml

    from mgattest.policy._loader import policy_from_bytes

    att = [attestation(FILES, key_signer(KEY_B))]  # wrong signer
    for expires, allowed in (("2027-01-01", True), ("2026-01-01", False)):
        doc = dict(key_policy().raw)
        doc["exceptions"] = [{"digest": f"sha256:{FILES[W]}", "reason": "emergency rollback",
                              "approver": "alice@example.com", "expires": expires}]
        pol = policy_from_bytes(yaml.safe_dump(doc).encode(), source="t.yaml")
        v = run(pol, att)
        assert v.allowed is allowed, (expires, v.reasons)
        if allowed:
            assert any(c.status == "waived" and "alice@example.com" in c.reason
                       for c in v.checks)
        else:
            assert "expired" in failed(v)["weights.signedBy"]


def test_exception_for_another_digest_does_not_waive():
    import yaml

    from mgattest.policy._loader import policy_from_bytes

    doc = dict(key_policy().raw)
    doc["exceptions"] = [{"digest": f"sha256:{'0' * 64}", "reason": "r", "approver": "a",
                          "expires": "2027-01-01"}]
    pol = policy_from_bytes(yaml.safe_dump(doc).encode(), source="t.yaml")
    assert not run(pol, [attestation(FILES, key_signer(KEY_B))]).allowed


def test_unsigned_files_allow_and_ignore():
    files = dict(FILES, **{"README.md": digest_of(b"readme")})
    att = [attestation(FILES, key_signer(KEY_A))]
    assert not run(key_policy(), att, files=files).allowed
    assert run(key_policy("files: {ignore: ['*.md']}"), att, files=files).allowed
    v = run(key_policy("files: {unsigned: allow}"), att, files=files)
    assert v.allowed and any(c.status == "warn" for c in v.checks)


def test_ignore_glob_is_anchored_not_prefix():
    files = dict(FILES, **{"docs/README.md.exe": digest_of(b"x")})
    att = [attestation(FILES, key_signer(KEY_A))]
    assert not run(key_policy("files: {ignore: ['*.md', 'docs/README.md']}"), att,
                   files=files).allowed


def test_unmatched_files_denied_by_default():
    text = (HEAD + keys_block(("a", KEY_A)) + "signers:\n  a: {key: a}\n"
            "rules:\n  - id: st\n    match: ['*.safetensors']\n    signedBy: {anyOf: [a]}\n")
    files = dict(FILES, **{"extra.pkl": digest_of(b"p")})
    att = [attestation(files, key_signer(KEY_A))]
    v = run(policy(text), att, files=files)
    assert not v.allowed and "policy.unmatchedFiles" in failed(v)


def test_integrity_mismatch_and_missing_deny():
    att = [attestation(FILES, key_signer(KEY_A))]
    v = run(key_policy(), att, statuses={W: "mismatch"})
    assert "policy.integrity" in failed(v)


@pytest.mark.parametrize("verdict,fmt,pickle_mode,allowed", [
    ("safe", "safetensors", "deny", True),
    ("dangerous", "safetensors", "deny", False),
    ("malformed", "safetensors", "deny", False),
    ("safe", "pickle", "deny", False),
    ("safe", "pickle", "restricted", True),
    ("dangerous", "pickle", "restricted", False),
    ("suspicious", "pickle", "scan", False),
    ("suspicious", "pickle", "restricted", True),
    ("safe", "pickle", "scan", True),
])
def test_content_clause(verdict, fmt, pickle_mode, allowed):
    name = "m.pkl" if fmt == "pickle" else W
    files = {name: FILES[W]}
    pol = key_policy(f"content: {{pickle: {pickle_mode}}}")
    v = run(pol, [attestation(files, key_signer(KEY_A))], files=files,
            reports=[Report(name, verdict, fmt, ["GLOBAL os.system"])])
    assert v.allowed is allowed, v.reasons
    if not allowed:
        assert "weights.content" in failed(v)


def test_content_formats_allow_list_and_missing_scan():
    att = [attestation(FILES, key_signer(KEY_A))]
    v = run(key_policy("content: {formats: [onnx]}"), att)
    assert "format 'safetensors' is not allowed" in failed(v)["weights.content"]
    v = run(key_policy(), att, reports=[])
    assert "no content scan report" in failed(v)["weights.content"]
    assert run(key_policy("content: {scan: 'off'}"), att, reports=[]).allowed


def test_renamed_pickle_judged_by_scanner_format():
    att = [attestation(FILES, key_signer(KEY_A))]
    v = run(key_policy(), att, reports=[Report(W, "safe", "pickle")])
    assert not v.allowed and "pickle" in failed(v)["weights.content"]


def test_cel_check_true_false_and_error():
    pol = key_policy("cel:\n  - id: small-name\n    expr: 'artifact.name.endsWith(\".safetensors\")'\n"
                     "    message: only safetensors\n"
                     "  - id: pred\n    expr: 'predicate.runDetails.builder.id == \"b\"'\n"
                     "    message: builder must be b\n")
    ok = attestation(FILES, key_signer(KEY_A), predicate={"runDetails": {"builder": {"id": "b"}}})
    assert run(pol, [ok]).allowed
    bad = attestation(FILES, key_signer(KEY_A), predicate={"runDetails": {"builder": {"id": "x"}}})
    assert failed(run(pol, [bad]))["weights.cel:pred"] == "model.safetensors: builder must be b"
    missing = attestation(FILES, key_signer(KEY_A), predicate={})
    reason = failed(run(pol, [missing]))["weights.cel:pred"]
    assert "evaluation error" in reason


def test_verdict_is_deterministic():
    pol = key_policy()
    atts = [attestation(FILES, key_signer(KEY_A)), attestation(FILES, key_signer(KEY_B))]
    assert run(pol, atts).to_dict() == run(pol, atts).to_dict()
    assert [(c.id, c.status) for c in run(pol, atts).checks] == \
        [(c.id, c.status) for c in run(pol, atts[::-1]).checks]


# --------------------------------------------------------------------------- keyless + SLSA

def keyless_policy(prov: str = "", ext: str = "", subject: str | None = None):
    subject = subject or "{regex: 'https://github\\.com/acme/.*'}"
    text = (HEAD + "signers:\n  ci:\n    keyless:\n"
            f"      issuer: {GH_ISSUER}\n      subject: {subject}\n")
    if ext:
        text += "      extensions:\n" + "".join(f"        {ln}\n" for ln in ext.strip().splitlines())
    text += ("rules:\n  - id: model\n    signedBy: {anyOf: [ci]}\n    attestations:\n"
             f"      - predicateType: {SLSA}\n")
    if prov:
        text += "        provenance:\n" + "".join(f"          {ln}\n"
                                                   for ln in prov.strip().splitlines())
    return policy(text)


GH_ID = "https://github.com/acme/models/.github/workflows/train.yml@refs/tags/v1.2.3"


def gh_signer(identity=GH_ID, **ext):
    ext.setdefault("source_repository_uri", "https://github.com/acme/models")
    ext.setdefault("source_repository_ref", "refs/tags/v1.2.3")
    ext.setdefault("build_signer_uri", identity)
    return cert_signer(identity, **ext)


def prov_att(signer=None, **kw):
    return attestation(FILES, signer or gh_signer(), predicate=provenance(**kw))


def test_anchored_regex_rejects_embedded_url():
    pol = keyless_policy()
    assert run(pol, [prov_att()]).allowed
    evil = cert_signer("https://evil.example/?u=https://github.com/acme/x")
    v = run(pol, [prov_att(evil)])
    assert not v.allowed and "weights" not in failed(v) and "model.signedBy" in failed(v)


def test_subject_any_of_list_is_exact_not_prefix():
    pol = keyless_policy(subject="{anyOf: ['https://github.com/acme/models']}")
    v = run(pol, [prov_att(cert_signer("https://github.com/acme/models-evil"))])
    assert not v.allowed


def test_issuer_must_match():
    v = run(keyless_policy(), [prov_att(cert_signer(GH_ID, issuer="https://evil.example"))])
    assert "issuer" in failed(v)["model.signedBy"]


def test_certificate_extension_constraints():
    pol = keyless_policy(ext="runnerEnvironment: github-hosted\n"
                             "sourceRepositoryRef: {regex: 'refs/tags/v.*'}")
    assert run(pol, [prov_att(gh_signer(runner_environment="github-hosted"))]).allowed
    v = run(pol, [prov_att(gh_signer(runner_environment="self-hosted"))])
    assert "runner_environment" in failed(v)["model.signedBy"]


@pytest.mark.parametrize("spec,kwargs,ok", [
    ("builderId: " + GH_ID, {}, True),
    ("builderId: https://other/builder", {}, False),
    ("buildType: https://actions.github.io/buildtypes/workflow/v1", {}, True),
    ("buildType: https://other", {}, False),
    ("sourceRepository: https://github.com/acme/models", {}, True),
    ("sourceRepository: https://github.com/acme/other", {}, False),
    ("sourceTag: v1.2.3", {}, True),
    ("sourceTag: v1.2.4", {}, False),
    ("sourceVersionedTag: v1", {}, True),
    ("sourceVersionedTag: v1.2", {}, True),
    ("sourceVersionedTag: v2", {}, False),
    ("sourceBranch: main", {}, False),
    ("sourceRef: refs/tags/v1.2.3", {}, True),
    ("externalParameters: {values: {epochs: 3}}", {"params": {"epochs": 3}}, True),
    ("externalParameters: {values: {epochs: 3}}", {"params": {"epochs": 4}}, False),
    ("externalParameters: {allowed: {lr: [0.1, 0.01]}}", {"params": {"lr": 0.01}}, True),
    ("externalParameters: {allowed: {lr: [0.1, 0.01]}}", {"params": {"lr": 1.0}}, False),
    ("externalParameters: {values: {epochs: 3}, rejectUnknown: true, allowed: {workflow: [x]}}",
     {"params": {"epochs": 3}}, False),
    ("dependenciesPinned: true", {}, True),
    ("dependenciesPinned: true", {"deps": [{"uri": "https://data/x"}]}, False),
    ("datasets: [{regex: 'hf://datasets/acme/.*'}]",
     {"deps": [{"name": "dataset", "uri": "hf://datasets/acme/clean", "digest": {"sha256": "ab" * 32}}]}, True),
    ("datasets: [{regex: 'hf://datasets/acme/.*'}]",
     {"deps": [{"name": "dataset", "uri": "hf://datasets/evil/x", "digest": {"sha256": "ab" * 32}}]}, False),
    ("datasets: [{regex: 'hf://datasets/acme/.*'}]", {"deps": []}, False),
    ("baseModels: ['hf://acme/base']",
     {"deps": [{"uri": "hf://acme/base", "annotations": {"role": "base-model"}}]}, True),
    ("maxAge: 30d", {}, True),
    ("maxAge: 12h", {}, False),
    ("maxAge: 30d", {"finished": None}, False),
    ("maxAge: 2h\nmaxAgeFrom: logTime", {}, True),
])
def test_provenance_expectations(spec, kwargs, ok):
    v = run(keyless_policy(spec), [prov_att(**kwargs)])
    assert v.allowed is ok, v.reasons
    if not ok:
        assert "model.attestations[0]" in failed(v)


def test_provenance_source_must_be_bound_to_certificate():
    pol = keyless_policy("sourceRepository: https://github.com/acme/models")
    liar = gh_signer(source_repository_uri="https://github.com/mallory/fork")
    v = run(pol, [prov_att(liar)])
    assert "not bound to the certificate" in failed(v)["model.attestations[0]"]
    wrong_ref = gh_signer(source_repository_ref="refs/heads/dev")
    assert "differs from the certificate" in failed(run(pol, [prov_att(wrong_ref)]))[
        "model.attestations[0]"]
    unbound = keyless_policy("sourceRepository: https://github.com/acme/models\n"
                             "bindToCertificate: false")
    assert run(unbound, [prov_att(liar)]).allowed


def test_missing_predicate_type_denied():
    v = run(keyless_policy(), [attestation(FILES, gh_signer(), predicate_type="https://x/y")])
    assert "no verified https://slsa.dev/provenance/v1" in failed(v)["model.attestations[0]"]


def test_attestation_specific_signers():
    text = (HEAD + keys_block(("a", KEY_A), ("b", KEY_B)) +
            "signers:\n  a: {key: a}\n  b: {key: b}\n"
            "rules:\n  - id: m\n    signedBy: {anyOf: [a, b]}\n    attestations:\n"
            f"      - predicateType: {SLSA}\n        signedBy: {{anyOf: [b]}}\n")
    pol = policy(text)
    assert not run(pol, [attestation(FILES, key_signer(KEY_A), predicate=provenance())]).allowed
    assert run(pol, [attestation(FILES, key_signer(KEY_B), predicate=provenance())]).allowed


def test_model_signing_resources_cover_files():
    files = {"a.bin": digest_of(b"1"), "b.bin": digest_of(b"2")}
    pred = {"resources": [{"name": n, "algorithm": "sha256", "digest": d}
                          for n, d in files.items()]}
    att = attestation({"model": "ff" * 32}, key_signer(KEY_A),
                      predicate_type="https://model_signing/signature/v1.0", predicate=pred)
    assert run(key_policy(), [att], files=files).allowed


def test_twenty_rule_policy_fast_enough():
    import time
    rules = "".join(f"  - id: r{i}\n    match: ['**']\n    signedBy: {{anyOf: [a]}}\n"
                    f"    digests: {{deny: ['sha256:{'0' * 63}{i % 10}']}}\n" for i in range(20))
    pol = policy(HEAD + keys_block(("a", KEY_A)) + "signers:\n  a: {key: a}\nrules:\n" + rules)
    atts = [attestation(FILES, key_signer(KEY_A))]
    mc, reports = model(FILES), safe_reports(FILES)
    evaluate(pol, atts, mc, reports, now=T0)
    t = time.perf_counter()
    for _ in range(20):
        assert evaluate(pol, atts, mc, reports, now=T0).allowed
    per = (time.perf_counter() - t) / 20
    assert per < 0.02, per  # the benchmark measures the ≤ 2 ms target on a quiet machine


def test_any_trusted_log_means_the_policys_logs_when_it_declares_some():
    from tests.helpers.policy_facts import new_key
    log_pem, log_fp = new_key()
    block = keys_block(("a", KEY_A), ("b", KEY_B), ("c", KEY_C))
    block += "  logs:\n    - name: private\n      publicKey: |\n"
    block += "".join("        " + ln + "\n" for ln in log_pem.strip().splitlines())
    pol = key_policy(keys=block)  # no transparencyLog clause: default "required, any"
    other_log = attestation(FILES, key_signer(KEY_A), logs=[log(log_id=LOG_ID)])
    assert not run(pol, [other_log]).allowed
    assert run(pol, [attestation(FILES, key_signer(KEY_A), logs=[log(log_id=log_fp)])]).allowed
    # A policy that declares no roots or logs accepts any log the verifier trusted.
    assert run(key_policy(), [other_log]).allowed


def test_model_check_from_the_digests_module(tmp_path):
    """A real ModelCheck (attest.digests.check_model) feeds the evaluator."""
    from mgattest.attest._digests import check_model
    (tmp_path / "w.bin").write_bytes(b"weights")
    (tmp_path / "notes.txt").write_bytes(b"notes")
    files = {"w.bin": digest_of(b"weights")}
    subjects = [{"name": "w.bin", "digest": {"sha256": files["w.bin"]}}]
    mc = check_model(tmp_path, subjects, options=CheckOptions(ignore=["notes.txt"]))
    att = attestation(files, key_signer(KEY_A))
    v = evaluate(key_policy(), [att], mc, safe_reports(files), now=T0)
    assert v.allowed, v.reasons
    (tmp_path / "w.bin").write_bytes(b"tampered")
    mc = check_model(tmp_path, subjects, options=CheckOptions(ignore=["notes.txt"]))
    v = evaluate(key_policy(), [att], mc, safe_reports(files), now=T0)
    assert not v.allowed and "policy.integrity" in failed(v)


def test_empty_model_is_denied():
    from mgattest.attest._results import ModelCheck
    v = evaluate(key_policy(), [attestation(FILES, key_signer(KEY_A))], ModelCheck("/m", []),
                 [], now=T0)
    assert not v.allowed and "no files" in failed(v)["policy.integrity"]


def test_exception_for_one_file_does_not_waive_another():
    import yaml

    from mgattest.policy._loader import policy_from_bytes
    files = {"a.bin": digest_of(b"a"), "b.bin": digest_of(b"b")}
    doc = dict(key_policy().raw)
    doc["exceptions"] = [{"digest": f"sha256:{files['a.bin']}", "reason": "r",
                          "approver": "alice", "expires": "2027-01-01"}]
    pol = policy_from_bytes(yaml.safe_dump(doc).encode(), source="t.yaml")
    v = run(pol, [attestation(files, key_signer(KEY_B))], files=files)
    assert not v.allowed and "weights.signedBy" in failed(v)


# --------------------------------------------------------------------------- CEL batching

def _two_rules_with_cel() -> object:
    keys = keys_block(("a", KEY_A))
    text = (HEAD + keys + "signers:\n  a: {key: a}\nrules:\n")
    for rule_id, builder in (("first", "b"), ("second", "x")):
        text += (f"  - id: {rule_id}\n    match: ['**']\n    signedBy: {{anyOf: [a]}}\n"
                 "    cel:\n"
                 f"      - {{id: name, expr: 'artifact.name.size() < 100', message: short}}\n"
                 f"      - {{id: builder, expr: 'predicate.runDetails.builder.id == \"{builder}\"',"
                 f" message: builder must be {builder}}}\n"
                 "      - {id: broken, expr: 'artifact.nope == 1', message: no such field}\n")
    return policy(text)


def test_every_cel_clause_of_a_verdict_takes_one_round_trip_to_the_worker(monkeypatch):
    """Six CEL clauses over two rules and two files: one frame to the worker (it was
    one per clause), with the same per-clause results as evaluating each alone."""
    from mgattest.policy import _cel as cel_mod

    files = {W: digest_of(b"weights"), "config.json": digest_of(b"config")}
    att = attestation(files, key_signer(KEY_A),
                      predicate={"runDetails": {"builder": {"id": "b"}}})
    pol = _two_rules_with_cel()
    run(pol, [att], files=files)  # the worker is started outside the count
    frames = []
    real_call = cel_mod._WORKER._call
    monkeypatch.setattr(cel_mod._WORKER, "_call",
                        lambda proc, request, deadline: frames.append(request)
                        or real_call(proc, request, deadline))
    v = run(pol, [att], files=files)
    assert len(frames) == 1 and len(frames[0]["jobs"]) == 6
    status = {c.id: c.status for c in v.checks if ".cel:" in c.id}
    assert status == {"first.cel:name": "pass", "first.cel:builder": "pass",
                      "first.cel:broken": "fail", "second.cel:name": "pass",
                      "second.cel:builder": "fail", "second.cel:broken": "fail"}
    assert "evaluation error" in failed(v)["first.cel:broken"]
    assert failed(v)["second.cel:builder"].startswith("config.json: builder must be x")


def test_an_exception_waives_a_failing_cel_clause():
    """Exceptions still apply to CEL checks, which are filled in after every rule."""
    import yaml

    from mgattest.policy._loader import policy_from_bytes

    pol = key_policy("cel:\n  - {id: pred, expr: 'predicate.ok == true', message: not ok}\n")
    att = [attestation(FILES, key_signer(KEY_A), predicate={"ok": False})]
    assert failed(run(pol, att)) == {"weights.cel:pred": f"{W}: not ok"}
    doc = dict(pol.raw)
    doc["exceptions"] = [{"digest": f"sha256:{FILES[W]}", "reason": "known", "approver": "bob",
                          "expires": "2027-01-01"}]
    v = run(policy_from_bytes(yaml.safe_dump(doc).encode(), source="t.yaml"), att)
    assert v.allowed
    assert [c.status for c in v.checks if c.id == "weights.cel:pred"] == ["waived"]


def test_rules_differing_only_in_content_unknown_each_judge_the_file():
    # The per-evaluation content memo must not let one rule's content.unknown decide
    # for another rule judging the same file.
    files = {"blob.bin": digest_of(b"x")}
    for first, second in (("allow", "deny"), ("deny", "allow")):
        text = HEAD + keys_block(("a", KEY_A)) + "signers:\n  a: {key: a}\nrules:\n"
        for rule_id, unknown in (("first", first), ("second", second)):
            text += (f"  - id: {rule_id}\n    match: ['**']\n    signedBy: {{anyOf: [a]}}\n"
                     f"    content: {{unknown: {unknown}}}\n")
        v = run(policy(text), [attestation(files, key_signer(KEY_A))], files=files,
                reports=[Report("blob.bin", fmt="unknown")])
        statuses = {c.id: c.status for c in v.checks if c.clause == "content"}
        assert statuses == {"first.content": "pass" if first == "allow" else "fail",
                            "second.content": "pass" if second == "allow" else "fail"}


def test_release_tags_are_ascii_digits_only():
    from mgattest.policy._provenance import (DELEGATOR_WORKFLOWS, is_delegator,  # noqa: PLC0415
                                            versioned_tag_ok)
    assert versioned_tag_ok("v1.2", "refs/tags/v1.2.3")
    assert not versioned_tag_ok("v1.2", "refs/tags/v\u0661.\u0662.3")  # Arabic-Indic 1, 2
    assert is_delegator(DELEGATOR_WORKFLOWS[0] + "@refs/tags/v1.2.3")
    assert not is_delegator(DELEGATOR_WORKFLOWS[0] + "@refs/tags/v\uff11.2.3")  # fullwidth 1


CODE = {"modeling_x.py": digest_of(b"class X: pass\n"), W: FILES[W]}


def test_remote_code_clearance_needs_the_exact_digest_in_every_judging_rule():
    """content.remoteCode.allow: a listed *.py file is cleared as code; an unlisted one
    fails the content clause naming its digest; without the clause code is never
    cleared (but the file still loads as data); the strictest rule wins."""
    att = [attestation(CODE, key_signer(KEY_A))]
    code_digest = f"sha256:{CODE['modeling_x.py']}"
    plain = run(key_policy(), att, files=CODE)
    assert plain.allowed and plain.clearance["modeling_x.py"].code is False
    assert plain.clearance["modeling_x.py"].to_dict()["code"] is False

    allowed = run(key_policy(f"content: {{remoteCode: {{allow: ['{code_digest}']}}}}"), att,
                  files=CODE)
    assert allowed.allowed and allowed.clearance["modeling_x.py"].code is True
    assert allowed.clearance[W].code is False  # not on the list

    other = "sha256:" + "0" * 64
    denied = run(key_policy(f"content: {{remoteCode: {{allow: ['{other}']}}}}"), att, files=CODE)
    assert failed(denied) == {"weights.content": f"modeling_x.py: Python code {code_digest} "
                                                 "is not on content.remoteCode.allow"}
    assert denied.clearance["modeling_x.py"].loadable is False
    assert denied.clearance[W].loadable is True

    two_rules = (HEAD + keys_block(("a", KEY_A)) + "signers:\n  a: {key: a}\nrules:\n"
                 "  - id: code\n    match: ['*.py']\n    signedBy: {anyOf: [a]}\n"
                 f"    content: {{remoteCode: {{allow: ['{code_digest}']}}}}\n"
                 "  - id: all\n    match: ['**']\n    signedBy: {anyOf: [a]}\n")
    strict = run(policy(two_rules), att, files=CODE)
    assert strict.allowed and strict.clearance["modeling_x.py"].code is False
    assert strict.clearance["modeling_x.py"].rules == ("code", "all")
