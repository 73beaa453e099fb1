"""What a policy clause allows is scoped to that clause (issues #9, #16).

Each test names the attack it stops: YAML constructs other loaders read differently,
permissions and attestations leaking from one rule into another, and records (VSA,
audit line) that state more or less than was verified.
"""

from __future__ import annotations

import json

import pytest

from mgattest.policy.errors import PolicyError
from mgattest.policy._loader import lint_policy, policy_from_bytes
from tests.helpers.policy_facts import KEY_A, keys_block
from mgattest.attest._options import TrustOptions

HEAD = "apiVersion: mgattest/v1\nkind: Policy\n"
MIN = (HEAD + keys_block(("a", KEY_A)) + "signers:\n  a: {key: a}\nrules:\n"
       "  - id: r\n    signedBy: {anyOf: [a]}\n")


def _line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


# --------------------------------------------------------------------------- YAML


@pytest.mark.parametrize("node", [
    "!!python/object/apply:os.system [echo pwned]",
    "!!python/object/new:collections.OrderedDict [[]]",
    "!!set {safetensors: null}",
    "!!omap [{a: 1}]",
    "!local {formats: [safetensors]}",
    "!!str [safetensors]",
])
def test_tagged_collections_are_lint_errors_with_their_line(tmp_path, node):
    text = MIN + f"    content: {node}\n"
    path = tmp_path / "p.yaml"
    path.write_text(text)
    issues = lint_policy(path)
    assert [i.kind for i in issues] == ["error"], issues
    assert "unsupported YAML tag" in issues[0].message
    assert issues[0].where == f"{path}:{_line_of(text, 'content:')}"
    with pytest.raises(PolicyError, match="unsupported YAML tag"):
        policy_from_bytes(text.encode())


@pytest.mark.parametrize("key", ["1", "true", "null", "2027-01-01", "[a, b]", "{a: 1}"])
def test_mapping_keys_must_be_strings(key):
    # Another YAML loader reads `1:` as an int and `true:` as a bool: not the same policy.
    text = MIN + ("    attestations:\n      - predicateType: https://slsa.dev/provenance/v1\n"
                  "        provenance:\n          externalParameters:\n            values:\n"
                  f"              ? {key}\n              : v\n")
    with pytest.raises(PolicyError, match="keys must be plain strings") as exc:
        policy_from_bytes(text.encode(), source="k.yaml")
    assert exc.value.where.startswith("k.yaml:")


def test_quoted_keys_and_standard_tags_still_load():
    text = MIN + "    content: !!map {pickle: !!str deny, formats: !!seq [safetensors]}\n"
    pol = policy_from_bytes(text.encode())
    assert pol.rules[0].pickle == "deny" and pol.rules[0].formats == {"safetensors"}


def test_alias_bomb_and_merge_keys_are_refused_quickly():
    import time
    bomb = "".join(f"x{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n"
                   for i in range(1, 30))
    text = "x0: &a0 [lol]\n" + bomb + MIN[len(""):]
    start = time.perf_counter()
    with pytest.raises(PolicyError, match="aliases"):
        policy_from_bytes(text.encode())
    assert time.perf_counter() - start < 2
    merge = MIN + "    content: {<<: {pickle: restricted}}\n"
    with pytest.raises(PolicyError, match="merge keys"):
        policy_from_bytes(merge.encode())


# --------------------------------------------------------------------------- load()

import io  # noqa: E402
import pickle  # noqa: E402

import numpy as np  # noqa: E402

import mgattest  # noqa: E402
from mgattest.attest._keys import generate_signer, public_key_pem  # noqa: E402
from mgattest.attest._sign import sign_model, write_bundle_file  # noqa: E402
from mgattest.loading import PolicyDenied  # noqa: E402
from mgattest.loading._loaders import UnsafeContentError  # noqa: E402

LOAD_POLICY = """\
apiVersion: mgattest/v1
kind: Policy
unmatchedFiles: {unmatched}
trust:
  keys: [{{name: release, path: release.pub}}, {{name: docs, path: docs.pub}}]
signers:
  release: {{key: release}}
  docs: {{key: docs}}
rules:
{rules}
"""


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


@pytest.fixture()
def keys(tmp_path):
    release, docs = generate_signer(), generate_signer()
    (tmp_path / "release.pub").write_bytes(public_key_pem(release))
    (tmp_path / "docs.pub").write_bytes(public_key_pem(docs))
    return {"release": release, "docs": docs}


