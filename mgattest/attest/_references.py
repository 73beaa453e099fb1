"""Models named where they live: one table from a reference scheme to its resolver.

``sign``, ``verify``, ``inspect`` and the library entry points take, in place of a path,
a reference. There are two kinds:

* **path references** resolve to the local directory or file that holds the model, which
  is then walked like any other path: ``hf:ORG/NAME[@REV]`` (a snapshot of the local
  Hugging Face cache; docs/layouts/huggingface.md). :func:`resolve_model_path`.
* **store references** resolve to a verified
  :class:`~mgattest.attest._blobstore.StoredModel` (manifest and blobs checked by digest):
  ``ollama:NAME[:TAG]`` (the Ollama store) and ``oci:PATH[:REF]`` (an OCI image layout);
  a directory holding an ``oci-layout`` file is an OCI layout too.
  :func:`resolve_stored_model`.

Only ``str`` text can be a reference (``./hf:x`` or a ``Path`` is always a path). Every
entry point asks :func:`resolve_stored_model` first, then walks
:func:`resolve_model_path`. Nothing is fetched: resolution is offline.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mgattest.attest._blobstore import StoredModel
from mgattest.attest._hfcache import HF_SCHEME, resolve_hf_reference
from mgattest.attest._oci import OCI_PREFIX, is_oci_layout, oci_bundle_path, resolve_oci
from mgattest.attest._ollama import OLLAMA_PREFIX, ollama_bundle_path, resolve_ollama
from mgattest.attest._walk import default_bundle_path as path_bundle_path
from mgattest.errors import InputError

__all__ = ["StoredModel", "default_bundle_path", "is_store_reference", "model_schemes",
           "refuse_store_reference", "resolve_model_path", "resolve_stored_model"]

StoreResolver = Callable[[str], StoredModel]

#: path scheme prefix → resolver (reference text → the local path that holds the model).
PATH_SCHEMES: dict[str, Callable[[str], Path]] = {
    HF_SCHEME: resolve_hf_reference,
}

#: store scheme prefix → (resolver, default bundle path). A layout directory given as a
#: path resolves as "oci:".
STORE_SCHEMES: dict[str, tuple[StoreResolver, Callable[[str], Path]]] = {
    OLLAMA_PREFIX: (resolve_ollama, ollama_bundle_path),
    OCI_PREFIX: (resolve_oci, oci_bundle_path),
}


def model_schemes() -> tuple[str, ...]:
    """The reference prefixes this installation resolves."""
    return (*PATH_SCHEMES, *STORE_SCHEMES)


def _store_scheme(model: str | os.PathLike[str]) -> str | None:
    """The store scheme ``model`` uses, if any."""
    if isinstance(model, str):
        for prefix in STORE_SCHEMES:
            if model.startswith(prefix):
                return prefix
    if os.path.isdir(model) and is_oci_layout(os.fspath(model)):
        return OCI_PREFIX
    return None


def is_store_reference(model: str | os.PathLike[str]) -> bool:
    """Whether ``model`` names a model in a store (``ollama:``, ``oci:``, a layout dir)."""
    return _store_scheme(model) is not None


def refuse_store_reference(model: str | os.PathLike[str], what: str) -> None:
    """Raise :class:`~mgattest.errors.InputError` when ``model`` is a store reference:
    ``what`` (a loader) reads model files, and a store holds blobs, not files."""
    if is_store_reference(model):
        raise InputError(f"{what} loads model files; {os.fspath(model)} is a model in an "
                         "Ollama store or OCI layout: verify it with `mgattest verify` and "
                         "load it with its own runtime (docs/layouts/)",
                         what="model", where=os.fspath(model))


def resolve_stored_model(model: str | os.PathLike[str]) -> StoredModel | None:
    """The verified stored model ``model`` names, or None when it is not a store reference.

    Raises :class:`~mgattest.attest.errors.LayoutError` when the reference names nothing
    (or more than one manifest), and the store's verification errors when a document or
    blob does not check out (see :mod:`mgattest.attest._blobstore`).
    """
    scheme = _store_scheme(model)
    return None if scheme is None else STORE_SCHEMES[scheme][0](os.fspath(model))


def resolve_model_path(model: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """``model`` itself when it is a path, else the path its path reference resolves to.

    Raises :class:`~mgattest.attest.errors.ModelReferenceError` when a reference is
    malformed or cannot be resolved.
    """
    if isinstance(model, str):
        for prefix, resolve in PATH_SCHEMES.items():
            if model.startswith(prefix):
                return resolve(model)
    return model


def default_bundle_path(model: str | os.PathLike[str]) -> Path:
    """Where a model's bundle goes by default: ``<model>.sigstore.json`` beside a file or
    directory; for a Hugging Face snapshot ``./ORG--NAME@<rev12>.sigstore.json``; for a
    store reference, the place its scheme chooses (never inside the store or cache: see
    :func:`~mgattest.attest._ollama.ollama_bundle_path`,
    :func:`~mgattest.attest._oci.oci_bundle_path` and docs/layouts/)."""
    scheme = _store_scheme(model)
    if scheme is not None:
        return STORE_SCHEMES[scheme][1](os.fspath(model))
    return path_bundle_path(resolve_model_path(model))
