"""safetensors' ``load_file``, reading only a verified copy of the file.

    from mgattest.integrations.safetensors import load_file
    tensors = load_file("model.safetensors", policy="policy.yaml",
                        bundles=["model.safetensors.sigstore.json"])

The file is verified into a private, read-only copy (:func:`mgattest.loading.materialise`)
and ``safetensors.torch.load_file`` (``framework="pt"``, needs torch) or
``safetensors.numpy.load_file`` (``framework="np"``) reads that copy; the copy is
removed once the tensors are loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Literal

from mgattest._optional import require
from mgattest.errors import InputError
from mgattest.integrations._single import materialise_file
from mgattest.policy import Policy, TrustOptions

__all__ = ["load_file"]


def load_file(model: str | os.PathLike[str], *, policy: Policy | str | os.PathLike[str],
              bundles: Iterable[str | os.PathLike[str]], trust: TrustOptions | None = None,
              framework: Literal["pt", "np"] = "pt", device: str = "cpu",
              workdir: str | os.PathLike[str] | None = None) -> dict[str, object]:
    """Verify the safetensors file *model* against *policy* and *bundles*, then load it
    from the verified copy: name → tensor (torch tensors on *device*, or numpy arrays).

    Raises :class:`~mgattest.policy.errors.PolicyDenied` when the policy denies or does
    not clear the file for loading."""
    if framework not in ("pt", "np"):
        raise InputError(f"framework must be 'pt' or 'np', not {framework!r}",
                         what="framework")
    with materialise_file(model, policy=policy, bundles=bundles, trust=trust,
                          workdir=workdir, loader="safetensors.load_file") as copy:
        if framework == "np":
            numpy_loader = require("safetensors.numpy", "safetensors.load_file")
            return dict(numpy_loader.load_file(copy.path))
        require("torch", "safetensors.load_file(framework='pt')")
        torch_loader = require("safetensors.torch", "safetensors.load_file")
        return dict(torch_loader.load_file(copy.path, device=device))
