"""Fixtures of the load tests: a release key and the policies that trust it."""

from __future__ import annotations

import pytest

from mgattest.attest._keys import generate_signer, public_key_pem

POLICY = """\
apiVersion: mgattest/v1
kind: Policy
trust:
  keys: [{name: release, path: release.pub}]
signers:
  release: {key: release}
rules:
  - id: model
    match: ["**"]
    signedBy: {anyOf: [release]}
    content: {pickle: %s}
"""


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    signer = generate_signer()
    (tmp_path / "release.pub").write_bytes(public_key_pem(signer))
    (tmp_path / "policy.yaml").write_text(POLICY % "deny")
    (tmp_path / "policy-restricted.yaml").write_text(POLICY % "restricted")
    return tmp_path, signer
