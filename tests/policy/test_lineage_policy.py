"""The policy ``lineage`` clause over a real signed chain (tests/helpers/lineage_chain.py):
the complete chain is allowed, the one with an unattested input is denied by the named
rule, and so are inputs signed by the wrong signer, tampered attestations and a lineage
nobody traced. Dependencies are verified under the policy's trust only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mgattest.policy import (
    BundleFiles,
    LineageRequest,
    ModelVerifier,
    PolicyError,
    TrustOptions,
    VerifyOptions,
    load_policy,
)
from tests.helpers.cli_runner import mg
from tests.helpers.lineage_chain import FULL, Chain, build_chain, run_ok, write_policy


@pytest.fixture
def chain(tmp_path: Path) -> Chain:
    made = build_chain(tmp_path / "chain")
    run_ok("trust", "export", "--out", made.root / "root.json")
    return made


def verdict(chain: Chain, policy: Path, model: str, *, sources: bool = True):
    request = LineageRequest((BundleFiles((str(chain.attestations),)),)) if sources else None
    bundle = str(chain.root / f"{model}.sigstore.json")
    verifier = ModelVerifier(load_policy(policy), TrustOptions(),
                             VerifyOptions(bundles=(bundle,), lineage=request))
    return verifier.verify(str(chain.root / model)).verdict


def lineage_check(result):
    (check,) = [c for c in result.checks if c.clause == "lineage"]
    return check


def test_complete_chain_is_allowed(chain: Chain) -> None:
    result = verdict(chain, write_policy(chain, FULL), "ft_ok.bin")
    assert result.allowed, result.reasons
    check = lineage_check(result)
    assert check.status == "pass" and check.id == "release.lineage"
    assert {(e["kind"], e["name"], e["ok"]) for e in check.evidence} == {
        ("base-model", "base-model", True), ("dataset", "dataset", True)}


def test_unattested_input_is_denied_by_the_named_rule(chain: Chain) -> None:
    result = verdict(chain, write_policy(chain, FULL), "ft.bin")
    assert not result.allowed
    assert result.reasons == ["release.lineage: dataset 'dataset-extra' is unattested: "
                              "no attestation found"]


def test_input_signed_by_the_wrong_signer_is_denied(chain: Chain) -> None:
    policy = write_policy(chain, """    lineage:
      require:
        - {kind: base-model, signedBy: {anyOf: [data-team]}}
""")
    result = verdict(chain, policy, "ft_ok.bin")
    assert not result.allowed
    assert result.reasons[0].startswith("release.lineage: base-model 'base-model': needs any of "
                                        "data-team")


def test_depth_one_does_not_judge_the_base_models_dataset(chain: Chain) -> None:
    policy = write_policy(chain, """    lineage:
      depth: 1
      require:
        - {kind: dataset, signedBy: {anyOf: [data-team]}, minCount: 0}
""")
    check = lineage_check(verdict(chain, policy, "ft_ok.bin"))
    assert check.status == "pass" and check.evidence == []
    # the same clause at depth 2 judges the dataset of the base model
    policy = write_policy(chain, """    lineage:
      depth: 2
      require:
        - {kind: dataset, signedBy: {anyOf: [base-team]}}
""", "deep.yaml")
    assert lineage_check(verdict(chain, policy, "ft_ok.bin")).status == "fail"


def test_a_missing_kind_fails_min_count(chain: Chain) -> None:
    policy = write_policy(chain, """    lineage:
      require:
        - {kind: tokenizer, signedBy: {anyOf: [base-team]}}
