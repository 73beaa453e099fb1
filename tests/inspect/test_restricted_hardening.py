"""The restricted unpickler under attack by pickles made only of allow-listed globals:
process-wide mutation of imported classes and functions (#9 item 10), and calls that
allocate or compute far beyond the file's size (#16 item 9)."""

from __future__ import annotations

import pathlib
import pickle
import struct
import time

import pytest
import torch

from mgattest.inspect import DANGEROUS, SAFE, SUSPICIOUS, scan_bytes
from mgattest.inspect._admission import GlobalsGuard
from mgattest.inspect._restricted import (RestrictedLoadError, RestrictedUnpickler,
                                         UnsafeContentError, restricted_joblib_load,
                                         restricted_loads, restricted_loads_all)


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _g(module: str, name: str) -> bytes:
    return _s(module) + _s(name) + b"\x93"


def _slot_build(target: bytes, attr: str, value: bytes) -> bytes:
    """BUILD with a (None, {attr: value}) slot state: setattr(target, attr, value)."""
    return target + b"N}" + _s(attr) + value + b"s\x86b"


@pytest.fixture
def restore_classes():
    """Put back what a test's pickle may have changed (on main, nothing refuses it)."""
    saved = [(pathlib.Path, dict(vars(pathlib.Path))),
             (torch.nn.Linear, dict(vars(torch.nn.Linear)))]
    relu_defaults = torch.nn.functional.relu.__defaults__
    yield
    torch.nn.functional.relu.__defaults__ = relu_defaults
    for cls, attrs in saved:
        for name in set(vars(cls)) - set(attrs):
            delattr(cls, name)
        for name, value in attrs.items():
            if vars(cls).get(name) is not value:
                setattr(cls, name, value)


_POISON = {
    # Path.read_text replaced by str: every later Path(...).read_text() returns a repr
    "path-read-text": _slot_build(_g("pathlib", "Path"), "read_text", _g("builtins", "str")),
    # every Linear layer in the process computes relu instead of x @ W.T + b
    "linear-forward": _slot_build(_g("torch.nn.modules.linear", "Linear"), "forward",
                                  _g("torch.nn.functional", "relu")),
    # through the memo: the class comes back from GET, not from GLOBAL
    "memo": _g("pathlib", "Path") + b"\x94" + b"0" + b"h\x00"
    + b"N}" + _s("read_text") + _g("builtins", "str") + b"s\x86b",
}


@pytest.mark.parametrize("name", sorted(_POISON))
def test_build_on_an_imported_class_is_refused_and_changes_nothing(name, restore_classes):
    blob = b"\x80\x04" + _POISON[name] + b"."
    read_text, forward = pathlib.Path.read_text, torch.nn.Linear.forward
    with pytest.raises(UnsafeContentError) as info:
        restricted_loads(blob)
    assert info.value.details.get("rule") in ("build-global", "global-mutation")
    assert pathlib.Path.read_text is read_text and torch.nn.Linear.forward is forward
    assert scan_bytes("x.pkl", blob).verdict == DANGEROUS


def test_guard_undoes_a_mutation_the_walk_did_not_see(restore_classes):
    # The second line alone: load with the bare unpickler (no admission walk), then the
    # guard notices relu's default arguments changed, restores them and refuses.
    relu = torch.nn.functional.relu
    defaults = relu.__defaults__
    blob = b"\x80\x04" + _slot_build(_g("torch.nn.functional", "relu"), "__defaults__",
                                     b"\x88\x85") + b"."
    import io
    guard = GlobalsGuard("<test>")
    RestrictedUnpickler(io.BytesIO(blob), guard=guard).load()
    assert relu.__defaults__ == (True,)  # the C unpickler did change it ...
    with pytest.raises(UnsafeContentError, match="__defaults__"):
        guard.verify()
    assert relu.__defaults__ is defaults  # ... and the guard put it back


