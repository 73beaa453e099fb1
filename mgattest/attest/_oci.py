"""OCI image layout directories (image-spec v1.1 ``image-layout.md``) as signable models.

A layout is ``oci-layout`` + ``index.json`` + ``blobs/<alg>/<hex>``. ``oci:PATH[:REF]``
(or the layout directory itself) resolves, through ``index.json``, to one image
manifest: REF is the ``org.opencontainers.image.ref.name`` annotation (or ``@sha256:HEX``
for a descriptor by digest); without REF the index must list exactly one manifest; a
nested image index is followed when it holds exactly one manifest. Every document and
blob on the way is checked against the descriptor that points to it (digest, size,
media type) and read without following links.

What a signature covers is the manifest digest, as cosign signs an image: one subject
``{name: <repository>, digest: {sha256: <manifest>}}``. The manifest names the config
and the layers by digest, so checking the chain here extends the signature to every
blob; an attestation made for the same artifact in a registry verifies here.
ModelPack / KitOps artifacts are ordinary manifests (``artifactType`` and config media
types of their own, layers annotated with ``org.cncf.model.filepath`` or
``org.opencontainers.image.title``): the annotations name the layers in reports.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from mgattest._files import read_bounded
from mgattest._jsonutil import JSONObject
from mgattest.attest._blobstore import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_DOCUMENT_BYTES,
    OCI_INDEX,
    Descriptor,
    StoredModel,
    StoreEntry,
    parse_descriptor,
    parse_document,
    parse_manifest,
    read_document_blob,
    verify_manifest_blobs,
)
from mgattest.attest.errors import LayoutError, LayoutFormatError

__all__ = ["OCI_PREFIX", "is_oci_layout", "oci_bundle_path", "resolve_oci"]

OCI_PREFIX = "oci:"
REF_NAME = "org.opencontainers.image.ref.name"
# How model artifacts name the file a layer holds (ModelPack first, then the generic one).
LAYER_NAME_ANNOTATIONS = ("org.cncf.model.filepath", "org.opencontainers.image.title")
_MAX_NESTING = 4
_DIGEST_REF = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
# distribution's reference grammar, simplified: [host[:port]/]path-component(/component)*
_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]+)?"
                         r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+")
_SAFE_PART = re.compile(r"[^\x00-\x1f\x7f\\]+")


def is_oci_layout(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding an ``oci-layout`` file."""
    return Path(path, "oci-layout").is_file()


def split_oci_reference(text: str) -> tuple[Path, str | None]:
    """``oci:PATH[:REF]`` / ``oci:PATH@DIGEST`` / a layout directory → (path, ref)."""
    rest = text[len(OCI_PREFIX):] if text.startswith(OCI_PREFIX) else text
    if not rest:
        raise LayoutError("oci: needs a layout directory (oci:PATH[:REF])", what="reference",
                          where=text)
    if Path(rest).is_dir():
        return Path(rest), None
    path, at, digest = rest.rpartition("@")
    if at and _DIGEST_REF.fullmatch(digest):
        return Path(path), digest
    path, colon, ref = rest.rpartition(":")
    if colon and path and ref and Path(path).is_dir():
        return Path(path), ref
    return Path(rest), None


def oci_bundle_path(text: str) -> Path:
    """The default bundle: beside the layout directory, never inside it (the layout is
    the tools' content-addressed store, and a file there is part of no image);
    ``<dir>.sigstore.json``, or ``<dir>.<ref>.sigstore.json`` when a ref is named."""
    path, ref = split_oci_reference(text)
    path = path.resolve() if path.name in ("", ".", "..") else path
    suffix = "" if ref is None else "." + re.sub(r"[^A-Za-z0-9._-]", "_", ref)
    return path.parent / f"{path.name}{suffix}.sigstore.json"


def _layout_root(path: Path) -> Path:
    """The resolved layout directory after checking its ``oci-layout`` marker."""
    marker = path / "oci-layout"
    if not path.is_dir() or not marker.is_file():
        raise LayoutError(f"{path} is not an OCI image layout (no oci-layout file)",
                          what="oci layout", where=str(path))
    doc = parse_document(read_bounded(marker, 4096, what="oci-layout file"),
                         what="oci-layout file", where=str(marker))
    if doc.get("imageLayoutVersion") != "1.0.0":
        raise LayoutFormatError(f"{marker}: imageLayoutVersion must be \"1.0.0\", got "
                                f"{str(doc.get('imageLayoutVersion'))[:40]!r}",
                                what="oci-layout file", where=str(marker))
    return path.resolve()


def _index_manifests(doc: JSONObject, where: str) -> list[Descriptor]:
    """The descriptors an image index lists (schemaVersion 2, OCI index media type)."""
    if doc.get("schemaVersion") != 2 or isinstance(doc.get("schemaVersion"), bool):
        raise LayoutFormatError(f"image index {where}: schemaVersion must be 2",
                                what="image index", where=where)
    if doc.get("mediaType", OCI_INDEX) not in INDEX_TYPES:
        raise LayoutFormatError(f"image index {where}: mediaType "
                                f"{str(doc.get('mediaType'))[:100]!r} is not an image index",
                                what="image index", where=where)
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise LayoutFormatError(f"image index {where}: manifests must be a list",
                                what="image index", where=where)
    return [parse_descriptor(d, f"{where} manifests[{i}]") for i, d in enumerate(manifests)]


