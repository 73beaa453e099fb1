"""The reference policies in policies/, each exercised: a conforming model is allowed,
each kind of non-conforming model is denied with the clause named."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from mgattest.attest._keys import generate_signer, public_key_pem
from mgattest.attest._sign import KeySigner, LogTarget, SignOptions, sign_model, write_bundle_file
from mgattest.attest._slsa import build_provenance
from mgattest.loading import model_check, read_model_bytes, scan_model
from mgattest.policy._evaluate import evaluate
from mgattest.policy._gather import verify_attestations
from mgattest.policy._loader import load_policy
from tests.helpers.policy_facts import (attestation, cert_signer, digest_of, log, model,
                                 provenance, safe_reports)
from tests.helpers.paths import PROJECT_ROOT
from mgattest.attest._options import BuildInputs

POLICIES = PROJECT_ROOT / "policies"


def failed(v):
    return {c.id: c.reason for c in v.failures}


# --------------------------------------------------------------------------- GitHub Actions

GH_ID = "https://github.com/acme/models/.github/workflows/train.yml@refs/tags/v1.4.0"
NOW = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp())
FILES = {"model.safetensors": digest_of(b"w"), "config.json": digest_of(b"c")}
PUBLIC_GOOD_LOG = sorted(load_policy(POLICIES / "github-actions-slsa.yaml").trusted_log_ids())[0]


def gh_att(identity=GH_ID, runner="github-hosted", repo="https://github.com/acme/models",
           log_id=None, **prov):
    prov.setdefault("builder", GH_ID)
    prov.setdefault("ref", "refs/tags/v1.4.0")
    prov.setdefault("finished", "2026-10-20T00:00:00Z")
    prov.setdefault("deps", [{"uri": "git+https://github.com/acme/models@refs/tags/v1.4.0",
                              "digest": {"gitCommit": "ab" * 20}},
                             {"name": "dataset", "uri": "hf://datasets/acme/clean-v2",
                              "digest": {"sha256": "cd" * 32}}])
    signer = cert_signer(identity, source_repository_uri=repo,
                         source_repository_ref=prov["ref"], runner_environment=runner,
                         build_signer_uri=identity)
    return attestation(FILES, signer, predicate=provenance(**prov),
                       logs=[log(log_id=log_id or PUBLIC_GOOD_LOG)])


@pytest.fixture(scope="module")
def gh_policy():
    return load_policy(POLICIES / "github-actions-slsa.yaml")


def test_github_policy_allows_conforming_build(gh_policy):
    v = evaluate(gh_policy, [gh_att()], model(FILES), safe_reports(FILES), now=NOW)
    assert v.allowed, v.reasons


@pytest.mark.parametrize("change,clause", [
    (dict(identity="https://github.com/acme/models/.github/workflows/train.yml@refs/heads/main"),
     "model.signedBy"),
    (dict(identity="https://github.com/acme/models-fork/.github/workflows/train.yml@refs/tags/v1.4.0"),
     "model.signedBy"),
    (dict(runner="self-hosted"), "model.signedBy"),
    (dict(repo="https://github.com/mallory/models"), "model.signedBy"),
    (dict(ref="refs/tags/v2.0.0"), "model.attestations[0]"),
    (dict(finished="2026-01-01T00:00:00Z"), "model.attestations[0]"),
    (dict(deps=[{"uri": "git+https://github.com/acme/models@refs/tags/v1.4.0"}]),
     "model.attestations[0]"),
    (dict(deps=[{"uri": "git+https://github.com/acme/models@refs/tags/v1.4.0",
                 "digest": {"gitCommit": "ab" * 20}},
                {"name": "dataset", "uri": "hf://datasets/mallory/poison",
                 "digest": {"sha256": "cd" * 32}}]), "model.attestations[0]"),
])
def test_github_policy_denies(gh_policy, change, clause):
    v = evaluate(gh_policy, [gh_att(**change)], model(FILES), safe_reports(FILES), now=NOW)
    assert not v.allowed and clause in failed(v), v.reasons


def test_github_policy_denies_pickles(gh_policy):
    files = dict(FILES, **{"model.pkl": digest_of(b"p")})
    att = attestation(files, gh_att().signer, predicate=gh_att().predicate)
    v = evaluate(gh_policy, [att], model(files), safe_reports(files), now=NOW)
    assert "model.content" in failed(v)


# --------------------------------------------------------------------------- strict production

def _st() -> bytes:
    import safetensors.numpy as sn
    return sn.save({"w": np.arange(4, dtype=np.float32)})


@pytest.fixture()
def prod(tmp_path, monkeypatch):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    shutil.copy(POLICIES / "strict-production.yaml", tmp_path / "policy.yaml")
    people = {n: generate_signer() for n in ("alice", "bob", "carol", "builder")}
    for name, s in people.items():
        (tmp_path / f"{name}.pub").write_bytes(public_key_pem(s))
    private_log = LogTarget("local", str(tmp_path / "private.db"))
    # Create the private log and publish its key next to the policy.
    from mgattest.attest._locallog import open_local_log
    open_local_log(tmp_path / "private.db").close()
    meta = json.loads((tmp_path / "private.json").read_text())
    (tmp_path / "private-log.pub").write_text(meta["public_key_pem"])
    # Point the policy at this log: its URL and checkpoint origin.
    text = (tmp_path / "policy.yaml").read_text()
    text = text.replace("url: https://rekor.acme.example", f"url: https://{meta['origin']}")
    text = text.replace("origin: rekor.acme.example", f"origin: {meta['origin']}")
    (tmp_path / "policy.yaml").write_text(text)
    m = tmp_path / "model"
    m.mkdir()
    (m / "weights.safetensors").write_bytes(_st())
    (m / "config.json").write_text('{"license": "apache-2.0"}')
    return tmp_path, people, private_log, m


def _sign(tmp, m, signer, name, log, **prov):
    predicate = build_provenance(BuildInputs(**prov)) if prov else None
    bundle = sign_model(m, KeySigner(signer, log), SignOptions(predicate=predicate)).bundle
    return write_bundle_file(bundle, tmp / f"{name}.sigstore.json")


def _builder_prov(**overrides):
    finished = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kw = dict(builder_id="https://builder.acme.example/train/v2",
              parameters={"precision": "bf16", "epochs": 2, "optimizer": "adamw"},
              dependencies=[{"name": "dataset", "uri": "s3://acme/data",
                             "digest": {"sha256": "ab" * 32}}],
              finished_on=finished)
    kw.update(overrides)
    return kw


def _decide(tmp, m, bundles):
    pol = load_policy(tmp / "policy.yaml")
    atts = verify_attestations(bundles, pol)
    mb = read_model_bytes(m)
    return evaluate(pol, atts, model_check(mb, atts), scan_model(mb))


def test_strict_production_two_person_rule(prod):
    tmp, people, log, m = prod
    alice = _sign(tmp, m, people["alice"], "alice", log)
    bob = _sign(tmp, m, people["bob"], "bob", log)
    alice2 = _sign(tmp, m, people["alice"], "alice2", log)
    build = _sign(tmp, m, people["builder"], "builder", log, **_builder_prov())
    v = _decide(tmp, m, [alice, bob, build])
    assert v.allowed, v.reasons
    # One person signing twice is still one person.
    v = _decide(tmp, m, [alice, alice2, build])
    assert not v.allowed and "weights.signedBy" in failed(v) and "metadata.signedBy" in failed(v)


def test_strict_production_needs_the_private_log(prod):
    tmp, people, log, m = prod
    default_log = LogTarget("local")  # the embedded log: trusted, but not the private one
    a = _sign(tmp, m, people["alice"], "alice", default_log)
    b = _sign(tmp, m, people["bob"], "bob", default_log)
    build = _sign(tmp, m, people["builder"], "builder", log, **_builder_prov())
    v = _decide(tmp, m, [a, b, build])
    assert not v.allowed
    assert "2 attestation(s) not counted" in failed(v)["weights.signedBy"]


@pytest.mark.parametrize("override,needle", [
    ({"parameters": {"precision": "fp32", "epochs": 2, "optimizer": "adamw"}}, "precision"),
    ({"parameters": {"precision": "bf16", "epochs": 9, "optimizer": "adamw"}}, "epochs"),
    ({"parameters": {"precision": "bf16", "epochs": 2, "optimizer": "adamw", "seed": 1}},
     "unexpected externalParameters: seed"),
    ({"builder_id": "https://evil.example/builder"}, "builderId"),
    ({"dependencies": [{"name": "dataset", "uri": "s3://acme/data"}]}, "not pinned"),
    ({"finished_on": "2020-01-01T00:00:00Z"}, "maxAge"),
])
def test_strict_production_provenance(prod, override, needle):
    tmp, people, log, m = prod
    alice = _sign(tmp, m, people["alice"], "alice", log)
    bob = _sign(tmp, m, people["bob"], "bob", log)
    build = _sign(tmp, m, people["builder"], "builder", log, **_builder_prov(**override))
    v = _decide(tmp, m, [alice, bob, build])
    assert not v.allowed and needle in failed(v)["weights.attestations[0]"]


def test_strict_production_rejects_pickles_and_unmatched_files(prod):
    import pickle
    tmp, people, log, m = prod
    (m / "extra.pkl").write_bytes(pickle.dumps([1]))
    bundles = [_sign(tmp, m, people["alice"], "alice", log),
               _sign(tmp, m, people["bob"], "bob", log),
               _sign(tmp, m, people["builder"], "builder", log, **_builder_prov())]
    v = _decide(tmp, m, bundles)
    assert not v.allowed and "policy.unmatchedFiles" in failed(v)


def test_strict_production_pins_the_checkpoint_origin(prod):
    tmp, people, log, m = prod
    bundles = [_sign(tmp, m, people["alice"], "alice", log),
               _sign(tmp, m, people["bob"], "bob", log),
               _sign(tmp, m, people["builder"], "builder", log, **_builder_prov())]
    text = (tmp / "policy.yaml").read_text()
    meta = json.loads((tmp / "private.json").read_text())
    (tmp / "policy.yaml").write_text(text.replace(f"origin: {meta['origin']}",
                                                  "origin: another.example/log"))
    v = _decide(tmp, m, bundles)
    assert not v.allowed and "weights.transparencyLog" in failed(v)
