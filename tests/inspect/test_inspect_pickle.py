"""The opcode walker: allow-list decisions, every opcode family, loader disagreements
(FRAME), hostile input bounded in time and memory, and property tests."""

from __future__ import annotations

import collections
import io
import pickle
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgattest.inspect import DANGEROUS, MALFORMED, SAFE, SUSPICIOUS, Limits, scan_bytes
from mgattest.inspect._allowlist import SAFE_GLOBALS, classify


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def scan(blob: bytes, name: str = "x.pkl", **kw):
    return scan_bytes(name, blob, **kw)


# --- allow-list ----------------------------------------------------------------------

def test_allow_list_is_exact_pairs_only():
    assert all("." not in name for _mod, name in SAFE_GLOBALS)
    assert classify("collections", "OrderedDict", 4) == (True, None)
    # a dotted attribute path through an allowed module is not allowed, and is loud
    assert classify("collections", "OrderedDict.fromkeys", 4) == (False, DANGEROUS)
    assert classify("torch._utils", "os.system", 4) == (False, DANGEROUS)
    # a prefix of an allowed module is not allowed
    assert classify("numpy", "load", 4)[0] is False
    assert classify("numpy.core.multiarray", "_reconstructx", 4)[0] is False


def test_unknown_modules_are_suspicious_known_bad_are_dangerous():
    assert classify("mypkg.layers", "Custom", 4) == (False, SUSPICIOUS)
    for module, name in (("os", "system"), ("posix", "system"), ("nt", "system"),
                         ("subprocess", "Popen"), ("builtins", "getattr"),
                         ("runpy", "run_path"), ("importlib", "import_module"),
                         ("pip", "main"), ("webbrowser", "open"), ("socket", "socket"),
                         ("functools", "partial"), ("operator", "attrgetter"),
                         ("code", "interact"), ("shutil", "rmtree"),
                         ("torch.storage", "_load_from_bytes")):
        assert classify(module, name, 4) == (False, DANGEROUS), (module, name)


def test_python2_aliases_resolve_like_the_unpickler():
    # protocol < 3: __builtin__ -> builtins, copy_reg -> copyreg, commands -> subprocess
    assert classify("__builtin__", "set", 2) == (True, None)
    assert classify("copy_reg", "_reconstructor", 2) == (True, None)
    assert classify("__builtin__", "eval", 2) == (False, DANGEROUS)
    assert classify("commands", "getoutput", 2) == (False, DANGEROUS)
    # protocol >= 3 does not map names, but a Py2 name is still flagged loudly
    assert classify("__builtin__", "eval", 4) == (False, DANGEROUS)


# --- benign content at every protocol ---------------------------------------------------

@pytest.mark.parametrize("proto", range(6))
def test_benign_containers_every_protocol(proto):
    data = {"a": [1, 2.5, "x", b"y", None, True], "t": (1, (2, 3)), "s": {1, 2},
            "f": frozenset({3}), "o": collections.OrderedDict(k=1), "big": 2**100,
            "ba": bytearray(b"z"), "c": 1 + 2j}
    report = scan(pickle.dumps(data, proto))
    assert report.verdict == SAFE, report.reasons()
    assert report.format == "pickle"


def test_imports_are_reported_with_offsets():
    blob = pickle.dumps(collections.OrderedDict(a=1), 2)
    report = scan(blob)
    (imp,) = report.imports
    assert (imp.module, imp.name, imp.allowed) == ("collections", "OrderedDict", True)
    assert blob[imp.offset:imp.offset + 1] == b"c"
    assert report.to_dict()["imports"][0]["offset"] == imp.offset


# --- each way to reach a callable --------------------------------------------------------

@pytest.mark.parametrize("blob,kind", [
    (b"cos\nsystem\n(S'true'\ntR.", "GLOBAL+REDUCE"),
    (b"(S'true'\nios\nsystem\n.", "INST"),
    (b"(cos\nsystem\nS'true'\no.", "OBJ"),
    (b"\x80\x04" + _s("os") + _s("system") + b"\x93" + _s("true") + b"\x85R.", "STACK_GLOBAL"),
    (b"\x80\x04" + _s("os") + b"\x94" + _s("system") + b"\x94" + b"0" + b"0"
     + b"h\x00h\x01\x93" + _s("true") + b"\x85R.", "memoised STACK_GLOBAL"),
    (b"\x80\x02" + b"cos\nsystem\n" + b")\x81.", "NEWOBJ"),
    (b"\x80\x04" + _s("os") + _s("system") + b"\x93)}\x92.", "NEWOBJ_EX"),
    (b"\x80\x02U\x02osU\x06system\x93.", "STACK_GLOBAL from 8-bit strings"),
    (b"\x80\x04" + _s("os") + b"\x94" + b"h\x00" + _s("system") + b"\x93.", "GET reuse"),
], ids=lambda v: v if isinstance(v, str) else "pickle")
def test_every_import_path_is_resolved(blob, kind):
    report = scan(blob)
    assert report.verdict == DANGEROUS, kind
    assert any(f.module == "os" and f.name == "system" for f in report.findings), kind


