"""Models named where they live: one table from a reference scheme to its resolver.

``sign``, ``verify``, ``inspect`` and the library entry points take, in place of a
path, ``ollama:NAME[:TAG]`` (the Ollama store) or ``oci:PATH[:REF]`` (an OCI image
layout); a directory holding an ``oci-layout`` file is an OCI layout too. Each entry
point makes one call, :func:`resolve_model_reference`, which returns None for a plain
path and otherwise a verified :class:`~mgattest.attest._blobstore.StoredModel`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from mgattest.attest._blobstore import StoredModel
from mgattest.attest._oci import OCI_PREFIX, is_oci_layout, oci_bundle_path, resolve_oci
from mgattest.attest._ollama import OLLAMA_PREFIX, ollama_bundle_path, resolve_ollama
from mgattest.attest._walk import default_bundle_path as path_bundle_path

__all__ = ["REFERENCE_SCHEMES", "StoredModel", "default_bundle_path",
           "resolve_model_reference"]

Resolver = Callable[[str], StoredModel]

# scheme prefix → (resolver, default bundle path). A layout directory given as a path
# resolves as "oci:".
REFERENCE_SCHEMES: dict[str, tuple[Resolver, Callable[[str], Path]]] = {
    OLLAMA_PREFIX: (resolve_ollama, ollama_bundle_path),
    OCI_PREFIX: (resolve_oci, oci_bundle_path),
}


def _scheme(text: str) -> str | None:
    """The scheme ``text`` uses, if any (an existing file of that name stays a path)."""
    for prefix in REFERENCE_SCHEMES:
        if text.startswith(prefix) and not os.path.lexists(text):
            return prefix
    if os.path.isdir(text) and is_oci_layout(text):
        return OCI_PREFIX
    return None


def resolve_model_reference(model: str | os.PathLike[str]) -> StoredModel | None:
    """The verified stored model ``model`` names, or None when it is a plain path.

    Raises :class:`~mgattest.attest.errors.LayoutError` when the reference names nothing
    (or more than one manifest), and the store's verification errors when a document or
    blob does not check out (see :mod:`mgattest.attest._blobstore`).
    """
    text = os.fspath(model)
    scheme = _scheme(text)
    return None if scheme is None else REFERENCE_SCHEMES[scheme][0](text)


def default_bundle_path(model: str | os.PathLike[str]) -> Path:
    """Where a model's bundle goes by default: ``<model>.sigstore.json`` beside a file or
    directory; for a store reference, the place its scheme chooses (never inside the
    store: see :func:`~mgattest.attest._ollama.ollama_bundle_path` and
    :func:`~mgattest.attest._oci.oci_bundle_path`)."""
    text = os.fspath(model)
    scheme = _scheme(text)
    return path_bundle_path(model) if scheme is None else REFERENCE_SCHEMES[scheme][1](text)
