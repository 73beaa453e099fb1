"""Fuzzing pickles: generators of tricky pickles, and CPython's own unpicklers as an
oracle for "which globals would this pickle import?".

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
import struct
import warnings

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.helpers.fuzz_budget import PICKLE, fuzz_examples

# Fast by default; MGATTEST_FUZZ=long explores much further (minutes).
FUZZ = settings(max_examples=fuzz_examples(120, PICKLE), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


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
    with warnings.catch_warnings():  # STRING escapes the unpicklers warn about
        warnings.simplefilter("ignore", DeprecationWarning)
        while buf.tell() < len(data):
            try:
                unpickler(buf, seen).load()
            except Exception:  # noqa: BLE001 - any error ends the stream, like pickle.load
                break
    return seen


# --- generators ---------------------------------------------------------------------

MODULES = ("os", "evil_mod", "subprocess", "__builtin__", "pkg.sub")
_NAMES = ("system", "payload", "Popen", "eval", "f")


def _short(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


# Atoms that push one value which POP removes: CPython loads each of them.
_VALUE_ATOMS = [
    b"I0x10\n", b"I010\n", b"I 1\n", b"I5\x00zz\n", b"I1_0\n", b"I-0\n", b"I+7\n",
    b"I" + b" " * 6000 + b"5\n", b"I00\n", b"I01\n",
    b"L0x10L\n", b"L5\x00\n", b"L7\n", b"L" + b"1" * 4000 + b"L\n",
    b"F inf \n", b"F1\x00x\n", b"F1_0\n", b"F-nan\n", b"F1e5\n",
    b"S'a'b'\n", b"S\"x\"\n", b"S'" + b"A" * 20000 + b"'\n", b"S'\\x41\\n'\n",
    b"V" + b"B" * 20000 + b"\n", b"Vab\\u0041\n",
    b"X" + struct.pack("<I", 9000) + b"C" * 9000,
    b"\x8a\x02\xff\x7f", b"J\x01\x00\x00\x80", b"N", b"\x88", b")", b"]", b"}",
    b"(I1\nI2\nt", b"(l", b"(d", b"\x8f", b"(\x91",
]


@st.composite
def _import_atom(draw) -> bytes:
    """One way or another, a GLOBAL-like import that leaves one value on the stack."""
    module, name = draw(st.sampled_from(MODULES)), draw(st.sampled_from(_NAMES))
    style = draw(st.sampled_from(["global", "stack", "memo", "textmemo", "inst", "long"]))
    if style == "global":
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    if style == "stack":
        return _short(module) + _short(name) + b"\x93"
    if style == "memo":  # the strings come back from the memo, maybe after other work
        return (_short(module) + b"q\xf0" + _short(name) + b"q\xf1" + b"0" * 2
                + b"N0h\xf0h\xf1\x93")
    if style == "textmemo":
        return (_short(module) + b"p 000300\n" + _short(name) + b"p301\n0" + b"0"
                + b"g300\ng+301\n\x93")
    if style == "inst":
        return b"(i" + module.encode() + b"\n" + name.encode() + b"\n"
    return b"c" + module.encode() + b"\n" + name.encode() + b"_" * 5000 + b"\n"


@st.composite
def pickles(draw) -> bytes:
    """A pickle built from tricky atoms and imports, then maybe truncated or mutated."""
    proto = draw(st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05"]))
    parts = draw(st.lists(st.one_of(st.sampled_from(_VALUE_ATOMS).map(lambda a: a + b"0"),
                                    _import_atom().map(lambda a: a + b"0")),
                          min_size=1, max_size=8))
    body = b"".join(parts) + b"N."
    if draw(st.booleans()) and proto in (b"\x80\x04", b"\x80\x05"):
        body = b"\x95" + struct.pack("<Q", len(body)) + body
    blob = proto + body
    mutation = draw(st.sampled_from(["none", "truncate", "flip", "insert", "append"]))
    if mutation == "truncate":
        blob = blob[:draw(st.integers(1, len(blob)))]
    elif mutation in ("flip", "insert"):
        at = draw(st.integers(0, len(blob) - 1))
        byte = bytes([draw(st.integers(0, 255))])
        blob = blob[:at] + byte + blob[at + (mutation == "flip"):]
    elif mutation == "append":
        blob += draw(st.binary(max_size=40))
    return blob


# Bytes from the opcodes and argument characters, so random input gets past the first
# few opcodes more often than uniform bytes do.
OPCODE_SOUP = st.lists(st.sampled_from(
    [bytes([b]) for b in b"cI LFSVpgqhr0(tld}]a\x93\x94\x95\x80\x8c.N'\"\n\x00x5_"]
    + [b"os\n", b"system\n", b"\x8c\x02os", b"\x8c\x06system"]), max_size=60).map(b"".join)
