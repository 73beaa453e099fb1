"""The Keras checks against archives written by the real Keras 3 saving code (issue #16
item 3): real models raise no false alarm, real Lambda layers and the public safe-mode
bypass shapes (edited into a real archive the way the published exploits do) are flagged.

Keras runs on the torch backend (the only one installed with the test extras); the
backend is chosen here, before Keras is imported.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest

os.environ["KERAS_BACKEND"] = "torch"  # must precede the first `import keras`
pytest.importorskip("torch", reason="Keras tests run on the torch backend; torch missing")
keras = pytest.importorskip("keras", reason="keras is not installed (pip install keras)")
h5py = pytest.importorskip("h5py", reason="h5py (for Keras .h5 saves) is not installed")

from mgattest.inspect import scan_bytes  # after the backend is chosen
from tests.helpers.keras_payloads import function_ref

pytestmark = [pytest.mark.interop,
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

L = keras.layers


def alarms(report) -> list[str]:
    return [f"{f.severity}: {f.detail}" for f in report.findings if f.severity != "info"]


def saved(model, tmp_path, suffix: str = ".keras") -> bytes:
    path = tmp_path / f"model{suffix}"
    model.save(path)
    return path.read_bytes()


def sequential(*layers):
    return keras.Sequential([keras.Input((8,)), *layers])


def with_config(archive: bytes, edit) -> bytes:
    """The archive with ``edit(config)`` applied to its config.json, other members kept."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            dst.writestr(name, data)
    return out.getvalue()


def only_config(archive: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        dst.writestr("config.json", src.read("config.json"))
    return out.getvalue()


# --- real models: no false alarm --------------------------------------------------------

def _functional_cnn():
    inp = keras.Input((16, 16, 3))
    x = L.Rescaling(1 / 255)(inp)
    x = L.MaxPooling2D()(L.Conv2D(4, 3, activation="relu")(x))
    return keras.Model(inp, L.Dense(1)(L.Flatten()(x)))


def _functional_attention():
    inp = keras.Input((5, 8))
    x = L.MultiHeadAttention(2, 4)(inp, inp)
    return keras.Model(inp, L.LayerNormalization()(x + inp))


def _recurrent():
    return keras.Sequential([keras.Input((10,), dtype="int32"), L.Embedding(50, 8),
                             L.LSTM(4, return_sequences=True), L.GRU(4),
                             L.BatchNormalization(), L.Dropout(0.1),
                             L.Dense(2, activation="softmax")])


def _adapted_normalization():
    import numpy as np
    norm = L.Normalization()
    norm.adapt(np.random.RandomState(0).rand(10, 8))
    return sequential(norm, L.Dense(1))


REAL_MODELS = {
    "dense": (lambda: sequential(L.Dense(3, activation="relu"), L.Dense(1)), None),
    "dense-adam": (lambda: sequential(L.Dense(1)), {"optimizer": "adam", "loss": "mse"}),
    "functional-cnn": (_functional_cnn, {"optimizer": keras.optimizers.AdamW(),
                                         "loss": keras.losses.BinaryCrossentropy()}),
    "functional-attention": (_functional_attention, None),
    "recurrent-rmsprop-schedule": (_recurrent, {
        "optimizer": keras.optimizers.RMSprop(
            keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)),
        "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy", keras.metrics.AUC()]}),
    "builtin-loss-functions": (lambda: sequential(L.Dense(4)), {
        "optimizer": "sgd", "loss": keras.losses.mean_squared_error,
        "metrics": [keras.metrics.mean_absolute_error]}),
    "adapted-normalization": (_adapted_normalization, None),
}


@pytest.mark.parametrize("name", sorted(REAL_MODELS))
def test_real_keras_models_have_no_findings(name, tmp_path):
    """Functional models, compiled models (torch optimizer classes live under
    keras.src.backend) and built-in loss functions (saved as module "builtins") are
    Keras's own code: flagging them was a false alarm on every real compiled model."""
    build, compile_args = REAL_MODELS[name]
    model = build()
    if compile_args:
        model.compile(**compile_args)
    report = scan_bytes("model.keras", saved(model, tmp_path))
    assert report.format == "keras"
    assert alarms(report) == [], alarms(report)
    assert report.verdict == "safe"


def test_real_legacy_h5_models_have_no_findings(tmp_path):
    model = _functional_cnn()
    model.compile(optimizer="adam", loss=keras.losses.mean_squared_error)
    report = scan_bytes("model.h5", saved(model, tmp_path, ".h5"))
    assert alarms(report) == [] and report.verdict == "safe"


# --- real Lambda layers --------------------------------------------------------------

def lambda_model():
    return sequential(L.Lambda(lambda x: x * 2), L.Dense(1))


def test_real_lambda_layer_is_dangerous(tmp_path):
    report = scan_bytes("model.keras", saved(lambda_model(), tmp_path))
    assert report.verdict == "dangerous"
    assert any(f.kind == "keras-lambda" and "layer lambda" in f.detail
               for f in report.findings)


