"""What OCI image layouts and the Ollama store share: descriptors, manifests and blobs.

Both stores keep a model as a manifest (JSON) that points by digest to a config blob and
layer blobs, in a directory whose blob files are named by the digest of their bytes.
This module parses those documents strictly (image-spec v1.1 descriptor grammar,
duplicate JSON keys refused, sizes bounded) and reads blobs without following any link
inside the store, checking every byte against the digest that names it. What a resolver
returns is a :class:`StoredModel`: the manifest and the layers, every one verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal, Mapping, NamedTuple, Sequence

from mgattest._jsonutil import DuplicateKeyError, JSONObject, reject_duplicate_keys
from mgattest.attest.errors import (
    DescriptorMismatchError,
    LayoutFormatError,
    StoreCorruptionError,
)

if TYPE_CHECKING:
    from mgattest.attest._digests import DigestSpec, FileDigest, ModelDigests

__all__ = ["Descriptor", "MAX_DOCUMENT_BYTES", "Manifest", "StoreEntry", "StoredModel",
           "parse_descriptor", "parse_document", "parse_manifest", "read_blob",
           "read_document_blob", "read_store_document", "verify_manifest_blobs"]

# The distribution spec's limit for a manifest a registry must accept (4 MiB); indexes,
# configs and Ollama manifests are far smaller in practice.
MAX_DOCUMENT_BYTES = 4 << 20

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)

# RFC 6838 section 4.2 names, with optional parameters (image-spec: "MUST comply").
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}"
                         r"(?:\s*;\s*[A-Za-z0-9!#$&^_.+-]+=[^;\s]+)*")
# image-spec descriptor.md: the registered algorithms and their encodings.
_DIGESTS = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}
_MAX_SIZE = (1 << 63) - 1
_READ_CHUNK = 1 << 20

EntryRole = Literal["manifest", "config", "layer"]


class Descriptor(NamedTuple):
    """An OCI content descriptor: what a blob is, its digest and its size."""

    media_type: str
    algorithm: str
    hex_digest: str
    size: int
    annotations: Mapping[str, str]

    @property
    def digest(self) -> str:
        """``ALGORITHM:HEX``, as the descriptor states it."""
        return f"{self.algorithm}:{self.hex_digest}"


class Manifest(NamedTuple):
    """An image manifest (OCI or Docker v2): its config and layers."""

    media_type: str
    artifact_type: str | None
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class StoreEntry:
    """One verified blob of a stored model: its subject name, digest, size and file."""

    name: str
    role: EntryRole
    media_type: str
    sha256: str
    size: int
    path: Path

    def file_digest(self) -> FileDigest:
        """This blob as a signed subject."""
        from mgattest.attest._digests import FileDigest  # noqa: PLC0415 - default_bundle_path (via _references) must not load the hashing engine

        return FileDigest(self.name, self.size, {"sha256": self.sha256})


@dataclass(frozen=True)
class StoredModel:
    """A model in a store, resolved and verified from its manifest down to every blob.

    ``reference`` is what the user named (``ollama:llama3``, ``oci:DIR:REF``);
    ``manifest`` the manifest whose SHA-256 is what signatures cover; ``subjects`` the
    entries a signature names (OCI: the manifest alone, as cosign signs an image;
    Ollama: the manifest and each layer); ``layers`` the blobs whose bytes a model
    consists of (what content inspection reads); ``bundle_path`` the default bundle,
    never inside the store.
    """

    kind: Literal["oci", "ollama"]
    reference: str
    manifest: StoreEntry
    layers: tuple[StoreEntry, ...]
    subjects: tuple[StoreEntry, ...]
    bundle_path: Path

    @property
    def target(self) -> DigestSpec:
        """The manifest digest: what a verification matches signatures against."""
        from mgattest.attest._digests import DigestSpec  # noqa: PLC0415 - default_bundle_path (via _references) must not load the hashing engine

        return DigestSpec("sha256", self.manifest.sha256)

    def digests(self) -> ModelDigests:
        """The subjects to sign, in the shape the signing pipeline takes."""
        from mgattest.attest._digests import ModelDigests  # noqa: PLC0415 - default_bundle_path (via _references) must not load the hashing engine

        return ModelDigests(root=self.reference, algorithm="sha256", shard_size=None,
                            ignore=(), files=[e.file_digest() for e in self.subjects],
                            model_name=self.manifest.name)


# --------------------------------------------------------------------------- parsing

def parse_document(data: bytes, *, what: str, where: str) -> JSONObject:
    """A JSON object (duplicate keys refused) from a store document's bytes."""
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=reject_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError, DuplicateKeyError) as exc:
        raise LayoutFormatError(f"{what} {where} is not valid JSON: {exc}", what=what,
                                where=where) from None
    if not isinstance(doc, dict):
        raise LayoutFormatError(f"{what} {where} is not a JSON object", what=what,
                                where=where)
    return doc


