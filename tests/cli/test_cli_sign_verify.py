"""The sign / attest / keygen / trust export / verify commands and their exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tests.helpers.cli_runner import mg

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MGATTEST_KEY_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)


def test_keygen_writes_0600_key_and_warns_when_unencrypted(tmp_path, keypair):
    key, pub = keypair
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = mg("keygen", "--out", tmp_path / "k")
    assert again.exit_code == 2 and "already exists" in again.output


def test_encrypted_key_via_env(tmp_path, model, monkeypatch):
    monkeypatch.setenv("TEAM_PW", "pw1")
    assert mg("keygen", "--type", "ed25519", "--out", tmp_path / "e",
              "--password-env", "TEAM_PW").exit_code == 0
    assert b"ENCRYPTED" in (tmp_path / "e.key").read_bytes()
    no_pw = mg("sign", model, "--key", tmp_path / "e.key")
    assert no_pw.exit_code == 2 and "encrypted" in no_pw.output
    ok = mg("sign", model, "--key", tmp_path / "e.key", "--password-env", "TEAM_PW")
    assert ok.exit_code == 0, ok.output
    monkeypatch.setenv("MGATTEST_KEY_PASSWORD", "pw1")
    assert mg("sign", model, "--key", tmp_path / "e.key", "--force").exit_code == 0


def test_sign_verify_tamper_exit_codes(model, keypair, tmp_path):
    key, pub = keypair
    signed = mg("sign", model, "--key", key, "--param", "epochs=3", "--dependency",
                f"data=https://d.example/train@sha256:{'ab' * 32}", "--builder-id",
                "https://ci.example/builder")
    assert signed.exit_code == 0, signed.output
    bundle_path = tmp_path / "model.sigstore.json"
    bundle = json.loads(bundle_path.read_text())
    statement = json.loads(__import__("base64").b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["predicate"]["buildDefinition"]["externalParameters"]["epochs"] == 3
    assert statement["predicate"]["runDetails"]["builder"]["id"] == "https://ci.example/builder"
    ok = mg("verify", model, "--key", pub)
    assert ok.exit_code == 0 and "OK: 2 file(s) match" in ok.output
    as_json = mg("verify", model, "--key", pub, "--json")
    doc = json.loads(as_json.stdout)
    assert doc["ok"] and doc["attestations"][0]["log_entries"][0]["inclusion_proof_verified"]
    (model / "tokenizer.json").write_text('{"x": 1}')
    bad = mg("verify", model, "--key", pub)
    assert bad.exit_code == 1 and "tokenizer.json" in bad.output and "rejected" in bad.output
    bad_json = mg("verify", model, "--key", pub, "--json")
    assert bad_json.exit_code == 1 and json.loads(bad_json.stdout)["ok"] is False


def test_verify_quarantines_a_rejected_model_only(model, keypair, tmp_path):
    key, pub = keypair
    assert mg("sign", model, "--key", key).exit_code == 0
    qdir = tmp_path / "quarantine"
    ok = mg("verify", model, "--key", pub, "--quarantine", qdir)
    assert ok.exit_code == 0 and model.is_dir()
    assert not qdir.exists() or not any(qdir.iterdir())
    original = (model / "weights.bin").read_bytes()
    (model / "weights.bin").write_bytes(b"tampered" + original[8:])
    bad = mg("verify", model, "--key", pub, "--quarantine", qdir)
    assert bad.exit_code == 1 and "quarantined" in bad.output
    assert not model.exists()
    listed = mg("quarantine", "list", "--dir", qdir, "--json")
    assert listed.exit_code == 0, listed.output
    incidents = json.loads(listed.stdout)
    assert len(incidents) == 1
    assert any("weights.bin" in r for r in incidents[0]["reasons"])
    restored = mg("quarantine", "restore", incidents[0]["id"], "--dir", qdir)
    assert restored.exit_code == 0, restored.output
    assert (model / "weights.bin").read_bytes()[:8] == b"tampered"


def test_hash_choice_and_signed_ignores_are_honoured_by_verify(tmp_path, keypair):
    key, pub = keypair
    model = tmp_path / "ig"
    model.mkdir()
    (model / "a.txt").write_text("a")
    (model / "run.log").write_text("log")
    signed = mg("sign", model, "--key", key, "--ignore", "*.log", "--hash", "sha512")
    assert signed.exit_code == 0, signed.output
    bundle = json.loads((tmp_path / "ig.sigstore.json").read_text())
    statement = json.loads(__import__("base64").b64decode(bundle["dsseEnvelope"]["payload"]))
    assert [s["name"] for s in statement["subject"]] == ["a.txt"]
    assert set(statement["subject"][0]["digest"]) == {"sha512"}
    assert statement["predicate"]["buildDefinition"]["internalParameters"]["mgattest"] == {
        "ignore": ["*.log"]}
    # The signer's ignore list travels with the signature: no --ignore needed to verify.
    (model / "run.log").write_text("rotated")
    (model / "new.log").write_text("more")
    ok = mg("verify", model, "--key", pub)
    assert ok.exit_code == 0, ok.output
    # ...but it widens nothing else.
    (model / "extra.txt").write_text("x")
    bad = mg("verify", model, "--key", pub)
    assert bad.exit_code == 1 and "extra.txt" in bad.output
    assert mg("sign", model, "--key", key, "--hash", "md5").exit_code == 2


def test_signed_ignores_only_from_wellformed_slsa_statements():
    from mgattest.attest._slsa import SLSA_PROVENANCE_V1, digest_options, signed_ignores

    def statement(recorded, ptype=SLSA_PROVENANCE_V1):
        return {"predicateType": ptype, "predicate": {"buildDefinition": {
            "internalParameters": {"mgattest": {"ignore": recorded}}}}}

    assert signed_ignores(statement(["*.log", "docs/**"])) == ["*.log", "docs/**"]
    assert digest_options(["b", "a", "a"]) == {"mgattest": {"ignore": ["a", "b"]}}
    assert digest_options([]) is None
    for bad in ("*.log", [1], [""], ["x" * 2000], ["a"] * 300, None):
        assert signed_ignores(statement(bad)) == []
    assert signed_ignores(statement(["*.log"], ptype="https://example/other")) == []
    assert signed_ignores(None) == []


def test_usage_errors_exit_2(model, keypair, tmp_path):
    key, pub = keypair
    assert mg("verify", model, "--key", pub).exit_code == 2  # no bundle yet
    assert mg("verify", tmp_path / "nope", "--key", pub).exit_code == 2
    both = mg("sign", model, "--key", key, "--no-log", "--log-db", tmp_path / "x.db")
    assert both.exit_code == 2 and "at most one" in both.output
    assert mg("sign", model).exit_code == 2  # no key
    assert mg("sign", model, "--key", key, "--keyless").exit_code == 2
    assert mg("sign", model, "--keyless", "--no-log").exit_code == 2
    assert mg("sign", model, "--key", key, "--param", "novalue").exit_code == 2
    assert mg("sign", model, "--key", key, "--format", "zip").exit_code == 2
    assert mg("keygen", "--out", tmp_path / "z", "--type", "dsa").exit_code == 2
    missing_ci = mg("sign", model, "--key", key, "--from-env", "github")
    assert missing_ci.exit_code == 2 and "GITHUB_SHA" in missing_ci.output


def test_from_env_github(model, keypair, tmp_path, monkeypatch):
    key, pub = keypair
    for name, value in {"GITHUB_SERVER_URL": "https://github.com",
                        "GITHUB_REPOSITORY": "org/repo", "GITHUB_REF": "refs/tags/v1",
                        "GITHUB_SHA": "f" * 40, "GITHUB_RUN_ID": "9",
                        "GITHUB_RUN_ATTEMPT": "2",
                        "GITHUB_WORKFLOW_REF": "org/repo/.github/workflows/t.yml@refs/tags/v1",
                        "GITHUB_EVENT_NAME": "push", "GITHUB_REPOSITORY_ID": "11",
                        "GITHUB_REPOSITORY_OWNER_ID": "22"}.items():
        monkeypatch.setenv(name, value)
    assert mg("sign", model, "--key", key, "--from-env", "github").exit_code == 0
    doc = json.loads(mg("verify", model, "--key", pub, "--json").stdout)
    builder = doc["attestations"][0]["predicate"]["runDetails"]["builder"]["id"]
    assert builder == "https://github.com/org/repo/.github/workflows/t.yml@refs/tags/v1"


def test_unlogged_and_digest_verification(tmp_path, keypair):
    key, pub = keypair
    weights = tmp_path / "w.gguf"
    weights.write_bytes(b"gguf" * 100)
    assert mg("sign", weights, "--key", key, "--no-log", "--out", tmp_path / "w.json",
              "--json").exit_code == 0
    assert mg("verify", weights, "--key", pub, "--bundle", tmp_path / "w.json").exit_code == 1
    assert mg("verify", weights, "--key", pub, "--bundle", tmp_path / "w.json",
              "--allow-unlogged").exit_code == 0
    digest = "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()
    assert mg("verify", digest, "--key", pub, "--bundle", tmp_path / "w.json",
              "--allow-unlogged").exit_code == 0
    assert mg("verify", "sha256:" + "1" * 64, "--key", pub, "--bundle", tmp_path / "w.json",
              "--allow-unlogged").exit_code == 1


def test_attest_generic_predicate(model, keypair, tmp_path):
    key, pub = keypair
    pred = tmp_path / "eval.json"
    pred.write_text(json.dumps({"accuracy": 0.91, "samples": 1000}))
    out = tmp_path / "eval.sigstore.json"
    assert mg("attest", model, "--predicate-type", "https://example.com/eval/v1",
              "--predicate", pred, "--key", key, "--out", out).exit_code == 0
    doc = json.loads(mg("verify", model, "--key", pub, "--bundle", out, "--json",
                        "--predicate-type", "https://example.com/eval/v1").stdout)
    assert doc["attestations"][0]["predicate"] == {"accuracy": 0.91, "samples": 1000}
    wrong = mg("verify", model, "--key", pub, "--bundle", out, "--predicate-type",
               "https://slsa.dev/provenance/v1")
    assert wrong.exit_code == 1
    pred.write_text("[1, 2")
    assert mg("attest", model, "--predicate-type", "https://x/y", "--predicate", pred,
              "--key", key, "--out", out).exit_code == 2


def test_trust_export_for_a_second_machine(model, keypair, tmp_path, monkeypatch):
    key, pub = keypair
    assert mg("trust", "export", "--out", tmp_path / "r.json").exit_code == 2  # no log yet
    assert mg("sign", model, "--key", key).exit_code == 0
    assert mg("trust", "export", "--out", tmp_path / "r.json").exit_code == 0
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "elsewhere"))
    assert mg("verify", model, "--key", pub).exit_code == 1
    ok = mg("verify", model, "--key", pub, "--trusted-root", tmp_path / "r.json")
    assert ok.exit_code == 0, ok.output


def test_model_signing_format_via_cli(model, keypair, tmp_path):
    key, pub = keypair
    assert mg("sign", model, "--key", key, "--format", "model-signing").exit_code == 0
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), "model_signing"),
                          "verify", "key", str(model), "--signature",
                          str(tmp_path / "model.sigstore.json"), "--public_key", str(pub)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert mg("verify", model, "--key", pub).exit_code == 0


def test_policy_options_hand_over(model, keypair, monkeypatch):
    pipeline = pytest.importorskip("mgattest.policy._pipeline")
    from mgattest.errors import VerificationError

    seen = {}

    def policy_verifier(model, request):
        seen.update(options=vars(request.shortcuts), bundles=request.bundles)
        raise VerificationError("stopped after the hand-over")

    monkeypatch.setattr(pipeline, "policy_verifier", policy_verifier)
    result = mg("verify", model, "--builder-id", "https://b", "--bundle", "x.json")
    assert result.exit_code == 1
    assert seen["options"]["builder_id"] == "https://b" and seen["bundles"]


def test_help_is_fast_and_lazy():
    code = ("import sys, mgattest.cli.app; "
            "heavy = [m for m in ('cryptography', 'mgattest.attest._verify', 'rich.progress') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.interop
def test_public_good_sigstore_bundles_verify_offline(conformance_dir):
    cases = {c["id"].split("/")[-1]: c
             for c in json.loads((conformance_dir / "cases.json").read_text())}
    for name in ("happy-path-intoto-in-dsse-v3", "happy-path-v0.3"):
        case = cases[name]
        args = ["verify", conformance_dir / case["artifact"], "--bundle",
                conformance_dir / case["bundle"], "--instance", "production",
                "--identity", case["expected_identity"], "--issuer", case["expected_issuer"]]
        ok = mg(*args)
        assert ok.exit_code == 0, ok.output
        assert mg(*args, "--json").stdout.count('"ok": true') == 1
        wrong = mg(*args[:-4], "--identity", "https://evil.example/x", "--issuer",
                   case["expected_issuer"])
        assert wrong.exit_code == 1 and "identity" in wrong.output
        digest_args = list(args)
        digest_args[1] = case["artifact_digest"]
        assert mg(*digest_args).exit_code == 0
        assert mg(*digest_args[:1], "sha256:" + "0" * 64, *digest_args[2:]).exit_code == 1
        staging = mg(*args[:4], "--instance", "staging", *args[6:])
        assert staging.exit_code == 1  # a production bundle under the staging root


def test_log_db_created_by_log_init(model, keypair, tmp_path):
    key, pub = keypair
    made = mg("log", "init", "--db", tmp_path / "team.db", "--key-out", tmp_path / "team-log.pem")
    assert made.exit_code == 0, made.output
    assert mg("sign", model, "--key", key, "--log-key", tmp_path / "team-log.pem").exit_code == 2
    no_key = mg("sign", model, "--key", key, "--log-db", tmp_path / "team.db")
    assert no_key.exit_code == 2 and "team.key" in no_key.output
    ok = mg("sign", model, "--key", key, "--log-db", tmp_path / "team.db", "--log-key",
            tmp_path / "team-log.pem")
    assert ok.exit_code == 0, ok.output
    bundle = json.loads((tmp_path / "model.sigstore.json").read_text())
    assert bundle["verificationMaterial"]["tlogEntries"][0]["logIndex"] == "0"
    assert mg("verify", model, "--key", pub).exit_code == 1  # that log is not trusted yet
    assert mg("trust", "export", "--log-db", tmp_path / "team.db", "--out",
              tmp_path / "team-root.json").exit_code == 0
    ok = mg("verify", model, "--key", pub, "--trusted-root", tmp_path / "team-root.json")
    assert ok.exit_code == 0, ok.output


def test_progress_bar_only_on_a_terminal_and_for_large_models(tmp_path, monkeypatch):
    from mgattest.cli import _sign_cmds as sign_cmds

    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        fh.truncate(65 * 1024 * 1024)  # sparse: cheap to create
    with sign_cmds.hashing_progress(big) as progress:
        assert progress is None  # stderr is not a terminal under pytest
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with sign_cmds.hashing_progress(big) as progress:
        assert callable(progress)
        progress(1024)
    small = tmp_path / "small.bin"
    small.write_bytes(b"x")
    with sign_cmds.hashing_progress(small) as progress:
        assert progress is None


def test_identity_flags_refuse_key_signatures(model, keypair):
    key, pub = keypair
    assert mg("sign", model, "--key", key).exit_code == 0
    result = mg("verify", model, "--key", pub, "--identity", "ml@example.com",
                "--issuer", "https://issuer.example")
    assert result.exit_code == 1 and "certificate signer" in result.output
