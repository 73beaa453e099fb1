"""Attacker bytes against the pickle scanner and the restricted unpickler: no traceback,
no hang, memory bounded by the input. ``MGATTEST_FUZZ=long`` runs many more examples."""

from __future__ import annotations

import pickle
import time
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import pickle_fuzzing as fuzzing
from mgattest.inspect import scan_bytes
from mgattest.inspect._restricted import (RestrictedLoadError, UnsafeContentError,
                                         restricted_loads_all)

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.binary(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=12)


@st.composite
def _mutated_pickles(draw) -> bytes:
    blob = bytearray(pickle.dumps(draw(_values), draw(st.integers(0, 5))))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(blob)))
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if action == "flip" and at < len(blob):
            blob[at] = byte
        elif action == "insert":
            blob[at:at] = bytes([byte])
        elif at < len(blob):
            del blob[at]
    return bytes(blob)


_ATTACKER_BYTES = (st.binary(max_size=400) | fuzzing.OPCODE_SOUP | fuzzing.pickles()
                   | _mutated_pickles())


@fuzzing.FUZZ
@given(_ATTACKER_BYTES)
def test_scanner_never_crashes_hangs_or_balloons(blob):
    for name in ("x.pkl", "x.bin"):
        tracemalloc.start()
        start = time.monotonic()
        try:
            report = scan_bytes(name, blob)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert time.monotonic() - start < 5
        assert not any(f.kind == "scanner-error" for f in report.findings), report.reasons()
        assert peak < 2_000_000 + 64 * len(blob), peak


@fuzzing.FUZZ
@given(_ATTACKER_BYTES)
def test_restricted_loader_raises_only_its_typed_errors(blob):
    start = time.monotonic()
    try:
        restricted_loads_all(blob)
    except (UnsafeContentError, RestrictedLoadError):
        pass
    assert time.monotonic() - start < 5
