"""What the restricted unpickler checks around ``pickle``'s own loop.

``find_class`` alone cannot stop a pickle that only uses allow-listed globals from
mutating them (``BUILD`` with a slot state on a class calls ``setattr(cls, ...)``) or
from asking an allow-listed constructor for gigabytes (``bytearray(2**30)``). So:

* :func:`admit` walks the pickle with the scanner first (same allow-list) and refuses
  anything it flags: imports, mutation of imported objects, allocations far larger than
  the file, malformed streams. Nothing has run at that point.
* :class:`GlobalsGuard` snapshots every object ``find_class`` hands out and, after the
  load, undoes and refuses any change to one of them: a second, independent line for
  the process-wide poisoning the walk is meant to catch.
"""

from __future__ import annotations

from typing import Any

from mgattest.inspect.errors import RestrictedLoadError, UnsafeContentError
from mgattest.inspect.limits import DEFAULT_LIMITS, Limits
from mgattest.inspect.pickle_scan import ScanContext, scan_pickle_blob
from mgattest.inspect.report import INFO, MALFORMED

# Only plain pickle.load-vs-joblib disagreements: irrelevant when joblib's reader loads.
_JOBLIB_IGNORED = frozenset({"loader-mismatch"})


def admit(data, *, where: str, extra_allowed: frozenset, joblib: bool = False,
          max_streams: int | None = 1, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse, before unpickling, a pickle the scanner does not judge safe.

    Raises :class:`UnsafeContentError` for what would reach outside the allow-list,
    mutate an imported object or allocate far beyond the file's size, and
    :class:`RestrictedLoadError` for a stream every unpickler rejects anyway.
    """
    ctx = ScanContext(limits=limits, extra_allowed=extra_allowed)
    scan_pickle_blob(data, ctx, joblib=joblib, max_streams=max_streams)
    refused = [f for f in ctx.findings if f.severity != INFO
               and not (joblib and f.kind in _JOBLIB_IGNORED)]
    for finding in refused:
        if finding.kind == "import":
            raise UnsafeContentError(
                f"refused to load global {finding.module}.{finding.name}: not in the "
                f"allow-list (byte {finding.offset})", what="restricted-unpickle",
                where=where, module=finding.module, name=finding.name)
    if ctx.persistent_ids:
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


def _snapshot(obj: Any) -> tuple[dict, dict]:
    own = getattr(obj, "__dict__", None)
    attrs = dict(own) if isinstance(own, dict) or type(own).__name__ == "mappingproxy" \
        else {}
    return attrs, {name: getattr(obj, name, _ABSENT) for name in _SPECIAL}


def _same(old: Any, new: Any) -> bool:
    # strings are compared by value: some objects build __name__ afresh on each access
    return old is new or (type(old) is str and type(new) is str and old == new)


def _differs(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before.keys() | after.keys()
                  if not _same(before.get(k, _ABSENT), after.get(k, _ABSENT)))


class GlobalsGuard:
    """Snapshots the objects ``find_class`` returns; :meth:`verify` refuses any change."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._watched: dict[int, tuple[Any, tuple[dict, dict]]] = {}

    def watch(self, obj: Any) -> Any:
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


def _restore(obj: Any, attrs: dict, special: dict) -> None:
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
