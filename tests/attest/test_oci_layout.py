"""OCI image layouts (issue 17): ``oci:PATH[:REF]`` and layout directories.

Layouts are written as ModelPack / KitOps tools and ``oras`` write them
(tests/helpers/stores.py). A signature covers the manifest digest with one subject, as
cosign signs an image; the chain index → manifest → config and layers is verified.
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
from tests.helpers.stores import (
    OCI_INDEX,
    OCI_MANIFEST,
    OciLayout,
    build_oci_layout,
    descriptor,
    go_json,
    model_manifest,
    sha256,
    sign_reference,
    verify_reference,
)

WEIGHTS = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + b"\x00" * 16
FILES_V1 = {"model.safetensors": WEIGHTS, "config.json": b'{"hidden": 4}'}
FILES_V2 = {"model.safetensors": WEIGHTS + b"\x01", "config.json": b'{"hidden": 5}'}


@pytest.fixture
def layout(tmp_path: Path) -> OciLayout:
    return build_oci_layout(tmp_path / "tiny", {"v1": FILES_V1, "v2": FILES_V2})


@pytest.fixture
def key():
    return generate_signer()


def test_one_subject_names_the_manifest_digest(layout, key):
    result = sign_model(f"oci:{layout.root}:v1", KeySigner(key, LogTarget("none")))
    assert result.statement["subject"] == [
        {"name": "tiny", "digest": {"sha256": sha256(layout.manifests["v1"])}}]


def test_a_full_reference_names_the_subject_by_its_repository_as_cosign_does(tmp_path, key):
    layout = build_oci_layout(tmp_path / "l", {"ghcr.io/acme/tiny:1.0": FILES_V1})
    result = sign_model(f"oci:{layout.root}", KeySigner(key, LogTarget("none")))
    assert result.statement["subject"][0]["name"] == "ghcr.io/acme/tiny"


def test_untouched_layout_verifies_by_ref_and_each_ref_separately(layout, key, tmp_path):
    sign_reference(f"oci:{layout.root}:v1", key, tmp_path / "v1.json")
    sign_reference(f"oci:{layout.root}:v2", key, tmp_path / "v2.json")
    assert verify_reference(f"oci:{layout.root}:v1", key, tmp_path / "v1.json").allowed
    assert verify_reference(f"oci:{layout.root}:v2", key, tmp_path / "v2.json").allowed
    with pytest.raises(ArtifactMismatchError):
        verify_reference(f"oci:{layout.root}:v2", key, tmp_path / "v1.json")


def test_a_layout_directory_with_one_manifest_is_a_model(tmp_path, key):
    layout = build_oci_layout(tmp_path / "one", {"latest": FILES_V1})
    sign_reference(str(layout.root), key, tmp_path / "b.json")
    assert verify_reference(str(layout.root), key, tmp_path / "b.json").allowed
    assert resolve_stored_model(layout.root).kind == "oci"


def test_a_registry_attestation_of_the_same_manifest_verifies_here(layout, key, tmp_path):
    # What `cosign attest` writes for ghcr.io/acme/tiny@sha256:<manifest>: one subject,
    # the repository and the manifest digest.
    statement = make_statement([{"name": "ghcr.io/acme/tiny",
                                 "digest": {"sha256": sha256(layout.manifests["v1"])}}],
                               "https://cosign.sigstore.dev/attestation/v1",
                               {"Data": "trained on x", "Timestamp": "2026-01-01T00:00:00Z"})
    (tmp_path / "b.json").write_text(json.dumps(sign_statement(statement, key)))
    assert verify_reference(f"oci:{layout.root}:v1", key, tmp_path / "b.json").allowed
    assert verify_reference(f"oci:{layout.root}@sha256:{sha256(layout.manifests['v1'])}", key,
                   tmp_path / "b.json").allowed


@pytest.mark.parametrize("which", ["layer", "config", "manifest"])
def test_a_tampered_blob_is_store_corruption(layout, key, tmp_path, which):
    sign_reference(f"oci:{layout.root}:v1", key, tmp_path / "b.json")
    manifest = json.loads(layout.manifests["v1"])
    digest = {"layer": manifest["layers"][0]["digest"], "config": manifest["config"]["digest"],
              "manifest": "sha256:" + sha256(layout.manifests["v1"])}[which]
    blob = layout.blob(digest.split(":")[1])
    data = bytearray(blob.read_bytes())
    data[-2] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptionError, match="does not match its name") as exc:
        verify_reference(f"oci:{layout.root}:v1", key, tmp_path / "b.json")
    assert exc.value.where == str(blob)


def test_a_rewritten_manifest_reachable_from_the_ref_fails_the_signature(layout, key, tmp_path):
    sign_reference(f"oci:{layout.root}:v1", key, tmp_path / "b.json")
    evil = model_manifest(layout, {**FILES_V1, "config.json": b'{"hidden": 666}'})
    index = layout.index()
    index["manifests"][0] = descriptor(OCI_MANIFEST, evil,
                                       **{"org.opencontainers.image.ref.name": "v1"})
    layout.write_index(index)
    with pytest.raises(ArtifactMismatchError, match="no statement subject"):
        verify_reference(f"oci:{layout.root}:v1", key, tmp_path / "b.json")


def test_a_ref_moved_to_another_manifest_fails_the_signature(layout, key, tmp_path):
    sign_reference(f"oci:{layout.root}:v1", key, tmp_path / "b.json")
    index = layout.index()
    index["manifests"][1]["annotations"]["org.opencontainers.image.ref.name"] = "v1"
    index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "old"
    layout.write_index(index)
    with pytest.raises(ArtifactMismatchError):
        verify_reference(f"oci:{layout.root}:v1", key, tmp_path / "b.json")


def test_a_descriptor_size_that_lies_is_named(layout):
    index = layout.index()
    index["manifests"][0]["size"] -= 1
    layout.write_index(index)
    with pytest.raises(DescriptorMismatchError, match="descriptor says"):
        resolve_stored_model(f"oci:{layout.root}:v1")


def test_a_manifest_media_type_that_disagrees_with_its_descriptor_is_named(layout):
    index = layout.index()
    index["manifests"][0]["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
    layout.write_index(index)
    with pytest.raises(DescriptorMismatchError, match="mediaType"):
        resolve_stored_model(f"oci:{layout.root}:v1")


def test_several_manifests_without_a_ref_are_ambiguous(layout):
    with pytest.raises(LayoutError, match="names 2 manifests.*refs: v1, v2"):
        resolve_stored_model(layout.root)


def test_an_unknown_ref_lists_the_refs(layout):
    with pytest.raises(LayoutError, match="no manifest named 'v3' .*refs: v1, v2"):
        resolve_stored_model(f"oci:{layout.root}:v3")


def test_one_ref_on_two_manifests_is_ambiguous(layout):
    index = layout.index()
    index["manifests"][1]["annotations"]["org.opencontainers.image.ref.name"] = "v1"
    layout.write_index(index)
    with pytest.raises(LayoutError, match="ref 'v1' names 2 manifests"):
        resolve_stored_model(f"oci:{layout.root}:v1")


def _nest(layout: OciLayout, entries: list[dict]) -> bytes:
    nested = go_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    layout.blob(nested).write_bytes(nested)
    layout.write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(OCI_INDEX, nested, **{"org.opencontainers.image.ref.name": "multi"})]})
    return nested


def test_a_nested_index_with_one_manifest_is_followed(layout, key, tmp_path):
    _nest(layout, [descriptor(OCI_MANIFEST, layout.manifests["v2"])])
    stored = resolve_stored_model(f"oci:{layout.root}:multi")
    assert stored.manifest.sha256 == sha256(layout.manifests["v2"])
    assert [e.name for e in stored.layers] == ["model.safetensors", "config.json"]


def test_a_nested_index_with_two_manifests_is_ambiguous(layout):
    _nest(layout, [descriptor(OCI_MANIFEST, layout.manifests["v1"]),
                   descriptor(OCI_MANIFEST, layout.manifests["v2"])])
    with pytest.raises(LayoutError, match="names 2 manifests"):
        resolve_stored_model(f"oci:{layout.root}:multi")


@pytest.mark.parametrize("edit, cause", [
    (lambda e: e.update(mediaType="not a media type"), "is not a media type"),
    (lambda e: e.update(digest=e["digest"].upper()), "not supported"),
    (lambda e: e.update(digest="sha256:" + "A" * 64), "lowercase hex"),
    (lambda e: e.update(digest="md5:" + "a" * 32), "not supported"),
    (lambda e: e.update(size=True), "non-negative int64"),
    (lambda e: e.update(size=-1), "non-negative int64"),
    (lambda e: e.update(annotations={"org.opencontainers.image.ref.name": 1}), "strings"),
])
def test_descriptors_are_parsed_strictly(layout, edit, cause):
    index = layout.index()
    edit(index["manifests"][0])
    layout.write_index(index)
    with pytest.raises(LayoutFormatError, match=cause):
        resolve_stored_model(f"oci:{layout.root}:v2")


def test_duplicate_keys_in_the_index_are_refused(layout):
    text = (layout.root / "index.json").read_bytes()
    (layout.root / "index.json").write_bytes(text[:-1] + b',"manifests":[]}')
    with pytest.raises(LayoutFormatError, match="duplicate key 'manifests'"):
        resolve_stored_model(f"oci:{layout.root}:v1")


def test_a_blobs_directory_linked_outside_the_layout_is_not_followed(layout, tmp_path):
    outside = tmp_path / "elsewhere"
    os.replace(layout.root / "blobs", outside)
    (layout.root / "blobs").symlink_to(outside)
    with pytest.raises(StoreCorruptionError, match="without following a link"):
        resolve_stored_model(f"oci:{layout.root}:v1")


def test_a_missing_blob_is_store_corruption(layout):
    layer = json.loads(layout.manifests["v1"])["layers"][1]["digest"]
    layout.blob(layer.split(":")[1]).unlink()
    with pytest.raises(StoreCorruptionError, match="missing"):
        resolve_stored_model(f"oci:{layout.root}:v1")


def test_not_a_layout_and_a_bad_layout_version(tmp_path, layout):
    with pytest.raises(LayoutError, match="not an OCI image layout"):
        resolve_stored_model(f"oci:{tmp_path}")
    (layout.root / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(LayoutFormatError, match="imageLayoutVersion"):
        resolve_stored_model(f"oci:{layout.root}:v1")


def test_a_plain_directory_is_not_a_reference(tmp_path):
    (tmp_path / "model").mkdir()
    assert resolve_stored_model(tmp_path / "model") is None


def test_default_bundle_is_beside_the_layout(layout):
    assert default_bundle_path(f"oci:{layout.root}:v1") == layout.root.parent / "tiny.v1.sigstore.json"
    assert default_bundle_path(layout.root) == layout.root.parent / "tiny.sigstore.json"


def test_a_ref_that_is_no_repository_falls_back_to_the_directory_name(tmp_path, key):
    layout = build_oci_layout(tmp_path / "dir", {"../../etc/x:1": FILES_V1})
    result = sign_model(f"oci:{layout.root}", KeySigner(key, LogTarget("none")))
    assert result.statement["subject"][0]["name"] == "dir"


def test_a_layer_cannot_take_the_manifest_subject_name(tmp_path):
    layout = build_oci_layout(tmp_path / "tiny", {"v1": {"tiny": b"a", "x.json": b"{}"}})
    stored = resolve_stored_model(layout.root)
    assert [e.name for e in stored.layers] == ["blobs/sha256/" + sha256(b"a"), "x.json"]


@pytest.mark.interop
def test_oras_reads_the_layout_as_we_do(layout):
    """oras-py (an independent reader) validates the layout, its schemas accept the
    index and manifests, and it walks each ref to the same manifest, config and layers."""
    jsonschema = pytest.importorskip("jsonschema")
    oras_layout = pytest.importorskip("oras.layout")
    from oras import schemas

    reader = oras_layout.Layout(str(layout.root))  # validates oci-layout, index.json, blobs/
    jsonschema.validate(layout.index(), schemas.index)
    for ref, manifest_bytes in layout.manifests.items():
        manifest = json.loads(manifest_bytes)
        jsonschema.validate(manifest, schemas.manifest)
        stored = resolve_stored_model(f"oci:{layout.root}:{ref}")
        ours = [f"sha256:{e.sha256}" for e in stored.layers]
        ours += [manifest["config"]["digest"], f"sha256:{stored.manifest.sha256}"]
        assert reader.get_ordered_blobs(ref) == ours
