"""``torch.load(weights_only=True)``, reading only a verified copy of the file.

    from mgattest.integrations.torch import load
    state = load("model.pt", policy="policy.yaml", bundles=["model.pt.sigstore.json"])

The file is verified into a private, read-only copy (:func:`mgattest.loading.materialise`)
and ``torch.load`` reads that copy with ``weights_only=True`` (torch's own restricted
unpickler); the copy is removed once it returns. A torch checkpoint is a pickle: the
policy must clear it (``content.pickle: scan`` or ``restricted``), or it is never read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from mgattest._optional import require
from mgattest.integrations._options import check_loader_kwargs
from mgattest.integrations._single import materialise_file
from mgattest.policy import Policy, TrustOptions

__all__ = ["load"]


def load(model: str | os.PathLike[str], *, policy: Policy | str | os.PathLike[str],
         bundles: Iterable[str | os.PathLike[str]], trust: TrustOptions | None = None,
         workdir: str | os.PathLike[str] | None = None,
         **kwargs: Any) -> Any:
    """Verify the torch checkpoint *model* against *policy* and *bundles*, then return
    ``torch.load(copy, weights_only=True, **kwargs)`` (e.g. ``map_location``, ``mmap``).

    Raises :class:`~mgattest.policy.errors.PolicyDenied` when the policy denies or does
    not clear the file, :class:`~mgattest.integrations.errors.UnsafeLoaderOption` for
    ``weights_only=`` or a keyword naming another file."""
    torch = require("torch", "mgattest.integrations.torch")
    check_loader_kwargs(kwargs)
    with materialise_file(model, policy=policy, bundles=bundles, trust=trust,
                          workdir=workdir, loader="torch.load") as copy:
        return torch.load(copy.path, weights_only=True, **kwargs)
