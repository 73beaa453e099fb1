"""`mgattest policy lint|explain|init` and `mgattest verify --policy/--builder-id ...`
end to end: real key-signed bundles in the embedded log, real public-good Sigstore
bundles from the conformance suite."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from mgattest.attest._keys import generate_signer, private_key_pem, public_key_pem
from mgattest.attest._sign import DigestOptions, SignOptions, sign_model, write_bundle_file
from mgattest.cli.app import app
from tests.helpers.paths import PROJECT_ROOT
from mgattest.attest._options import TrustOptions

ROOT = PROJECT_ROOT
BEACON = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
          ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")
GH = "https://token.actions.githubusercontent.com"


def cli(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture()
def signed_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    signer = generate_signer()
    (tmp_path / "release.pub").write_bytes(public_key_pem(signer))
    (tmp_path / "vsa.key").write_bytes(private_key_pem(signer))
    shutil.copy(ROOT / "policies" / "key-signed-minimum.yaml", tmp_path / "policy.yaml")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden": 4}')
    (model / "weights.safetensors").write_bytes(_safetensors())
    bundle = write_bundle_file(sign_model(model, signer).bundle, tmp_path / "model.sigstore.json")
    return tmp_path, model, bundle


def _safetensors() -> bytes:
    import numpy as np
    import safetensors.numpy as sn
    return sn.save({"w": np.arange(6, dtype=np.float32)})


def test_lint_ok_and_errors_with_lines(tmp_path, signed_model):
    tmp, _, _ = signed_model
    assert cli("policy", "lint", tmp / "policy.yaml")[0] == 0
    bad = tmp / "bad.yaml"
    bad.write_text((tmp / "policy.yaml").read_text().replace("    signedBy:", "    signedby:"))
    code, out = cli("policy", "lint", bad, "--json")
    assert code == 2
    problems = json.loads(out)["problems"]
    assert problems and problems[0]["where"].startswith(f"{bad}:")
    assert "signedby" in problems[0]["message"]


def test_explain_in_words(signed_model):
    tmp, _, _ = signed_model
    code, out = cli("policy", "explain", tmp / "policy.yaml")
    assert code == 0
    assert "must be signed by any one of release" in out
    assert "pickle-based files: deny" in out


def test_verify_with_policy_allows_and_denies(signed_model):
    tmp, model, bundle = signed_model
    code, out = cli("verify", model, "--bundle", bundle, "--policy", tmp / "policy.yaml", "--json")
    assert code == 0, out
    verdict = json.loads(out)
    assert verdict["allowed"] and verdict["policy"]["digest"].startswith("sha256:")
    (model / "weights.safetensors").write_bytes(_safetensors() + b" ")
    code, out = cli("verify", model, "--bundle", bundle, "--policy", tmp / "policy.yaml", "--json")
    assert code == 1
    assert any(r.startswith("policy.integrity") or r.startswith("model.files")
               for r in json.loads(out)["reasons"])


def test_audit_log_appends_one_line_per_decision(signed_model):
    tmp, model, bundle = signed_model
    log = tmp / "audit.jsonl"
    for _ in range(2):
        assert cli("verify", model, "--bundle", bundle, "--policy", tmp / "policy.yaml",
                   "--audit-log", log)[0] == 0
    (model / "config.json").write_text('{"hidden": 5}')
    assert cli("verify", model, "--bundle", bundle, "--policy", tmp / "policy.yaml",
               "--audit-log", log)[0] == 1
    other = write_bundle_file(sign_model(model, generate_signer()).bundle, tmp / "o.json")
    assert cli("verify", model, "--bundle", other, "--policy", tmp / "policy.yaml",
               "--audit-log", log)[0] == 1
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["decision"] for x in lines] == ["allow", "allow", "deny", "deny"]
    assert "policy.bundles" in lines[3]["reasons"][0]
    assert lines[2]["reasons"] and lines[0]["policy"]["digest"] == lines[2]["policy"]["digest"]
    assert {a["name"] for a in lines[0]["artifacts"]} == {"config.json", "weights.safetensors"}


def test_emit_vsa_signed_and_verifiable(signed_model):
    from mgattest.attest._verify import verify_bundle
    from mgattest.policy._vsa import VSA_PREDICATE_TYPE
    tmp, model, bundle = signed_model
    out_path = tmp / "vsa.sigstore.json"
    code, out = cli("verify", model, "--bundle", bundle, "--policy", tmp / "policy.yaml",
                    "--emit-vsa", out_path, "--key", tmp / "vsa.key")
    assert code == 0, out
    att = verify_bundle(json.loads(out_path.read_text()),
                        trust=TrustOptions(keys=[tmp / "release.pub"]), allow_unlogged=True)
    assert att.predicate_type == VSA_PREDICATE_TYPE
    assert att.predicate["verificationResult"] == "PASSED"
    digest = json.loads(cli("verify", model, "--bundle", bundle, "--policy",
                            tmp / "policy.yaml", "--json")[1])["policy"]["digest"]
    assert att.predicate["policy"]["digest"] == {"sha256": digest.split(":")[1]}
    assert {s["name"] for s in att.subjects} == {"config.json", "weights.safetensors"}


def test_emit_vsa_needs_a_private_key(signed_model):
    tmp, model, bundle = signed_model
    code, _ = cli("verify", model, "--bundle", bundle, "--policy", tmp / "policy.yaml",
                  "--emit-vsa", tmp / "v.json")
    assert code == 2 and not (tmp / "v.json").exists()


def test_init_tofu_policy_then_verify(signed_model):
    tmp, model, bundle = signed_model
    out_policy = tmp / "tofu.yaml"
    code, out = cli("policy", "init", model, "--bundle", bundle, "--key", tmp / "release.pub",
                    "--output", out_policy)
    assert code == 0, out
    text = out_policy.read_text()
    assert "release.pub" in text and "builderId" in text
    assert cli("verify", model, "--bundle", bundle, "--policy", out_policy)[0] == 0
    # Another signer's bundle for the same model is not trusted by the TOFU policy.
    other = generate_signer()
    b2 = write_bundle_file(sign_model(model, other).bundle, tmp / "other.sigstore.json")
    assert cli("verify", model, "--bundle", b2, "--policy", out_policy)[0] == 1
    assert cli("policy", "init", model, "--bundle", bundle, "--key", tmp / "release.pub",
               "--output", out_policy)[0] == 2  # refuses to overwrite


def test_shortcuts_with_key_bundles(signed_model):
    from mgattest.attest._slsa import DEFAULT_BUILDER_ID
    tmp, model, bundle = signed_model
    base = ["verify", model, "--bundle", bundle, "--key", tmp / "release.pub"]
    code, out = cli(*base, "--builder-id", DEFAULT_BUILDER_ID, "--json")
    assert code == 0, out
    code, out = cli(*base, "--builder-id", DEFAULT_BUILDER_ID + "x", "--json")
    assert code == 1 and "builderId" in " ".join(json.loads(out)["reasons"])
    # The default provenance names no source: a source expectation cannot be met.
    code, out = cli(*base, "--source-uri", "github.com/acme/models", "--json")
    assert code == 1 and "source repository None" in " ".join(json.loads(out)["reasons"])
    # Shortcuts that need a source URI say so.
    assert cli(*base, "--source-tag", "v1")[0] == 2


# --------------------------------------------------------------------------- public good

def _case(conformance_dir, name):
    base = conformance_dir / "data" / "sigstore+sigstore-conformance" / "test" / "assets" / "bundle-verify"
    return base / "a.txt", base / name / "bundle.sigstore.json"


@pytest.fixture()
def no_local_log(tmp_path, monkeypatch):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))


def test_public_good_keyless_policy(conformance_dir, tmp_path, no_local_log):
    artifact, bundle = _case(conformance_dir, "happy-path-v0.3")
    pol = tmp_path / "kl.yaml"
    pol.write_text(f"""\
