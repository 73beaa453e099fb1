"""Verify-then-load with real signed bundles (key mode, embedded local log)."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

import mgattest
import mgattest.errors
from mgattest.attest._keys import generate_signer
from mgattest.attest._sign import DigestOptions, SignOptions, sign_model, write_bundle_file
from mgattest.loading import PolicyDenied, VerificationCache, read_model_bytes
from tests.helpers.signed_files import signed

def st_bytes(tensors):
    import safetensors.numpy as sn
    return sn.save(tensors)


def test_safetensors_numpy_and_torch(env):
    tmp, signer = env
    tensors = {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}
    path, bundle = signed(tmp, signer, "m.safetensors", st_bytes(tensors))
    got = mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle])
    np.testing.assert_array_equal(got["w"], tensors["w"])
    torch = pytest.importorskip("torch")
    got_t = mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle], framework="torch")
    assert isinstance(got_t["w"], torch.Tensor) and got_t["w"].shape == (3, 4)


def test_tampered_file_denied_and_on_fail_none(env):
    tmp, signer = env
    path, bundle = signed(tmp, signer, "m.safetensors", st_bytes({"a": np.zeros(4)}))
    path.write_bytes(st_bytes({"a": np.ones(4)}))
    with pytest.raises(PolicyDenied) as exc:
        mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle])
    verdict = exc.value.verdict
    assert not verdict.allowed and any(c.id == "model.files" for c in verdict.failures)
    assert exc.value.exit_code == 1
    assert mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle], on_fail="none") is None


def test_file_swapped_during_verification_loads_verified_bytes(env, monkeypatch):
    """TOCTOU: the file is replaced after it was read and while bundles are verified;
    the loaded object is the verified one, not the replacement."""
    tmp, signer = env
    original = {"w": np.full(8, 7.0, dtype=np.float32)}
    path, bundle = signed(tmp, signer, "m.safetensors", st_bytes(original))
    import mgattest.loading as load_mod
    real = load_mod.verify_model_bytes
    swapped = []

    def swap_then_verify(*args, **kwargs):
        evil = tmp / "evil.safetensors"
        evil.write_bytes(st_bytes({"w": np.full(8, 666.0, dtype=np.float32)}))
        os.replace(evil, path)  # atomic swap of the path being loaded
        swapped.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(load_mod, "verify_model_bytes", swap_then_verify)
    got = mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle])
    assert swapped and np.array_equal(got["w"], original["w"])
    monkeypatch.setattr(load_mod, "verify_model_bytes", real)
    with pytest.raises(PolicyDenied):  # the replacement itself is not signed
        mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle])


def test_numpy_plain_and_object_arrays(env):
    tmp, signer = env
    buf = io.BytesIO()
    np.save(buf, np.arange(5, dtype=np.int64), allow_pickle=False)
    path, bundle = signed(tmp, signer, "a.npy", buf.getvalue())
    np.testing.assert_array_equal(mgattest.load(path, policy=tmp / "policy.yaml",
                                                bundles=[bundle]), np.arange(5))
    obj = io.BytesIO()
    np.save(obj, np.array([{"k": 1}, None], dtype=object), allow_pickle=True)
    opath, obundle = signed(tmp, signer, "o.npy", obj.getvalue())
    with pytest.raises((PolicyDenied, mgattest.errors.MgattestError)):
        mgattest.load(opath, policy=tmp / "policy.yaml", bundles=[obundle])


def test_torch_checkpoint_weights_only(env):
    torch = pytest.importorskip("torch")
    tmp, signer = env
    buf = io.BytesIO()
    torch.save({"w": torch.arange(3.0)}, buf)
    path, bundle = signed(tmp, signer, "m.pt", buf.getvalue())
    # a torch checkpoint is a pickle underneath: pickle: deny refuses it (issue #9 item 12)
    with pytest.raises(PolicyDenied, match="unpickling"):
        mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle])
    got = mgattest.load(path, policy=tmp / "policy-restricted.yaml", bundles=[bundle])
    assert torch.equal(got["w"], torch.arange(3.0))


def test_onnx_model(env):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    tmp, signer = env
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    data = helper.make_model(graph).SerializeToString()
    path, bundle = signed(tmp, signer, "m.onnx", data)
    got = mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle])
    assert isinstance(got, onnx.ModelProto) and got.graph.node[0].op_type == "Relu"


def test_onnx_external_data_refused():
    from onnx import TensorProto, helper
    from mgattest.loading._loaders import UnsafeContentError, deserialize
    t = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    t.data_location = TensorProto.EXTERNAL
    del t.float_data[:]
    t.external_data.add(key="location", value="../../etc/passwd")
    graph = helper.make_graph([], "g", [], [], initializer=[t])
    data = helper.make_model(graph).SerializeToString()
    with pytest.raises(UnsafeContentError, match="external data"):
        deserialize("m.onnx", data, "onnx")


def test_pickle_denied_by_policy(env):
    import pickle
    tmp, signer = env
    path, bundle = signed(tmp, signer, "m.pkl", pickle.dumps({"a": [1, 2]}))
    with pytest.raises(PolicyDenied) as exc:
        mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle])
    assert any(c.id == "model.content" for c in exc.value.verdict.failures)


def test_directory_model_returns_dict(env):
    tmp, signer = env
    d = tmp / "model"
    d.mkdir()
    (d / "a.safetensors").write_bytes(st_bytes({"a": np.ones(2)}))
    (d / "config.json").write_text('{"layers": 2}')
    bundle = write_bundle_file(sign_model(d, signer).bundle, tmp / "model.sigstore.json")
    got = mgattest.load(d, policy=tmp / "policy.yaml", bundles=[bundle])
    assert got["config.json"] == {"layers": 2} and list(got["a.safetensors"]) == ["a"]
    (d / "extra.json").write_text("{}")
    with pytest.raises(PolicyDenied):
        mgattest.load(d, policy=tmp / "policy.yaml", bundles=[bundle])
    (d / "extra.json").unlink()
    (d / "config.json").unlink()
    with pytest.raises(PolicyDenied) as exc:
        mgattest.load(d, policy=tmp / "policy.yaml", bundles=[bundle])
    assert any(c.id == "policy.integrity" and "missing" in c.reason
               for c in exc.value.verdict.failures)


def test_cache_hits_only_for_the_same_bytes(env):
    tmp, signer = env
    path, bundle = signed(tmp, signer, "m.safetensors", st_bytes({"a": np.zeros(3)}))
    cache = VerificationCache()
    mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle], cache=cache)
    mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle], cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    path.write_bytes(st_bytes({"a": np.ones(3)}))
    with pytest.raises(PolicyDenied):
        mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle], cache=cache)
    assert cache.misses == 2 and len(cache) == 1


def test_bad_arguments(env):
    tmp, signer = env
    path, bundle = signed(tmp, signer, "m.safetensors", st_bytes({"a": np.zeros(1)}))
    with pytest.raises(mgattest.errors.InputError):
        mgattest.load(path, policy=tmp / "policy.yaml", bundles=[])
    with pytest.raises(mgattest.errors.InputError):
        mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle], on_fail="ignore")
    with pytest.raises(mgattest.errors.InputError):
        mgattest.load(tmp / "absent", policy=tmp / "policy.yaml", bundles=[bundle])


def test_read_model_bytes_refuses_symlink_escape(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", d / "link")
    with pytest.raises(mgattest.errors.MgattestError):
        read_model_bytes(d)


def test_pickle_restricted_policy_loads_plain_data_and_denies_code(env):
    import pickle
    tmp, signer = env
    path, bundle = signed(tmp, signer, "m.pkl", pickle.dumps({"a": [1, 2], "b": (3.5, "x")}))
    got = mgattest.load(path, policy=tmp / "policy-restricted.yaml", bundles=[bundle])
    assert got == {"a": [1, 2], "b": (3.5, "x")}

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    bad, bad_bundle = signed(tmp, signer, "evil.pkl", pickle.dumps(Boom()))
    with pytest.raises(PolicyDenied) as exc:
        mgattest.load(bad, policy=tmp / "policy-restricted.yaml", bundles=[bad_bundle])
    assert any(c.id == "model.content" for c in exc.value.verdict.failures)


def test_denied_model_is_quarantined(env):
    tmp, signer = env
    path, bundle = signed(tmp, signer, "m.safetensors", st_bytes({"a": np.zeros(2)}))
    path.write_bytes(st_bytes({"a": np.ones(2)}))
    qdir = tmp / "quarantine"
    assert mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle], on_fail="none",
                         quarantine=str(qdir)) is None
    assert not path.exists()
    import json
    incidents = list(qdir.glob("*/incident.json"))
    assert len(incidents) == 1 and list(qdir.glob("*/payload/*m.safetensors"))
    record = json.dumps(json.loads(incidents[0].read_text()))
    assert "model.files" in record


def test_untrusted_bundle_gives_denial_verdict_and_honours_on_fail(env):
    tmp, _ = env
    path, bundle = signed(tmp, generate_signer(), "m.safetensors", st_bytes({"a": np.zeros(2)}))
    assert mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle], on_fail="none") is None
    with pytest.raises(PolicyDenied) as exc:
        mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle])
    [check] = exc.value.verdict.failures
    assert check.id == "policy.bundles" and str(bundle) in json.dumps(check.evidence) + check.reason


def test_bundle_inside_the_model_directory_is_not_a_model_file(env):
    tmp, signer = env
    d = tmp / "model"
    d.mkdir()
    (d / "a.safetensors").write_bytes(st_bytes({"a": np.ones(2)}))
    bundle = write_bundle_file(sign_model(d, signer).bundle, d / "model.sigstore.json")
    got = mgattest.load(d, policy=tmp / "policy.yaml", bundles=[bundle])
    assert list(got) == ["a.safetensors"]


def test_numpy_object_array_only_with_restricted_policy(env):
    tmp, signer = env
    buf = io.BytesIO()
    arr = np.array([{"k": 1}, None, "s"], dtype=object)
    np.save(buf, arr, allow_pickle=True)
    path, bundle = signed(tmp, signer, "o.npy", buf.getvalue())
    got = mgattest.load(path, policy=tmp / "policy-restricted.yaml", bundles=[bundle])
    assert got.dtype == object and list(got) == [{"k": 1}, None, "s"]


def test_joblib_through_restricted_loader(env):
    joblib = pytest.importorskip("joblib")
    tmp, signer = env
    buf = io.BytesIO()
    joblib.dump({"w": np.arange(3.0), "name": "m"}, buf)
    path, bundle = signed(tmp, signer, "m.joblib", buf.getvalue())
    got = mgattest.load(path, policy=tmp / "policy-restricted.yaml", bundles=[bundle])
    assert got["name"] == "m" and np.array_equal(got["w"], np.arange(3.0))
    with pytest.raises(PolicyDenied):  # pickle: deny
        mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle])


@pytest.mark.parametrize("kwargs", [{"shard_size": 1024}, {"algorithm": "sha512"}])
def test_shard_merkle_and_other_algorithm_subjects(env, kwargs):
    tmp, signer = env
    d = tmp / "model"
    d.mkdir()
    data = st_bytes({"w": np.arange(2048, dtype=np.float32)})
    (d / "w.safetensors").write_bytes(data)
    options = SignOptions(digests=DigestOptions(**kwargs))
    bundle = write_bundle_file(sign_model(d, signer, options).bundle, tmp / "b.json")
    got = mgattest.load(d, policy=tmp / "policy.yaml", bundles=[bundle])
    assert got["w.safetensors"]["w"].shape == (2048,)
    tampered = bytearray(data)
    tampered[5000] ^= 1
    (d / "w.safetensors").write_bytes(bytes(tampered))
    with pytest.raises(PolicyDenied) as exc:
        mgattest.load(d, policy=tmp / "policy.yaml", bundles=[bundle])
    integrity = [c for c in exc.value.verdict.failures if c.id == "policy.integrity"]
    assert integrity
    if "shard_size" in kwargs:
        assert "shard 4, bytes 4096-5119" in integrity[0].reason


def test_cache_entries_expire(env, monkeypatch):
    import time as time_mod
    tmp, signer = env
    path, bundle = signed(tmp, signer, "m.safetensors", st_bytes({"a": np.zeros(3)}))
    cache = VerificationCache(ttl=60)
    mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle], cache=cache)
    real = time_mod.time
    monkeypatch.setattr("mgattest.loading._cache.time.time", lambda: real() + 61)
    mgattest.load(path, policy=tmp / "policy.yaml", bundles=[bundle], cache=cache)
    assert (cache.hits, cache.misses) == (0, 2)


def test_safetensors_views_validate_like_the_library():
    from mgattest.loading._loaders import SafetensorsFormatError, numpy_views
    good = st_bytes({"a": np.arange(4, dtype=np.float32), "b": np.ones(2, dtype=np.int64)})
    views = numpy_views(bytearray(good))
    assert views["a"].tolist() == [0, 1, 2, 3] and views["b"].tolist() == [1, 1]
    n = int.from_bytes(good[:8], "little")
    header = json.loads(good[8:8 + n])

    def rebuild(h, data=good[8 + n:]):
        raw = json.dumps(h).encode()
        return bytearray(len(raw).to_bytes(8, "little") + raw + data)

    bad_cases = [
        good[:4],
        (10**12).to_bytes(8, "little") + good[8:],
        rebuild(dict(header, a=dict(header["a"], dtype="X99"))),
        rebuild(dict(header, a=dict(header["a"], shape=[5]))),
        rebuild(dict(header, a=dict(header["a"], data_offsets=[0, 10**9]))),
        rebuild(header, good[8 + n:] + b"trailing"),
        rebuild(dict(header, a=dict(header["a"], extra=1))),
        bytearray(good[:8] + b"[" + good[9:]),
    ]
    for data in bad_cases:
        with pytest.raises(SafetensorsFormatError):
            numpy_views(bytearray(data))
    # Overlapping tensors (both point at the same bytes) are refused.
    overlap = dict(header)
    overlap["c"] = dict(header["a"])
    with pytest.raises(SafetensorsFormatError, match="gap or overlap|after the last"):
        numpy_views(rebuild(overlap))


@pytest.mark.parametrize("seed", range(3))
def test_safetensors_views_equal_the_library(seed):
    import safetensors.numpy as sn
    from mgattest.loading._loaders import numpy_views
    rng = np.random.default_rng(seed)
    tensors = {f"t{i}": rng.standard_normal(rng.integers(0, 50, size=2)).astype(dt)
               for i, dt in enumerate([np.float32, np.float64, np.float16, np.int32, np.uint8])}
    data = sn.save(tensors)
    ours, theirs = numpy_views(bytearray(data)), sn.load(data)
    assert set(ours) == set(theirs)
    for k in ours:
        assert ours[k].dtype == theirs[k].dtype and np.array_equal(ours[k], theirs[k])


def test_safetensors_header_fuzz_only_raises_format_errors():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from mgattest.loading._loaders import SafetensorsFormatError, numpy_views
    good = st_bytes({"a": np.arange(3, dtype=np.float32), "b": np.zeros((2, 2), dtype=np.int8)})

    @settings(max_examples=300, deadline=None)
    @given(pos=st.integers(0, len(good) - 1), value=st.integers(0, 255),
           cut=st.integers(0, len(good)))
    def mutate(pos, value, cut):
        data = bytearray(good)
        data[pos] = value
        try:
            numpy_views(data[:cut] if cut < len(good) else data)
        except SafetensorsFormatError:
            pass

    mutate()


def test_safetensors_header_with_a_repeated_key_is_refused():
    """Parsers disagree on which value a repeated key keeps: refuse, don't pick one."""
    import struct

    from mgattest.loading._loaders import SafetensorsFormatError, parse_header

    header = (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
              b' "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}')
    blob = struct.pack("<Q", len(header)) + header + b"\0" * 4
    with pytest.raises(SafetensorsFormatError, match="duplicate header key 'w'"):
        parse_header(blob, "m.safetensors")
    single = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    start, tensors, _ = parse_header(struct.pack("<Q", len(single)) + single + b"\0" * 4)
    assert tensors["w"][0] == "F32"