def _bad(message: str, where: str) -> LayoutFormatError:
    return LayoutFormatError(message, what="descriptor", where=where)


def parse_media_type(value: object, where: str) -> str:
    """A media type as RFC 6838 writes it (image-spec requires that grammar)."""
    if not isinstance(value, str) or not _MEDIA_TYPE.fullmatch(value):
        raise _bad(f"{where}: mediaType {str(value)[:100]!r} is not a media type", where)
    return value


def parse_descriptor(value: object, where: str) -> Descriptor:
    """A descriptor (image-spec descriptor.md): mediaType, digest and size required;
    only the registered digest algorithms (sha256, sha512), lowercase hex."""
    if not isinstance(value, dict):
        raise _bad(f"{where} is not a descriptor object", where)
    media_type = parse_media_type(value.get("mediaType"), where)
    digest = value.get("digest")
    if not isinstance(digest, str) or ":" not in digest:
        raise _bad(f"{where}: digest {str(digest)[:100]!r} is not ALGORITHM:HEX", where)
    algorithm, _, hex_digest = digest.partition(":")
    pattern = _DIGESTS.get(algorithm)
    if pattern is None:
        raise _bad(f"{where}: digest algorithm {algorithm[:20]!r} is not supported "
                   f"(supported: {', '.join(_DIGESTS)})", where)
    if not pattern.fullmatch(hex_digest):
        raise _bad(f"{where}: {algorithm} digest {hex_digest[:140]!r} is not lowercase hex "
                   "of the right length", where)
    size = value.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _MAX_SIZE:
        raise _bad(f"{where}: size {size!r} is not a non-negative int64", where)
    annotations = value.get("annotations", {})
    if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
        raise _bad(f"{where}: annotations must map strings to strings", where)
    return Descriptor(media_type, algorithm, hex_digest, size, annotations)


def parse_manifest(doc: JSONObject, descriptor_type: str | None, where: str) -> Manifest:
    """An image manifest: schemaVersion 2, its own mediaType agreeing with the
    descriptor that pointed to it, a config descriptor and a list of layers."""
    if doc.get("schemaVersion") != 2 or isinstance(doc.get("schemaVersion"), bool):
        raise LayoutFormatError(f"manifest {where}: schemaVersion must be 2", what="manifest",
                                where=where)
    media_type = doc.get("mediaType", descriptor_type)
    if media_type not in MANIFEST_TYPES:
        raise LayoutFormatError(f"manifest {where}: mediaType {str(media_type)[:100]!r} is "
                                f"not an image manifest ({', '.join(MANIFEST_TYPES)})",
                                what="manifest", where=where)
    if descriptor_type is not None and media_type != descriptor_type:
        raise DescriptorMismatchError(
            f"manifest {where} says mediaType {media_type!r} but its descriptor says "
            f"{descriptor_type!r}", what="media type", where=where)
    artifact_type = doc.get("artifactType")
    if artifact_type is not None:
        parse_media_type(artifact_type, f"{where} artifactType")
    config = parse_descriptor(doc.get("config"), f"{where} config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise LayoutFormatError(f"manifest {where}: layers must be a list", what="manifest",
                                where=where)
    return Manifest(media_type, artifact_type, config,
                    tuple(parse_descriptor(d, f"{where} layers[{i}]")
                          for i, d in enumerate(layers)))


# --------------------------------------------------------------------------- blobs

