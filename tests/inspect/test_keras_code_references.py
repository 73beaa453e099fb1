"""Keras configs that name code are flagged, however the archive is laid out
(issue #16 item 3)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from mgattest.inspect import scan_bytes
from tests.helpers.keras_payloads import function_ref


def keras_zip(config: dict, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def sequential(*layers: dict) -> dict:
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": "s", "layers": list(layers)}}


LAMBDA = {"module": "keras.layers", "class_name": "Lambda",
          "config": {"name": "l", "function": {"class_name": "__lambda__",
                                               "config": {"code": "4wEAAAAA"}}}}
DENSE = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2},
         "registered_name": None}


def test_archive_with_only_config_json_is_keras_and_its_lambda_found():
    report = scan_bytes("model.keras", keras_zip(sequential(LAMBDA)))
    assert report.format == "keras"
    assert report.verdict == "dangerous"
    assert any(f.kind == "keras-lambda" for f in report.findings)


def test_keras_recognised_by_content_whatever_the_name():
    report = scan_bytes("weights.zip", keras_zip(sequential(LAMBDA)))
    assert report.format == "keras" and report.verdict == "dangerous"


@pytest.mark.parametrize("module,name,class_name", [
    ("keras.config", "enable_unsafe_deserialization", "function"),
    ("keras.config", "enable_unsafe_deserialization", "__function__"),
    ("keras.utils", "get_file", "function"),
    ("keras.src.utils.file_utils", "get_file", "function"),
    ("keras.saving", "load_model", "__function__"),
    ("builtins", "exec", "function"),
    ("os", "system", "__function__"),
])
def test_function_references_outside_math_are_dangerous(module, name, class_name):
    dense = dict(DENSE, config={"name": "d", "units": 2,
                                "kernel_initializer": function_ref(module, name, class_name)})
    for blob in (keras_zip(sequential(dense)),
                 keras_zip(sequential(dense), {"metadata.json": b"{}"})):
        report = scan_bytes("model.keras", blob)
        assert report.verdict == "dangerous", report.reasons()
        assert any(f.kind == "keras-function" for f in report.findings)


def test_tool_namespace_objects_are_dangerous():
    obj = {"module": "keras.utils", "class_name": "get_file",
           "config": {"origin": "http://x", "fname": "/tmp/x"}}
    report = scan_bytes("model.keras", keras_zip(sequential(dict(DENSE, config={
        "name": "d", "units": 2, "bias_initializer": obj}))))
    assert report.verdict == "dangerous"


def test_math_function_reference_is_suspicious_and_plain_model_safe():
    dense = dict(DENSE, config={"name": "d", "units": 2,
                                "activation": function_ref("keras.activations", "relu")})
    assert scan_bytes("m.keras", keras_zip(sequential(dense))).verdict == "suspicious"
    plain = keras_zip(sequential(DENSE), {"metadata.json": b'{"keras_version": "3.5.0"}',
                                          "model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 8})
    assert scan_bytes("m.keras", plain).verdict == "safe"


def test_legacy_h5_inside_a_keras_archive_is_not_skipped():
    h5 = b"\x89HDF\r\n\x1a\n" + json.dumps(sequential(LAMBDA)).encode()
    report = scan_bytes("m.keras", keras_zip(sequential(DENSE), {"old_model.h5": h5}))
    assert report.verdict == "dangerous"


def test_h5_function_references_are_flagged():
    h5 = b"\x89HDF\r\n\x1a\n" + json.dumps(sequential(dict(DENSE, config={
        "kernel_initializer": function_ref("keras.config", "enable_unsafe_deserialization")}))
    ).encode()
    assert scan_bytes("m.h5", h5).verdict == "dangerous"
