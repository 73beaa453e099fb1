"""``mgattest audit``, ``sign --all`` and ``verify --all`` on real trees: real signatures,
a real tamper, a real pickle calling os.system, an oversize file under a policy; SARIF
checked against the official SARIF 2.1.0 schema, JUnit read by junitparser."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from junitparser import Failure, JUnitXml

from tests.helpers.cli_runner import mg
from tests.helpers.sarif import sarif_validator


class _Boom:
    """Unpickling this calls os.system (the scanner must see it; nothing loads it)."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _npy(values) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(values, dtype=np.float32))
    return buf.getvalue()


def _sign(model: Path, key: Path) -> None:
    result = mg("sign", model, "--key", key)
    assert result.exit_code == 0, result.output


def _repo(tmp_path: Path, key: Path) -> Path:
    """A repository with: two good signed .npy models, a signed model directory, an
    unsigned .pt, a signed pickle that calls os.system, a README and VCS metadata."""
    repo = tmp_path / "repo"
    (repo / "models" / "encoder").mkdir(parents=True)
    (repo / "models" / "good.npy").write_bytes(_npy([1, 2, 3]))
    (repo / "models" / "other.npy").write_bytes(_npy([4, 5, 6, 7]))
    (repo / "models" / "encoder" / "weights.npy").write_bytes(_npy(range(8)))
    (repo / "models" / "encoder" / "config.json").write_text('{"layers": 2}')
    (repo / "unsigned.pt").write_bytes(pickle.dumps({"weights": [0.5, 1.5]}))
    (repo / "tools").mkdir()
    (repo / "tools" / "evil.pkl").write_bytes(pickle.dumps(_Boom()))
    (repo / "README.md").write_text("models\n")
    (repo / ".git" / "objects").mkdir(parents=True)
    (repo / ".git" / "objects" / "stale.pt").write_bytes(b"not a model")
    for model in ("models/good.npy", "models/other.npy", "models/encoder", "tools/evil.pkl"):
        _sign(repo / model, key)
    return repo


