"""Restricted loading: benign sklearn/numpy/torch content loads, anything reaching
outside the allow-list raises before any code runs."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from mgattest.errors import InputError, VerificationError
from mgattest.inspect._restricted import (RestrictedLoadError, UnsafeContentError,
                                         restricted_joblib_load, restricted_loads,
                                         restricted_loads_all, restricted_numpy_load,
                                         restricted_torch_load)


def _load(path, *, allow_pickle=True):
    name = path.name
    if name.endswith(".joblib"):
        return restricted_joblib_load(path)
    if name.endswith(".pt"):
        return restricted_torch_load(path)
    if name.endswith((".npy", ".npz")):
        return restricted_numpy_load(path, allow_pickle=allow_pickle)
    if name.endswith(".pkl"):
        return restricted_loads_all(path.read_bytes())
    return None


def test_benign_content_loads_and_works(corpus):
    pipe = restricted_joblib_load(corpus.benign["sk_pipeline.joblib"])
    x = np.random.RandomState(1).rand(5, 4)
    import joblib
    reference = joblib.load(corpus.benign["sk_pipeline.joblib"])
    assert (pipe.predict(x) == reference.predict(x)).all()
    for method in ("zlib", "gzip", "bz2", "lzma", "xz"):
        again = restricted_joblib_load(corpus.benign[f"sk_pipeline_{method}.joblib"])
        assert (again.predict(x) == reference.predict(x)).all()
    mixed = restricted_joblib_load(corpus.benign["sk_arrays_objects.joblib"])
    assert mixed["o"].tolist() == [1, "x", None] and mixed["b"].tolist() == list(range(7))
    state = restricted_torch_load(corpus.benign["torch_state_dict.pt"])
    assert "0.weight" in state
    assert restricted_torch_load(corpus.benign["torch_legacy.pt"]).keys() == state.keys()
    assert restricted_numpy_load(corpus.benign["weights.npy"]).sum() == sum(range(100))
    assert set(restricted_numpy_load(corpus.benign["weights.npz"])) == {"a", "b"}
    for proto in range(6):
        (obj,) = restricted_loads_all(corpus.benign[f"numpy_p{proto}.pkl"].read_bytes())
        assert obj["f"].shape == (3, 4)
        (plain,) = restricted_loads_all(corpus.benign[f"plain_p{proto}.pkl"].read_bytes())
        assert plain["big"] == 10**30 and plain["tags"] == {"a", "b"}
    (ckpt,) = restricted_loads_all(corpus.benign["training_state.pkl"].read_bytes())
    assert ckpt["args"].lr == 0.1 and ckpt["rng"].rand() == np.random.RandomState(0).rand()
    for name in ("sk_forest.joblib", "sk_columns.joblib", "sk_zoo.joblib"):
        restricted_joblib_load(corpus.benign[name])


def test_every_malicious_file_is_refused_before_its_payload_runs(corpus):
    for name, (path, _kind) in corpus.malicious.items():
        if path.suffix in (".zip", ".bz2", ".gzip", ".xz"):
            continue  # not a format these loaders accept
        if name == "joblib_padding_polyglot":
            # joblib's reader sees only an array; the pickle reading is refused
            assert restricted_joblib_load(path)["a"].tolist() == [1.0] * 4
            with pytest.raises(UnsafeContentError):
                restricted_loads_all(path.read_bytes())
            assert not corpus.marker(name).exists()
            continue
        with pytest.raises((UnsafeContentError, RestrictedLoadError)) as info:
            _load(path)
        assert not corpus.marker(name).exists(), f"{name} ran its payload"
        if name not in ("truncated_after_payload",):
            assert isinstance(info.value, UnsafeContentError), (name, info.value)


def test_refusal_names_the_global():
    blob = b"\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R."
    with pytest.raises(UnsafeContentError) as info:
        restricted_loads(blob)
    assert info.value.details["module"] == "builtins" and info.value.details["name"] == "eval"
    assert isinstance(info.value, VerificationError)


def _s(text: str) -> bytes:
    return b"\x8c" + bytes([len(text)]) + text.encode()


def test_dotted_attribute_paths_are_refused():
    # protocol 4 resolves dotted names attribute by attribute: never allowed
    blob = b"\x80\x04" + _s("collections") + _s("OrderedDict.__init__") + b"\x93."
    with pytest.raises(UnsafeContentError):
        restricted_loads(blob)


def test_extra_allowed_is_exact():
    assert restricted_loads(pickle.dumps(range(3), 4)) == range(3)
    blob = b"\x80\x04" + _s("decimal") + _s("Context") + b"\x93)R."
    with pytest.raises(UnsafeContentError):
        restricted_loads(blob)
    assert type(restricted_loads(blob, [("decimal", "Context")])).__name__ == "Context"


def test_trailing_data_and_corruption():
    with pytest.raises(UnsafeContentError, match="follow the pickle stream"):
        restricted_loads(pickle.dumps(1) + pickle.dumps(2))
    assert restricted_loads_all(pickle.dumps(1) + pickle.dumps(2)) == [1, 2]
    with pytest.raises(RestrictedLoadError) as info:
        restricted_loads(pickle.dumps({"a": 1})[:-3])
    assert isinstance(info.value, InputError)
    with pytest.raises(RestrictedLoadError):
        restricted_joblib_load(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(RestrictedLoadError):
        restricted_joblib_load(b"GGUF nonsense")


def test_numpy_object_arrays_need_allow_pickle(tmp_path):
    path = tmp_path / "o.npy"
    np.save(path, np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeContentError, match="allow_pickle"):
        restricted_numpy_load(path)
    assert restricted_numpy_load(path, allow_pickle=True).tolist() == [1, "a"]


def test_persistent_ids_are_refused():
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "x" if obj == "secret" else None
    buf = io.BytesIO()
    P(buf, 2).dump(["secret"])
    with pytest.raises(UnsafeContentError, match="persistent"):
        restricted_loads(buf.getvalue())


def test_torch_full_module_needs_weights_only_opt_in(corpus):
    with pytest.raises(UnsafeContentError, match="GLOBAL"):
        restricted_torch_load(corpus.benign["torch_full_module.pt"])
