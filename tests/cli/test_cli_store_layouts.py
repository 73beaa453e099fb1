"""``mgattest sign|verify|inspect`` on models where they live: ``ollama:NAME`` and OCI layouts.

Exit codes: 0 verified, 1 a check failed (named), 2 a reference that names nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli_runner import mg
from tests.helpers.corpus import build_gguf
from tests.helpers.paths import PROJECT_ROOT
from tests.helpers.stores import build_oci_layout, build_ollama_store



@pytest.fixture
def ollama(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    model = build_ollama_store(tmp_path / "models", layers={
        "model": build_gguf(), "template": b"{{ .Prompt }}", "license": b"MIT"})
    monkeypatch.setenv("OLLAMA_MODELS", str(model.store))
    monkeypatch.chdir(tmp_path)
    return model


@pytest.fixture
def layout(tmp_path: Path):
    import numpy as np
    from safetensors.numpy import save

    weights = save({"w": np.zeros((2, 2), dtype=np.float32)})
    return build_oci_layout(tmp_path / "tiny-oci", {
        "v1": {"model.safetensors": weights, "config.json": b"{}"},
        "v2": {"model.safetensors": weights, "config.json": b'{"v": 2}'}})


def _policy(tmp_path: Path, pub: Path) -> Path:
    """The reference policy policies/key-signed-minimum.yaml, trusting ``pub``."""
    (tmp_path / "release.pub").write_bytes(pub.read_bytes())
    policy = tmp_path / "policy.yaml"
    policy.write_bytes((PROJECT_ROOT / "policies" / "key-signed-minimum.yaml").read_bytes())
    return policy


def test_ollama_sign_verify_with_the_default_bundle_in_the_working_directory(ollama, keypair,
                                                                            tmp_path):
    key, pub = keypair
    signed = mg("sign", "ollama:tiny", "--key", key)
    assert signed.exit_code == 0, signed.output
    assert (tmp_path / "ollama-tiny-latest.sigstore.json").is_file()
    assert not list(ollama.store.rglob("*.sigstore.json"))  # nothing written into the store
    verified = mg("verify", "ollama:tiny", "--key", pub, "--json")
    assert verified.exit_code == 0, verified.output
    doc = json.loads(verified.stdout)
    assert [f["name"] for f in doc["files"]] == ["manifest", "model", "template", "license"]
    assert {f["status"] for f in doc["files"]} == {"ok"}


def test_ollama_tampered_blob_exits_1_naming_store_corruption(ollama, keypair):
    key, pub = keypair
    assert mg("sign", "ollama:tiny", "--key", key).exit_code == 0
    ollama.blob(b"MIT").write_bytes(b"GPL")
    result = mg("verify", "ollama:tiny", "--key", pub, "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert error["error"] == "StoreCorruptionError" and error["what"] == "blob digest"


def test_ollama_without_its_bundle_is_refused(ollama, keypair):
    result = mg("verify", "ollama:tiny", "--key", keypair[1])
    assert result.exit_code == 2 and "ollama-tiny-latest.sigstore.json" in result.output


def test_ollama_under_a_policy_inspects_the_gguf_layer(ollama, keypair, tmp_path):
    key, pub = keypair
    assert mg("sign", "ollama:tiny", "--key", key).exit_code == 0
    result = mg("verify", "ollama:tiny", "--policy", _policy(tmp_path, pub), "--json")
    assert result.exit_code == 0, result.output
    clearance = json.loads(result.stdout)["clearance"]
    assert set(clearance) == {"manifest", "model", "template", "license"}
    assert all(c["loadable"] for c in clearance.values())


def test_inspect_sees_the_layer_bytes(ollama):
    result = mg("inspect", "ollama:tiny", "--json")
    assert result.exit_code == 0, result.output
    formats = {f["path"]: f["format"] for f in json.loads(result.stdout)["files"]}
    assert formats["model"] == "gguf"
    # a GGUF layer whose tensor data lies outside the file is found in the store too
    bad = build_ollama_store(ollama.store, "bad", layers={
        "model": build_gguf(tensor_offset=1 << 40)})
    assert bad.manifest_path.is_file()
    result = mg("inspect", "ollama:bad", "--json")
    assert result.exit_code == 1
    report = next(f for f in json.loads(result.stdout)["files"] if f["path"] == "model")
    assert report["verdict"] != "safe" and report["findings"]


def test_oci_sign_verify_by_ref_and_tampered_ref(layout, keypair, tmp_path):
    key, pub = keypair
    ref = f"oci:{layout.root}:v1"
    signed = mg("sign", ref, "--key", key, "--json")
    assert signed.exit_code == 0, signed.output
    bundle = tmp_path / "tiny-oci.v1.sigstore.json"
    assert bundle.is_file() and not list(layout.root.rglob("*.sigstore.json"))
    assert mg("verify", ref, "--key", pub).exit_code == 0
    index = layout.index()
    index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "v0"
    index["manifests"][1]["annotations"]["org.opencontainers.image.ref.name"] = "v1"
    layout.write_index(index)
    result = mg("verify", ref, "--key", pub, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "ArtifactMismatchError"


def test_oci_layout_under_a_policy_counts_the_manifest_signature_for_the_layers(
        layout, keypair, tmp_path):
    key, pub = keypair
    ref = f"oci:{layout.root}:v2"
    assert mg("sign", ref, "--key", key).exit_code == 0
    result = mg("verify", ref, "--policy", _policy(tmp_path, pub), "--json")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["clearance"]) == {
        "tiny-oci", "model.safetensors", "config.json"}
    # another manifest in the same layout is not covered by that signature
    other = mg("verify", f"oci:{layout.root}:v1", "--policy", tmp_path / "policy.yaml",
               "--bundle", tmp_path / "tiny-oci.v2.sigstore.json", "--json")
    assert other.exit_code == 1
    assert json.loads(other.stdout)["allowed"] is False


def test_oci_ambiguous_layout_is_a_usage_error(layout, keypair):
    result = mg("sign", layout.root, "--key", keypair[0])
    assert result.exit_code == 2 and "names 2 manifests" in result.output
    assert mg("inspect", f"oci:{layout.root}:nope").exit_code == 2


def test_directory_file_options_are_refused_for_a_store(ollama, keypair):
    key, pub = keypair
    assert mg("sign", "ollama:tiny", "--key", key).exit_code == 0
    result = mg("verify", "ollama:tiny", "--key", pub, "--ignore", "license")
    assert result.exit_code == 2 and "--ignore applies to a model's files, not to ollama:tiny" in result.output
    result = mg("sign", "ollama:tiny", "--key", key, "--shard-size", "1024", "--force")
    assert result.exit_code == 2 and "store digests" in result.output