@pytest.mark.parametrize("filename", ["model.keras", "weights.zip", "blob"])
def test_real_archive_reduced_to_config_json_is_still_keras(filename, tmp_path):
    report = scan_bytes(filename, only_config(saved(lambda_model(), tmp_path)))
    assert report.format == "keras"
    assert report.verdict == "dangerous"


def test_real_legacy_h5_lambda_is_dangerous(tmp_path):
    report = scan_bytes("model.h5", saved(lambda_model(), tmp_path, ".h5"))
    assert report.verdict == "dangerous"
    assert any(f.kind == "keras-lambda" for f in report.findings)


def test_h5_marshalled_lambda_outside_a_lambda_layer_is_dangerous(tmp_path):
    """A __lambda__ object as a Dense activation (Keras func_loads it in unsafe mode):
    in the HDF5 path it was only 'suspicious'."""
    path = tmp_path / "model.h5"
    sequential(L.Dense(1)).save(path)
    code = lambda_model().layers[0].get_config()["function"]
    with h5py.File(path, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        dense = next(lyr for lyr in config["config"]["layers"] if lyr["class_name"] == "Dense")
        dense["config"]["activation"] = code
        h5.attrs["model_config"] = json.dumps(config)
    report = scan_bytes("model.h5", path.read_bytes())
    assert report.verdict == "dangerous"
    assert any(f.kind == "keras-lambda" for f in report.findings)


# --- public safe-mode bypass shapes edited into a real archive -------------------------

def set_initializer(obj: dict):
    def edit(config: dict) -> None:
        dense = next(lyr for lyr in config["config"]["layers"] if lyr["class_name"] == "Dense")
        dense["config"]["kernel_initializer"] = obj
    return edit


BYPASS_SHAPES = {
    "enable_unsafe_deserialization": function_ref("keras.config",
                                                  "enable_unsafe_deserialization"),
    "enable_unsafe_deserialization-__function__": function_ref(
        "keras.config", "enable_unsafe_deserialization", "__function__"),
    "get_file-function": function_ref("keras.utils", "get_file"),
    "get_file-internal-path": function_ref("keras.src.utils.file_utils", "get_file"),
    "get_file-object": {"module": "keras.utils", "class_name": "get_file",
                        "config": {"origin": "http://127.0.0.1:9/x", "fname": "/tmp/x"},
                        "registered_name": None},
    "load_model-object": {"module": "keras.models", "class_name": "load_model",
                          "config": {"filepath": "/tmp/other.keras"}},
    "internal-models-helper": {"module": "keras.src.models.model",
                               "class_name": "model_from_json", "config": {}},
    "save_img": function_ref("keras.preprocessing.image", "save_img"),
    "save_img-object": {"module": "keras.preprocessing.image", "class_name": "save_img",
                        "config": {"path": "/tmp/x.png"}},
    "dataset-download": function_ref("keras.datasets.mnist", "load_data"),
    "dataset-download-object": {"module": "keras.datasets.mnist", "class_name": "load_data",
                                "config": {}},
    "builtins-exec": function_ref("builtins", "exec"),
    "builtins-open": {"module": "builtins", "class_name": "function", "config": "open",
                      "registered_name": "open"},
    "backend-optimizer-module-function": {
        "module": "keras.src.backend.torch.optimizers.torch_adam", "class_name": "torch",
        "config": {}},
}


@pytest.mark.parametrize("shape", sorted(BYPASS_SHAPES))
def test_bypass_shapes_in_a_real_archive_are_dangerous(shape, tmp_path):
    model = sequential(L.Dense(1))
    model.compile(optimizer="adam", loss="mse")
    archive = with_config(saved(model, tmp_path), set_initializer(BYPASS_SHAPES[shape]))
    report = scan_bytes("model.keras", archive)
    assert report.verdict == "dangerous", alarms(report)
    module = BYPASS_SHAPES[shape]["module"]
    assert [f for f in report.findings
            if f.kind == "keras-function" and f.severity == "dangerous" and f.module == module]


def test_bypass_shape_in_a_real_legacy_h5_is_dangerous(tmp_path):
    path = tmp_path / "model.h5"
    sequential(L.Dense(1)).save(path)
    with h5py.File(path, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        set_initializer(function_ref("keras.datasets.mnist", "load_data"))(config)
        h5.attrs["model_config"] = json.dumps(config)
    assert scan_bytes("model.h5", path.read_bytes()).verdict == "dangerous"


# --- custom code -------------------------------------------------------------------------

@pytest.mark.parametrize("defined_in", ["__main__", "my_project.models"])
def test_real_unregistered_subclassed_model_is_suspicious(defined_in, tmp_path):
    """Keras writes module null for a subclass defined in a script or notebook
    (``__main__``); loading needs the loader to supply that code, so it is a custom
    object like one from an importable module."""
    class Doubler(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = L.Dense(1)

        def call(self, x):
            return self.dense(x)

    Doubler.__module__ = defined_in
    model = Doubler()
    model(keras.ops.ones((1, 8)))
    report = scan_bytes("model.keras", saved(model, tmp_path))
    assert report.verdict == "suspicious"
    assert any(f.kind == "keras-custom" and "Doubler" in f.detail for f in report.findings)
