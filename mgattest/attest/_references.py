"""Model references: where a model lives when it is named rather than given as a path.

One table maps a scheme prefix to the resolver that turns the rest of the text into the
directory (or file) to walk; every entry point (``mgattest sign|verify|inspect``,
``attest.sign_model``, ``policy.ModelVerifier``, ``mgattest.load``) goes through
:func:`resolve_model_reference`. Text without a known prefix is a path, unchanged
(``./hf:x`` is always a path). Only ``str`` can be a reference: a ``Path`` is a path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mgattest.attest._hfcache import HF_SCHEME, resolve_hf_reference
from mgattest.attest._walk import default_bundle_path

__all__ = ["ResolvedModel", "model_schemes", "resolve_model_path", "resolve_model_reference"]

#: scheme prefix → resolver (reference text → local path). One line per scheme.
_RESOLVERS: dict[str, Callable[[str], Path]] = {
    HF_SCHEME: resolve_hf_reference,
}


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference resolved to the local path that holds its bytes."""

    path: Path  # what to walk, hash and load
    reference: str  # the text the caller gave ("hf:org/name@main", or the path)
    scheme: str | None  # the matched prefix ("hf:"), None for a plain path

    @property
    def default_bundle(self) -> Path:
        """Where its bundle goes by default (``attest.default_bundle_path``)."""
        return default_bundle_path(self.path)


def model_schemes() -> tuple[str, ...]:
    """The reference prefixes this installation resolves."""
    return tuple(_RESOLVERS)


def resolve_model_reference(model: str | os.PathLike[str]) -> ResolvedModel:
    """Resolve ``model``: a known ``scheme:...`` reference, or a path left as it is.

    Raises :class:`~mgattest.attest.errors.ModelReferenceError` when a reference is
    malformed or cannot be resolved (nothing is fetched: resolution is offline).
    """
    if isinstance(model, str):
        for prefix, resolve in _RESOLVERS.items():
            if model.startswith(prefix):
                return ResolvedModel(resolve(model), model, prefix)
    return ResolvedModel(Path(model), os.fspath(model), None)


def resolve_model_path(model: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """``model`` itself when it is a path, else the path its reference resolves to."""
    if isinstance(model, str) and model.startswith(model_schemes()):
        return str(resolve_model_reference(model).path)
    return model
