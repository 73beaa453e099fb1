"""Formats are decided once, by content, in one vocabulary (issue #9 item 12).

A file the scanner calls ``unknown`` is ``other`` to the policy whatever its name, and
``content.pickle: deny`` covers every file that is a pickle underneath.
"""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mgattest
from tests.helpers.fuzz_budget import PARSER, fuzz
from mgattest.inspect import scan_bytes
from mgattest.inspect._detect import FAMILIES, POLICY_FORMATS, policy_format
from mgattest.loading import PolicyDenied
from tests.helpers.signed_files import signed

OPAQUE = bytes([0x07, 0xFE, 0x00, 0x13]) * 64  # first byte is no pickle opcode, no magic


def write_policy(tmp, text: str) -> str:
    path = tmp / "formats-policy.yaml"
    path.write_text((tmp / "policy.yaml").read_text().replace(
        "content: {pickle: deny}", f"content: {text}"))
    return path


def test_unknown_bytes_named_bin_are_other_not_pytorch():
    report = scan_bytes("pytorch_model.bin", OPAQUE)
    assert report.format == "unknown"
    assert policy_format(report.format) == "other"
    assert report.policy_format == "other" and not report.pickled


def test_policy_allowing_pytorch_does_not_admit_an_unknown_bin(env):
    tmp, signer = env
    path, bundle = signed(tmp, signer, "pytorch_model.bin", OPAQUE)
    pol = write_policy(tmp, "{formats: [pytorch], pickle: restricted}")
    with pytest.raises(PolicyDenied, match="format 'other' is not allowed"):
        mgattest.load(path, policy=pol, bundles=[bundle])


def _npy_object() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([{"k": 1}, None], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _npz_object() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, ok=np.ones(2), obj=np.array([None], dtype=object))
    return buf.getvalue()


def _torch(legacy: bool) -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def _zip_with_pickle() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model/state.pkl", pickle.dumps({"a": 1}))
    return buf.getvalue()


def _joblib() -> bytes:
    joblib = pytest.importorskip("joblib")
    buf = io.BytesIO()
    joblib.dump({"a": np.ones(3)}, buf)
    return buf.getvalue()


PICKLED = {
    "objects.npy": _npy_object, "objects.npz": _npz_object,
    "model.pt": lambda: _torch(False), "legacy.pt": lambda: _torch(True),
    "bundle.zip": _zip_with_pickle, "est.joblib": _joblib,
    "renamed.safetensors": lambda: _torch(False), "weights.bin": lambda: pickle.dumps([1]),
}


@pytest.mark.parametrize("name", sorted(PICKLED))
def test_every_pickle_underneath_is_pickled_and_denied_by_pickle_deny(env, name):
    tmp, signer = env
    data = PICKLED[name]()
    report = scan_bytes(name, data)
    assert report.pickled, report.to_dict()
    path, bundle = signed(tmp, signer, name, data)
    with pytest.raises(PolicyDenied):
        mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle])


def test_plain_arrays_and_weights_are_not_pickled():
    buf = io.BytesIO()
    np.save(buf, np.arange(4))
    assert not scan_bytes("a.npy", buf.getvalue()).pickled
    from safetensors.numpy import save
    assert not scan_bytes("w.safetensors", save({"w": np.ones(2)})).pickled


def test_torch_archive_named_safetensors_is_torch_and_flagged():
    report = scan_bytes("model.safetensors", _torch(False))
    assert report.format == "torch-zip" and report.policy_format == "pytorch"
    assert any(f.kind == "format-mismatch" for f in report.findings)


def test_protocol_0_pickle_named_txt_is_a_pickle_not_text():
    import os
    blob = pickle.dumps(os.system, protocol=0)
    assert blob.decode("ascii")  # it is ASCII text
    report = scan_bytes("notes.txt", blob)
    assert report.format == "pickle" and report.verdict == "dangerous"


def test_text_json_and_onnx_are_recognised_without_their_names():
    assert scan_bytes("blob", b'{"vocab_size": 3}').format == "json"
    assert scan_bytes("blob", "plain words\n".encode()).format == "text"
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    data = helper.make_model(graph).SerializeToString()
    assert onnx.load_model_from_string(data)
    assert scan_bytes("blob", data).format == "onnx"


def test_every_family_is_a_policy_format():
    assert set(FAMILIES.values()) <= set(POLICY_FORMATS)
    import json
    from pathlib import Path
    schema = json.loads((Path(mgattest.__file__).parent / "policy" / "schema.json").read_text())
    text = json.dumps(schema)
    for fmt in POLICY_FORMATS:
        assert f'"{fmt}"' in text


@fuzz(300, PARSER)
@given(name=st.sampled_from(["a.bin", "a.pt", "a.safetensors", "a.onnx", "a.json", "a"]),
       data=st.binary(min_size=1, max_size=600))
def test_every_label_the_scanner_returns_has_a_policy_format(name, data):
    report = scan_bytes(name, data)
    assert report.format in FAMILIES


@pytest.mark.parametrize("header_len", [93, 0x8B1F, 0x9C78, 0x5E78, 0x4246 + (0x5A << 16)])
def test_safetensors_whose_header_length_looks_like_a_compression_magic(header_len):
    """93 starts with ']\\0\\0' (lzma), 0x8b1f with 1f 8b (gzip), 0x9c78 with 'x\\x9c' (zlib)."""
    import json
    import struct
    header = json.dumps({"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}).encode()
    header += b" " * (header_len - len(header))
    blob = struct.pack("<Q", header_len) + header + b"\x01\x02\x03\x04"
    from safetensors.numpy import load
    assert load(blob)["w"].tolist() == [1, 2, 3, 4]
    report = scan_bytes("model.safetensors", blob)
    assert report.format == "safetensors" and report.verdict == "safe", report.reasons()


def test_torch_archive_whose_data_pkl_holds_an_object_array_is_scanned():
    torch = pytest.importorskip("torch")
    import os

    class Payload:
        def __reduce__(self):
            return os.system, ("true",)

    buf = io.BytesIO()
    torch.save({"w": torch.ones(2), "o": np.array([Payload()], dtype=object)}, buf)
    report = scan_bytes("model.pt", buf.getvalue())
    assert report.format == "torch-zip" and report.verdict == "dangerous"
    assert any(f.module in ("posix", "os") for f in report.findings)
