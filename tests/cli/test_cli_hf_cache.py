"""``mgattest sign|verify|inspect`` on Hugging Face cache snapshots and ``hf:`` refs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers.cli_runner import mg
from tests.helpers.hfcache import (
    COMMIT_A,
    COMMIT_B,
    add_revision,
    blob_of,
    repo_dir,
    safetensors_bytes,
)
from tests.helpers.paths import PROJECT_ROOT

FILES_A = {"config.json": b'{"hidden": 2}', "model.safetensors": safetensors_bytes((1.0, 2.0))}
FILES_B = {**FILES_A, "model.safetensors": safetensors_bytes((3.0, 4.0))}
BUNDLE_B = f"acme--tiny@{COMMIT_B[:12]}.sigstore.json"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-home" / "hub"
    add_revision(cache, "acme/tiny", COMMIT_A, FILES_A, refs=("v1",))
    add_revision(cache, "acme/tiny", COMMIT_B, FILES_B, refs=("main",))
    add_revision(cache, "other/model", COMMIT_A, {"model.safetensors": b"other"},
                 refs=("main",))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return cache


def _snapshot(hub: Path, commit: str) -> Path:
    return repo_dir(hub, "acme/tiny") / "snapshots" / commit


def test_sign_verify_inspect_a_reference_and_its_snapshot(hub, keypair):
    key, pub = keypair
    signed = mg("sign", "hf:acme/tiny", "--key", key)
    assert signed.exit_code == 0, signed.output
    assert BUNDLE_B in signed.output and Path(BUNDLE_B).is_file()
    ok = mg("verify", "hf:acme/tiny", "--key", pub)
    assert ok.exit_code == 0 and "OK: 2 file(s) match" in ok.output, ok.output
    by_path = mg("verify", _snapshot(hub, COMMIT_B), "--key", pub, "--json")
    assert by_path.exit_code == 0, by_path.output
    assert {f["name"] for f in json.loads(by_path.stdout)["files"]} == set(FILES_B)
    inspected = mg("inspect", "hf:acme/tiny")
    assert inspected.exit_code == 0 and "2 file(s) inspected, 0 with findings" in \
        inspected.output
    # v1 has no bundle of its own: its default bundle is named by its revision
    missing = mg("verify", "hf:acme/tiny@v1", "--key", pub)
    assert missing.exit_code == 2 and f"acme--tiny@{COMMIT_A[:12]}" in missing.output


def test_verify_under_a_policy_follows_the_same_rules(hub, keypair, tmp_path):
    key, pub = keypair
    assert mg("sign", "hf:acme/tiny", "--key", key).exit_code == 0
    policy = tmp_path / "policy"
    policy.mkdir()
    shutil.copy(PROJECT_ROOT / "policies" / "key-signed-minimum.yaml", policy / "p.yaml")
    shutil.copy(pub, policy / "release.pub")
    allowed = mg("verify", "hf:acme/tiny", "--policy", policy / "p.yaml")
    assert allowed.exit_code == 0, allowed.output
    blob = blob_of(_snapshot(hub, COMMIT_B), "model.safetensors")
    blob.write_bytes(safetensors_bytes((3.0, 5.0)))
    denied = mg("verify", "hf:acme/tiny", "--policy", policy / "p.yaml", "--json")
    assert denied.exit_code == 1
    doc = json.loads(denied.stdout)
    assert doc["error"] == "CacheCorruptionError" and blob.name in doc["where"]


def test_a_corrupt_blob_is_named_by_verify_sign_and_inspect(hub, keypair):
    key, pub = keypair
    assert mg("sign", "hf:acme/tiny", "--key", key).exit_code == 0
    blob = blob_of(_snapshot(hub, COMMIT_B), "model.safetensors")
    blob.write_bytes(safetensors_bytes((3.0, 5.0)))
    bad = mg("verify", "hf:acme/tiny", "--key", pub)
    assert bad.exit_code == 1 and "cache corruption" in bad.output and blob.name in bad.output
    as_json = mg("verify", "hf:acme/tiny", "--key", pub, "--json")
    assert json.loads(as_json.stdout)["error"] == "CacheCorruptionError"
    resign = mg("sign", "hf:acme/tiny", "--key", key, "--out", "again.sigstore.json")
    assert resign.exit_code == 1 and "cache corruption" in resign.output
    inspected = mg("inspect", "hf:acme/tiny", "--json")
    assert inspected.exit_code == 1
    kinds = {f["kind"] for r in json.loads(inspected.stdout)["files"] for f in r["findings"]}
    assert "cache-corruption" in kinds
    assert "Traceback" not in bad.output + resign.output + inspected.output


def test_a_link_into_another_repository_is_refused(hub, keypair):
    key, pub = keypair
    assert mg("sign", "hf:acme/tiny", "--key", key).exit_code == 0
    link = _snapshot(hub, COMMIT_B) / "model.safetensors"
    other = next((repo_dir(hub, "other/model") / "blobs").iterdir())
    link.unlink()
    link.symlink_to(f"../../../models--other--model/blobs/{other.name}")
    bad = mg("verify", "hf:acme/tiny", "--key", pub)
    assert bad.exit_code == 2 and "'model.safetensors'" in bad.output
    assert "another repository's blobs/ (models--other--model)" in bad.output


def test_bad_references_are_usage_errors(hub, keypair):
    _key, pub = keypair
    for ref, why in (("hf:acme/nothing", "not in the local cache"),
                     ("hf:acme/tiny@dev", "does not know")):
        for args in (("verify", ref, "--key", pub), ("inspect", ref),
                     ("sign", ref, "--key", _key)):
            result = mg(*args)
            assert result.exit_code == 2 and why in result.output, (args, result.output)
