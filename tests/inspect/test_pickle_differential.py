"""The scanner against CPython: "CPython would import X" implies "the scanner reports X".

The oracle is CPython's own unpicklers (C and Python) with a ``find_class`` that records
and returns inert stand-ins (tests/helpers/pickle_fuzzing.py). Pickles are generated from atoms
that CPython accepts but a naive parser may not (base-0 ``INT``, NUL-terminated numbers,
long lines, quoted strings with inner quotes, memo'd ``STACK_GLOBAL`` strings, frames),
then truncated and mutated. Every file is scanned both as ``x.pkl`` and as a tentative
pickle (``x.bin``), where a parse failure once meant "not a pickle, safe".

``MGATTEST_FUZZ=long`` runs many more examples.
"""

from __future__ import annotations


import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import pickle_fuzzing as fuzzing
from mgattest.inspect import SAFE, scan_bytes
from mgattest.inspect._allowlist import normalise

_FUZZ = fuzzing.FUZZ


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
    expected = set(fuzzing.imports(blob, implementation="c"))
    expected |= set(fuzzing.imports(blob, implementation="python"))
    for name in ("x.pkl", "x.bin", "noext"):
        report = scan_bytes(name, blob)
        reported = _reported(report)
        for module, attr in expected:
            assert _matches((module, attr), reported), (name, module, attr[:40], blob[:80])
        if any(_importable(module, attr) for module, attr in expected):
            assert report.verdict != SAFE, (name, blob[:80])


def _importable(module: str, attr: str) -> bool:
    """Whether ``find_class(module, attr)`` can reach code: dotted identifiers only.

    Text such as MANIFEST.in's ``include LICENSE`` parses as INST of module
    ``nclude LICENSE``: the unpickler looks it up, but no importable module has that
    name (only a file planted on sys.path could, and then the attacker already runs
    code), so the scanner lists it without calling the file unsafe (issue #10 item 5).
    """
    return all(part.isidentifier() for text in (module, attr) for part in text.split("."))


@_FUZZ
@given(fuzzing.pickles())
def test_cpython_import_implies_scanner_report(blob):
    _assert_scanner_sees_what_cpython_imports(blob)


@_FUZZ
@given(st.binary(max_size=300) | fuzzing.OPCODE_SOUP)
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
], ids=["INT-base-0", "LONG-base-0", "INT-stops-at-NUL", "long-STRING-line",
         "long-UNICODE-line", "INT-long-spaces", "FLOAT-underscores", "text-memo-keys"])
@pytest.mark.parametrize("name", ["model.bin", "model", "weights.unknownext"])
def test_tentative_pickle_with_cpython_only_opcode_is_not_safe(prefix, name):
    blob = prefix + _PAYLOAD
    assert ("os", "system") in fuzzing.imports(blob, implementation="c") + \
        fuzzing.imports(blob, implementation="python")
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
], ids=["float32-weights", "license-text", "MARK-then-bytes"])
def test_data_that_cpython_rejects_before_any_import_stays_unrecognised(blob):
    assert fuzzing.imports(blob, implementation="c") == []
    report = scan_bytes("weights.bin", blob)
    assert report.format in ("unknown", "text") and report.verdict == SAFE


def test_tentative_pickle_that_would_hang_the_unpickler_is_not_safe():
    # no import at all, but pickle.load would hash a tuple of 2**40 items before failing
    levels = b"".join(b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86\x94" for i in range(40))
    blob = b")\x94" + levels + b"}h\x28Ns" + b"\xff"
    report = scan_bytes("model.bin", blob)
    assert report.verdict != SAFE
    assert any(f.kind == "resource" for f in report.findings)


def test_a_long_global_name_cut_in_the_report_still_counts_as_an_import():
    """Found by the differential property: the report cuts names over its limit with "…";
    the cut name must not read as unimportable, or the file would pass as text."""
    blob = b"cos\nsystem" + b"_" * 4092
    report = scan_bytes("x.bin", blob)
    assert report.verdict != SAFE
    assert any(i.module == "os" and i.name.startswith("system") for i in report.imports)
