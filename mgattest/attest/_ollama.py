"""The Ollama model store (``OLLAMA_MODELS``, else ``~/.ollama/models``) as signable models.

``ollama:NAME[:TAG]`` (tag ``latest``; registry ``registry.ollama.ai`` and namespace
``library`` by default; ``host/namespace/name:tag`` in full) names the manifest file
``manifests/<host>/<namespace>/<name>/<tag>``: a Docker v2 / OCI image manifest whose
config and layers (media types ``application/vnd.ollama.image.model``, ``template``,
``license``, ``params``, ``system``, ``projector``, ``adapter``, ...) are the files
``blobs/sha256-<hex>``. Every blob must hash to its name: a mismatch is store
corruption (:class:`~mgattest.attest.errors.StoreCorruptionError`), named apart from a
signature that does not cover the model.

Subjects, in this order and stable: ``manifest`` (the SHA-256 of the manifest file's
bytes, what Ollama and its registry call the model's digest), then one per layer named
by its media type's last part (``model``, ``template``, ``license`` ...), with ``/NAME``
when the media type carries a ``name=`` parameter and ``.1``, ``.2`` ... in manifest
order when a name repeats. The config blob is verified (the manifest names it by
digest) but is no subject of its own.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from pathlib import Path

from mgattest.attest._blobstore import (
    Descriptor,
    StoredModel,
    StoreEntry,
    parse_document,
    parse_manifest,
    read_store_document,
    verify_manifest_blobs,
)
from mgattest.attest.errors import LayoutError, LayoutFormatError

__all__ = ["OLLAMA_PREFIX", "OllamaName", "ollama_bundle_path", "ollama_store",
           "parse_ollama_name", "resolve_ollama"]

OLLAMA_PREFIX = "ollama:"
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
LAYER_PREFIX = "application/vnd.ollama.image."
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}(?::[0-9]{1,5})?")
_LAYER_KIND = re.compile(r"[a-z][a-z0-9.-]*")
_NAME_PARAM = re.compile(r";\s*name=([A-Za-z0-9_][A-Za-z0-9_.-]{0,199})\s*(?:;|$)")


class OllamaName(tuple[str, str, str, str]):
    """``(host, namespace, model, tag)`` of an Ollama model name."""

    @property
    def manifest_parts(self) -> tuple[str, ...]:
        """The manifest file below the store: ``manifests/host/namespace/model/tag``."""
        return ("manifests", *self)

    @property
    def short(self) -> str:
        """The name as Ollama prints it (default host and namespace left out)."""
        host, namespace, model, tag = self
        prefix = "" if host == DEFAULT_HOST else host + "/"
        if prefix or namespace != DEFAULT_NAMESPACE:
            prefix += namespace + "/"
        return f"{prefix}{model}:{tag}"


def parse_ollama_name(text: str) -> OllamaName:
    """``ollama:NAME[:TAG]`` / ``ollama:NAMESPACE/NAME[:TAG]`` / ``ollama:HOST/NS/NAME:TAG``."""
    rest = text[len(OLLAMA_PREFIX):] if text.startswith(OLLAMA_PREFIX) else text
    path, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:
        path, tag = rest, DEFAULT_TAG
    parts = path.split("/")
    if len(parts) > 3 or not path:
        raise LayoutError(f"{text!r} is not an Ollama model name ([HOST/][NAMESPACE/]NAME"
                          "[:TAG])", what="reference", where=text)
    host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
    if len(parts) == 3:
        host = parts.pop(0)
    if len(parts) == 2:
        namespace = parts.pop(0)
    model = parts[0]
    bad = [p for p in (namespace, model, tag) if not _PART.fullmatch(p)]
    if not _HOST.fullmatch(host):
        bad.insert(0, host)
    if bad:
        raise LayoutError(f"{text!r} is not an Ollama model name: {bad[0][:80]!r} is not a "
                          "valid name part", what="reference", where=text)
    return OllamaName((host, namespace, model, tag))


def ollama_store() -> Path:
    """The store Ollama uses: ``$OLLAMA_MODELS``, else ``~/.ollama/models``."""
    configured = os.environ.get("OLLAMA_MODELS")
    return Path(configured).expanduser() if configured else Path.home() / ".ollama" / "models"


def ollama_bundle_path(text: str) -> Path:
    """The default bundle: ``ollama-<name>-<tag>.sigstore.json`` in the working directory.

    Never inside the store: Ollama owns it (``ollama rm``/prune delete what no manifest
    names, and every file below ``manifests/`` would read as a model tag)."""
    host, namespace, model, tag = parse_ollama_name(text)
    parts = [p for p, default in ((host, DEFAULT_HOST), (namespace, DEFAULT_NAMESPACE))
             if p != default] + [model]
    return Path(f"ollama-{'_'.join(parts).replace(':', '_')}-{tag}.sigstore.json")


def _layer_names(layers: tuple[Descriptor, ...], where: str) -> list[str]:
    """Subject names of the layers (see the module docstring)."""
    names = []
    for i, layer in enumerate(layers):
        base = layer.media_type.split(";", 1)[0].strip()
        kind = base[len(LAYER_PREFIX):] if base.startswith(LAYER_PREFIX) else ""
        if not _LAYER_KIND.fullmatch(kind) or kind == "manifest":  # that name is taken
            raise LayoutFormatError(f"{where} layers[{i}]: mediaType {layer.media_type!r} is "
                                    f"not an Ollama layer ({LAYER_PREFIX}KIND)",
                                    what="media type", where=where)
        param = _NAME_PARAM.search(layer.media_type)
        names.append(f"{kind}/{param.group(1)}" if param else kind)
    counts, seen = Counter(names), Counter[str]()
    out = []
    for name in names:
        seen[name] += 1
        out.append(f"{name}.{seen[name]}" if counts[name] > 1 else name)
    return out


def resolve_ollama(text: str, store: Path | None = None) -> StoredModel:
    """Resolve and verify ``ollama:NAME[:TAG]`` in ``store`` (default
    :func:`ollama_store`): the manifest, then the config and every layer blob."""
    name = parse_ollama_name(text)
    root = (store or ollama_store()).resolve()
    manifest_path = root.joinpath(*name.manifest_parts)
    data = read_store_document(root, name.manifest_parts, what="Ollama manifest")
    if data is None:
        raise LayoutError(f"no Ollama model {name.short} in {root} (no manifest "
                          f"{manifest_path})", what="ollama model", where=str(manifest_path))
    where = str(manifest_path)
    manifest = parse_manifest(parse_document(data, what="Ollama manifest", where=where),
                              None, where)
    manifest_entry = StoreEntry("manifest", "manifest", manifest.media_type,
                                hashlib.sha256(data).hexdigest(), len(data), manifest_path)
    descriptors = (manifest.config, *manifest.layers)
    if any(d.algorithm != "sha256" for d in descriptors):
        raise LayoutFormatError(f"{where}: Ollama blobs are named by sha256 digests",
                                what="descriptor", where=where)
    layers = verify_manifest_blobs(root, manifest, _layer_names(manifest.layers, where),
                                   _blob_parts)
    return StoredModel("ollama", text, manifest_entry, layers,
                       (manifest_entry, *layers), ollama_bundle_path(text))


def _blob_parts(descriptor: Descriptor) -> tuple[str, str]:
    return ("blobs", f"{descriptor.algorithm}-{descriptor.hex_digest}")
