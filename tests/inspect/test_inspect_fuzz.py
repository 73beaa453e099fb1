"""Header parsers under fuzzing: no traceback, no hang, bounded memory.

Each property feeds one parser (safetensors, npy, GGUF, ONNX) mutations of a valid file
and structured garbage. ``MGATTEST_FUZZ=long`` runs 100x the examples.
"""

from __future__ import annotations

import io
import json
import struct
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.corpus import build_gguf
from tests.helpers.fuzz_budget import PARSER, fuzz
from mgattest.inspect import scan_bytes
from mgattest.inspect._gguf_check import check_gguf
from mgattest.inspect._npy import NpyError, parse_header
from mgattest.inspect._onnx_check import check_onnx
from mgattest.inspect._limits import DEFAULT_LIMITS
from mgattest.inspect._pickle_scan import ScanContext
from mgattest.inspect._safetensors_check import check_safetensors

MAX_SECONDS = 2.0
MAX_PEAK_BYTES = 64 * 1024**2


def _safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                         "__metadata__": {"a": "b"}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 16


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros(3, dtype=[("a", "<f4"), ("b", "<i8", (2,))]))
    return buf.getvalue()


def _onnx() -> bytes:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    t = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [t])
    return helper.make_model(g).SerializeToString()


VALID = {"safetensors": _safetensors, "npy": _npy, "gguf": build_gguf, "onnx": _onnx}


def _npy_parse(data: bytes, ctx: ScanContext) -> None:
    try:
        parse_header(data, DEFAULT_LIMITS).has_object  # noqa: B018 - the dtype judgement
    except NpyError:
        pass


PARSERS = {
    "safetensors": check_safetensors,
    "npy": _npy_parse,
    "gguf": check_gguf,
    "onnx": lambda data, ctx: check_onnx(data, ctx, None),
}


@st.composite
def mutated(draw, fmt: str):
    blob = bytearray(VALID[fmt]())
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "u64"]))
        at = draw(st.integers(0, max(len(blob) - 1, 0)))
        if op == "flip" and blob:
            blob[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del blob[at:]
        elif op == "insert":
            blob[at:at] = draw(st.binary(max_size=16))
        else:  # overwrite 8 bytes with an extreme count / length / offset
            blob[at:at + 8] = struct.pack("<Q", draw(st.sampled_from(
                [0, 1, 2**31, 2**32 - 1, 2**63 - 1, 2**64 - 1, len(blob), 10**6])))
    return bytes(blob)


def _run_bounded(fmt: str, data: bytes) -> None:
    ctx = ScanContext()
    tracemalloc.start()
    start = time.monotonic()
    try:
        PARSERS[fmt](data, ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < MAX_SECONDS, f"{fmt} parser too slow on {data[:64]!r}"
    assert peak < MAX_PEAK_BYTES, f"{fmt} parser used {peak} bytes"
    report = scan_bytes(f"m.{fmt}", data)
    assert not [f for f in report.findings if f.kind == "scanner-error"], report.reasons()


@pytest.mark.parametrize("fmt", sorted(VALID))
def test_valid_samples_are_safe(fmt):
    assert scan_bytes(f"m.{fmt}", VALID[fmt]()).verdict == "safe"


@pytest.mark.parametrize("fmt", sorted(VALID))
@fuzz(150, PARSER)
@given(data=st.data())
def test_parser_survives_mutations(fmt, data):
    _run_bounded(fmt, data.draw(mutated(fmt)))


@fuzz(100, PARSER)
@given(fmt=st.sampled_from(sorted(VALID)), raw=st.binary(max_size=2048))
def test_parsers_survive_random_bytes(fmt, raw):
    _run_bounded(fmt, raw)


@fuzz(100, PARSER)
@given(header=st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=6), inner,
                                                                   max_size=4)),
                           max_leaves=12))
def test_safetensors_parser_survives_arbitrary_json_headers(header):
    raw = json.dumps(header).encode()
    _run_bounded("safetensors", struct.pack("<Q", len(raw)) + raw + b"\0" * 8)


@fuzz(100, PARSER)
@given(header=st.dictionaries(st.sampled_from(["descr", "fortran_order", "shape", "x"]),
                              st.one_of(st.text(max_size=10), st.booleans(),
                                        st.tuples(st.integers(-2, 2**40)),
                                        st.lists(st.tuples(st.text(max_size=3),
                                                           st.text(max_size=6)), max_size=3)),
                              max_size=4))
def test_npy_parser_survives_arbitrary_headers(header):
    text = repr(header).encode()
    _run_bounded("npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + b"\0" * 8)


def test_gguf_lying_about_sizes_is_malformed_quickly():
    """Counts, string and array lengths far beyond the file are findings, not allocations."""
    def gstr(text: str) -> bytes:
        return struct.pack("<Q", len(text)) + text.encode()
    lies = [
        b"GGUF" + struct.pack("<IQQ", 3, 2**62, 1),  # tensor count
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**60) + b"k",  # key len
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("k") + struct.pack("<IIQ", 9, 4, 2**61),
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("k") + struct.pack("<IIQ", 9, 8, 2**40),
        b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + gstr("w") + struct.pack("<I", 2)
        + struct.pack("<QQ", 2**40, 2**40) + struct.pack("<IQ", 0, 0),  # tensor far too big
        # an IQ2_XXS (type 16) and an unknown type (99) tensor of 2**40 elements: the data
        # they claim is not in the file
        b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + gstr("w") + struct.pack("<I", 1)
        + struct.pack("<Q", 2**40) + struct.pack("<IQ", 16, 0) + b"\0" * 64,
        b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + gstr("w") + struct.pack("<I", 1)
        + struct.pack("<Q", 2**40) + struct.pack("<IQ", 99, 0) + b"\0" * 64,
    ]
    for blob in lies:
        _run_bounded("gguf", blob)
        assert scan_bytes("m.gguf", blob).verdict == "malformed"
