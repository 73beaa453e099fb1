"""CPython's own unpicklers as an oracle for "which globals would this pickle import?".

Both the C unpickler (``pickle.Unpickler``) and the Python one (``pickle._Unpickler``) run
the bytes, with a ``find_class`` that records the pair and returns an inert stand-in
class: nothing real is ever imported or called. The stand-ins accept every call,
``__setstate__``, item and append, so the stream goes on as far as CPython would take
it with real objects.
"""

from __future__ import annotations

import io
import pickle
import re


class _StandIn:
    """Accepts anything an unpickler does to an imported object; does nothing."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _StandIn()

    def __setstate__(self, state=None):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass

    def add(self, item):
        pass


def _recording(base):
    class Recording(base):
        def __init__(self, file, seen):
            super().__init__(file)
            self.seen = seen

        def find_class(self, module, name):
            self.seen.append((module, name))
            return type("StandIn", (_StandIn,), {})

        def persistent_load(self, pid):
            return _StandIn()
    return Recording


_C = _recording(pickle.Unpickler)
_PY = _recording(pickle._Unpickler)


def _c_memo_is_bounded(data: bytes) -> bool:
    """The C unpickler sizes its memo array by the largest key: skip keys that would
    make it allocate gigabytes (the scanner reports those; see the resource tests)."""
    for at in range(len(data)):
        if data[at] == 0x72 and int.from_bytes(data[at + 1:at + 5], "little") > 1 << 16:
            return False
    return not re.search(rb"p[\s+]*0*[1-9][0-9_]{5,}", data)


def imports(data: bytes, *, implementation: str) -> list[tuple[str, str]]:
    """Every (module, name) the given unpickler asks ``find_class`` for, reading
    concatenated streams like ``pickle.load`` in a loop, up to the first error."""
    unpickler = _C if implementation == "c" else _PY
    if implementation == "c" and not _c_memo_is_bounded(data):
        return []
    seen: list[tuple[str, str]] = []
    buf = io.BytesIO(data)
    while buf.tell() < len(data):
        try:
            unpickler(buf, seen).load()
        except Exception:  # noqa: BLE001 - any error ends the stream, as for pickle.load
            break
    return seen