def _audit_json(*args) -> tuple[int, dict]:
    result = mg("audit", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def _by_name(doc: dict) -> dict[str, dict]:
    return {m["name"]: m for m in doc["models"]}


def _policy(tmp_path: Path, pub: Path, extra_files: str = "", extra_rule: str = "") -> Path:
    shutil.copy(pub, tmp_path / "release.pub")
    path = tmp_path / "policy.yaml"
    path.write_text(f"""apiVersion: mgattest/v1
kind: Policy
mode: enforce
trust:
  keys:
    - name: release
      path: release.pub
signers:
  release:
    key: release
rules:
  - id: models
    match: ["**"]
    signedBy:
      anyOf: [release]
    files:
      ignore: ["*.sigstore.json"]{extra_files}
    content:
      pickle: restricted
{extra_rule}""")
    return path


# --------------------------------------------------------------------------- classification

def test_audit_without_policy_classifies_every_model(tmp_path, keypair):
    key, pub = keypair
    repo = _repo(tmp_path, key)
    code, doc = _audit_json(repo, "--key", pub)
    assert code == 1
    models = _by_name(doc)
    # VCS metadata skipped; the signed directory is one model (its files not listed alone)
    assert sorted(models) == ["models/encoder", "models/good.npy", "models/other.npy",
                              "tools/evil.pkl", "unsigned.pt"]
    assert models["models/encoder"]["kind"] == "directory"
    for name in ("models/encoder", "models/good.npy", "models/other.npy"):
        assert models[name]["status"] == "verified" and models[name]["findings"] == []
    assert models["unsigned.pt"]["status"] == "unsigned"
    assert "unsigned.pt.sigstore.json is missing" in models["unsigned.pt"]["findings"][0][
        "message"]
    evil = models["tools/evil.pkl"]
    assert evil["status"] == "unsafe_content"
    assert evil["findings"][0]["file"] == "tools/evil.pkl"
    assert "system" in evil["findings"][0]["message"]
    assert doc["counts"] == {"invalid": 0, "unsafe_content": 1, "policy_violation": 0,
                             "size_anomaly": 0, "unsigned": 1, "verified": 3}


def test_audit_names_the_tampered_file_inside_a_model_directory(tmp_path, keypair):
    key, pub = keypair
    repo = _repo(tmp_path, key)
    weights = repo / "models" / "encoder" / "weights.npy"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    code, doc = _audit_json(repo, "--key", pub)
    assert code == 1
    models = _by_name(doc)
    encoder = models["models/encoder"]
    assert encoder["status"] == "invalid"
    assert encoder["findings"][0]["file"] == "models/encoder/weights.npy"
    assert "differs from its subject" in encoder["findings"][0]["message"]
    assert models["models/good.npy"]["status"] == "verified"  # no false alarm next to it


def test_audit_reports_a_forged_bundle_as_invalid(tmp_path, keypair):
    key, pub = keypair
    repo = _repo(tmp_path, key)
    bundle = repo / "models" / "good.npy.sigstore.json"
    doc = json.loads(bundle.read_text())
    sig = doc["dsseEnvelope"]["signatures"][0]
    sig["sig"] = sig["sig"][:10] + ("A" if sig["sig"][10] != "A" else "B") + sig["sig"][11:]
    bundle.write_text(json.dumps(doc))
    code, out = _audit_json(repo, "--key", pub)
    good = _by_name(out)["models/good.npy"]
    assert code == 1 and good["status"] == "invalid"
    assert good["findings"][0]["file"] == "models/good.npy"


def test_audit_under_a_policy_size_anomaly_and_policy_violation(tmp_path, keypair):
    key, pub = keypair
    repo = _repo(tmp_path, key)
    other = repo / "models" / "other.npy"
    denied = "sha256:" + hashlib.sha256(other.read_bytes()).hexdigest()
    good_size = (repo / "models" / "good.npy").stat().st_size
    big = repo / "models" / "big.npy"
    big.write_bytes(_npy(range(64)))
    _sign(big, key)
    assert big.stat().st_size > good_size + 4
    policy = _policy(tmp_path, pub, extra_files=f"\n      maxSize: {good_size + 4}",
                     extra_rule=f"""  - id: revoked
    match: ["other.npy"]
    digests:
      deny: ["{denied}"]
""")
    code, doc = _audit_json(repo, "--policy", policy)
    assert code == 1
    models = _by_name(doc)
    assert models["models/good.npy"]["status"] == "verified"
    assert models["models/big.npy"]["status"] == "size_anomaly"
    size = models["models/big.npy"]["findings"][0]
    assert "exceeds files.maxSize" in size["message"] and size["check"] == "models.size"
    assert models["models/other.npy"]["status"] == "policy_violation"
    assert models["models/other.npy"]["findings"][0]["check"] == "revoked.digests"
    assert models["tools/evil.pkl"]["status"] == "unsafe_content"
    assert models["unsigned.pt"]["status"] == "unsigned"
    assert doc["policy"] == str(policy)


def test_audit_all_verified_exits_0_and_patterns_ignores_apply(tmp_path, keypair):
    key, pub = keypair
    repo = _repo(tmp_path, key)
    code, doc = _audit_json(repo, "--key", pub, "--ignore", "tools", "--ignore", "*.pt")
    assert code == 0 and doc["ok"] is True
    assert sorted(_by_name(doc)) == ["models/encoder", "models/good.npy", "models/other.npy"]
    # --pattern replaces the defaults; a file with a bundle beside it is a model anyway
    code, doc = _audit_json(repo, "--key", pub, "--pattern", "*.json")
    assert sorted(_by_name(doc)) == ["models/encoder", "models/good.npy", "models/other.npy",
                                     "tools/evil.pkl"]  # no unsigned.pt, no config.json


def test_audit_refuses_symlinked_models(tmp_path, keypair):
    key, pub = keypair
    repo = _repo(tmp_path, key)
    (repo / "alias.npy").symlink_to(repo / "models" / "good.npy")
    (repo / "linked_dir").symlink_to(repo / "models")
    code, doc = _audit_json(repo, "--key", pub)
    models = _by_name(doc)
    assert code == 1
    for name in ("alias.npy", "linked_dir"):
        assert models[name]["status"] == "invalid"
        assert "symbolic link" in models[name]["findings"][0]["message"]
    assert "linked_dir/good.npy" not in models  # never followed


# --------------------------------------------------------------------------- formats

def test_sarif_validates_and_locates_findings_on_files(tmp_path, keypair):
    key, pub = keypair
    repo = _repo(tmp_path, key)
    (repo / "models" / "good.npy").write_bytes(_npy([9, 9, 9]))  # tampered
    report = tmp_path / "audit.sarif"
    result = mg("audit", repo, "--key", pub, "--sarif", report)
    assert result.exit_code == 1
    sarif = json.loads(report.read_text())
    validator = sarif_validator()
    errors = sorted(validator.iter_errors(sarif), key=str)
    assert not errors, errors[:3]
    run = sarif["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    located = {(r["ruleId"], r["level"],
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
               for r in run["results"]}
    assert located == {("mgattest/invalid", "error", "models/good.npy"),
                       ("mgattest/unsafe-content", "error", "tools/evil.pkl"),
                       ("mgattest/unsigned", "warning", "unsigned.pt")}
    for r in run["results"]:
        assert rules[r["ruleIndex"]] == r["ruleId"]
        assert (repo / r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]).exists()
    # a broken document is caught by the same validator (the check can fail)
    broken = json.loads(json.dumps(sarif))
    broken["runs"][0]["results"][0]["level"] = "fatal"
    assert list(validator.iter_errors(broken))


