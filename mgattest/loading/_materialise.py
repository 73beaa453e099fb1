"""Verify a model into a private, read-only copy that a path-based loader can read.

Libraries such as transformers open files by path. Verifying the model where it lives
and then handing that path to the library would let anyone who can write there swap a
file between the check and the use. :func:`materialise` closes that gap:

1. every file of the model is copied, streaming, from the descriptor the walk opened
   without following symlinks (``attest.open_model_file``) into a fresh directory
   (``mkdtemp``: mode 0700, owned by this process's user); the source must not change
   size or mtime while it is copied;
2. the verification pipeline (:class:`~mgattest.policy.ModelVerifier`, path mode:
   streamed hashing and content scan) runs on **the copy**, so the bytes verified are
   the bytes the loader will read, whatever happens to the original afterwards;
3. files the verdict does not clear for loading are removed from the copy, the rest
   are sealed (files 0400, directories 0500).

A swap of the original before its copy is made is caught by step 2 (digest mismatch);
a swap after it changes nothing. Peak memory is one 1 MiB copy buffer plus what the
streamed verification holds; disk use is one copy of the model (put it on a disk, not a
RAM-backed ``/tmp``, with *workdir*). The copy is removed by :meth:`MaterialisedModel.close`
(or the ``with`` block) and on every failure; it is never left half-written.

Hard links are **not** a safe materialisation: a link shares the inode, so whoever can
write the original file writes the "copy" too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING

from mgattest.errors import InputError, VerificationError
from mgattest.policy import ModelVerifier, TrustOptions, VerifyOptions
from mgattest.policy.errors import PolicyDenied

if TYPE_CHECKING:
    from mgattest.policy import Policy, VerificationOutcome

_CHUNK = 1 << 20
_FILE_MODE = 0o400
_DIR_MODE = 0o500


@dataclass
class MaterialisedModel:
    """A verified, private, read-only copy of a model; remove it with :meth:`close`.

    ``path`` is what to hand to the loader: the copy's directory, or the copied file for a
    single-file model. ``files`` names every file kept (the names of the statement
    subjects) with its ``sha256:<hex>`` digest; ``left_out`` names the files the verdict
    did not clear, with the reason, which are absent from the copy.
    """

    path: str
    root: str
    single_file: bool
    outcome: VerificationOutcome
    files: dict[str, str] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    _workdir: str = ""

    def close(self) -> None:
        """Remove the private copy (idempotent)."""
        if self._workdir:
            remove_private_dir(self._workdir)
            self._workdir = ""

    def __enter__(self) -> MaterialisedModel:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def materialise(model: str | os.PathLike[str], *, policy: Policy | str | os.PathLike[str],
                bundles: Iterable[str | os.PathLike[str]], trust: TrustOptions | None = None,
                workdir: str | os.PathLike[str] | None = None,
                on_copied: Callable[[str], None] | None = None) -> MaterialisedModel:
    """Copy *model* (a path, or an ``hf:`` reference) into a private directory, verify the copy against *policy*, keep only
    the files the verdict clears, seal it read-only; return the :class:`MaterialisedModel`.

    Raises :class:`~mgattest.policy.errors.PolicyDenied` when the policy denies (the
    copy is removed first), :class:`~mgattest.errors.InputError` for unusable input.
    *on_copied(name)* is called after each file is copied (progress; tests use it to
    change the original at a known moment). *workdir* is where the private directory
    is created (default: the system temporary directory).
    """
    from mgattest.attest import (  # noqa: PLC0415 - attest loads on first use
        open_model_file,
        refuse_store_reference,
        resolve_model_path,
        walk_model_detailed,
    )
    from mgattest.loading import _refuse_trust_anchors_in_model  # noqa: PLC0415 - the package imports this module lazily
    from mgattest.policy import Policy, load_policy  # noqa: PLC0415 - keeps `import mgattest.loading` cheap

    refuse_store_reference(model, "materialise")
    model = resolve_model_path(model)  # hf:ORG/NAME[@REV] → its cache snapshot
    if not isinstance(policy, Policy):
        policy = load_policy(policy)
    trust = trust or TrustOptions()
    bundle_list = tuple(os.fspath(b) for b in bundles)
    if not bundle_list:
        raise InputError("materialise needs at least one bundle (bundles=[...])",
                         what="bundles", where=os.fspath(model))
    _refuse_trust_anchors_in_model(model, policy, trust)
    walk = walk_model_detailed(model, exclude=list(bundle_list))
    private = tempfile.mkdtemp(prefix="mgattest-verified-", dir=workdir)
    try:
        root = os.path.join(private, "model")
        os.mkdir(root, 0o700)
        for mf in walk.files:
            _copy_file(partial(open_model_file, walk.root, mf, single_file=walk.single_file),
                       mf.name, root)
            if on_copied is not None:
                on_copied(mf.name)
        target = os.path.join(root, walk.files[0].name) if walk.single_file else root
        outcome = ModelVerifier(policy, trust, VerifyOptions(bundles=bundle_list)).verify(target)
        result = MaterialisedModel(path=target, root=root, single_file=walk.single_file,
                                   outcome=outcome, _workdir=private)
        _keep_cleared(result, [mf.name for mf in walk.files], policy, os.fspath(model))
        _seal(root)
        return result
    except BaseException:
        remove_private_dir(private)
        raise


def _keep_cleared(copy: MaterialisedModel, names: list[str], policy: Policy,
                  shown: str) -> None:
    """Raise :class:`PolicyDenied` unless the verdict allows the copy; delete the files it
    does not clear for loading (recorded in ``copy.left_out``), record the others with
    their digests in ``copy.files``."""
    verdict = copy.outcome.verdict
    if verdict is None:  # a policy always decides; fail closed should that ever change
        raise VerificationError("the policy reached no verdict", what="policy")
    if not verdict.allowed:
        first = verdict.failures[0] if verdict.failures else None
        raise PolicyDenied(f"policy {policy.source} denied {shown}: "
                           + "; ".join(verdict.reasons[:3]), verdict=verdict,
                           where=first.id if first else None)
    for name in names:
        clearance = verdict.clearance.get(name)
        if clearance is not None and clearance.loadable:
            copy.files[name] = _digest_of(copy.outcome, name)
        else:
            copy.left_out[name] = clearance.reason if clearance else "not evaluated"
            os.unlink(os.path.join(copy.root, name))
    if not copy.files:
        raise PolicyDenied(f"policy {policy.source} clears no file of {shown} for loading",
                           verdict=verdict, what="load", where=next(iter(copy.left_out), None))


def _copy_file(open_source: Callable[[], int], name: str, dst_root: str) -> None:
    """Stream model file *name* from the descriptor *open_source()* returns (the walk's
    no-follow open) into a new file under *dst_root*."""
    dst = os.path.join(dst_root, name)
    parent = os.path.dirname(dst)
    if parent != dst_root:
        os.makedirs(parent, mode=0o700, exist_ok=True)
    src_fd = open_source()
    try:
        before = os.fstat(src_fd)
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
        try:
            copied = _copy_fd(src_fd, dst_fd)
        finally:
            os.close(dst_fd)
        after = os.fstat(src_fd)
    finally:
        os.close(src_fd)
    if (copied != before.st_size or after.st_size != before.st_size
            or after.st_mtime_ns != before.st_mtime_ns):
        raise InputError(f"model file {name!r} changed while it was copied",
                         what="model file", where=name)


def _copy_fd(src_fd: int, dst_fd: int) -> int:
    """Copy until end of file; return the number of bytes copied."""
    total = 0
    while chunk := os.read(src_fd, _CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst_fd, view):]
        total += len(chunk)
    return total


def _digest_of(outcome: VerificationOutcome, name: str) -> str:
    """The ``sha256:<hex>`` digest the verdict recorded for *name*."""
    verdict = outcome.verdict
    for artifact in verdict.artifacts if verdict else ():
        digest = artifact.get("digest")
        if artifact.get("name") == name and isinstance(digest, dict) and "sha256" in digest:
            return f"sha256:{digest['sha256']}"
    raise VerificationError(f"the verdict records no SHA-256 digest of {name!r}",
                            what="verdict", where=name)


def _seal(root: str) -> None:
    """Files 0400, directories 0500, deepest first (a sealed directory cannot be
    written, so its content is fixed before it is)."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), _FILE_MODE, follow_symlinks=False)
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), _DIR_MODE, follow_symlinks=False)
    os.chmod(root, _DIR_MODE)


def remove_private_dir(path: str) -> None:
    """Remove a private directory this module made, sealed or not."""
    if not os.path.lexists(path):
        return
    for dirpath, _, _ in os.walk(path):  # os.walk lists a directory before entering it
        os.chmod(dirpath, 0o700)
    shutil.rmtree(path, ignore_errors=True)
