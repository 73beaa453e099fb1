"""Object dtypes are found the way numpy finds them (issue #16 item 1).

A ``.npy`` whose header spells the object dtype unusually (``'object'``, ``'i4,O'``,
``'(1,)O'``, ``'O+8'`` ...) holds a pickle that ``numpy.load(allow_pickle=True)`` runs.
The scanner's stdlib parser must agree with ``numpy.dtype(descr).hasobject``.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.fuzz_budget import PARSER, fuzz
from mgattest.inspect import scan_bytes
from mgattest.inspect._npy import NpyError, descr_has_object

OBJECT_SPELLINGS = ["object", "object_", "i4,O", "(1,)O", "V8,O", "O8", "O4", "|O", ">O",
                    "O+8", "O 8", "2O", "O,", "(2,3)O", "f8, (2,)O", "T",
                    ("O", (2,)), [("a", "<i4"), ("b", "object")],
                    [("a", [("x", "(1,)O")])], [(("title", "a"), "O")]]


def numpy_hasobject(descr: object) -> bool | None:
    """What numpy.load decides for this descr; None when numpy refuses it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(np.lib.format.descr_to_dtype(descr).hasobject)
        except Exception:  # noqa: BLE001 - numpy raises many types for bad descrs
            return None


def ours(descr: object) -> bool | None:
    """Our verdict; None when our parser refuses the descr (fail closed)."""
    try:
        return descr_has_object(descr)
    except NpyError:
        return None


def npy_with_descr(descr: object, payload: bytes) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": (1,)}).encode()
    header += b" " * ((-(len(header) + 11)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


@pytest.mark.parametrize("descr", OBJECT_SPELLINGS, ids=repr)
def test_every_object_spelling_is_an_object_dtype(descr):
    assert numpy_hasobject(descr) is True
    assert descr_has_object(descr) is True


@pytest.mark.parametrize("descr", ["object", "object_", "i4,O", "(1,)O", "V8,O", "O+8"])
def test_object_array_with_odd_descr_is_scanned_as_a_pickle(descr):
    import pickle
    import os
    payload = pickle.dumps([os.system], protocol=2)  # what the array would unpickle
    report = scan_bytes("evil.npy", npy_with_descr(descr, payload))
    assert report.verdict == "dangerous", report.reasons()
    assert any(f.module in ("posix", "os") for f in report.findings)


# --- generated descrs: our parser never says "no objects" when numpy says "objects" -----

_ATOMS = st.sampled_from([
    "O", "|O", "<O", ">O", "=O", "O8", "O4", "O16", "O+8", "O 8", "O\t8", "O-8", "O08",
    "object", "object_", ">object", "T", "f8", "<f8", "i4", "|b1", "?", "<U5", "|S3", "V8",
    "|V0", "<M8[ns]", "m8", "bool", "float64", "int", "str", "void", "a", "a5", "Ob",
    "datetime64", "datetime64[s]", "x", "", "<"])
_SEPARATORS = st.sampled_from([",", ", ", " ,", ""])
_REPEATS = st.sampled_from(["", "2", "(2,)", "(1,)", "(0,)", "(2,3)", "()", "(2)", " 3 "])


@st.composite
def comma_strings(draw):
    parts = draw(st.lists(st.tuples(_REPEATS, _ATOMS), min_size=1, max_size=3))
    sep = draw(_SEPARATORS)
    return sep.join(r + a for r, a in parts) + draw(st.sampled_from(["", ",", " "]))


descrs = st.recursive(
    st.one_of(_ATOMS, comma_strings(), st.text(alphabet="Oo08b(),<>|= +-T[]js", max_size=8)),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([(2,), 3, (), (1, 2), (0,)])),
        st.lists(st.one_of(
            st.tuples(st.sampled_from(["a", "b", "", ("t", "c")]), inner),
            st.tuples(st.sampled_from(["d", ""]), inner, st.sampled_from([(2,), 1, ()]))),
            min_size=1, max_size=3, unique_by=lambda f: f[0])),
    max_leaves=6)