def test_sarif_on_stdout_and_uri_escaping(tmp_path, keypair):
    key, pub = keypair
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "my model#1.pt").write_bytes(b"x" * 10)
    result = mg("audit", repo, "--format", "sarif")
    assert result.exit_code == 1
    sarif = json.loads(result.stdout)
    assert not list(sarif_validator().iter_errors(sarif))
    uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
        "artifactLocation"]["uri"]
    assert uri == "my%20model%231.pt"


def test_junit_one_testcase_per_model(tmp_path, keypair):
    key, pub = keypair
    repo = _repo(tmp_path, key)
    report = tmp_path / "audit.xml"
    result = mg("audit", repo, "--key", pub, "--junit", report, "--sarif", tmp_path / "a.sarif")
    assert result.exit_code == 1
    assert (tmp_path / "a.sarif").exists()
    xml = JUnitXml.fromfile(str(report))
    cases = {case.name: case for suite in xml for case in suite}
    assert sorted(cases) == ["models/encoder", "models/good.npy", "models/other.npy",
                             "tools/evil.pkl", "unsigned.pt"]
    assert cases["models/good.npy"].is_passed
    failures = {name: [r for r in case.result if isinstance(r, Failure)]
                for name, case in cases.items()}
    assert failures["unsigned.pt"][0].type == "unsigned"
    assert failures["tools/evil.pkl"][0].type == "unsafe_content"
    assert "tools/evil.pkl" in failures["tools/evil.pkl"][0].message
    suite = next(iter(xml))
    assert suite.tests == 5 and suite.failures == 2


def test_table_output_plain_when_not_a_terminal(tmp_path, keypair):
    key, pub = keypair
    repo = _repo(tmp_path, key)
    result = mg("audit", repo, "--key", pub)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("unsigned") and "unsigned.pt" in line for line in lines)
    assert any(line.startswith("verified") and "models/good.npy" in line for line in lines)
    assert lines[-1] == "5 model(s): 1 unsafe content, 1 unsigned, 3 verified"
    assert "\x1b[" not in result.stdout


@pytest.mark.parametrize("args, what", [
    (["--format", "xml"], "--format"),
    (["--json", "--format", "sarif"], "--json"),
])
def test_usage_errors_exit_2(tmp_path, args, what):
    (tmp_path / "m.pt").write_bytes(b"x")
    result = mg("audit", tmp_path, *args)
    assert result.exit_code == 2 and what in result.output


def test_audit_of_a_missing_directory_exits_2(tmp_path):
    result = mg("audit", tmp_path / "nope")
    assert result.exit_code == 2 and "not a directory" in result.output
    (tmp_path / "file.pt").write_bytes(b"x")
    assert mg("audit", tmp_path / "file.pt").exit_code == 2


# --------------------------------------------------------------------------- --all

