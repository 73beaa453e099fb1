"""What the restricted unpickler checks around ``pickle``'s own loop.

``find_class`` alone cannot stop a pickle that only uses allow-listed globals from
mutating them (``BUILD`` with a slot state on a class calls ``setattr(cls, ...)``) or
from asking an allow-listed constructor for gigabytes (``bytearray(2**30)``). So:

* :func:`admit` walks the pickle with the scanner first (same allow-list) and refuses
  anything it flags: imports, mutation of imported objects, allocations far larger than
  the file, malformed streams. Nothing has run at that point. A content scan that
  already made exactly this walk over the same bytes hands its outcome over as an
  :class:`Admission`, so verify-then-load walks once (see :func:`admit`).
* :class:`GlobalsGuard` snapshots every object ``find_class`` hands out and, after the
  load, undoes and refuses any change to one of them: a second, independent line for
  the process-wide poisoning the walk is meant to catch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from mgattest.inspect._allowlist import JOBLIB_GLOBALS, SAFE_GLOBALS, Pair
from mgattest.inspect.errors import RestrictedLoadError, UnsafeContentError
from mgattest.inspect._limits import DEFAULT_LIMITS, Buffer, Data, Limits
from mgattest.inspect._pickle_scan import ScanContext, StreamResult, scan_pickle_blob
from mgattest.inspect._report import INFO, MALFORMED, Finding

# Only plain pickle.load-vs-joblib disagreements: irrelevant when joblib's reader loads.
_JOBLIB_IGNORED = frozenset({"loader-mismatch"})

_T = TypeVar("_T")


@dataclass(frozen=True)
class Admission:
    """The outcome of one admission walk: which bytes, under which allow-list, limits
    and walk parameters, and what the walk found.

    :func:`admit` accepts it in place of walking again only when every one of those is
    the same (the bytes by SHA-256), so it cannot stand for other bytes or looser rules.
    """

    sha256: bytes
    size: int
    extra_allowed: frozenset[Pair]
    limits: Limits
    joblib: bool
    max_streams: int | None
    findings: tuple[Finding, ...]
    persistent_ids: int

    def covers(self, data: Data, *, extra_allowed: frozenset[Pair], joblib: bool,
               max_streams: int | None, limits: Limits) -> bool:
        """Is this the walk :func:`admit` would make over *data* with these settings?"""
        return (self.extra_allowed == extra_allowed and self.joblib == joblib
                and self.max_streams == max_streams and self.limits == limits
                and self.size == len(data) and hashlib.sha256(data).digest() == self.sha256)


def walk_for_admission(data: Buffer, ctx: ScanContext, *, joblib: bool = False,
                       max_streams: int | None = 1) -> tuple[list[StreamResult], Admission | None]:
    """Run the admission walk over *data* into *ctx*; return the streams and an
    :class:`Admission` token for it (None when the walk is not reusable).

    The scanner walks a top-level pickle with ``joblib=True``. That walk is the one
    :func:`admit` makes for a plain pickle (``joblib=False``) when it neither skipped a
    joblib array payload nor accepted an import only joblib's allow-list permits; only
    then is a token issued, saying ``joblib=False``. *ctx* must be fresh (nothing
    scanned into it yet), as admit's own context is.
    """
    pristine = ctx.pristine()
    results = scan_pickle_blob(data, ctx, joblib=joblib, max_streams=max_streams)
    plain_allowed = SAFE_GLOBALS | ctx.extra_allowed
    joblib_only = any((i.module, i.name) in JOBLIB_GLOBALS
                      and (i.module, i.name) not in plain_allowed for i in ctx.imports)
    if not pristine or ctx.joblib_arrays or joblib_only:
        return results, None
    return results, Admission(hashlib.sha256(data).digest(), len(data), ctx.extra_allowed,
                              ctx.limits, False, max_streams, tuple(ctx.findings),
                              ctx.persistent_ids)


def admit(data: Buffer, *, where: str, extra_allowed: frozenset[Pair], joblib: bool = False,
          max_streams: int | None = 1, limits: Limits = DEFAULT_LIMITS,
          admission: Admission | None = None) -> None:
    """Refuse, before unpickling, a pickle the scanner does not judge safe.

    Raises :class:`UnsafeContentError` for what would reach outside the allow-list,
    mutate an imported object or allocate far beyond the file's size, and
    :class:`RestrictedLoadError` for a stream every unpickler rejects anyway.

    *admission*: the outcome of the same walk made earlier (by the content scan of
    ``mgattest.load``); it is used only if it covers exactly these bytes and settings,
    otherwise the walk runs here.
    """
    if admission is not None and admission.covers(data, extra_allowed=extra_allowed,
                                                  joblib=joblib, max_streams=max_streams,
                                                  limits=limits):
        findings, persistent_ids = list(admission.findings), admission.persistent_ids
    else:
        ctx = ScanContext(limits=limits, extra_allowed=extra_allowed)
        scan_pickle_blob(data, ctx, joblib=joblib, max_streams=max_streams)
        findings, persistent_ids = ctx.findings, ctx.persistent_ids
    _judge(findings, persistent_ids, where=where, joblib=joblib)


def _judge(findings: list[Finding], persistent_ids: int, *, where: str, joblib: bool) -> None:
    """Raise for the first finding that refuses the load (imports first)."""
    refused = [f for f in findings if f.severity != INFO
               and not (joblib and f.kind in _JOBLIB_IGNORED)]
    for finding in refused:
        if finding.kind == "import":
            raise UnsafeContentError(
                f"refused to load global {finding.module}.{finding.name}: not in the "
                f"allow-list (byte {finding.offset})", what="restricted-unpickle",
                where=where, module=finding.module, name=finding.name)
    if persistent_ids:
        raise UnsafeContentError("refused a pickle persistent id (only torch.load may "
                                 "resolve them)", what="restricted-unpickle", where=where)
    for finding in refused:
        if finding.severity != MALFORMED or finding.kind == "scan-limit":
            raise UnsafeContentError(
                f"refused {where}: {finding.detail} (byte {finding.offset}, rule "
                f"{finding.kind})", what="restricted-unpickle", where=where,
                rule=finding.kind, offset=finding.offset)
    if refused:
        first = refused[0]
        raise RestrictedLoadError(f"cannot deserialise {where}: {first.detail} (byte "
                                  f"{first.offset})", what="restricted-unpickle", where=where)


# Attributes outside ``__dict__`` whose assignment changes a class or function for
# everyone: the MRO, the code and the default arguments.
_SPECIAL = ("__bases__", "__name__", "__qualname__", "__code__", "__defaults__",
            "__kwdefaults__")
_ABSENT = object()


def _snapshot(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    own = getattr(obj, "__dict__", None)
    attrs = dict(cast("Mapping[str, Any]", own)) \
        if isinstance(own, dict) or type(own).__name__ == "mappingproxy" else {}
    return attrs, {name: getattr(obj, name, _ABSENT) for name in _SPECIAL}


def _same(old: Any, new: Any) -> bool:
    # strings are compared by value: some objects build __name__ afresh on each access
    return old is new or (type(old) is str and type(new) is str and old == new)


def _differs(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys()
                  if not _same(before.get(k, _ABSENT), after.get(k, _ABSENT)))


class GlobalsGuard:
    """Snapshots the objects ``find_class`` returns; :meth:`verify` refuses any change."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._watched: dict[int, tuple[Any, tuple[dict[str, Any], dict[str, Any]]]] = {}

    def watch(self, obj: _T) -> _T:
        """Remember ``obj``'s attributes as they are now; return ``obj``."""
        if id(obj) not in self._watched:
            self._watched[id(obj)] = (obj, _snapshot(obj))
        return obj

    def verify(self) -> None:
        """Undo and refuse any change made to a watched object during the load."""
        for obj, (attrs, special) in self._watched.values():
            now_attrs, now_special = _snapshot(obj)
            changed = _differs(attrs, now_attrs) + _differs(special, now_special)
            if changed:
                _restore(obj, attrs, special)
                raise UnsafeContentError(
                    f"refused {self._where}: the pickle changed {', '.join(changed)} of "
                    f"the imported object {_qualname(obj)} (undone)",
                    what="restricted-unpickle", where=self._where, rule="global-mutation")


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"


def _restore(obj: Any, attrs: dict[str, Any], special: dict[str, Any]) -> None:
    """Put ``obj`` back as it was (best effort; the load is refused either way)."""
    for name, value in special.items():
        if value is not _ABSENT and getattr(obj, name, _ABSENT) is not value:
            try:
                setattr(obj, name, value)
            except (AttributeError, TypeError):
                pass
    now = _snapshot(obj)[0]
    for name in now.keys() - attrs.keys():
        try:
            delattr(obj, name)
        except (AttributeError, TypeError):
            pass
    for name, value in attrs.items():
        if now.get(name, _ABSENT) is not value:
            try:
                setattr(obj, name, value)
            except (AttributeError, TypeError):
                pass