def _model_dir(tmp_path, files: dict[str, bytes]):
    d = tmp_path / "model"
    d.mkdir()
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def _write_policy(tmp_path, rules: str, unmatched: str = "deny"):
    path = tmp_path / "policy.yaml"
    path.write_text(LOAD_POLICY.format(unmatched=unmatched, rules=rules))
    return path


def _bundle(tmp_path, model, signer, name="model.sigstore.json"):
    return write_bundle_file(sign_model(model, signer).bundle, tmp_path / name)


WEIGHTS_RULE = """\
  - id: weights
    match: ["*.npy"]
    signedBy: {anyOf: [release]}
    content: {pickle: deny}
"""


def test_unmatched_file_is_never_unpickled(tmp_path, keys):
    """#9: a pickle that no rule matches (unmatchedFiles: allow) is not deserialised,
    although the same bundle signs it."""
    model = _model_dir(tmp_path, {"w.npy": _npy(np.arange(3)),
                                  "extra.pkl": pickle.dumps({"ran": True})})
    pol = _write_policy(tmp_path, WEIGHTS_RULE, unmatched="allow")
    bundle = _bundle(tmp_path, model, keys["release"])
    got = mgattest.load(model, policy=pol, bundles=[bundle])
    assert list(got) == ["w.npy"] and np.array_equal(got["w.npy"], np.arange(3))


def test_ignored_and_unsigned_files_are_never_parsed(tmp_path, keys, monkeypatch):
    """#9: files.ignore and files.unsigned: allow tolerate a file in the verdict; they
    do not make it loadable."""
    rules = WEIGHTS_RULE.replace('["*.npy"]', '["**"]') + \
        '    files: {ignore: ["*.pkl"], unsigned: allow}\n'
    model = _model_dir(tmp_path, {"w.npy": _npy(np.arange(2)),
                                  "ignored.pkl": pickle.dumps([1])})
    bundle = _bundle(tmp_path, model, keys["release"])
    (model / "late.npy").write_bytes(_npy(np.arange(4)))  # not signed
    pol = _write_policy(tmp_path, rules)
    import mgattest.loading._loaders as loaders
    parsed = []
    real = loaders.deserialize
    monkeypatch.setattr(loaders, "deserialize",
                        lambda name, *a, **k: parsed.append(name) or real(name, *a, **k))
    got = mgattest.load(model, policy=pol, bundles=[bundle])
    assert list(got) == ["w.npy"] and parsed == ["w.npy"]


def test_single_file_with_nothing_cleared_raises(tmp_path, keys):
    model = tmp_path / "only.pkl"
    model.write_bytes(pickle.dumps({"ran": True}))
    pol = _write_policy(tmp_path, WEIGHTS_RULE, unmatched="allow")
    bundle = _bundle(tmp_path, model, keys["release"])
    with pytest.raises(PolicyDenied, match="clears no file") as exc:
        mgattest.load(model, policy=pol, bundles=[bundle])
    assert exc.value.verdict.allowed and "matches no rule" in str(exc.value)


def test_object_arrays_only_under_their_own_rule(tmp_path, keys):
    """#16.5: `pickle: restricted` in one rule does not let load() unpickle an object
    array that a `pickle: deny` rule judges."""
    rules = WEIGHTS_RULE + """\
  - id: extras
    match: ["extras/**"]
    signedBy: {anyOf: [release]}
    content: {pickle: restricted}
"""
    model = _model_dir(tmp_path, {"w.npy": _npy(np.array([{"k": 1}, None], dtype=object))})
    (model / "extras").mkdir()
    (model / "extras" / "o.npy").write_bytes(_npy(np.array([{"k": 2}], dtype=object)))
    pol = _write_policy(tmp_path, rules)
    bundle = _bundle(tmp_path, model, keys["release"])
    # refused by the weights rule's own pickle: deny (the object array is a pickle
    # underneath), never unpickled under the extras rule's permission
    with pytest.raises((PolicyDenied, UnsafeContentError), match="w.npy"):
        mgattest.load(model, policy=pol, bundles=[bundle])
    (model / "w.npy").write_bytes(_npy(np.arange(2)))
    bundle = _bundle(tmp_path, model, keys["release"])
    got = mgattest.load(model, policy=pol, bundles=[bundle])
    assert list(got["extras/o.npy"]) == [{"k": 2}]