def test_sign_all_then_verify_all_one_tampered(tmp_path, keypair):
    key, pub = keypair
    tree = tmp_path / "tree"
    for i in range(5):
        (tree / f"m{i}").mkdir(parents=True)
        (tree / f"m{i}" / "model.safetensors").write_bytes(os.urandom(1000 + i))
    (tree / "vendored" / "node_modules").mkdir(parents=True)
    (tree / "vendored" / "node_modules" / "x.bin").write_bytes(b"dependency")
    result = mg("sign", "--all", tree, "--key", key, "--json")
    assert result.exit_code == 0, result.output
    signed = json.loads(result.stdout)["models"]
    assert [m["outcome"] for m in signed] == ["signed"] * 5
    assert len({m["logIndex"] for m in signed}) == 5  # each logged once
    again = mg("sign", "--all", tree, "--key", key)
    assert again.exit_code == 0 and "5 skipped" in again.stdout

    ok = mg("verify", "--all", tree, "--key", pub)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[-1] == "5 model(s): 5 verified"

    (tree / "m3" / "model.safetensors").write_bytes(os.urandom(1003))
    bad = mg("verify", "--all", tree, "--key", pub, "--json")
    assert bad.exit_code == 1
    models = _by_name(json.loads(bad.stdout))
    assert models["m3/model.safetensors"]["status"] == "invalid"
    assert [n for n, m in models.items() if m["status"] == "verified"] == [
        "m0/model.safetensors", "m1/model.safetensors", "m2/model.safetensors",
        "m4/model.safetensors"]


def test_sign_all_failure_of_one_does_not_stop_the_others(tmp_path, keypair):
    key, _ = keypair
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.pt").write_bytes(b"a" * 100)
    (tree / "b.pt").write_bytes(b"b" * 100)
    (tree / "c.pt").symlink_to(tree / "a.pt")
    result = mg("sign", "--all", tree, "--key", key)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("failed") and "c.pt" in line and "symbolic link" in line
               for line in lines)
    assert (tree / "a.pt.sigstore.json").exists() and (tree / "b.pt.sigstore.json").exists()
    assert not (tree / "c.pt.sigstore.json").exists()
    assert lines[-1] == "3 model(s): 2 signed, 0 skipped, 1 failed"


def test_all_refuses_options_that_name_one_model(tmp_path, keypair):
    key, pub = keypair
    (tmp_path / "a.pt").write_bytes(b"a")
    result = mg("verify", "--all", tmp_path, "--key", pub, "--bundle", tmp_path / "x.json")
    assert result.exit_code == 2 and "--bundle" in result.output
    result = mg("sign", "--all", tmp_path, "--key", key, "--out", tmp_path / "x.json")
    assert result.exit_code == 2 and "--out" in result.output


def test_a_bundle_inside_the_model_directory_covers_it(tmp_path, keypair):
    key, pub = keypair
    repo = tmp_path / "repo"
    model = repo / "llm"
    (model / "tok").mkdir(parents=True)
    (model / "weights.npy").write_bytes(_npy(range(16)))
    (model / "tok" / "vocab.json").write_text('{"a": 1}')
    result = mg("sign", model, "--key", key, "--out", model / "release.sigstore.json")
    assert result.exit_code == 0, result.output
    code, doc = _audit_json(repo, "--key", pub)
    assert code == 0, doc
    assert [(m["name"], m["kind"], m["status"]) for m in doc["models"]] == [
        ("llm", "directory", "verified")]
    (model / "tok" / "vocab.json").write_text('{"a": 2}')
    code, doc = _audit_json(repo, "--key", pub)
    llm = _by_name(doc)["llm"]
    assert code == 1 and llm["status"] == "invalid"
    assert llm["findings"][0]["file"] == "llm/tok/vocab.json"


def test_terminal_table_escapes_markup_and_control_characters(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "[red]x.pt").write_bytes(pickle.dumps([1]))
    (repo / "bell\x07.pt").write_bytes(pickle.dumps([2]))
    result = mg("audit", repo, env={"FORCE_COLOR": "1", "COLUMNS": "200"})
    assert result.exit_code == 1
    assert "┃" in result.stdout  # the rich table, as on a terminal
    assert "[red]x.pt" in result.stdout
    assert "\x07" not in result.stdout and "bell" in result.stdout
    assert result.stdout.splitlines()[-1] == "2 model(s): 2 unsigned"
