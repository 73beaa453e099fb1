"""Ollama stores (issue 17): ``ollama:NAME[:TAG]`` signed and verified where the model lives.

The store is written as ``ollama pull`` leaves it (tests/helpers/stores.py). Every tamper
of the store is rejected with a named cause; the untouched store verifies.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mgattest.attest import (
    KeySigner,
    LogTarget,
    default_bundle_path,
    generate_signer,
    make_statement,
    resolve_stored_model,
    sign_model,
    sign_statement,
)
from mgattest.attest.errors import (
    ArtifactMismatchError,
    DescriptorMismatchError,
    LayoutError,
    LayoutFormatError,
    StoreCorruptionError,
)
from tests.helpers.corpus import build_gguf
from tests.helpers.stores import (
    OllamaModel,
    build_ollama_store,
    go_json,
    sha256,
    sign_reference,
    verify_reference,
)

LAYERS = {"model": build_gguf(), "template": b"{{ .System }} {{ .Prompt }}",
          "license": b"MIT License", "params": b'{"stop":["<|eot|>"]}'}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OllamaModel:
    model = build_ollama_store(tmp_path / "models", layers=LAYERS)
    build_ollama_store(tmp_path / "models", "other", layers={"model": build_gguf(n_tensors=1)
                                                             + b"\x01"})
    monkeypatch.setenv("OLLAMA_MODELS", str(model.store))
    return model


@pytest.fixture
def key():
    return generate_signer()


def test_subjects_are_the_manifest_and_each_layer_named_by_kind(store, key, tmp_path):
    result = sign_model("ollama:tiny", KeySigner(key, LogTarget("none")))
    subjects = {s["name"]: s["digest"]["sha256"] for s in result.statement["subject"]}
    assert subjects == {"manifest": store.digest,
                        **{kind: sha256(data) for kind, data in LAYERS.items()}}
    # every layer is the file Ollama reads: blobs/sha256-<digest of its bytes>
    for kind, data in LAYERS.items():
        assert store.blob(data).read_bytes() == data


def test_full_names_and_default_tag_resolve_to_the_same_manifest(store):
    digests = {resolve_stored_model(name).manifest.sha256
               for name in ("ollama:tiny", "ollama:tiny:latest", "ollama:library/tiny",
                            "ollama:registry.ollama.ai/library/tiny:latest")}
    assert digests == {store.digest}


def test_the_default_store_is_home_ollama_models(tmp_path, monkeypatch):
    monkeypatch.delenv("OLLAMA_MODELS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    model = build_ollama_store(tmp_path / ".ollama" / "models", layers=LAYERS)
    assert resolve_stored_model("ollama:tiny").manifest.sha256 == model.digest


def test_untouched_store_verifies(store, key, tmp_path):
    sign_reference("ollama:tiny", key, tmp_path / "b.json")
    outcome = verify_reference("ollama:tiny", key, tmp_path / "b.json")
    assert outcome.allowed and len(outcome.attestations) == 1


def test_an_attestation_naming_only_the_manifest_digest_verifies(store, key, tmp_path):
    statement = make_statement([{"name": "registry.ollama.ai/library/tiny",
                                 "digest": {"sha256": store.digest}}],
                               "https://slsa.dev/provenance/v1", {"buildDefinition": {}})
    (tmp_path / "b.json").write_text(json.dumps(sign_statement(statement, key)))
    assert verify_reference("ollama:tiny", key, tmp_path / "b.json").allowed


def test_tampered_layer_blob_is_store_corruption(store, key, tmp_path):
    sign_reference("ollama:tiny", key, tmp_path / "b.json")
    blob = store.blob(LAYERS["model"])
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x07")
    with pytest.raises(StoreCorruptionError, match="does not match its name") as exc:
        verify_reference("ollama:tiny", key, tmp_path / "b.json")
    assert exc.value.where == str(blob)


def test_swapped_blobs_are_store_corruption(store, key, tmp_path):
    sign_reference("ollama:tiny", key, tmp_path / "b.json")
    os.replace(store.blob(LAYERS["license"]), store.blob(LAYERS["template"]))
    with pytest.raises(StoreCorruptionError) as exc:
        verify_reference("ollama:tiny", key, tmp_path / "b.json")
    assert exc.value.where == str(store.blob(LAYERS["template"]))


def test_missing_blob_is_store_corruption(store, key, tmp_path):
    store.blob(LAYERS["params"]).unlink()
    with pytest.raises(StoreCorruptionError, match="missing from the store"):
        resolve_stored_model("ollama:tiny")


def test_blob_replaced_by_a_symlink_is_not_followed(store, tmp_path):
    blob = store.blob(LAYERS["license"])
    outside = tmp_path / "outside"
    outside.write_bytes(LAYERS["license"])  # the right bytes, but outside the store
    blob.unlink()
    blob.symlink_to(outside)
    with pytest.raises(StoreCorruptionError, match="without following a link"):
        resolve_stored_model("ollama:tiny")


def test_manifest_pointing_at_another_valid_blob_fails_the_signature(store, key, tmp_path):
    sign_reference("ollama:tiny", key, tmp_path / "b.json")
    doc = json.loads(store.manifest)
    other = b"{{ .Prompt }} -- evil"
    store.blob(other).write_bytes(other)
    doc["layers"][1].update(digest="sha256:" + sha256(other), size=len(other))
    store.manifest_path.write_bytes(go_json(doc))
    with pytest.raises(ArtifactMismatchError, match="no statement subject"):
        verify_reference("ollama:tiny", key, tmp_path / "b.json")


def test_tag_file_swapped_for_another_model_fails_the_signature(store, key, tmp_path):
    sign_reference("ollama:tiny", key, tmp_path / "b.json")
    other = store.store / "manifests/registry.ollama.ai/library/other/latest"
    store.manifest_path.write_bytes(other.read_bytes())
    with pytest.raises(ArtifactMismatchError):
        verify_reference("ollama:tiny", key, tmp_path / "b.json")


def test_descriptor_size_that_lies_is_named(store):
    doc = json.loads(store.manifest)
    doc["layers"][2]["size"] += 1
    store.manifest_path.write_bytes(go_json(doc))
    with pytest.raises(DescriptorMismatchError, match="descriptor says"):
        resolve_stored_model("ollama:tiny")


@pytest.mark.parametrize("edit, cause", [
    (lambda d: d["layers"][0].update(mediaType="application/x-gguf"), "not an Ollama layer"),
    (lambda d: d["layers"][1].update(mediaType="application/vnd.ollama.image.manifest"),
     "not an Ollama layer"),
    (lambda d: d["layers"][0].update(digest="sha256:" + "A" * 64), "lowercase hex"),
    (lambda d: d.update(schemaVersion=1), "schemaVersion"),
    (lambda d: d.pop("config"), "config is not a descriptor"),
])
def test_malformed_manifest_is_refused(store, edit, cause):
    doc = json.loads(store.manifest)
    edit(doc)
    store.manifest_path.write_bytes(go_json(doc))
    with pytest.raises(LayoutFormatError, match=cause):
        resolve_stored_model("ollama:tiny")


def test_duplicate_keys_in_the_manifest_are_refused(store):
    store.manifest_path.write_bytes(store.manifest[:-1] + b',"layers":[]}')
    with pytest.raises(LayoutFormatError, match="duplicate key 'layers'"):
        resolve_stored_model("ollama:tiny")


@pytest.mark.parametrize("name", ["ollama:../../etc/passwd", "ollama:a/b/c/d", "ollama:",
                                  "ollama:tiny:la/test", "ollama:.hidden"])
def test_bad_names_are_usage_errors(store, name):
    with pytest.raises(LayoutError, match="not an Ollama model name"):
        resolve_stored_model(name)


def test_unknown_model_names_the_manifest_it_looked_for(store):
    with pytest.raises(LayoutError, match=r"no Ollama model tiny:v2 .*manifests/"):
        resolve_stored_model("ollama:tiny:v2")


def test_default_bundle_is_in_the_working_directory_not_the_store(store):
    assert default_bundle_path("ollama:tiny") == Path("ollama-tiny-latest.sigstore.json")
    assert default_bundle_path("ollama:me/tiny:q4") == Path("ollama-me_tiny-q4.sigstore.json")


def test_repeated_layer_kinds_get_numbered_names(tmp_path, monkeypatch):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path))
    from mgattest.attest._ollama import resolve_ollama

    build_ollama_store(tmp_path, layers={"model": build_gguf(), "license": b"A"})
    doc = json.loads((tmp_path / "manifests/registry.ollama.ai/library/tiny/latest")
                     .read_bytes())
    (tmp_path / "blobs" / f"sha256-{sha256(b'B')}").write_bytes(b"B")
    doc["layers"].append({"mediaType": "application/vnd.ollama.image.license",
                          "digest": "sha256:" + sha256(b"B"), "size": 1})
    (tmp_path / "manifests/registry.ollama.ai/library/tiny/latest").write_bytes(go_json(doc))
    names = [e.name for e in resolve_ollama("ollama:tiny").subjects]
    assert names == ["manifest", "model", "license.1", "license.2"]


def test_digest_options_do_not_apply_to_a_store(store, key):
    from mgattest.attest import DigestOptions, SignOptions
    from mgattest.errors import InputError

    with pytest.raises(InputError, match="store digests"):
        sign_model("ollama:tiny", KeySigner(key, LogTarget("none")),
                   SignOptions(digests=DigestOptions(shard_size=1024)))


def test_tensor_layers_are_named_by_their_name_parameter(tmp_path, monkeypatch):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path))
    build_ollama_store(tmp_path, layers={"model": build_gguf()})
    path = tmp_path / "manifests/registry.ollama.ai/library/tiny/latest"
    doc = json.loads(path.read_bytes())
    for name, data in (("tok.weight", b"T1"), ("../evil", b"T2")):
        (tmp_path / "blobs" / f"sha256-{sha256(data)}").write_bytes(data)
        doc["layers"].append({"mediaType": "application/vnd.ollama.image.tensor; "
                                           f"name={name}; dtype=F16; shape=1,1",
                              "digest": "sha256:" + sha256(data), "size": len(data)})
    path.write_bytes(go_json(doc))
    names = [e.name for e in resolve_stored_model("ollama:tiny").subjects]
    assert names == ["manifest", "model", "tensor/tok.weight", "tensor"]


def test_loaders_refuse_store_references_with_a_clear_error(store, tmp_path):
    """mgattest.load and materialise read model files; a store reference is named as
    such (exit 2), never reported as a missing path nor loaded from unverified bytes."""
    import mgattest
    from mgattest.errors import InputError
    from mgattest.loading import materialise

    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: mgattest/v1\nkind: Policy\nrules: []\n")
    for call in (lambda: mgattest.load("ollama:tiny", policy=policy, bundles=["b.json"]),
                 lambda: materialise("ollama:tiny", policy=policy, bundles=["b.json"])):
        with pytest.raises(InputError, match="Ollama store or OCI layout"):
            call()