def test_files_signed_by_a_signer_the_rule_does_not_trust_are_not_loaded(tmp_path, keys):
    """The docs signer is trusted for *.md only; its bundle covering the weights does
    not make them covered for the weights rule (and not loadable in warn mode)."""
    rules = WEIGHTS_RULE + """\
  - id: docs
    match: ["*.md"]
    signedBy: {anyOf: [docs]}
"""
    model = _model_dir(tmp_path, {"w.npy": _npy(np.arange(2)), "README.md": b"hi"})
    path = _write_policy(tmp_path, rules)
    path.write_text(path.read_text().replace("kind: Policy\n", "kind: Policy\nmode: warn\n"))
    bundle = _bundle(tmp_path, model, keys["docs"])
    got = mgattest.load(model, policy=path, bundles=[bundle])
    assert list(got) == ["README.md"]


# --------------------------------------------------------------------------- clauses see
# only attestations from the signers their rule trusts

from mgattest.policy._evaluate import evaluate  # noqa: E402
from tests.helpers.policy_facts import (KEY_B, T0, attestation, digest_of,  # noqa: E402
                                 key_signer, model, policy, provenance, safe_reports)

W, DOC = "model.safetensors", "README.md"
TWO_FILES = {W: digest_of(b"weights"), DOC: digest_of(b"docs")}


def _two_signer_policy(weights_extra: str):
    text = (HEAD + keys_block(("release", KEY_A), ("docs", KEY_B))
            + "signers:\n  release: {key: release}\n  docs: {key: docs}\nrules:\n"
            "  - id: weights\n    match: ['*.safetensors']\n    signedBy: {anyOf: [release]}\n"
            + "".join("    " + ln + "\n" for ln in weights_extra.strip("\n").splitlines())
            + "  - id: docs\n    match: ['*.md']\n    signedBy: {anyOf: [docs]}\n")
    return policy(text)


def _run(pol, atts):
    return evaluate(pol, atts, model(TWO_FILES), safe_reports(TWO_FILES), now=T0)


def test_cel_ignores_attestations_from_signers_the_rule_does_not_trust():
    """#16.6: the docs signer attests score 0.99 for the weights; the weights rule's own
    signer said 0.42. The CEL clause must see only the release signer's attestation."""
    pol = _two_signer_policy("cel:\n  - {id: score, expr: 'predicate.score >= 0.9', "
                             "message: score too low}")
    release = attestation(TWO_FILES, key_signer(KEY_A), predicate_type="https://e/v1",
                          predicate={"score": 0.42}, source="release.json")
    docs = attestation(TWO_FILES, key_signer(KEY_B), predicate_type="https://e/v1",
                       predicate={"score": 0.99}, source="docs.json")
    v = _run(pol, [release, docs])
    cel = next(c for c in v.checks if c.id == "weights.cel:score")
    assert not v.allowed and cel.status == "fail" and "score too low" in cel.reason
    good = attestation(TWO_FILES, key_signer(KEY_A), predicate_type="https://e/v1",
                       predicate={"score": 0.95}, source="release-good.json")
    v = _run(pol, [good, docs])
    cel = next(c for c in v.checks if c.id == "weights.cel:score")
    assert v.allowed and cel.evidence[0]["satisfiedBy"] == {
        "attestation": "release-good.json", "signer": f"key:{KEY_A[1]}"}


def test_predicate_expectations_ignore_untrusted_signers():
    """Sibling: a provenance expectation without its own signedBy is judged only on
    attestations from the rule's signers (builder, source, resolvedDependencies)."""
    pol = _two_signer_policy(
        "attestations:\n  - predicateType: https://slsa.dev/provenance/v1\n"
        "    provenance: {builderId: 'https://builder.example/good', dependenciesPinned: true}")
    release = attestation(TWO_FILES, key_signer(KEY_A),
                          predicate=provenance(builder="https://builder.example/evil"))
    docs = attestation(TWO_FILES, key_signer(KEY_B), source="docs.json",
                       predicate=provenance(builder="https://builder.example/good"))
    v = _run(pol, [release, docs])
    assert not v.allowed and any(c.id == "weights.attestations[0]" for c in v.failures)
    assert all(e.get("attestation") != "docs.json"
               for c in v.checks if c.rule == "weights" for e in c.evidence)


