"""`verify --trust-config` and a policy's `trust.roots[].path` take a ClientTrustConfig.

A ClientTrustConfig (what `trust private` writes, `sign --trust-config` and
sigstore-python take) wraps a trusted root; every place that reads trust must see its
logs, or a logged bundle is denied for want of a trusted log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.peers import cli

CTC_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"



@pytest.fixture
def signed(tmp_path: Path) -> dict[str, Path]:
    """A key-signed model logged in a private mgattest log, and that log's trust as a
    ClientTrustConfig (no embedded local log: the log must come from the trust file)."""
    db, log_key = tmp_path / "log.db", tmp_path / "log.key"
    assert cli("log", "init", "--db", db, "--key-out", log_key)[0] == 0
    assert cli("keygen", "--out", tmp_path / "k")[0] == 0
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 100)
    code, output = cli("sign", model, "--key", tmp_path / "k.key", "--log-db", db,
                        "--log-key", log_key)
    assert code == 0, output
    root = tmp_path / "root.json"
    assert cli("trust", "export", "--out", root, "--log-db", db)[0] == 0
    ctc = tmp_path / "ctc.json"
    ctc.write_text(json.dumps({
        "mediaType": CTC_MEDIA_TYPE, "trustedRoot": json.loads(root.read_text()),
        "signingConfig": {"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                          "rekorTlogUrls": [], "caUrls": []}}))
    return {"model": model, "pub": tmp_path / "k.pub", "root": root, "ctc": ctc,
            "dir": tmp_path}


def test_verify_takes_trust_config(signed):
    code, output = cli("verify", signed["model"], "--key", signed["pub"],
                        "--trust-config", signed["ctc"])
    assert code == 0 and "inclusion proven" in output, output
    # Without any trust for that log the same bundle is refused (the check is real).
    code, output = cli("verify", signed["model"], "--key", signed["pub"])
    assert code == 1 and "no log is trusted" in output, output


def test_verify_merges_trust_config_and_trusted_root(signed, conformance_dir):
    public_good = conformance_dir / "trusted_roots/sigstore-python-4.5.1/production/trusted_root.json"
    code, output = cli("verify", signed["model"], "--key", signed["pub"],
                        "--trusted-root", public_good, "--trust-config", signed["ctc"])
    assert code == 0, output


@pytest.mark.parametrize("trust_file", ["root", "ctc"])
def test_policy_root_path_takes_a_trust_config(signed, trust_file):
    policy = signed["dir"] / "policy.yaml"
    policy.write_text(f"""apiVersion: mgattest/v1
kind: Policy
metadata: {{name: private-log}}
trust:
  roots:
    - name: private
      path: {signed[trust_file].name}
  keys:
    - name: release
      path: k.pub
signers:
  release: {{key: release}}
rules:
  - id: model
    match: ["**"]
    signedBy: {{anyOf: [release]}}
    transparencyLog: {{require: required, minEntries: 1, logs: [private]}}
    content: {{pickle: deny}}
""")
    code, output = cli("verify", signed["model"], "--policy", policy)
    assert code == 0, output