@pytest.mark.parametrize("opcodes", [
    _g("collections", "OrderedDict") + _s("k") + b"Ns",  # SETITEM
    _g("collections", "OrderedDict") + b"(" + _s("k") + b"Nu",  # SETITEMS
    _g("collections", "OrderedDict") + b"Na",  # APPEND
    _g("collections", "OrderedDict") + b"(Ne",  # APPENDS
    _g("collections", "OrderedDict") + b"(N\x90",  # ADDITEMS
], ids=["SETITEM", "SETITEMS", "APPEND", "APPENDS", "ADDITEMS"])
def test_item_and_append_opcodes_on_an_imported_object_are_dangerous(opcodes):
    blob = b"\x80\x04" + opcodes + b"."
    report = scan_bytes("x.pkl", blob)
    assert report.verdict == DANGEROUS
    assert any(f.kind == "global-mutation" for f in report.findings)
    with pytest.raises(UnsafeContentError):
        restricted_loads(blob)


def test_slot_state_setting_a_special_attribute_is_refused():
    # an instance retyped through setattr(obj, "__class__", ...)
    blob = (b"\x80\x04" + _g("argparse", "Namespace") + b")\x81"
            + b"N}" + _s("__class__") + _g("argparse", "Namespace") + b"s\x86b.")
    assert scan_bytes("x.pkl", blob).verdict == DANGEROUS
    with pytest.raises(UnsafeContentError, match="__class__"):
        restricted_loads(blob)


def test_ordinary_instance_state_still_loads():
    import argparse
    ns = restricted_loads(pickle.dumps(argparse.Namespace(lr=0.1, name="x"), 4))
    assert ns.lr == 0.1 and ns.name == "x"


# --- resource bombs ----------------------------------------------------------------------