def test_attestation_expectation_with_its_own_signer_is_trusted_by_the_rule():
    """A rule trusts the signers its attestation expectations name, too (a model signed
    by release, its provenance by a builder key)."""
    pol = _two_signer_policy(
        "attestations:\n  - predicateType: https://slsa.dev/provenance/v1\n"
        "    signedBy: {anyOf: [docs]}\n"
        "    provenance: {builderId: 'https://builder.example/good'}")
    release = attestation(TWO_FILES, key_signer(KEY_A), predicate_type="https://e/v1")
    builder = attestation(TWO_FILES, key_signer(KEY_B), source="builder.json",
                          predicate=provenance(builder="https://builder.example/good"))
    assert _run(pol, [release, builder]).allowed


def test_clearance_is_per_file_and_strictest_permission_wins():
    pol = policy(HEAD + keys_block(("release", KEY_A)) + "signers:\n  release: {key: release}\n"
                 "unmatchedFiles: allow\nrules:\n"
                 "  - id: all\n    match: ['**']\n    content: {pickle: restricted}\n"
                 "    files: {ignore: ['*.md']}\n"
                 "  - id: weights\n    match: ['*.safetensors']\n    content: {pickle: deny}\n")
    files = dict(TWO_FILES, **{"extra.bin": digest_of(b"x")})
    v = evaluate(pol, [attestation({W: files[W], DOC: files[DOC]}, key_signer(KEY_A))],
                 model(files), safe_reports(files), now=T0)
    c = v.clearance
    assert c[W].loadable and c[W].pickle == "deny" and c[W].rules == ("all", "weights")
    assert not c[DOC].loadable and "ignored" in c[DOC].reason
    assert not c["extra.bin"].loadable and "not covered" in c["extra.bin"].reason


# --------------------------------------------------------------------------- VSA


def _cli(*args):
    from typer.testing import CliRunner

    from mgattest.cli.app import app
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_vsa_states_only_what_was_verified(tmp_path, keys):
    """#16.8: a warn-mode allow whose signer check failed is FAILED, and an unsigned
    file tolerated by files.unsigned: allow is not a subject."""
    from mgattest.attest._keys import private_key_pem
    from mgattest.attest._verify import verify_bundle
    (tmp_path / "vsa.key").write_bytes(private_key_pem(keys["release"]))
    rules = ("  - id: model\n    match: ['**']\n    signedBy: {allOf: [release, docs]}\n"
             "    files: {unsigned: allow}\n")
    pol = _write_policy(tmp_path, rules)
    model = _model_dir(tmp_path, {"w.npy": _npy(np.arange(2))})
    bundle = _bundle(tmp_path, model, keys["release"])
    (model / "unsigned.json").write_text("{}")
    out = tmp_path / "vsa.json"
    warn = tmp_path / "warn.yaml"
    warn.write_text(pol.read_text().replace("kind: Policy\n", "kind: Policy\nmode: warn\n"))
    code, text = _cli("verify", model, "--bundle", bundle, "--policy", warn,
                      "--emit-vsa", out, "--key", tmp_path / "vsa.key")
    assert code == 0, text
    att = verify_bundle(json.loads(out.read_text()),
                        trust=TrustOptions(keys=[tmp_path / "release.pub"]), allow_unlogged=True)
    assert att.predicate["verificationResult"] == "FAILED"
    assert att.predicate["verifiedLevels"] == []
    assert [s["name"] for s in att.subjects] == ["w.npy"]
    assert [a["uri"] for a in att.predicate["inputAttestations"]] == [str(bundle)]


def test_vsa_passed_only_when_no_clause_failed(tmp_path, keys):
    from mgattest.policy._loader import load_policy
    from mgattest.policy._vsa import vsa_statement
    from mgattest.loading import read_model_bytes, verify_model_bytes
    model = _model_dir(tmp_path, {"w.npy": _npy(np.arange(2))})
    bundle = _bundle(tmp_path, model, keys["release"])
    pol = load_policy(_write_policy(tmp_path, WEIGHTS_RULE))
    verdict = verify_model_bytes(read_model_bytes(model, exclude=[bundle]), pol, [bundle])
    st = vsa_statement(verdict, [], resource_uri="m")
    assert verdict.passed and st["predicate"]["verificationResult"] == "PASSED"
    assert [s["name"] for s in st["subject"]] == ["w.npy"]


# --------------------------------------------------------------------------- audit log


def _reassemble(lines: list[str]) -> dict:
    """The record a head line and its continuation lines describe."""
    head, *parts = [json.loads(x) for x in lines]
    record = {k: v for k, v in head.items() if k not in ("record", "parts", "lengths")}
    for field in head.get("lengths", {}):
        record[field] = []
    for part in sorted(parts, key=lambda p: p["part"]):
        assert part["record"] == head["record"]
        record[part["field"]].extend(part["items"])
    return record


