"""Optional dependencies: import one, or say which extra installs it.

numpy and safetensors come with every install (``mgattest.load()`` on a safetensors
file needs nothing more); torch, onnx and the joblib/scikit-learn stack are extras.
A missing one is an :class:`~mgattest.errors.InputError` naming the ``pip install``
line, never a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mgattest.errors import InputError

# Top-level module → the extra of mgattest that installs it.
EXTRA_OF = {"torch": "torch", "onnx": "ml", "joblib": "ml", "sklearn": "ml",
            "blake3": "blake3", "transformers": "hf", "tokenizers": "hf", "tink": "encrypt"}


class MissingDependencyError(InputError):
    """An optional package that this operation needs is not installed."""


def install_hint(module: str) -> str:
    """``pip install 'mgattest[EXTRA]'`` for a top-level module name (or plain pip)."""
    top = module.split(".")[0]
    extra = EXTRA_OF.get(top)
    return f"pip install 'mgattest[{extra}]'" if extra else f"pip install {top}"


def missing(module: str, purpose: str) -> MissingDependencyError:
    """The error for ``purpose`` needing ``module``, which is not installed."""
    top = module.split(".")[0]
    return MissingDependencyError(f"{purpose} needs the optional package {top!r}, which is "
                                  f"not installed: {install_hint(top)}",
                                  what="optional dependency", where=top)


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` for ``purpose``.

    Only the absence of ``module`` itself is reported so; an ImportError from inside
    an installed package (a broken install) propagates unchanged.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != module.split(".")[0]:
            raise
        raise missing(module, purpose) from None