def _select(descriptors: list[Descriptor], ref: str | None, where: str) -> Descriptor:
    """The one descriptor ``ref`` names (by ref-name annotation or digest)."""
    if ref is None:
        chosen = descriptors
    elif _DIGEST_REF.fullmatch(ref):
        chosen = [d for d in descriptors if d.digest == ref]
    else:
        chosen = [d for d in descriptors if d.annotations.get(REF_NAME) == ref]
    distinct = {d.digest: d for d in chosen}
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    refs = sorted({d.annotations.get(REF_NAME, d.digest) for d in descriptors})
    listed = ", ".join(refs[:10]) or "none"
    if not distinct:
        raise LayoutError(f"{where} has no manifest named {ref!r} (refs: {listed})",
                          what="ref", where=where)
    raise LayoutError(f"{where}: {'ref ' + repr(ref) if ref else 'the index'} names "
                      f"{len(distinct)} manifests; name one (oci:PATH:REF or "
                      f"oci:PATH@DIGEST; refs: {listed})", what="ref", where=where)


def _blob_parts(descriptor: Descriptor) -> tuple[str, str, str]:
    return ("blobs", descriptor.algorithm, descriptor.hex_digest)


def _follow_to_manifest(root: Path, descriptor: Descriptor) -> tuple[Descriptor, bytes]:
    """Follow nested image indexes (each verified) down to one manifest's bytes."""
    for _ in range(_MAX_NESTING):
        data = read_document_blob(root, _blob_parts(descriptor), descriptor)
        if descriptor.media_type in MANIFEST_TYPES:
            return descriptor, data
        where = f"image index {descriptor.digest}"
        if descriptor.media_type not in INDEX_TYPES:
            raise LayoutFormatError(f"{where}: mediaType {descriptor.media_type!r} is "
                                    "neither an image manifest nor an image index",
                                    what="descriptor", where=descriptor.digest)
        descriptor = _select(_index_manifests(parse_document(data, what="image index",
                                                             where=where), where),
                             None, where)
    raise LayoutFormatError(f"image indexes nest more than {_MAX_NESTING} deep",
                            what="image index", where=descriptor.digest)


def _repository_name(ref_name: str | None, root: Path) -> str:
    """cosign names an image subject by its repository (the reference without tag or
    digest); a bare tag (``v1``) names none, so the layout directory stands in."""
    if ref_name and "/" in ref_name:
        repository = ref_name.split("@", 1)[0]
        head, colon, tag = repository.rpartition(":")
        repository = head if colon and "/" not in tag else repository
        if _REPOSITORY.fullmatch(repository):
            return repository
    return root.name


def _layer_names(layers: tuple[Descriptor, ...], manifest_name: str) -> list[str]:
    """Report names of the layers: the file they hold, else ``blobs/<alg>/<hex>`` (also
    for a name two layers, or a layer and the manifest, would share)."""
    names = []
    for layer in layers:
        name = next((layer.annotations[k] for k in LAYER_NAME_ANNOTATIONS
                     if k in layer.annotations), "")
        parts = name.split("/")
        safe = (bool(name) and not name.startswith("/") and _SAFE_PART.fullmatch(name)
                and all(p not in ("", ".", "..") for p in parts))
        names.append(name if safe else "/".join(_blob_parts(layer)))
    repeated = {n for n in names if names.count(n) > 1} | {manifest_name}
    return [("/".join(_blob_parts(layer)) if n in repeated else n)
            for n, layer in zip(names, layers, strict=True)]


def resolve_oci(text: str) -> StoredModel:
    """Resolve and verify ``oci:PATH[:REF]`` (or a layout directory) down to every blob."""
    path, ref = split_oci_reference(text)
    root = _layout_root(path)
    index_path = root / "index.json"
    index = parse_document(read_bounded(index_path, MAX_DOCUMENT_BYTES, what="index.json"),
                           what="index.json", where=str(index_path))
    top = _select(_index_manifests(index, str(index_path)), ref, str(index_path))
    descriptor, data = _follow_to_manifest(root, top)
    where = str(root.joinpath(*_blob_parts(descriptor)))
    manifest = parse_manifest(parse_document(data, what="manifest", where=where),
                              descriptor.media_type, where)
    subject_name = _repository_name(top.annotations.get(REF_NAME), root)
    manifest_entry = StoreEntry(subject_name, "manifest", descriptor.media_type,
                                hashlib.sha256(data).hexdigest(), len(data), Path(where))
    layers = verify_manifest_blobs(root, manifest, _layer_names(manifest.layers, subject_name),
                                   _blob_parts)
    return StoredModel("oci", text, manifest_entry, layers, (manifest_entry,),
                       oci_bundle_path(text))