def test_long_file_names_are_clipped_visibly_and_no_artifact_is_dropped(tmp_path):
    """#16.14: long names pushed the record over 64 KiB and the fallback dropped the
    artifacts, digests and reasons."""
    import hashlib

    from mgattest.policy._audit import append_decision
    names = [f"{i:03d}-" + "n" * 3000 for i in range(40)]
    record = {"time": "t", "decision": "deny",
              "artifacts": [{"name": n, "digest": {"sha256": f"{i:064x}"}}
                            for i, n in enumerate(names)],
              "reasons": [f"r.files: {n}: not covered" for n in names]}
    path = tmp_path / "audit.jsonl"
    append_decision(path, record)
    lines = path.read_text().splitlines()
    assert len(lines) > 1 and all(len(x.encode()) <= 64 * 1024 for x in lines)
    got = _reassemble(lines)
    assert [a["digest"]["sha256"] for a in got["artifacts"]] == [f"{i:064x}" for i in range(40)]
    first = got["artifacts"][0]["name"]
    assert first.startswith(names[0][:1024]) and "truncated 3004 chars" in first
    assert hashlib.sha256(names[0].encode()).hexdigest() in first
    assert len(got["reasons"]) == 40 and got["decision"] == "deny"


def test_control_characters_in_names_cannot_forge_lines(tmp_path):
    from mgattest.policy._audit import append_decision
    evil = 'x\n{"decision":"allow"}\u2028\r'
    path = tmp_path / "audit.jsonl"
    append_decision(path, {"decision": "deny", "artifacts": [{"name": evil}]})
    [line] = path.read_bytes().split(b"\n")[:-1]
    assert json.loads(line)["artifacts"][0]["name"] == evil


def test_fifo_at_the_audit_path_is_refused_without_hanging(tmp_path):
    import os
    import threading

    from mgattest.errors import InputError
    from mgattest.policy._audit import append_decision
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    errors = []

    def write():
        try:
            append_decision(fifo, {"decision": "deny"})
        except InputError as exc:
            errors.append(exc)
    worker = threading.Thread(target=write, daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock the writer so the test process can finish
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        worker.join(5)
        os.close(fd)
        pytest.fail("append_decision blocked on a FIFO")
    assert errors and "audit log" in errors[0].message
    for special in ("/dev/null",):
        with pytest.raises(InputError, match="not a regular file"):
            append_decision(special, {"decision": "deny"})


def test_optional_log_in_one_rule_does_not_excuse_another():
    """Sibling of #16.5: `transparencyLog: {require: optional}` in the docs rule makes the
    verifier accept unlogged bundles; the weights rule still requires a log entry."""
    text = (HEAD + keys_block(("release", KEY_A)) + "signers:\n  release: {key: release}\n"
            "rules:\n  - id: weights\n    match: ['*.safetensors']\n"
            "    signedBy: {anyOf: [release]}\n"
            "  - id: docs\n    match: ['*.md']\n    signedBy: {anyOf: [release]}\n"
            "    transparencyLog: {require: optional}\n")
    unlogged = attestation(TWO_FILES, key_signer(KEY_A), logs=[])
    v = evaluate(policy(text), [unlogged], model(TWO_FILES), safe_reports(TWO_FILES), now=T0)
    assert not v.allowed
    assert {c.id for c in v.failures} == {"weights.transparencyLog", "weights.signedBy"}


def test_warn_mode_never_loads_tampered_bytes(tmp_path, keys):
    """Sibling of #9: warn mode lets a verdict with an integrity failure allow; the
    tampered file must still not be deserialised."""
    rules = WEIGHTS_RULE.replace('["*.npy"]', '["**"]')
    model = _model_dir(tmp_path, {"w.npy": _npy(np.arange(2)), "b.npy": _npy(np.arange(3))})
    bundle = _bundle(tmp_path, model, keys["release"])
    (model / "b.npy").write_bytes(_npy(np.full(3, 666)))
    pol = _write_policy(tmp_path, rules)
    pol.write_text(pol.read_text().replace("kind: Policy\n", "kind: Policy\nmode: warn\n"))
    got = mgattest.load(model, policy=pol, bundles=[bundle])
    assert list(got) == ["w.npy"]
