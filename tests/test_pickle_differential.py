"""The scanner against CPython: "CPython would import X" implies "the scanner reports X".

The oracle is CPython's own unpicklers (C and Python) with a ``find_class`` that records
and returns inert stand-ins (tests/pickle_oracle.py). Pickles are generated from atoms
that CPython accepts but a naive parser may not (base-0 ``INT``, NUL-terminated numbers,
long lines, quoted strings with inner quotes, memo'd ``STACK_GLOBAL`` strings, frames),
then truncated and mutated. Every file is scanned both as ``x.pkl`` and as a tentative
pickle (``x.bin``), where a parse failure once meant "not a pickle, safe".

``MGATTEST_FUZZ=long`` runs many more examples.
"""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pickle_oracle
from mgattest.inspect import SAFE, scan_bytes
from mgattest.inspect.allowlist import normalise

_LONG = os.environ.get("MGATTEST_FUZZ") == "long"
_EXAMPLES = 3000 if _LONG else 120
_FUZZ = settings(max_examples=_EXAMPLES, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_MODULES = ("os", "evil_mod", "subprocess", "__builtin__", "pkg.sub")
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
    module, name = draw(st.sampled_from(_MODULES)), draw(st.sampled_from(_NAMES))
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
def _pickles(draw) -> bytes:
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


def _reported(report) -> set[tuple[str, str]]:
    return {(i.module, i.name) for i in report.imports}


def _same_name(imported: str, reported: str) -> bool:
    # the scanner cuts very long names for its report and marks the cut with "…"
    return imported == reported or (reported.endswith("\u2026")
                                    and imported.startswith(reported[:-1]))


def _matches(pair: tuple[str, str], reported: set[tuple[str, str]]) -> bool:
    """The scanner reports ``pair`` literally or as the unpickler's Python 3 name."""
    for module, attr in {pair, normalise(*pair, 0)}:
        if any(_same_name(module, m) and _same_name(attr, n) for m, n in reported):
            return True
    return False


def _assert_scanner_sees_what_cpython_imports(blob: bytes) -> None:
    expected = set(pickle_oracle.imports(blob, implementation="c"))
    expected |= set(pickle_oracle.imports(blob, implementation="python"))
    for name in ("x.pkl", "x.bin", "noext"):
        report = scan_bytes(name, blob)
        reported = _reported(report)
        for module, attr in expected:
            assert _matches((module, attr), reported), (name, module, attr[:40], blob[:80])
        if expected:
            assert report.verdict != SAFE, (name, blob[:80])


@_FUZZ
@given(_pickles())
def test_cpython_import_implies_scanner_report(blob):
    _assert_scanner_sees_what_cpython_imports(blob)


# Bytes from the opcodes and argument characters, so random input gets past the first
# few opcodes more often than uniform bytes do.
_OPCODE_SOUP = st.lists(st.sampled_from(
    [bytes([b]) for b in b"cI LFSVpgqhr0(tld}]a\x93\x94\x95\x80\x8c.N'\"\n\x00x5_"]
    + [b"os\n", b"system\n", b"\x8c\x02os", b"\x8c\x06system"]), max_size=60).map(b"".join)


@_FUZZ
@given(st.binary(max_size=300) | _OPCODE_SOUP)
def test_random_bytes_cpython_import_implies_scanner_report(blob):
    _assert_scanner_sees_what_cpython_imports(blob)


# --- the reported bypasses, pinned ------------------------------------------------------

_PAYLOAD = b"cos\nsystem\n(S'id'\ntR."


@pytest.mark.parametrize("prefix", [
    b"I0x10\n0",  # base-0 INT: CPython parses it, the walker once refused it
    b"L0x10\n0",
    b"I5\x00junk\n0",  # the C unpickler stops the number at NUL
    b"S'" + b"A" * 20000 + b"'\n0",  # a text line longer than the walker's old limit
    b"V" + b"A" * 20000 + b"\n0",
    b"I" + b" " * 20000 + b"7\n0",
    b"F1_0\n0",  # underscores in FLOAT (Python unpickler)
    b"Np 0005\ng5\n00",  # text memo keys with spaces and zeros
])
@pytest.mark.parametrize("name", ["model.bin", "model", "weights.unknownext"])
def test_tentative_pickle_with_cpython_only_opcode_is_not_safe(prefix, name):
    blob = prefix + _PAYLOAD
    assert ("os", "system") in pickle_oracle.imports(blob, implementation="c") + \
        pickle_oracle.imports(blob, implementation="python")
    report = scan_bytes(name, blob)
    assert report.verdict == "dangerous", [f.detail for f in report.findings]
    assert ("os", "system") in _reported(report)


def test_tentative_file_stopped_by_a_scanner_limit_is_not_safe():
    from mgattest.inspect import Limits
    blob = b"N0" * 70_000 + _PAYLOAD
    report = scan_bytes("model.bin", blob, limits=Limits(max_opcodes=60_000))
    assert report.verdict != SAFE
    assert any(f.kind == "scan-limit" for f in report.findings)


@pytest.mark.parametrize("blob", [
    bytes([0x4B, 0x3F, 0x80, 0x3F, 0x00, 0x00, 0x80, 0xBF]) * 64,  # float32 weights
    b"MIT License\n\nCopyright (c) 2024\n",  # LICENSE without extension
    b"(\x00\x01\x02",
])
def test_data_that_cpython_rejects_before_any_import_stays_unrecognised(blob):
    assert pickle_oracle.imports(blob, implementation="c") == []
    report = scan_bytes("weights.bin", blob)
    assert report.format == "unknown" and report.verdict == SAFE