apiVersion: mgattest/v1
kind: Policy
trust: {{roots: [sigstore-public-good]}}
signers:
  beacon:
    keyless:
      issuer: {GH}
      subject: {{regex: 'https://github\\.com/sigstore-conformance/.*'}}
      extensions: {{runnerEnvironment: github-hosted}}
rules:
  - id: artifact
    signedBy: {{anyOf: [beacon]}}
    content: {{scan: "off"}}
""")
    code, out = cli("verify", artifact, "--bundle", bundle, "--policy", pol, "--json")
    assert code == 0, out
    # An anchored regex for another org: the certificate matches no signer.
    pol.write_text(pol.read_text().replace("sigstore-conformance/", "acme/"))
    code, out = cli("verify", artifact, "--bundle", bundle, "--policy", pol, "--json")
    verdict = json.loads(out)
    assert code == 1 and "matches no keyless signer" in " ".join(verdict["reasons"])
    assert verdict["checks"][0]["id"] == "policy.bundles"


def test_slsa_verifier_shortcuts_signer_must_be_builder(conformance_dir, no_local_log):
    artifact, bundle = _case(conformance_dir, "happy-path-intoto-in-dsse-v3")
    builder = "https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml"
    # The provenance names loosebazooka/aa-test, but the certificate is the beacon's:
    # without --identity the signer must BE the builder, so this is rejected.
    code, out = cli("verify", artifact, "--bundle", bundle, "--builder-id", builder,
                    "--source-uri", "github.com/loosebazooka/aa-test", "--json")
    assert code == 1 and "matches no keyless signer" in " ".join(json.loads(out)["reasons"])
    # With the real signer pinned, the provenance's source is still not the
    # certificate's repository: binding fails.
    code, out = cli("verify", artifact, "--bundle", bundle, "--identity", BEACON, "--issuer", GH,
                    "--builder-id", builder, "--source-uri", "github.com/loosebazooka/aa-test",
                    "--source-branch", "main", "--json")
    assert code == 1
    assert "not bound to the certificate" in " ".join(json.loads(out)["reasons"])
    # Builder id alone (with the identity pinned): the provenance's builder matches.
    code, out = cli("verify", artifact, "--bundle", bundle, "--identity", BEACON, "--issuer", GH,
                    "--builder-id", builder, "--json")
    assert code == 0, out
    code, out = cli("verify", artifact, "--bundle", bundle, "--identity", BEACON, "--issuer", GH,
                    "--builder-id", builder.replace("loosebazooka", "evil"), "--json")
    assert code == 1 and "builderId" in " ".join(json.loads(out)["reasons"])


def test_init_from_public_good_keyless_bundle(conformance_dir, tmp_path, no_local_log):
    artifact, bundle = _case(conformance_dir, "happy-path-intoto-in-dsse-v3")
    out_policy = tmp_path / "tofu.yaml"
    code, out = cli("policy", "init", artifact, "--bundle", bundle, "--output", out_policy)
    assert code == 0, out
    assert "is not pinned" in out  # provenance source not vouched for by the certificate
    text = out_policy.read_text()
    assert BEACON in text and "sigstore-public-good" in text and "sourceRepository: https://github.com/loosebazooka" not in text
    assert cli("verify", artifact, "--bundle", bundle, "--policy", out_policy)[0] == 0
    # Same signer, but a plain signature without the SLSA provenance the policy pinned.
    other_artifact, other = _case(conformance_dir, "happy-path-v0.3")
    code, out = cli("verify", other_artifact, "--bundle", other, "--policy", out_policy, "--json")
    assert code == 1
    assert "no verified https://slsa.dev/provenance/v1" in " ".join(json.loads(out)["reasons"])


def test_audit_log_without_policy_uses_the_verify_options(signed_model):
    tmp, model, bundle = signed_model
    log = tmp / "audit.jsonl"
    code, out = cli("verify", model, "--bundle", bundle, "--key", tmp / "release.pub",
                    "--audit-log", log)
    assert code == 0, out
    other = tmp / "other.pub"
    other.write_bytes(public_key_pem(generate_signer()))
    assert cli("verify", model, "--bundle", bundle, "--key", other, "--audit-log", log)[0] == 1
    assert [json.loads(x)["decision"] for x in log.read_text().splitlines()] == ["allow", "deny"]


def test_audit_log_with_identity_only(conformance_dir, tmp_path, no_local_log):
    artifact, bundle = _case(conformance_dir, "happy-path-v0.3")
    log = tmp_path / "a.jsonl"
    code, out = cli("verify", artifact, "--bundle", bundle, "--identity", BEACON, "--issuer", GH,
                    "--audit-log", log)
    assert code == 0, out
    code, _ = cli("verify", artifact, "--bundle", bundle, "--identity", BEACON + "x",
                  "--issuer", GH, "--audit-log", log)
    assert code == 1
    assert [json.loads(x)["decision"] for x in log.read_text().splitlines()] == ["allow", "deny"]


def test_verify_streams_sharded_models(signed_model):
    tmp, model, _ = signed_model
    from mgattest.attest._keys import load_signer
    signer = load_signer(tmp / "vsa.key")
    options = SignOptions(digests=DigestOptions(shard_size=64))
    bundle = write_bundle_file(sign_model(model, signer, options).bundle,
                               tmp / "sharded.sigstore.json")
    args = ("verify", model, "--bundle", bundle, "--policy", tmp / "policy.yaml", "--json")
    code, out = cli(*args)
    assert code == 0, out
    weights = model / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # the last byte: in the last shard
    weights.write_bytes(bytes(data))
    code, out = cli(*args)
    assert code == 1
    last = (len(data) - 1) // 64
    assert f"shard {last}, bytes {last * 64}-" in " ".join(json.loads(out)["reasons"])
