"""``sign --all``: sign every model of a tree with the one signing pipeline.

Each model found by :func:`~mgattest.attest._discover.discover_models` is hashed
(``hash_for_signing``; several models at once, each on attest's hashing threads) and
signed (``sign_digests``, one model at a time: a signer and its log see one request at a
time) into ``<model>.sigstore.json``. A model that already has a bundle is skipped unless
``overwrite``; one model's failure is recorded and the others go on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from mgattest.attest._discover import DiscoveredModel, discover_models
from mgattest.attest._sign import (
    BundleSigner,
    PendingBundleFile,
    SignOptions,
    hash_for_signing,
    sign_digests,
)
from mgattest.attest._walk import default_bundle_path
from mgattest.errors import MgattestError

__all__ = ["TreeSignResult", "sign_tree"]


@dataclass(frozen=True)
class TreeSignResult:
    """What ``sign --all`` did with one model: ``signed`` (``bundle`` written, ``log_index``
    when logged), ``skipped`` (it has a bundle) or ``failed`` (``detail`` says why)."""

    name: str
    outcome: Literal["signed", "skipped", "failed"]
    bundle: str
    detail: str = ""
    log_index: int | None = None


def sign_tree(root: str | os.PathLike[str], signer: BundleSigner,
              options: SignOptions | None = None, *, patterns: Iterable[str] = (),
              ignore: Iterable[str] = (), overwrite: bool = False, workers: int | None = None,
              on_result: Callable[[TreeSignResult], None] | None = None
              ) -> list[TreeSignResult]:
    """Sign every model under ``root`` (see the module docstring); results sorted by name.

    Raises only for the caller's inputs (the root, the patterns); every model's own
    problem is a ``failed`` result. Links and special files the walk refuses are
    ``failed`` too: they cannot be signed honestly.
    """
    chosen = options or SignOptions()
    found = discover_models(root, patterns=patterns, ignore=ignore)
    results = [TreeSignResult(r.name, "failed", "", r.reason) for r in found.refused]
    signing = threading.Lock()

    def one(model: DiscoveredModel) -> TreeSignResult:
        result = _sign_one(model, signer, chosen, overwrite, signing)
        if on_result is not None:
            on_result(result)
        return result

    n = workers or max(1, min(len(found.models), os.cpu_count() or 1))
    if n == 1 or len(found.models) <= 1:
        results.extend(one(m) for m in found.models)
    else:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="mgattest-sign") as ex:
            results.extend(ex.map(one, found.models))
    return sorted(results, key=lambda r: r.name)


def _sign_one(model: DiscoveredModel, signer: BundleSigner, options: SignOptions,
              overwrite: bool, signing: threading.Lock) -> TreeSignResult:
    path = default_bundle_path(model.path)
    if model.bundle is not None and not overwrite:
        return TreeSignResult(model.name, "skipped", str(path),
                              "already has a bundle (--force re-signs it)")
    try:
        pending = PendingBundleFile(path, overwrite=overwrite).check()
        digests = hash_for_signing(model.path, options.digests, exclude=[pending.path])
        with signing:
            result = sign_digests(digests, signer, options, output=pending)
    except MgattestError as exc:
        where = f" [at {exc.where}]" if exc.where else ""
        return TreeSignResult(model.name, "failed", str(path), exc.message + where)
    entries = result.bundle["verificationMaterial"].get("tlogEntries") or []
    index = int(entries[0]["logIndex"]) if entries else None
    return TreeSignResult(model.name, "signed", str(path), "", index)
