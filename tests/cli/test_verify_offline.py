"""Public-good verification is offline by default; --refresh-trust is the only way out."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from mgattest.cli.app import app

runner = CliRunner()
IDENTITY = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
            ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")
ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test loudly."""
    attempts: list[object] = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network disabled in this test")

    def refuse_lookup(host, *args, **kwargs):
        attempts.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    return attempts


def _case(conformance_dir, name):
    base = conformance_dir / "data/sigstore+sigstore-conformance/test/assets/bundle-verify"
    return base / "a.txt", base / name / "bundle.sigstore.json"


# The production root is chosen from the bundle; staging (where the Rekor v2 bundle was
# logged) only when the operator says so: a bundle's logId must not widen trust.
@pytest.mark.parametrize("name,flags", [("happy-path-v0.3", []), ("happy-path-v0.1", []),
                                        ("rekor2-happy-path", ["--instance", "staging"])])
def test_instance_root_chosen_from_the_bundle_without_network(conformance_dir, no_network,
                                                              monkeypatch, tmp_path, name,
                                                              flags):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path))
    artifact, bundle = _case(conformance_dir, name)
    result = runner.invoke(app, ["verify", str(artifact), "--bundle", str(bundle),
                                 "--identity", IDENTITY, "--issuer", ISSUER, "--json"]
                           + flags)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True
    assert no_network == []


def test_wrong_identity_still_rejected_with_auto_root(conformance_dir, no_network, monkeypatch,
                                                      tmp_path):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path))
    artifact, bundle = _case(conformance_dir, "happy-path-v0.3")
    result = runner.invoke(app, ["verify", str(artifact), "--bundle", str(bundle),
                                 "--identity", IDENTITY + "x", "--issuer", ISSUER])
    assert result.exit_code == 1 and "identity" in result.output


def test_refresh_trust_is_the_only_network_path(conformance_dir, no_network, monkeypatch,
                                                tmp_path):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    artifact, bundle = _case(conformance_dir, "happy-path-v0.3")
    result = runner.invoke(app, ["verify", str(artifact), "--bundle", str(bundle),
                                 "--identity", IDENTITY, "--issuer", ISSUER, "--refresh-trust"])
    assert result.exit_code == 2, result.output
    assert "TUF" in result.output
    assert no_network, "--refresh-trust should have tried to reach the TUF repository"


@pytest.mark.parametrize("flags, expected", [
    (["--certificate-github-workflow-repository",
      "sigstore-conformance/extremely-dangerous-public-oidc-beacon",
      "--certificate-github-workflow-ref", "refs/heads/main",
      "--certificate-github-workflow-sha", "c7b3dfb335f051e1c86bda4c716fac97df62ad81",
      "--certificate-github-workflow-trigger", "workflow_dispatch",
      "--certificate-github-workflow-name", "Extremely dangerous OIDC beacon"], 0),
    (["--certificate-extension",
      "source_repository_uri=https://github.com/sigstore-conformance/"
      "extremely-dangerous-public-oidc-beacon",
      "--certificate-extension", "runner_environment=github-hosted"], 0),
    (["--certificate-github-workflow-repository", "sigstore-conformance/other"], 1),
    (["--certificate-github-workflow-ref", "refs/heads/mai"], 1),       # no prefix match
    (["--certificate-github-workflow-trigger", "push"], 1),
    (["--certificate-extension", "source_repository_uri=https://github.com/sigstore-"
      "conformance"], 1),
    (["--certificate-extension", "no_such_extension=x"], 2),
    (["--certificate-extension", "missing-equals"], 2),
])
def test_github_workflow_extensions_matchable(conformance_dir, monkeypatch, tmp_path, flags,
                                              expected):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path))
    artifact, bundle = _case(conformance_dir, "happy-path-v0.3")
    result = runner.invoke(app, ["verify", str(artifact), "--bundle", str(bundle),
                                 "--identity", IDENTITY, "--issuer", ISSUER, *flags])
    assert result.exit_code == expected, result.output
    if expected == 1:
        assert "extension" in result.output


def test_rekor_v2_log_must_be_valid_at_the_timestamped_time(conformance_dir, tmp_path,
                                                            monkeypatch):
    """Rekor v2 entries carry no integratedTime; the RFC 3161 time stands in for it, and
    the log key must have been valid then (a window that ends earlier is a rejection)."""
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path))
    base = conformance_dir / "data/sigstore+sigstore-conformance/test/assets/bundle-verify"
    case = base / "rekor2-happy-path"
    root = json.loads((case / "trusted_root.json").read_text())
    args = ["verify", str(base / "a.txt"), "--bundle", str(case / "bundle.sigstore.json"),
            "--identity", IDENTITY, "--issuer", ISSUER]
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(root))
    assert runner.invoke(app, args + ["--trusted-root", str(ok)]).exit_code == 0
    v2 = [t for t in root["tlogs"] if "log2025" in t["baseUrl"]][0]
    v2["publicKey"]["validFor"]["end"] = "2025-04-16T00:00:01Z"
    ended = tmp_path / "ended.json"
    ended.write_text(json.dumps(root))
    result = runner.invoke(app, args + ["--trusted-root", str(ended)])
    assert result.exit_code == 1, result.output
    assert "not valid at the timestamped signing time" in result.output