def test_stack_global_with_unknown_strings_is_dangerous():
    # module name built by a call cannot be resolved statically
    blob = (b"\x80\x04" + _s("builtins") + _s("str") + b"\x93" + _s("os") + b"\x85R"
            + _s("system") + b"\x93.")
    report = scan(blob)
    assert any(f.kind == "unresolved-global" and f.severity == DANGEROUS
               for f in report.findings)


def test_call_on_computed_callable_is_flagged():
    blob = (b"\x80\x04" + _s("collections") + _s("OrderedDict") + b"\x93)R)R.")
    report = scan(blob)
    assert any(f.kind == "call" for f in report.findings)
    assert report.verdict == DANGEROUS


def test_build_on_a_class_object_is_flagged():
    # BUILD on the class itself would monkey-patch it with setattr
    blob = (b"\x80\x04" + _s("collections") + _s("OrderedDict") + b"\x93"
            + b"N}" + _s("x") + b"K\x01s\x86b.")
    report = scan(blob)
    assert any(f.kind == "build-global" for f in report.findings)


def test_extension_codes_are_flagged():
    assert scan(b"\x80\x02\x82\x01.").verdict == SUSPICIOUS


def test_appended_stream_and_trailing_garbage():
    benign = pickle.dumps([1, 2], 4)
    evil = b"cos\nsystem\n(S'true'\ntR."
    assert scan(benign + evil).verdict == DANGEROUS
    report = scan(benign + b"\xffgarbage")
    assert report.verdict == MALFORMED
    assert any("after pickle stream 1" in f.detail for f in report.findings)
    assert scan(benign + pickle.dumps({"a": 1}, 2)).verdict == SAFE


def test_imports_before_truncation_still_count():
    blob = b"cos\nsystem\n(S'true'\ntR(lp0\nI1\n"
    report = scan(blob)
    assert report.verdict == DANGEROUS
    assert any(f.severity == MALFORMED for f in report.findings)


# --- FRAME disagreements between the C and Python unpicklers -----------------------------

def _framed(body: bytes, frame_len: int) -> bytes:
    return b"\x80\x04\x95" + struct.pack("<Q", frame_len) + body


def test_frame_straddle_is_a_real_loader_disagreement():
    body = _s("abcdef") + b"."  # 8 bytes + STOP
    blob = _framed(body, 4)  # the frame ends in the middle of the string opcode
    assert pickle.loads(blob) == "abcdef"  # the C unpickler ignores frame boundaries
    with pytest.raises(pickle.UnpicklingError):
        pickle._loads(blob)  # the Python unpickler refuses
    report = scan(blob)
    assert any(f.kind == "frame-mismatch" for f in report.findings)
    assert report.verdict == SUSPICIOUS


def test_well_formed_frames_are_clean():
    blob = pickle.dumps(list(range(20000)), 4)  # several frames
    assert blob.count(b"\x95") >= 1
    assert scan(blob).verdict == SAFE


def test_frame_past_end_is_malformed():
    assert scan(_framed(b"N.", 1000)).verdict == MALFORMED


# --- hostile input ----------------------------------------------------------------------

@pytest.mark.parametrize("blob", [
    b"",
    b"\x80",
    b"\x80\x06N.",  # unknown protocol
    b"X\xff\xff\xff\x7f",  # 2 GiB string length on a tiny file
    b"\x8e" + b"\xff" * 8,  # BINBYTES8 absurd length
    b"\x8b\xff\xff\xff\x7f",  # LONG4 absurd length
    b"h\x05.",  # memo key missing
    b"t.",  # TUPLE without MARK
    b"a.",  # APPEND on empty stack
    b"\x93.",  # STACK_GLOBAL underflow
    b"(" * 100000 + b".",  # deep MARK nesting, no crash
    b"]" * 200000 + b"a" * 199999 + b".",  # deeply nested lists
    b"\x80\x04\xfe",  # invalid opcode
], ids=[
    "empty", "protocol-only", "unknown-protocol", "2GiB-string-length", "BINBYTES8-absurd-length",
    "LONG4-absurd-length", "missing-memo-key", "TUPLE-without-MARK", "APPEND-on-empty-stack",
    "STACK_GLOBAL-underflow", "deep-MARK-nesting", "deeply-nested-lists", "invalid-opcode"])
def test_hostile_pickles_are_malformed_not_crashes(blob):
    report = scan(blob)
    assert report.verdict in (MALFORMED, DANGEROUS, SAFE)
    if blob[-1:] != b"." or blob in (b"h\x05.", b"t.", b"a.", b"\x93.", b"(" * 100000 + b"."):
        assert report.verdict == MALFORMED


