"""Format checks: safetensors, ONNX external data, GGUF, Keras, npy/npz, zip damage,
compression bombs, nesting, polyglots, directories and the CLI."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.corpus import build_gguf, build_onnx_with_external
from mgattest.inspect import (DANGEROUS, MALFORMED, SAFE, SUSPICIOUS, InspectInputError,
                              Limits, scan_bytes, scan_path)

EVIL = b"cos\nsystem\n(S'true'\ntR."


# --- safetensors ------------------------------------------------------------------------

def _st(header: dict, data: bytes, pad: bytes = b"") -> bytes:
    raw = json.dumps(header).encode() + pad
    return struct.pack("<Q", len(raw)) + raw + data


def _st_ok() -> tuple[dict, bytes]:
    return ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]},
             "__metadata__": {"k": "v"}}, b"\x00" * 16)


def test_safetensors_valid_matches_the_library(tmp_path):
    from safetensors.numpy import load, save
    blob = save({"w": np.ones((2, 3), dtype=np.float32), "b": np.zeros(2, dtype=np.int8)})
    assert scan_bytes("m.safetensors", blob).verdict == SAFE
    header, data = _st_ok()
    blob = _st(header, data, pad=b"   ")
    assert scan_bytes("m.safetensors", blob).verdict == SAFE
    assert load(blob)["a"].shape == (2,)


@pytest.mark.parametrize("mutate,expect", [
    (lambda h, d: (h | {"a": {**h["a"], "data_offsets": [0, 9]}}, d), "needs"),
    (lambda h, d: (h | {"b": {**h["b"], "data_offsets": [4, 12]}}, d), "overlap"),
    (lambda h, d: (h | {"b": {**h["b"], "data_offsets": [8, 24]}}, d), "outside"),
    (lambda h, d: (h | {"a": {**h["a"], "dtype": "F33"}}, d), "unknown dtype"),
    (lambda h, d: (h | {"a": {**h["a"], "shape": [-2]}}, d), "non-negative"),
    (lambda h, d: (h | {"a": {**h["a"], "extra": 1}}, d), "exactly"),
    (lambda h, d: (h, d + b"\x00" * 8), "unindexed"),
    (lambda h, d: ({"b": h["b"]}, d), "hole"),
    (lambda h, d: (h | {"__metadata__": {"k": 1}}, d), "__metadata__"),
])
def test_safetensors_defects_are_malformed_and_the_library_agrees(mutate, expect):
    from safetensors.numpy import load
    header, data = mutate(*_st_ok())
    blob = _st(header, data)
    report = scan_bytes("m.safetensors", blob)
    assert report.verdict == MALFORMED
    assert any(expect in f.detail for f in report.findings), report.reasons()
    if expect not in ("unindexed", "hole", "exactly"):  # the library is laxer here
        with pytest.raises(Exception):
            load(blob)


def test_safetensors_header_bounds():
    assert scan_bytes("m.safetensors", b"\x01").verdict == MALFORMED
    huge = struct.pack("<Q", 2**40) + b"{}"
    assert "exceeds the limit" in scan_bytes("m.safetensors", huge).reasons()[0]
    past = struct.pack("<Q", 100) + b"{}"
    assert "past the end" in scan_bytes("m.safetensors", past).reasons()[0]
    dup = b'{"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "a": 1}'
    blob = struct.pack("<Q", len(dup)) + dup
    assert "duplicate" in scan_bytes("m.safetensors", blob).reasons()[0]
    notjson = struct.pack("<Q", 5) + b"{nope"
    assert scan_bytes("m.safetensors", notjson).verdict == MALFORMED


# --- ONNX -------------------------------------------------------------------------------

@pytest.mark.parametrize("location,severity", [
    ("weights.bin", SAFE), ("sub/w.bin", SAFE), ("/etc/passwd", DANGEROUS),
    ("../outside.bin", DANGEROUS), ("sub/../../x", DANGEROUS), ("C:\\x.bin", DANGEROUS),
])
def test_onnx_external_locations(tmp_path, location, severity):
    model_dir = tmp_path / "m"
    (model_dir / "sub").mkdir(parents=True)
    (model_dir / "weights.bin").write_bytes(b"\x00" * 16)
    (model_dir / "sub" / "w.bin").write_bytes(b"\x00" * 16)
    (model_dir / "model.onnx").write_bytes(build_onnx_with_external(location, 16))
    (report,) = scan_path(model_dir / "model.onnx")
    assert report.verdict == severity, report.reasons()


def test_onnx_symlink_escape_and_missing_data(tmp_path):
    import onnx
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"\x00" * 16)
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    os.symlink(outside, model_dir / "w.bin")
    (model_dir / "model.onnx").write_bytes(build_onnx_with_external("w.bin", 16))
    (report,) = scan_path(model_dir / "model.onnx")
    assert report.verdict == DANGEROUS and "resolves outside" in report.reasons()[0]
    (model_dir / "model2.onnx").write_bytes(build_onnx_with_external("gone.bin", 16))
    (report,) = scan_path(model_dir / "model2.onnx")
    assert report.verdict == MALFORMED
    # the real onnx library parses what we build (we test against the real format)
    model = onnx.load_model_from_string(build_onnx_with_external("w.bin", 16))
    assert model.graph.initializer[0].external_data[0].value == "w.bin"


def test_onnx_garbage_is_malformed():
    assert scan_bytes("m.onnx", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").verdict \
        == MALFORMED


# --- GGUF -------------------------------------------------------------------------------

def test_gguf_checks():
    assert scan_bytes("m.gguf", build_gguf()).verdict == SAFE
    assert scan_bytes("m.gguf", build_gguf(tensor_offset=4096)).verdict == MALFORMED
    assert scan_bytes("m.gguf", build_gguf(tensor_offset=7)).verdict == MALFORMED
    assert scan_bytes("m.gguf", build_gguf()[:40]).verdict == MALFORMED
    absurd = b"GGUF" + struct.pack("<IQQ", 3, 2**60, 1)
    assert scan_bytes("m.gguf", absurd).verdict == MALFORMED
    long_key = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**62)
    assert "past the end" in scan_bytes("m.gguf", long_key).reasons()[0]


def test_gguf_template_injection_flagged():
    def gstr(t: bytes) -> bytes:
        return struct.pack("<Q", len(t)) + t
    tpl = b"{{ ''.__class__.__mro__[1].__subclasses__() }}"
    blob = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr(b"tokenizer.chat_template")
            + struct.pack("<I", 8) + gstr(tpl))
    assert scan_bytes("m.gguf", blob).verdict == SUSPICIOUS


# --- Keras ------------------------------------------------------------------------------

def _keras(config: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metadata.json", "{}")
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", b"")
    return buf.getvalue()


def test_keras_lambda_and_custom_objects():
    lam = {"module": "keras.layers", "class_name": "Lambda",
           "config": {"name": "l", "function": {"class_name": "__lambda__",
                                                "config": {"code": "4wEAAA=="}}}}
    seq = {"module": "keras", "class_name": "Sequential", "config": {"layers": [lam]}}
    assert scan_bytes("m.keras", _keras(seq)).verdict == DANGEROUS
    custom = {"module": "evil_pkg.layers", "class_name": "Backdoor", "config": {},
              "registered_name": "Custom>Backdoor"}
    assert scan_bytes("m.keras", _keras(custom)).verdict == SUSPICIOUS
    h5 = b"\x89HDF\r\n\x1a\n" + b"\x00" * 32 + b'{"class_name": "Lambda", "config": {}}'
    assert scan_bytes("m.h5", h5).verdict == DANGEROUS


# --- numpy ------------------------------------------------------------------------------

def test_npy_checks(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.arange(10, dtype=np.int32))
    blob = buf.getvalue()
    assert scan_bytes("a.npy", blob).verdict == SAFE
    assert scan_bytes("a.npy", blob[:-4]).verdict == MALFORMED
    assert scan_bytes("a.npy", blob + pickle.dumps(1)).verdict == SUSPICIOUS
    bad_header = blob[:10] + b"{'descr': __import__('os'), 'shape': (1,)}".ljust(
        len(blob) - 10, b" ")
    assert scan_bytes("a.npy", bad_header).verdict == MALFORMED
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    report = scan_bytes("o.npy", buf.getvalue())
    assert report.verdict == SAFE and any(f.kind == "object-array" for f in report.findings)


# --- zip damage -------------------------------------------------------------------------

def _zip(members: dict[str, bytes], method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_crc_mismatch_is_malformed():
    blob = bytearray(_zip({"m/data.pkl": pickle.dumps([1, 2, 3], 2)}))
    idx = blob.find(b"]q\x00")  # first bytes of the pickle body
    blob[idx + 1] ^= 0x01
    report = scan_bytes("m.pt", bytes(blob))
    assert report.verdict == MALFORMED and any("CRC" in r or "Bad" in r
                                               for r in report.reasons())


def test_zip_local_vs_central_name_mismatch():
    blob = bytearray(_zip({"a/data.pkl": pickle.dumps(1), "a/version": b"3"}))
    local = blob.find(b"a/data.pkl")  # first occurrence: the local header
    blob[local:local + 10] = b"a/evil.pkl"
    report = scan_bytes("m.pt", bytes(blob))
    assert any(f.kind == "zip-mismatch" for f in report.findings)
    assert report.verdict != SAFE


def test_zip_duplicate_names_and_encryption_flag():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/data.pkl", pickle.dumps(1))
        with pytest.warns(UserWarning):
            zf.writestr("a/data.pkl", EVIL)
    report = scan_bytes("m.pt", buf.getvalue())
    assert report.verdict == DANGEROUS
    assert any(f.kind == "zip-duplicate" for f in report.findings)
    blob = bytearray(_zip({"x.pkl": pickle.dumps(1)}))
    central = blob.find(b"PK\x01\x02")
    blob[central + 8] |= 0x01  # encryption flag in the central directory
    assert scan_bytes("m.zip", bytes(blob)).verdict == MALFORMED


def test_zip_bomb_is_bounded():
    blob = _zip({"big.pkl": b"N" * (8 << 20) + b"."}, method=zipfile.ZIP_DEFLATED)
    assert len(blob) < 100_000
    report = scan_bytes("m.zip", blob, limits=Limits(max_decompressed_bytes=1 << 20))
    assert report.verdict == MALFORMED
    report = scan_bytes("m.zip", blob, limits=Limits(max_compression_ratio=100))
    assert any(f.kind == "zip-bomb" for f in report.findings)


def test_gzip_bomb_is_bounded():
    blob = gzip.compress(b"\x00" * (16 << 20))
    report = scan_bytes("m.joblib", blob, limits=Limits(max_decompressed_bytes=1 << 20))
    assert report.verdict == MALFORMED and "inflates" in report.reasons()[0]
    assert scan_bytes("m.joblib", blob[:200]).verdict == MALFORMED  # truncated stream


def test_nesting_depth_is_bounded():
    blob = EVIL
    for _ in range(8):
        blob = _zip({"inner.zip": blob})
    report = scan_bytes("m.zip", blob)
    assert report.verdict == MALFORMED
    assert any("nested too deeply" in f.detail for f in report.findings)


def test_pickle_zip_polyglot():
    polyglot = pickle.dumps({"ok": 1}, 2) + _zip({"x/data.pkl": EVIL})
    report = scan_bytes("m.pkl", polyglot)
    assert any(f.kind == "polyglot" for f in report.findings)
    assert report.verdict != SAFE


def test_torch_legacy_format_stops_at_storage_bytes(tmp_path):
    import torch
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.arange(1000, dtype=torch.float32)}, path,
               _use_new_zipfile_serialization=False)
    (report,) = scan_path(path)
    assert report.format == "torch-legacy" and report.verdict == SAFE
    assert any(f.kind == "raw-storage" for f in report.findings)


# --- paths, directories, CLI ------------------------------------------------------------

def test_directory_scan_symlinks_and_special_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "w.pkl").write_bytes(pickle.dumps([1]))
    os.symlink("/etc/hostname", model / "link.bin")
    os.mkfifo(model / "fifo")
    reports = {Path(r.path).name: r for r in scan_path(model)}
    assert reports["config.json"].verdict == SAFE
    assert reports["w.pkl"].verdict == SAFE
    assert reports["link.bin"].verdict == MALFORMED
    assert reports["fifo"].verdict == MALFORMED
    with pytest.raises(InspectInputError):
        scan_path(tmp_path / "nope")


def test_cli_inspect_exit_codes_and_json(tmp_path):
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps({"a": 1}))
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(EVIL)
    cli = [sys.executable, "-m", "mgattest"]
    proc = subprocess.run(cli + ["inspect", str(good)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(cli + ["inspect", "--json", str(good), str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["verdict"] == DANGEROUS
    assert [f["verdict"] for f in doc["files"]] == [SAFE, DANGEROUS]
    assert doc["files"][1]["findings"][0]["module"] == "os"
    proc = subprocess.run(cli + ["inspect", str(tmp_path / "missing")], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = subprocess.run(cli + ["inspect", "--allow", "nonsense", str(good)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    custom = tmp_path / "custom.pkl"
    custom.write_bytes(b"\x80\x04\x8c\x05mypkg\x8c\x05Layer\x93)\x81.")
    proc = subprocess.run(cli + ["inspect", str(custom)], capture_output=True, text=True)
    assert proc.returncode == 1 and "SUSPICIOUS" in proc.stdout
    proc = subprocess.run(cli + ["inspect", "--allow", "mypkg:Layer", str(custom)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_scanner_needs_no_ml_framework(tmp_path):
    """The scanner runs with torch, sklearn, numpy and joblib unimportable."""
    blob = pickle.dumps({"a": [1, 2]}, 4)
    (tmp_path / "x.pkl").write_bytes(blob)
    (tmp_path / "bad.pkl").write_bytes(EVIL)
    code = (
        "import sys\n"
        "for m in ('torch', 'sklearn', 'numpy', 'joblib', 'safetensors', 'onnx'):\n"
        "    sys.modules[m] = None\n"
        "from mgattest.inspect import scan_path\n"
        f"r = scan_path({str(tmp_path)!r})\n"
        "print(sorted((x.path.rsplit('/', 1)[1], x.verdict) for x in r))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "('bad.pkl', 'dangerous')" in proc.stdout and "('x.pkl', 'safe')" in proc.stdout


# --- properties: no parser crashes on arbitrary or mutated input --------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_NAMES = ["m.safetensors", "m.gguf", "m.onnx", "m.npy", "m.zip", "m.keras", "m.pt",
          "m.joblib", "m.h5", "m.bin"]
_VALID: dict[str, bytes] = {}


def _valid_samples() -> dict[str, bytes]:
    if not _VALID:
        header, data = _st_ok()
        _VALID["m.safetensors"] = _st(header, data)
        _VALID["m.gguf"] = build_gguf()
        _VALID["m.onnx"] = build_onnx_with_external("w.bin", 16)
        buf = io.BytesIO()
        np.save(buf, np.array([1, "a"], dtype=object), allow_pickle=True)
        _VALID["m.npy"] = buf.getvalue()
        _VALID["m.pt"] = _zip({"a/data.pkl": pickle.dumps({"w": [1, 2]}, 2), "a/version": b"3"},
                              method=zipfile.ZIP_DEFLATED)
        _VALID["m.joblib"] = gzip.compress(pickle.dumps({"x": (1, 2)}, 4))
    return _VALID


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(_NAMES), data=st.binary(max_size=400))
def test_property_arbitrary_bytes_never_crash(name, data):
    report = scan_bytes(name, data)
    assert report.verdict in (SAFE, SUSPICIOUS, MALFORMED, DANGEROUS)
    json.dumps(report.to_dict())


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(["m.safetensors", "m.gguf", "m.onnx", "m.npy", "m.pt",
                             "m.joblib"]),
       where=st.integers(0, 10_000), value=st.integers(0, 255),
       cut=st.booleans())
def test_property_mutated_valid_files_never_crash(name, where, value, cut):
    blob = bytearray(_valid_samples()[name])
    assert scan_bytes(name, bytes(blob)).verdict == SAFE
    i = where % len(blob)
    if cut:
        blob = blob[:i]
    else:
        blob[i] = value
    report = scan_bytes(name, bytes(blob))
    assert report.verdict in (SAFE, SUSPICIOUS, MALFORMED, DANGEROUS)


def test_tar_archives_are_scanned(tmp_path):
    import tarfile
    path = tmp_path / "m.tar"
    with tarfile.open(path, "w") as tf:
        for name, blob in (("ok.pkl", pickle.dumps(1)), ("bad/evil.pkl", EVIL)):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    (report,) = scan_path(path)
    assert report.format == "tar" and report.verdict == DANGEROUS
    assert any(f.member == "bad/evil.pkl" for f in report.findings)


def test_load_scan_resolves_onnx_external_data_beside_the_file(tmp_path):
    """mgattest.load scans from memory but still resolves ONNX external data on disk,
    relative to the .onnx file: data that is not there makes the file malformed."""
    from mgattest.loading import read_model_bytes, scan_model

    model_dir = tmp_path / "m"
    (model_dir / "sub").mkdir(parents=True)
    (model_dir / "sub" / "w.bin").write_bytes(b"\x00" * 16)
    (model_dir / "sub" / "model.onnx").write_bytes(build_onnx_with_external("w.bin", 16))
    (model_dir / "sub" / "model2.onnx").write_bytes(build_onnx_with_external("gone.bin", 16))
    reports = scan_model(read_model_bytes(model_dir))
    assert reports["sub/model.onnx"].verdict == SAFE
    assert reports["sub/model2.onnx"].verdict == MALFORMED
