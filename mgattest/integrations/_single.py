"""The one-file loaders' shared step: a verified private copy of one model file."""

from __future__ import annotations

import os
from collections.abc import Iterable

from mgattest.errors import InputError
from mgattest.loading import MaterialisedModel, materialise
from mgattest.policy import Policy, TrustOptions


def materialise_file(model: str | os.PathLike[str], *, policy: Policy | str | os.PathLike[str],
                     bundles: Iterable[str | os.PathLike[str]], trust: TrustOptions | None,
                     workdir: str | os.PathLike[str] | None, loader: str) -> MaterialisedModel:
    """:func:`mgattest.loading.materialise` for a loader that reads one file: *model*
    must be a file (the copy's ``path`` is then the verified file)."""
    copy = materialise(model, policy=policy, bundles=bundles, trust=trust, workdir=workdir)
    if not copy.single_file:
        copy.close()
        raise InputError(f"{loader} loads one file; {os.fspath(model)} is a directory",
                         what="model path", where=os.fspath(model))
    return copy