def _open_in_store(root: Path, parts: Sequence[str]) -> int:
    """A descriptor of the regular file ``root/parts...``, opened without following a
    symlink at any component below ``root`` (a link could lead out of the store)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    dir_flags = flags | getattr(os, "O_DIRECTORY", 0)
    where = str(root.joinpath(*parts))
    fd = os.open(root, dir_flags)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, dir_flags, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(parts[-1], flags | getattr(os, "O_NONBLOCK", 0), dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        raise StoreCorruptionError(f"blob {where} is not a regular file", what="blob",
                                   where=where)
    return file_fd


def _open_blob(root: Path, parts: Sequence[str]) -> int:
    where = str(root.joinpath(*parts))
    try:
        return _open_in_store(root, parts)
    except FileNotFoundError:
        raise StoreCorruptionError(f"blob {where} is missing from the store", what="blob",
                                   where=where) from None
    except OSError as exc:  # ELOOP / ENOTDIR: a symlink inside the store
        raise StoreCorruptionError(f"blob {where} cannot be opened inside the store "
                                   f"without following a link: {exc.strerror or exc}",
                                   what="blob", where=where) from None


def _check_digest(algorithm: str, actual: str, expected: str, where: str) -> None:
    if actual != expected:
        raise StoreCorruptionError(
            f"blob {where} does not match its name: its bytes hash to {algorithm}:{actual}, "
            f"the store names it {algorithm}:{expected}", what="blob digest", where=where)


def _check_size(descriptor: Descriptor, size: int, where: str) -> None:
    if size != descriptor.size:
        raise DescriptorMismatchError(
            f"blob {where} is {size} bytes but its descriptor says {descriptor.size}",
            what="blob size", where=where)


def read_store_document(root: Path, parts: Sequence[str], *, what: str) -> bytes | None:
    """The bytes of a small document at ``root/parts...`` (an Ollama manifest), opened
    without following links below ``root``; None when it does not exist."""
    where = str(root.joinpath(*parts))
    try:
        fd = _open_in_store(root, parts)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise LayoutFormatError(f"{what} {where} cannot be opened inside the store without "
                                f"following a link: {exc.strerror or exc}", what=what,
                                where=where) from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise LayoutFormatError(f"{what} {where} is larger than {MAX_DOCUMENT_BYTES} bytes",
                                what=what, where=where)
    return data


def read_document_blob(root: Path, parts: Sequence[str], descriptor: Descriptor) -> bytes:
    """The bytes of a small JSON blob (manifest, index, config), checked against
    ``descriptor`` (digest, then size); at most :data:`MAX_DOCUMENT_BYTES`."""
    where = str(root.joinpath(*parts))
    if descriptor.size > MAX_DOCUMENT_BYTES:
        raise LayoutFormatError(f"{where}: descriptor size {descriptor.size} exceeds the "
                                f"{MAX_DOCUMENT_BYTES}-byte limit for a manifest",
                                what="descriptor", where=where)
    with os.fdopen(_open_blob(root, parts), "rb") as fh:
        data = fh.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise LayoutFormatError(f"{where} is larger than {MAX_DOCUMENT_BYTES} bytes",
                                what="document", where=where)
    actual = hashlib.new(descriptor.algorithm, data).hexdigest()
    _check_digest(descriptor.algorithm, actual, descriptor.hex_digest, where)
    _check_size(descriptor, len(data), where)
    return data


def read_blob(root: Path, parts: Sequence[str], descriptor: Descriptor) -> tuple[str, int]:
    """Hash the blob ``root/parts...`` (streamed) and check it against ``descriptor``:
    its digest (else :class:`StoreCorruptionError`), then its size. Returns the SHA-256
    hex of the bytes (computed alongside a sha512 descriptor's own) and the size."""
    where = str(root.joinpath(*parts))
    named = hashlib.new(descriptor.algorithm)
    sha256 = named if descriptor.algorithm == "sha256" else hashlib.sha256()
    size = 0
    with os.fdopen(_open_blob(root, parts), "rb") as fh:
        for chunk in iter(lambda: fh.read(_READ_CHUNK), b""):
            named.update(chunk)
            if sha256 is not named:
                sha256.update(chunk)
            size += len(chunk)
    _check_digest(descriptor.algorithm, named.hexdigest(), descriptor.hex_digest, where)
    _check_size(descriptor, size, where)
    return sha256.hexdigest(), size


def verify_manifest_blobs(root: Path, manifest: Manifest, layer_names: Sequence[str],
                          blob_parts: Callable[[Descriptor], Sequence[str]]
                          ) -> tuple[StoreEntry, ...]:
    """Check the config and every layer blob of ``manifest`` (see :func:`read_blob`);
    the layers as entries named ``layer_names``. ``blob_parts`` says where a
    descriptor's blob lives below ``root``."""
    read_blob(root, blob_parts(manifest.config), manifest.config)
    layers = []
    for name, layer in zip(layer_names, manifest.layers, strict=True):
        sha256, size = read_blob(root, blob_parts(layer), layer)
        layers.append(StoreEntry(name, "layer", layer.media_type, sha256, size,
                                 root.joinpath(*blob_parts(layer))))
    return tuple(layers)