""")
    check = lineage_check(verdict(chain, policy, "ft_ok.bin"))
    assert check.status == "fail"
    assert check.reason == "0 tokenizer input(s) within depth 1, 1 required"


def test_tampered_dependency_attestation_denies(chain: Chain) -> None:
    bundle = chain.attestations / "base.bin.sigstore.json"
    doc = json.loads(bundle.read_text())
    sig = doc["dsseEnvelope"]["signatures"][0]
    sig["sig"] = sig["sig"][:-8] + ("AAAAAAA=" if not sig["sig"].endswith("AAAAAAA=")
                                    else "BBBBBBB=")
    bundle.write_text(json.dumps(doc))
    result = verdict(chain, write_policy(chain, FULL), "ft_ok.bin")
    assert not result.allowed
    assert result.reasons[0].startswith("release.lineage: base-model 'base-model' is "
                                        "unverifiable")


def test_untraced_lineage_denies(chain: Chain) -> None:
    result = verdict(chain, write_policy(chain, FULL), "ft_ok.bin", sources=False)
    assert not result.allowed
    assert "lineage was not traced" in result.reasons[0]


def test_lint_names_an_unknown_signer_in_a_lineage_clause(chain: Chain) -> None:
    policy = write_policy(chain, """    lineage:
      require:
        - {kind: base-model, signedBy: {anyOf: [nobody]}}
""")
    with pytest.raises(PolicyError, match="unknown signer 'nobody'"):
        load_policy(policy)
    bad = write_policy(chain, """    lineage:
      require:
        - {kind: Base Model, signedBy: {anyOf: [release]}}
""", "bad.yaml")
    with pytest.raises(PolicyError, match="kind"):
        load_policy(bad)


def test_provenance_cli_under_the_policy(chain: Chain) -> None:
    ok = mg("provenance", chain.root / "ft_ok.bin", "--bundles", chain.attestations,
            "--policy", write_policy(chain, FULL), "--require-complete")
    assert ok.exit_code == 0, ok.output
    denied = mg("provenance", chain.root / "ft.bin", "--bundles", chain.attestations,
                "--policy", chain.root / "policy.yaml", "--json")
    assert denied.exit_code == 1
    root = json.loads(denied.stdout)["nodes"][0]
    assert root["status"] == "unverifiable"
    assert root["rejected"][0]["reason"].startswith("release.lineage: dataset 'dataset-extra'")


def test_verify_cli_looks_up_inputs_with_lineage_bundles(chain: Chain) -> None:
    policy = write_policy(chain, FULL)
    ok = mg("verify", chain.root / "ft_ok.bin", "--policy", policy,
            "--lineage-bundles", chain.attestations, "--json")
    assert ok.exit_code == 0, ok.output
    denied = mg("verify", chain.root / "ft.bin", "--policy", policy,
                "--lineage-bundles", chain.attestations, "--json")
    assert denied.exit_code == 1
    assert "release.lineage: dataset 'dataset-extra' is unattested" in denied.stdout
    untraced = mg("verify", chain.root / "ft_ok.bin", "--policy", policy)
    assert untraced.exit_code == 1 and "lineage was not traced" in untraced.stdout
    usage = mg("verify", chain.root / "ft_ok.bin", "--lineage-bundles", chain.attestations)
    assert usage.exit_code == 2 and "give --policy" in usage.output


def test_an_unlogged_input_attestation_does_not_count(chain: Chain) -> None:
    """A rule's transparencyLog.require: optional covers the model's own bundles, which
    that clause judges; input attestations must be logged."""
    import shutil

    from tests.helpers.lineage_chain import sha256

    base = chain.root / "base_nolog.bin"
    base.write_bytes(b"unlogged base")
    run_ok("sign", base, "--key", chain.root / "b.key", "--no-log")
    bundle = base.with_name(base.name + ".sigstore.json")
    shutil.move(bundle, chain.attestations / bundle.name)
    model = chain.root / "ft_nolog.bin"
    model.write_bytes(b"fine-tuned on an unlogged base")
    run_ok("sign", model, "--key", chain.root / "c.key",
           "--dependency", f"base-model=file://base_nolog.bin@sha256:{sha256(base)}")
    policy = write_policy(chain, """    transparencyLog: {require: optional}
    lineage:
      require:
        - {kind: base-model, signedBy: {anyOf: [base-team]}}
""")
    result = verdict(chain, policy, "ft_nolog.bin")
    assert not result.allowed
    assert result.reasons[0].startswith("release.lineage: base-model 'base-model' is "
                                        "unverifiable")