def test_global_line_at_eof_without_newline_still_imports():
    # pickle's readline()[:-1] accepts a last line without "\n" and drops its last byte
    seen = []

    class Spy(pickle._Unpickler):
        def find_class(self, module, name):
            seen.append((module, name))
            raise pickle.UnpicklingError("stop")
    with pytest.raises(pickle.UnpicklingError):
        Spy(io.BytesIO(b"cos\nsystemX")).load()
    assert seen == [("os", "system")]
    report = scan(b"cos\nsystemX")
    assert report.verdict == DANGEROUS
    assert any(f.module == "os" and f.name == "system" for f in report.findings)


def test_time_budget_and_opcode_cap():
    blob = b"\x80\x04" + b"N0" * 400_000 + b"N."
    start = time.monotonic()
    report = scan(blob, limits=Limits(time_budget_s=0.0001))
    assert time.monotonic() - start < 5
    assert any("time budget" in f.detail for f in report.findings)
    report = scan(blob, limits=Limits(max_opcodes=100_000))
    assert any("too many opcodes" in f.detail for f in report.findings)


def test_memo_cap():
    blob = b"\x80\x04N" + b"\x94" * 70_000 + b"."
    report = scan(blob, limits=Limits(max_memo=1000))
    assert any("memo" in f.detail for f in report.findings)


# --- properties -------------------------------------------------------------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5), children, max_size=5)
    | st.frozensets(st.integers(), max_size=4),
    max_leaves=30)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_values, proto=st.integers(0, 5))
def test_property_plain_data_is_always_safe(value, proto):
    report = scan(pickle.dumps(value, proto))
    assert report.verdict == SAFE, report.reasons()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_property_random_bytes_never_crash(data):
    report = scan(data, name="fuzz.pkl")
    assert report.verdict in (SAFE, SUSPICIOUS, MALFORMED, DANGEROUS)


@settings(max_examples=200, deadline=None)
@given(value=_values, proto=st.integers(0, 5), cut=st.integers(0, 10_000),
       flip=st.integers(0, 255))
def test_property_mutated_pickles_never_crash_and_imports_agree(value, proto, cut, flip):
    blob = bytearray(pickle.dumps(value, proto))
    blob[cut % len(blob)] = flip
    report = scan(bytes(blob))
    assert report.verdict in (SAFE, SUSPICIOUS, MALFORMED, DANGEROUS)
    # if the real unpickler would import something, the scanner saw that import first
    seen = set()

    class Spy(pickle._Unpickler):
        def find_class(self, module, name):
            seen.add((module, name))
            raise pickle.UnpicklingError("stop")
    try:
        Spy(io.BytesIO(bytes(blob))).load()
    except Exception:  # noqa: BLE001 - corrupt data
        pass
    scanned = {(i.module, i.name) for i in report.imports} | {
        (f.module, f.name) for f in report.findings if f.module}
    for module, name in seen:
        from mgattest.inspect._allowlist import normalise
        assert normalise(module, name, 0) in scanned or (module, name) in scanned or \
            any(f.kind == "unresolved-global" for f in report.findings)


# --- joblib: raw array bytes inside the pickle stream ------------------------------------

def _joblib_bytes(obj) -> bytes:
    joblib = pytest.importorskip("joblib")
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


def test_joblib_arrays_are_skipped_exactly_and_payload_after_them_is_seen():
    np = pytest.importorskip("numpy")
    blob = _joblib_bytes({"a": np.arange(1000, dtype=np.float64), "b": "tail"})
    report = scan(blob, name="m.joblib")
    assert report.verdict == SAFE and report.format == "joblib"
    # a plain opcode walk (pickletools) stops at the array bytes
    import pickletools
    with pytest.raises(ValueError):
        list(pickletools.genops(blob))


def test_joblib_dtype_itemsize_manipulation_is_malformed():
    np = pytest.importorskip("numpy")
    blob = _joblib_bytes({"a": np.arange(4, dtype=np.float64)})
    elsize = b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"
    assert blob.count(elsize) == 1
    forged = blob.replace(elsize, b"J\x10\x00\x00\x00J\xff\xff\xff\xffK\x00t")
    report = scan(forged, name="m.joblib")
    assert report.verdict == MALFORMED
    assert any("claims itemsize" in f.detail for f in report.findings)


def test_joblib_truncated_array_is_malformed():
    np = pytest.importorskip("numpy")
    blob = _joblib_bytes({"a": np.arange(1000, dtype=np.float64)})
    cut = blob[: len(blob) // 2]
    report = scan(cut, name="m.joblib")
    assert report.verdict == MALFORMED and any("joblib array data" in f.detail
                                               for f in report.findings)