def _call(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


def _int(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


_BOMBS = {
    "bytearray": _call(_g("builtins", "bytearray"), _int(1 << 30)),
    "bytes-newobj": _g("builtins", "bytes") + b"(" + _int(1 << 30) + b"t\x81",
    "fraction": _call(_g("fractions", "Fraction"), _s("1e030000000")),
    "decimal": _call(_g("decimal", "Decimal"), _s("1e999999999")),
    "linear": _call(_g("torch.nn.modules.linear", "Linear"), _int(16384), _int(16384)),
    "range": _call(_g("builtins", "list"), _call(_g("builtins", "range"), _int(1 << 28))),
    "ndarray": _call(_g("numpy.core.multiarray", "_reconstruct"), _g("numpy", "ndarray"),
                     b"(" + _int(1 << 31) + b"t", _s("b")),
    "storage": _call(_g("torch", "FloatStorage"), _int(1 << 28)),
    "reconstructor": _call(_g("copyreg", "_reconstructor"), _g("builtins", "bytearray"),
                           _g("builtins", "bytearray"), _int(1 << 30)),
    "computed-size": _call(_g("builtins", "bytearray"),
                           _call(_g("builtins", "int"), _s("1000000000"))),
    "ufunc": _call(_g("numpy", "add"), b"NN"),
    "punycode": _call(_g("_codecs", "encode"), _s("\u0101" * 20), _s("punycode")),
}


@pytest.mark.parametrize("name", sorted(_BOMBS))
def test_small_pickles_that_allocate_or_compute_hugely_are_refused(name):
    blob = b"\x80\x04" + _BOMBS[name] + b"."
    assert len(blob) < 120
    report = scan_bytes("x.pkl", blob)
    assert report.verdict == SUSPICIOUS, report.reasons()
    assert any(f.kind == "resource" for f in report.findings)
    start = time.monotonic()
    with pytest.raises(UnsafeContentError) as info:
        restricted_loads(blob)
    assert time.monotonic() - start < 2
    assert info.value.details["rule"] == "resource"


def test_many_small_allocations_add_up_to_the_total_budget():
    one = _call(_g("builtins", "bytearray"), _int(8 << 20)) + b"0"  # 8 MiB each: fine
    blob = b"\x80\x04" + one * 20 + b"N."  # 160 MiB in total from 700 bytes: not fine
    assert scan_bytes("x.pkl", b"\x80\x04" + one + b"N.").verdict == SAFE
    with pytest.raises(UnsafeContentError, match="in total"):
        restricted_loads(blob)


def test_large_memo_key_is_a_resource_finding():
    # the C unpickler sizes its memo array by the largest key: 6 bytes ask for 64 GiB
    blob = b"\x80\x04N" + b"r" + struct.pack("<I", 0xFFFFFFF0) + b"."
    report = scan_bytes("x.pkl", blob)
    assert any(f.kind == "resource" for f in report.findings), report.reasons()
    with pytest.raises(UnsafeContentError):
        restricted_loads(blob)


def test_allocations_proportionate_to_the_file_still_load():
    data = {"buf": bytearray(b"x" * 100_000), "r": range(1000), "n": 10**30}
    for proto in range(6):
        assert restricted_loads(pickle.dumps(data, proto)) == data
    assert restricted_loads_all(pickle.dumps(data, 4) * 2) == [data, data]


def test_joblib_loader_applies_the_same_admission(tmp_path):
    path = tmp_path / "m.joblib"
    path.write_bytes(b"\x80\x04" + _BOMBS["bytearray"] + b".")
    with pytest.raises(UnsafeContentError):
        restricted_joblib_load(path)
    path.write_bytes(b"\x80\x04" + _POISON["path-read-text"] + b".")
    with pytest.raises(UnsafeContentError):
        restricted_joblib_load(path)


def test_truncated_bomb_is_refused_before_anything_runs():
    start = time.monotonic()
    with pytest.raises(UnsafeContentError, match="budget"):
        restricted_loads(b"\x80\x04" + _BOMBS["bytearray"])  # no STOP
    assert time.monotonic() - start < 2
    with pytest.raises(RestrictedLoadError):
        restricted_loads(pickle.dumps({"a": 1}, 4)[:-3])


def test_numpy_array_of_a_huge_subarray_dtype_is_a_resource_finding():
    # dtype(('O', (2**28,))) restored from its state; one element of it is 2 GiB of
    # object pointers that numpy fills with None
    base = _call(_g("numpy", "dtype"), _s("O8"), b"\x89\x88")
    subarray = base + b"(" + _int(1 << 28) + b"t" + b"\x86"
    state = b"(K\x03" + _s("|") + subarray + b"NN" + _int(1 << 31) + b"K\x08K\x3ft"
    dtype = _call(_g("numpy", "dtype"), _s("V2147483648"), b"\x89\x88") + state + b"b"
    blob = (b"\x80\x04" + _call(_g("numpy.core.multiarray", "_reconstruct"),
                                _g("numpy", "ndarray"), b"(K\x01t", dtype) + b".")
    report = scan_bytes("x.pkl", blob)
    assert any(f.kind == "resource" for f in report.findings), report.reasons()
    with pytest.raises(UnsafeContentError):
        restricted_loads(blob)


def test_numpy_arrays_of_ordinary_dtypes_still_load():
    import numpy as np
    arrays = {"f": np.arange(12.0).reshape(3, 4), "o": np.array([1, "a"], dtype=object),
              "s": np.zeros(3, dtype=[("a", "f4", (2,)), ("b", "U3")])}
    for proto in range(6):
        loaded = restricted_loads(pickle.dumps(arrays, proto))
        assert loaded["f"].tolist() == arrays["f"].tolist()
        assert loaded["s"].dtype == arrays["s"].dtype


def test_extension_codes_are_refused_even_when_copyreg_has_them_cached():
    # The C unpickler answers EXT codes from copyreg's cache without calling find_class:
    # a code that some earlier, ordinary load resolved bypasses the allow-list.
    import copyreg
    import os
    copyreg.add_extension("os", "getcwd", 0xF1)
    copyreg._extension_cache[0xF1] = os.getcwd
    try:
        with pytest.raises(UnsafeContentError, match="extension"):
            restricted_loads(b"\x80\x02\x82\xf1)R.")
    finally:
        copyreg.remove_extension("os", "getcwd", 0xF1)
        copyreg._extension_cache.pop(0xF1, None)


def test_torch_state_setter_on_something_other_than_a_new_tensor_is_refused():
    # _rebuild_from_type_v2(func, type, args, state) setattr()s state onto func(*args)
    blob = b"\x80\x04" + _call(_g("torch._tensor", "_rebuild_from_type_v2"),
                               _g("torch.serialization", "_get_layout"),
                               _g("torch", "layout"), b"(" + _s("torch.strided") + b"t",
                               b"}" + _s("x") + b"Ns") + b"."
    assert any(f.kind == "state-setter" for f in scan_bytes("x.pkl", blob).findings)
    with pytest.raises(UnsafeContentError, match="state-setter"):
        restricted_loads(blob)
    # torch's own form: the function is one of torch._utils' tensor rebuilders
    own = b"\x80\x04" + _call(_g("torch._tensor", "_rebuild_from_type_v2"),
                              _g("torch._utils", "_rebuild_tensor_v2"),
                              _g("torch", "Tensor"), b")", b"}") + b"."
    assert not any(f.kind == "state-setter" for f in scan_bytes("x.pkl", own).findings)


_M = 2**61 - 1  # ints k * _M all hash to 0


@pytest.mark.parametrize("container", ["dict", "set", "frozenset", "setitem"])
def test_keys_with_colliding_hashes_are_a_resource_finding(container):
    keys = [k * _M for k in range(1, 1500)]
    if container == "dict":
        blob = pickle.dumps(dict.fromkeys(keys), 4)
    elif container == "set":
        blob = pickle.dumps(set(keys), 4)
    elif container == "frozenset":
        blob = pickle.dumps(frozenset(keys), 4)
    else:
        blob = b"\x80\x04}" + b"".join(_int(k) + b"Ns" for k in keys) + b"."
    report = scan_bytes("x.pkl", blob)
    assert any(f.kind == "resource" and "hash" in f.detail for f in report.findings)
    start = time.monotonic()
    with pytest.raises(UnsafeContentError, match="quadratic"):
        restricted_loads(blob)
    assert time.monotonic() - start < 2


def test_keys_computed_at_load_time_are_bounded():
    one = _call(_g("fractions", "Fraction"), _s("1")) + b"N"
    blob = b"\x80\x04}(" + one * 20_001 + b"u."
    assert any(f.kind == "resource" for f in scan_bytes("x.pkl", blob).findings)


def test_ordinary_large_dicts_and_sets_are_fine():
    data = {"ints": dict.fromkeys(range(50_000)), "s": set(range(0, 10**6, 7)),
            "words": {f"w{i}": i for i in range(30_000)}}
    report = scan_bytes("x.pkl", pickle.dumps(data, 4))
    assert report.verdict == SAFE, report.reasons()


def _doubling_tuples(levels: int) -> bytes:
    """t0 = (), t(i+1) = (t(i), t(i)) through the memo: 6 bytes a level, 2**levels big."""
    return b")\x94" + b"".join(b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86\x94"
                               for i in range(levels))


@pytest.mark.parametrize("use", ["dict-key", "set-member", "str", "none"])
def test_tuples_sharing_items_are_bounded(use):
    # hashing t40 visits 2**40 tuples: pickle.load itself would never finish
    levels = 40
    top = b"h" + bytes([levels])
    tail = {"dict-key": b"}" + top + b"Ns", "set-member": b"\x8f(" + top + b"\x90",
            "str": b"0" + _call(_g("builtins", "str"), top), "none": b""}[use]
    blob = b"\x80\x04" + _doubling_tuples(levels) + tail + b"."
    start = time.monotonic()
    report = scan_bytes("x.pkl", blob)
    assert time.monotonic() - start < 2
    assert any(f.kind == "resource" for f in report.findings), report.reasons()
    with pytest.raises(UnsafeContentError):
        restricted_loads(blob)
    assert time.monotonic() - start < 4


def test_many_medium_tuple_keys_add_up():
    # t14 has 2**14 items expanded; 1000 distinct keys (t14, i) hash 16 million items
    blob = (b"\x80\x04" + _doubling_tuples(14) + b"}(" + b"".join(
        b"h\x0e" + _int(i) + b"\x86N" for i in range(1000)) + b"u.")
    assert any("hash" in f.detail for f in scan_bytes("x.pkl", blob).findings
               if f.kind == "resource")


def test_ordinary_nested_tuples_are_fine():
    data = {(i, (i, "x")): [(j, j) for j in range(20)] for i in range(5000)}
    assert scan_bytes("x.pkl", pickle.dumps(data, 4)).verdict == SAFE


def _object_array_state(shape: int, items: int) -> bytes:
    """``_reconstruct(ndarray, (0,), b'b')`` + BUILD (1, (shape,), dtype('O'), False, [...])."""
    dtype = _call(_g("numpy", "dtype"), _s("O8"), b"\x89\x88") + (
        b"(K\x03" + _s("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x3ftb")
    array = _call(_g("numpy.core.multiarray", "_reconstruct"), _g("numpy", "ndarray"),
                  b"(K\x00t", b"C\x01b")
    state = b"(K\x01" + _int(shape) + b"\x85" + dtype + b"\x89](" + b"K\x01" * items + b"et"
    return b"\x80\x04" + array + state + b"b."


def test_object_array_state_shorter_than_its_shape_is_refused_not_a_crash():
    # numpy 2.4 reads past the end of the list: pickle.load of these 100 bytes segfaults
    import subprocess
    import sys
    blob = _object_array_state(1000, 1)
    report = scan_bytes("x.pkl", blob)
    assert any(f.kind == "array-state" for f in report.findings), report.reasons()
    assert report.verdict == DANGEROUS
    code = ("import sys\nfrom mgattest.inspect._restricted import restricted_loads\n"
            "from mgattest.inspect.errors import UnsafeContentError\n"
            "try:\n    restricted_loads(sys.stdin.buffer.read())\n"
            "except UnsafeContentError as exc:\n    print('refused', exc.details['rule'])\n")
    run = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-500:]
    assert run.stdout.decode().strip() == "refused array-state"


def test_object_array_state_of_the_right_length_loads():
    array = restricted_loads(_object_array_state(3, 3))
    assert array.tolist() == [1, 1, 1]


def test_masked_object_array_state_shorter_than_its_shape_is_dangerous():
    import numpy as np
    blob = pickle.dumps(np.ma.masked_array([1, "a"], dtype=object, mask=[0, 1]), 4)
    assert not any(f.kind == "array-state" for f in scan_bytes("x.pkl", blob).findings)
    bad = blob.replace(b"K\x02\x85", b"M\xe8\x03\x85", 1)  # shape (2,) -> (1000,)
    assert bad != blob
    assert any(f.kind == "array-state" and f.severity == DANGEROUS
               for f in scan_bytes("x.pkl", bad).findings)


def test_text_keys_are_charged_and_do_not_hide_colliding_keys():
    """The walker's fast path for text keys (no hash to count) still charges their
    hashing work, and colliding ints mixed into the same dict are still found."""
    from mgattest.inspect._limits import Limits

    words = pickle.dumps({f"w{i}": i for i in range(500)}, 4)
    report = scan_bytes("x.pkl", words, limits=Limits(max_key_hash_work=100))
    assert any(f.kind == "resource" and "to hash" in f.detail for f in report.findings)
    assert scan_bytes("x.pkl", words).verdict == SAFE
    mixed = {f"w{i}": i for i in range(3000)}
    mixed.update(dict.fromkeys(k * _M for k in range(1, 1500)))
    report = scan_bytes("x.pkl", pickle.dumps(mixed, 4))
    assert any(f.kind == "resource" and "share the hash" in f.detail for f in report.findings)
