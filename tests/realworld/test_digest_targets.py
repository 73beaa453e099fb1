"""`sha256:HEX` / `sha512:HEX` work wherever a path works (#10 item 4).

slsa-verifier and cosign verify a release by digest; so does `mgattest verify`, with or
without provenance flags and policies. A malformed digest is a usage error that says
what is wrong, never "does not exist".
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.helpers.peers import GENERIC_BUILDER, cli

BUILDER = GENERIC_BUILDER + "@refs/tags/v1.9.0"



@pytest.fixture(params=["sha256", "sha512"])
def release(request, tmp_path):
    alg = request.param
    artifact = tmp_path / "tool_1.0_linux_amd64.tar.gz"
    artifact.write_bytes(b"\x1f\x8b release bytes" * 64)
    assert cli("keygen", "--out", tmp_path / "k")[0] == 0
    bundle = tmp_path / "tool.intoto.sigstore.json"
    code, output = cli("sign", artifact, "--key", tmp_path / "k.key", "--no-log",
                        "--hash", alg, "--builder-id", BUILDER, "--out", bundle)
    assert code == 0, output
    digest = f"{alg}:{hashlib.new(alg, artifact.read_bytes()).hexdigest()}"
    base = ["--bundle", bundle, "--key", tmp_path / "k.pub", "--allow-unlogged"]
    return {"digest": digest, "base": base, "dir": tmp_path, "alg": alg}


def test_digest_alone(release):
    code, output = cli("verify", release["digest"], *release["base"])
    assert code == 0 and "digest matches" in output, output


def test_digest_with_provenance_flags(release):
    code, output = cli("verify", release["digest"], *release["base"], "--builder-id", BUILDER)
    assert code == 0 and "ALLOWED" in output, output
    code, output = cli("verify", release["digest"], *release["base"],
                        "--builder-id", BUILDER.replace("v1.9.0", "v1.8.0"))
    assert code == 1 and "DENIED" in output, output


def test_digest_with_a_policy(release):
    pub = release["base"][3]
    policy = release["dir"] / "policy.json"
    policy.write_text(json.dumps({
        "apiVersion": "mgattest/v1", "kind": "Policy", "metadata": {"name": "release"},
        "trust": {"keys": [{"name": "k", "path": str(pub)}]},
        "signers": {"k": {"key": "k"}},
        "rules": [{"id": "all", "match": ["**"], "signedBy": {"anyOf": ["k"]},
                   "transparencyLog": {"require": "optional"}}]}))
    bundle = release["base"][1]
    code, output = cli("verify", release["digest"], "--bundle", bundle, "--policy", policy)
    assert code == 0, output
    other = release["alg"] + ":" + "ab" * (32 if release["alg"] == "sha256" else 64)
    code, output = cli("verify", other, "--bundle", bundle, "--policy", policy)
    assert code == 1 and "status=mismatch" in output, output


@pytest.mark.parametrize("target, says", [
    ("sha256:xyz", "not hex digits"),
    ("sha256:abcd", "has 4 hex digits; a sha256 digest has 64"),
    ("sha512:" + "a" * 64, "a sha512 digest has 128"),
    ("SHA256:" + "g" * 64, "not hex digits"),
])
@pytest.mark.parametrize("flags", [[], ["--builder-id", BUILDER]])
def test_malformed_digest_is_a_usage_error(release, target, says, flags):
    code, output = cli("verify", target, *release["base"], *flags)
    assert code == 2 and "malformed digest" in output and says in output, output
    assert "does not exist" not in output


def test_digest_needs_a_bundle(release):
    code, output = cli("verify", release["digest"], "--builder-id", BUILDER)
    assert code == 2 and "needs --bundle" in output, output
