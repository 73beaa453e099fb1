"""Model stores built on disk the way their tools write them.

- :func:`build_ollama_store`: what ``ollama pull`` / ``ollama create`` leave in
  ``$OLLAMA_MODELS``: ``blobs/sha256-<hex>`` files and a Docker v2 manifest (compact Go
  JSON, no trailing newline) at ``manifests/<host>/<namespace>/<name>/<tag>``.
- :func:`build_oci_layout`: an image-spec v1.1 layout as ModelPack / KitOps tools and
  ``oras`` write it: ``oci-layout``, ``index.json`` whose descriptors carry
  ``org.opencontainers.image.ref.name``, ``blobs/sha256/<hex>``; one manifest per ref
  with ``artifactType`` ``application/vnd.cncf.model.manifest.v1+json``, a model config
  and one raw layer per file annotated with ``org.cncf.model.filepath``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from mgattest.attest import KeySigner, LogTarget, Signer, TrustOptions, Verifier, sign_model
from mgattest.policy import ModelVerifier, VerificationOutcome, VerifyOptions

OLLAMA_HOST = "registry.ollama.ai"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MODEL_ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
MODEL_CONFIG = "application/vnd.cncf.model.config.v1+json"
RAW_WEIGHT = "application/vnd.cncf.model.weight.v1.raw"
RAW_CONFIG = "application/vnd.cncf.model.weight.config.v1.raw"


def go_json(value: object) -> bytes:
    """JSON as Go's encoding/json writes it: compact, fields in the order given."""
    return json.dumps(value, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **annotations: str) -> dict[str, object]:
    out: dict[str, object] = {"mediaType": media_type, "digest": "sha256:" + sha256(data),
                              "size": len(data)}
    if annotations:
        out["annotations"] = dict(annotations)
    return out


@dataclass
class OllamaModel:
    """An Ollama model written into a store: where its manifest and blobs are."""

    store: Path
    manifest_path: Path
    manifest: bytes
    layers: dict[str, bytes]  # media type suffix -> bytes

    def blob(self, data: bytes) -> Path:
        return self.store / "blobs" / f"sha256-{sha256(data)}"

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def build_ollama_store(store: Path, name: str = "tiny", tag: str = "latest", *,
                       layers: dict[str, bytes], namespace: str = "library",
                       host: str = OLLAMA_HOST) -> OllamaModel:
    """Write one model (layers by media-type suffix: model, template, license, params...)."""
    blobs = store / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    config = go_json({"model_format": "gguf", "model_family": "llama",
                      "model_families": ["llama"], "model_type": "15M",
                      "file_type": "F32", "architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers",
                                 "diff_ids": ["sha256:" + sha256(d) for d in layers.values()]}})
    for data in (config, *layers.values()):
        (blobs / f"sha256-{sha256(data)}").write_bytes(data)
    manifest = go_json({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": descriptor("application/vnd.docker.container.image.v1+json", config),
        "layers": [descriptor(f"application/vnd.ollama.image.{kind}", data)
                   for kind, data in layers.items()]})
    path = store / "manifests" / host / namespace / name / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(manifest)
    return OllamaModel(store, path, manifest, dict(layers))


@dataclass
class OciLayout:
    """An OCI layout: its root and, per ref, the manifest bytes."""

    root: Path
    manifests: dict[str, bytes]

    def blob(self, data_or_digest: bytes | str) -> Path:
        hex_digest = (data_or_digest if isinstance(data_or_digest, str)
                      else sha256(data_or_digest))
        return self.root / "blobs" / "sha256" / hex_digest

    def write_blob(self, data: bytes) -> dict[str, object]:
        self.blob(data).write_bytes(data)
        return descriptor("", data)

    def index(self) -> dict[str, object]:
        return json.loads((self.root / "index.json").read_text())

    def write_index(self, index: dict[str, object]) -> None:
        (self.root / "index.json").write_bytes(go_json(index))


def model_manifest(layout: OciLayout, files: dict[str, bytes]) -> bytes:
    """Write the config and one raw layer per file; return the manifest bytes (written)."""
    config = go_json({"descriptor": {"name": "tiny", "version": "1"},
                      "config": {"format": "safetensors"},
                      "modelfs": {"type": "layers",
                                  "diffIds": ["sha256:" + sha256(d) for d in files.values()]}})
    layout.write_blob(config)
    layers = []
    for name, data in files.items():
        layout.write_blob(data)
        kind = RAW_WEIGHT if name.endswith((".safetensors", ".gguf")) else RAW_CONFIG
        layers.append(descriptor(kind, data, **{"org.cncf.model.filepath": name,
                                                "org.opencontainers.image.title": name}))
    manifest = go_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "artifactType": MODEL_ARTIFACT,
                        "config": descriptor(MODEL_CONFIG, config), "layers": layers})
    layout.write_blob(manifest)
    return manifest


def build_oci_layout(root: Path, refs: dict[str, dict[str, bytes]]) -> OciLayout:
    """A layout with one model artifact per ref (ref -> {file name: bytes})."""
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_bytes(go_json({"imageLayoutVersion": "1.0.0"}))
    layout = OciLayout(root, {})
    entries = []
    for ref, files in refs.items():
        manifest = model_manifest(layout, files)
        layout.manifests[ref] = manifest
        entries.append(descriptor(OCI_MANIFEST, manifest,
                                  **{"org.opencontainers.image.ref.name": ref}))
    layout.write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    return layout


def sign_reference(reference: str, key: Signer, out: Path) -> None:
    """Sign a store reference with ``key`` (logged locally); write the bundle to ``out``."""
    out.write_text(json.dumps(sign_model(reference, KeySigner(key, LogTarget("local"))).bundle))


def verify_reference(reference: str, key: Signer, bundle: Path) -> VerificationOutcome:
    """Verify a store reference against ``bundle`` signed by ``key`` (no policy)."""
    trust = TrustOptions(keys=[Verifier(key.public_key)])
    return ModelVerifier(None, trust, VerifyOptions(bundles=(str(bundle),))).verify(reference)
