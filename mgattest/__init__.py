"""mgattest: verifiable ML model supply chains.

``mgattest.load(path, policy=..., bundles=[...])`` verifies a model against a policy and
deserialises exactly the bytes it verified: it is the function
:func:`mgattest.loading.load`. The other entry points live in the packages, each with a
documented ``__all__`` (docs/api.md): :mod:`mgattest.attest` (sign, verify bundles),
:mod:`mgattest.policy` (policies, the verification pipeline), :mod:`mgattest.inspect`
(content scanning), :mod:`mgattest.tlog` (the transparency log), :mod:`mgattest.ca`
(private keyless infrastructure) and :mod:`mgattest.loading` (verify-then-load,
quarantine, watch). Typed errors: :mod:`mgattest.errors` and each package's ``errors``
module. Modules whose name starts with ``_`` are internal: no compatibility promise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load"]

if TYPE_CHECKING:
    from mgattest.loading import load


def __getattr__(name: str) -> Any:
    """``mgattest.load``: the function, imported on first use and then kept as a plain
    module attribute. Not a top-level import: every ``import mgattest.<anything>`` (and
    ``mgattest --help``) runs this file, and ``mgattest.loading`` brings in the policy
    pipeline."""
    if name == "load":
        from mgattest.loading import load as function  # noqa: PLC0415 - see the docstring: `import mgattest.tlog` must not load the policy pipeline

        globals()["load"] = function
        return function
    raise AttributeError(f"module 'mgattest' has no attribute {name!r}")