def _has_padding_field(descr: object) -> bool:
    """numpy drops nameless fields; our parser counts them (towards 'objects')."""
    if isinstance(descr, list):
        return any(f[0] == "" or _has_padding_field(f[1]) for f in descr)
    if isinstance(descr, tuple):
        return _has_padding_field(descr[0])
    return False


@fuzz(600, PARSER)
@given(descrs)
def test_parser_agrees_with_numpy(descr):
    expected, got = numpy_hasobject(descr), ours(descr)
    if expected is True:
        assert got is not False, f"numpy: objects; scanner: none, for {descr!r}"
    elif expected is False and got is True:
        assert _has_padding_field(descr), f"scanner sees objects numpy does not: {descr!r}"


@st.composite
def real_dtypes(draw, depth=0):
    base = st.sampled_from(["<f8", "<i4", "|u1", "|b1", "<U3", "|S2", "|O", "<M8[ns]",
                            "<c16", "<m8[s]", "|V4", "<f2"])
    if depth >= 2 or draw(st.booleans()):
        return np.dtype(draw(base))
    n = draw(st.integers(1, 3))
    fields = []
    for i in range(n):
        sub = draw(real_dtypes(depth=depth + 1))
        if draw(st.booleans()):
            sub = np.dtype((sub, draw(st.sampled_from([(2,), (1, 3)]))))
        fields.append((f"f{i}", sub))
    return np.dtype(fields)


@fuzz(300, PARSER)
@given(real_dtypes())
def test_descrs_numpy_writes_are_judged_exactly(dtype):
    """Every descr ``numpy.save`` writes gets an exact answer (no refusal, no guess)."""
    descr = np.lib.format.dtype_to_descr(dtype)
    assert descr_has_object(descr) is dtype.hasobject


def test_saved_object_arrays_of_every_shape_are_scanned():
    import os
    for dtype in ([("a", "<i4"), ("b", "O")], "O", [("s", "O", (2,))]):
        arr = np.zeros(2, dtype=dtype)
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=True)
        report = scan_bytes("a.npy", buf.getvalue())
        assert report.verdict == "safe", report.reasons()
        assert any(f.kind == "object-array" for f in report.findings)
    del os


# --- joblib array headers: the pickled numpy.dtype decides how joblib reads the data ----

def _joblib_object_array_with_dtype(code: bytes) -> bytes:
    """A joblib dump of an object array whose pickled dtype string is ``code``."""
    import os
    import joblib

    class Payload:
        def __reduce__(self):
            return os.system, ("true",)

    buf = io.BytesIO()
    joblib.dump({"o": np.array([Payload()], dtype=object)}, buf)
    blob = bytearray(buf.getvalue().replace(b"\x8c\x02O8", b"\x8c" + bytes([len(code)]) + code,
                                            1))
    frame = int.from_bytes(blob[3:11], "little") + len(code) - 2  # first FRAME's length
    blob[3:11] = frame.to_bytes(8, "little")
    return bytes(blob)


@pytest.mark.parametrize("code", [b"object", b"object_", b"i4,O", b"(1,)O", b"f8", b"V8"])
def test_joblib_array_whose_dtype_holds_objects_is_scanned_as_a_pickle(code):
    """numpy takes 'has objects' from the type string *and* the pickled flags: an 'f8'
    dtype whose state says flags=63 makes joblib unpickle the array data."""
    blob = _joblib_object_array_with_dtype(code)
    report = scan_bytes("model.joblib", blob)
    imports = {(f.module, f.name) for f in report.findings if f.kind == "import"}
    assert imports & {("posix", "system"), ("os", "system")}, report.reasons()
    assert report.verdict == "dangerous"


def test_npz_member_with_odd_object_descr_is_scanned():
    import os
    import pickle
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok.npy", npy_with_descr("<f8", b"\0" * 8))
        zf.writestr("x.npy", npy_with_descr("i4,O", pickle.dumps([os.system], protocol=2)))
    report = scan_bytes("arrays.npz", buf.getvalue())
    assert report.format == "npz" and report.verdict == "dangerous" and report.pickled
