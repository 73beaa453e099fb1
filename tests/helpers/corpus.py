"""Build a benign and a malicious model corpus in a directory (no downloads).

Malicious files carry harmless payloads: each one only creates its own marker file under
``<dir>/markers/`` when loaded unsafely. ``UNSAFE_LOADERS`` says how each would be
loaded by a careless user, so tests can prove (in a subprocess) that the payload is real.

Used by tests/inspect/, tests/load/ and benchmarks/bench_scanners.py.
"""

from __future__ import annotations

import argparse
import bz2
import collections
import gzip
import io
import json
import lzma
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Corpus:
    root: Path
    benign: dict[str, Path] = field(default_factory=dict)
    # name -> (path, unsafe loader kind)
    malicious: dict[str, tuple[Path, str]] = field(default_factory=dict)

    def marker(self, name: str) -> Path:
        return self.root / "markers" / name


# --- payload helpers ---------------------------------------------------------------------

def _s(text: str) -> bytes:
    """SHORT_BINUNICODE / BINUNICODE for a str."""
    raw = text.encode()
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _touch_cmd(marker: Path) -> str:
    return f"touch {marker}"


def _touch_py(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


class _Reduce:
    """Pickles as ``func(*args)``: the unpickler calls func, the class is not referenced."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker_dir: Path) -> dict[str, bytes]:
    """Hand-made and pickler-made malicious pickles, keyed by name."""
    import builtins
    import functools
    import runpy
    import subprocess

    def m(name: str) -> Path:
        return marker_dir / name

    out: dict[str, bytes] = {}
    out["os_system_p0"] = pickle.dumps(_Reduce(os.system, _touch_cmd(m("os_system_p0"))), 0)
    out["os_system_p2"] = pickle.dumps(_Reduce(os.system, _touch_cmd(m("os_system_p2"))), 2)
    out["os_system_p4"] = pickle.dumps(_Reduce(os.system, _touch_cmd(m("os_system_p4"))), 4)
    out["posix_system_p5"] = (b"\x80\x05" + _s("posix") + _s("system") + b"\x93"
                              + _s(_touch_cmd(m("posix_system_p5"))) + b"\x85R.")
    out["subprocess_call"] = pickle.dumps(
        _Reduce(subprocess.call, ["touch", str(m("subprocess_call"))]), 4)
    out["subprocess_popen"] = pickle.dumps(
        _Reduce(subprocess.check_output, ["touch", str(m("subprocess_popen"))]), 3)
    out["builtins_eval"] = pickle.dumps(_Reduce(builtins.eval, _touch_py(m("builtins_eval"))), 4)
    out["builtins_exec"] = pickle.dumps(_Reduce(builtins.exec, _touch_py(m("builtins_exec"))), 2)
    # getattr(__import__('os'), 'system')(cmd)
    out["builtins_getattr_import"] = (
        b"\x80\x04" + _s("builtins") + _s("getattr") + b"\x93"
        + _s("builtins") + _s("__import__") + b"\x93" + _s("os") + b"\x85R"
        + _s("system") + b"\x86R" + _s(_touch_cmd(m("builtins_getattr_import"))) + b"\x85R.")
    # protocol 2 with the Python 2 module name __builtin__
    out["py2_builtin_eval"] = (b"\x80\x02" + _global("__builtin__", "eval")
                               + _s(_touch_py(m("py2_builtin_eval"))) + b"\x85R.")
    # protocol 2 with the Python 2 module "commands" (-> subprocess)
    out["py2_commands"] = (b"\x80\x02" + _global("commands", "getoutput")
                           + _s(_touch_cmd(m("py2_commands"))) + b"\x85R.")
    out["runpy_run_code"] = pickle.dumps(
        _Reduce(runpy._run_code, _touch_py(m("runpy_run_code")), {}), 4)
    out["importlib_import"] = (
        b"\x80\x04" + _s("builtins") + _s("getattr") + b"\x93"
        + _s("importlib") + _s("import_module") + b"\x93" + _s("os") + b"\x85R"
        + _s("system") + b"\x86R" + _s(_touch_cmd(m("importlib_import"))) + b"\x85R.")
    # code.InteractiveInterpreter().runsource(src), via getattr
    out["code_interpreter"] = (
        b"\x80\x04" + _s("builtins") + _s("getattr") + b"\x93"
        + _s("code") + _s("InteractiveInterpreter") + b"\x93)R"
        + _s("runsource") + b"\x86R" + _s(_touch_py(m("code_interpreter"))) + b"\x85R.")
    # pip's own helper creates the directory named by the marker
    out["pip_ensure_dir"] = (b"\x80\x04" + _s("pip._internal.utils.misc") + _s("ensure_dir")
                             + b"\x93" + _s(str(m("pip_ensure_dir"))) + b"\x85R.")
    # webbrowser.GenericBrowser(["touch", marker]).open("x") runs `touch marker`
    out["webbrowser_generic"] = (
        b"\x80\x04" + _s("builtins") + _s("getattr") + b"\x93"
        + _s("webbrowser") + _s("GenericBrowser") + b"\x93"
        + b"]" + b"(" + _s("touch") + _s(str(m("webbrowser_generic"))) + b"e\x85R"
        + _s("open") + b"\x86R" + _s("x") + b"\x85R.")
    # socket(AF_UNIX).bind(marker) creates the socket file
    out["socket_bind"] = (
        b"\x80\x04" + _s("builtins") + _s("getattr") + b"\x93"
        + _s("socket") + _s("socket") + b"\x93" + b"K\x01\x85R"
        + _s("bind") + b"\x86R" + _s(str(m("socket_bind"))) + b"\x85R.")
    # functools.partial(os.system, cmd)() - a call on a computed callable
    out["functools_partial"] = pickle.dumps(
        _Reduce(functools.partial(os.system, _touch_cmd(m("functools_partial")))), 4)
    # operator.methodcaller('system', cmd)(operator.itemgetter('os')(sys.modules))
    out["operator_methodcaller"] = (
        b"\x80\x04" + _s("operator") + _s("methodcaller") + b"\x93"
        + _s("system") + _s(_touch_cmd(m("operator_methodcaller"))) + b"\x86R"
        + _s("operator") + _s("itemgetter") + b"\x93" + _s("os") + b"\x85R"
        + _s("sys") + _s("modules") + b"\x93\x85R" + b"\x85R.")
    # INST: protocol 0 instantiation of os.system
    out["inst_opcode"] = (b"(" + b"S'" + _touch_cmd(m("inst_opcode")).encode() + b"'\n"
                          + b"ios\nsystem\n.")
    # OBJ: protocol 1 instantiation with the class on the stack
    out["obj_opcode"] = (b"(" + _global("os", "system") + b"X"
                         + struct.pack("<I", len(_touch_cmd(m("obj_opcode"))))
                         + _touch_cmd(m("obj_opcode")).encode() + b"o.")
    # STACK_GLOBAL whose strings were memoised inside a harmless-looking list earlier
    cmd = _touch_cmd(m("stack_global_memo"))
    out["stack_global_memo"] = (
        b"\x80\x04" + b"]\x94(" + _s("os") + b"\x94" + _s("system") + b"\x94" + b"e0"
        + b"h\x01h\x02\x93" + _s(cmd) + b"\x85R.")
    return out


def _benign_pickles(root: Path, corpus: Corpus) -> None:
    import numpy as np

    data = {"name": "model", "weights": [1.5, 2.5], "shape": (3, 4), "tags": {"a", "b"},
            "frozen": frozenset({1}), "blob": b"\x00\x01", "ordered": collections.OrderedDict(
                a=1), "nested": [[{"x": None, "y": True}]], "big": 10**30}
    for proto in range(6):
        path = root / f"plain_p{proto}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=proto))
        corpus.benign[path.name] = path
        path = root / f"numpy_p{proto}.pkl"
        arrays = {"f": np.arange(12, dtype=np.float32).reshape(3, 4), "i": np.int64(7),
                  "s": np.float64(2.5), "u": np.array(["ab", "c"]),
                  "rec": np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")])}
        path.write_bytes(pickle.dumps(arrays, protocol=proto))
        corpus.benign[path.name] = path
    path = root / "two_streams.pkl"
    path.write_bytes(pickle.dumps([1, 2]) + pickle.dumps({"b": 3}))
    corpus.benign[path.name] = path
    ckpt = {"epoch": 3, "args": argparse.Namespace(lr=0.1, seed=1),
            "rng": np.random.RandomState(0), "gen": np.random.default_rng(1),
            "np_rng_state": np.random.get_state()}
    path = root / "training_state.pkl"
    path.write_bytes(pickle.dumps(ckpt, protocol=4))
    corpus.benign[path.name] = path
    path = root / "weights.npy"
    np.save(path, np.arange(100, dtype=np.float64))
    corpus.benign[path.name] = path
    path = root / "weights.npz"
    np.savez_compressed(path, a=np.ones((4, 4)), b=np.arange(3))
    corpus.benign[path.name] = path


def _benign_sklearn(root: Path, corpus: Corpus) -> None:
    import joblib
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.RandomState(0)
    x = rng.rand(60, 4)
    y = (x[:, 0] > 0.5).astype(int)
    pipe = Pipeline([("log", FunctionTransformer(np.log1p)), ("scale", StandardScaler()),
                     ("clf", LogisticRegression())]).fit(x, y)
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(x, y)
    cols = ColumnTransformer([("s", StandardScaler(), [0, 1])], remainder="passthrough").fit(x)
    for name, obj in (("pipeline", pipe), ("forest", forest), ("columns", cols)):
        path = root / f"sk_{name}.joblib"
        joblib.dump(obj, path)
        corpus.benign[path.name] = path
    for method in ("zlib", "gzip", "bz2", "lzma", "xz"):
        path = root / f"sk_pipeline_{method}.joblib"
        joblib.dump(pipe, path, compress=(method, 3))
        corpus.benign[path.name] = path
    path = root / "sk_pipeline.pkl"
    path.write_bytes(pickle.dumps(pipe, protocol=5))
    corpus.benign[path.name] = path
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.linear_model import SGDClassifier
    from sklearn.decomposition import PCA
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zoo = {"gb": GradientBoostingClassifier(n_estimators=2).fit(x, y),
               "hgb": HistGradientBoostingClassifier(max_iter=2).fit(x, y),
               "knn": KNeighborsClassifier().fit(x, y),
               "mlp": MLPClassifier(max_iter=3).fit(x, y),
               "sgd": SGDClassifier().fit(x, y), "pca": PCA(2).fit(x)}
    path = root / "sk_zoo.joblib"
    joblib.dump(zoo, path)
    corpus.benign[path.name] = path
    path = root / "sk_arrays_objects.joblib"
    joblib.dump({"a": np.ones(33), "o": np.array([1, "x", None], dtype=object),
                 "b": np.arange(7, dtype=np.int16)}, path)
    corpus.benign[path.name] = path


def _benign_torch(root: Path, corpus: Corpus) -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.LayerNorm(8),
                              torch.nn.Linear(8, 2))
    path = root / "torch_state_dict.pt"
    torch.save(net.state_dict(), path)
    corpus.benign[path.name] = path
    path = root / "torch_full_module.pt"
    torch.save(net, path)
    corpus.benign[path.name] = path
    path = root / "torch_legacy.pt"
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=False)
    corpus.benign[path.name] = path
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.ones(1, 4)).sum().backward()
    opt.step()
    zoo = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                              torch.nn.GELU(), torch.nn.Flatten(), torch.nn.Dropout(0.1),
                              torch.nn.Embedding(3, 4), torch.nn.LSTM(4, 4),
                              torch.nn.TransformerEncoderLayer(4, 2))
    path = root / "torch_zoo_with_optimizer.pt"
    torch.save({"model": zoo, "optimizer": torch.optim.AdamW(zoo.parameters())}, path)
    corpus.benign[path.name] = path
    path = root / "torch_checkpoint.pt"
    import numpy as np
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 2,
                "args": argparse.Namespace(lr=0.1), "np_rng": np.random.get_state(),
                "torch_rng": torch.get_rng_state()}, path)
    corpus.benign[path.name] = path


def _benign_other(root: Path, corpus: Corpus) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    path = root / "model.safetensors"
    save_file({"w": np.ones((3, 3), dtype=np.float32), "b": np.zeros(3, dtype=np.int64)}, path)
    corpus.benign[path.name] = path
    path = root / "model.gguf"
    path.write_bytes(build_gguf())
    corpus.benign[path.name] = path
    path = root / "model.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.3.3"}))
        zf.writestr("config.json", json.dumps({
            "module": "keras", "class_name": "Sequential", "config": {"layers": [
                {"module": "keras.layers", "class_name": "Dense",
                 "config": {"name": "dense", "units": 2}, "registered_name": None}]}}))
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    corpus.benign[path.name] = path
    onnx_dir = root / "onnx_model"
    onnx_dir.mkdir(exist_ok=True)
    path = onnx_dir / "model.onnx"
    path.write_bytes(build_onnx_with_external("weights.bin", 16))
    (onnx_dir / "weights.bin").write_bytes(b"\x00" * 16)
    corpus.benign["onnx_model/model.onnx"] = path


def build_gguf(*, tensor_offset: int = 0, n_tensors: int = 1) -> bytes:
    """A minimal GGUF v3 file with one 4x4 F32 tensor."""
    def gstr(text: str) -> bytes:
        return struct.pack("<Q", len(text)) + text.encode()
    out = b"GGUF" + struct.pack("<IQQ", 3, n_tensors, 2)
    out += gstr("general.architecture") + struct.pack("<I", 8) + gstr("llama")
    out += gstr("general.alignment") + struct.pack("<II", 4, 32)
    out += gstr("w") + struct.pack("<I", 2) + struct.pack("<QQ", 4, 4) + struct.pack("<I", 0)
    out += struct.pack("<Q", tensor_offset)
    out += b"\x00" * ((-len(out)) % 32)
    return out + b"\x00" * 64


def _pb_varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _pb_field(number: int, payload: bytes) -> bytes:
    return _pb_varint(number << 3 | 2) + _pb_varint(len(payload)) + payload


def build_onnx_with_external(location: str, length: int) -> bytes:
    """An ONNX ModelProto whose one initializer lives in external data at ``location``."""
    import onnx  # noqa: F401 - fail early with a clear ImportError
    from onnx import TensorProto, helper

    tensor = TensorProto()
    tensor.name = "w"
    tensor.data_type = TensorProto.FLOAT
    tensor.dims.extend([length // 4])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    node = helper.make_node("Identity", ["w"], ["y"])
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [length // 4])], initializer=[tensor])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def _malicious(root: Path, corpus: Corpus, *, with_torch: bool, with_sklearn: bool) -> None:
    markers = root / "markers"
    markers.mkdir(exist_ok=True)
    mal = root / "malicious"
    mal.mkdir(exist_ok=True)
    for name, blob in _payloads(markers).items():
        path = mal / f"{name}.pkl"
        path.write_bytes(blob)
        corpus.malicious[name] = (path, "pickle")

    def evil(name: str) -> _Reduce:
        return _Reduce(os.system, _touch_cmd(markers / name))

    name = "appended_stream"
    path = mal / f"{name}.pkl"
    path.write_bytes(pickle.dumps({"benign": [1, 2, 3]}, 4) + pickle.dumps(evil(name), 4))
    corpus.malicious[name] = (path, "pickle")

    name = "truncated_after_payload"
    path = mal / f"{name}.pkl"
    blob = pickle.dumps([evil(name), list(range(50))], 2)
    path.write_bytes(blob[: len(blob) - 20])
    corpus.malicious[name] = (path, "pickle")

    import numpy as np
    name = "npy_object_array"
    path = mal / f"{name}.npy"
    np.save(path, np.array([evil(name), 1], dtype=object), allow_pickle=True)
    corpus.malicious[name] = (path, "numpy")
    name = "npz_object_array"
    path = mal / f"{name}.npz"
    np.savez(path, ok=np.ones(3), bad=np.array([evil(name)], dtype=object))
    corpus.malicious[name] = (path, "npz")

    name = "zip_nested_pickle"
    path = mal / f"{name}.zip"
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("model/payload.pkl", pickle.dumps(evil(name), 4))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
        zf.writestr("inner.zip", inner.getvalue())
    corpus.malicious[name] = (path, "zip-pickle")

    for method, opener in (("gzip", gzip.compress), ("bz2", bz2.compress),
                           ("xz", lzma.compress)):
        name = f"compressed_pickle_{method}"
        path = mal / f"{name}.pkl.{method}"
        path.write_bytes(opener(pickle.dumps(evil(name), 4)))
        corpus.malicious[name] = (path, f"pickle-{method}")

    if with_sklearn:
        import joblib
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler().fit(np.arange(20.0).reshape(10, 2))
        name = "joblib_after_arrays"
        path = mal / f"{name}.joblib"
        joblib.dump({"scaler": scaler, "arr": np.ones(1000), "x": evil(name)}, path)
        corpus.malicious[name] = (path, "joblib")
        for method in ("zlib", "gzip", "lzma"):
            name = f"joblib_{method}"
            path = mal / f"{name}.joblib"
            joblib.dump({"scaler": scaler, "x": evil(name)}, path, compress=(method, 3))
            corpus.malicious[name] = (path, "joblib")
        # joblib reads the padding after its length byte as filler; pickle.load reads
        # the same bytes as opcodes. Hide an INST/OBJ payload there.
        name = "joblib_padding_polyglot"
        buf = io.BytesIO()
        joblib.dump({"a": np.ones(4)}, buf)
        blob = bytearray(buf.getvalue())
        data_start = blob.index(np.ones(4).tobytes())
        pad_start = data_start
        while blob[pad_start - 1] == 0xFF:
            pad_start -= 1
        payload = (b"(cos\nsystem\nS'" + _touch_cmd(markers / name).encode() + b"'\no0")
        # the length byte itself must be a harmless opcode: ']' EMPTY_LIST, '}' EMPTY_DICT
        # or MEMOIZE; pad the payload with NONE/POP pairs to exactly that length
        length = next(n for n in (0x5D, 0x7D, 0x94) if n >= len(payload))
        payload += b"N0" * ((length - len(payload)) // 2) + b"N" * ((length - len(payload)) % 2)
        path = mal / f"{name}.joblib"
        path.write_bytes(bytes(blob[:pad_start - 1] + bytes([length]) + payload
                               + blob[data_start:]))
        corpus.malicious[name] = (path, "pickle")
        name = "joblib_object_array"
        path = mal / f"{name}.joblib"
        joblib.dump({"o": np.array([evil(name)], dtype=object)}, path)
        corpus.malicious[name] = (path, "joblib")

    if with_torch:
        import torch
        net = torch.nn.Linear(2, 2)
        name = "torch_zip_payload"
        path = mal / f"{name}.pt"
        state = net.state_dict()
        state["extra"] = evil(name)
        torch.save(state, path)
        corpus.malicious[name] = (path, "torch")
        name = "torch_legacy_payload"
        path = mal / f"{name}.pt"
        torch.save({"w": torch.ones(2), "x": evil(name)}, path,
                   _use_new_zipfile_serialization=False)
        corpus.malicious[name] = (path, "torch")


def build_corpus(root: str | os.PathLike, *, with_torch: bool = True,
                 with_sklearn: bool = True) -> Corpus:
    """Create the corpus under ``root`` and return what is where."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    benign = root / "benign"
    benign.mkdir(exist_ok=True)
    corpus = Corpus(root)
    _benign_pickles(benign, corpus)
    _benign_other(benign, corpus)
    if with_sklearn:
        _benign_sklearn(benign, corpus)
    if with_torch:
        _benign_torch(benign, corpus)
    _malicious(root, corpus, with_torch=with_torch, with_sklearn=with_sklearn)
    return corpus


# How a careless user loads each kind; run in a subprocess by the tests.
UNSAFE_LOADER_SOURCE = r'''
import bz2, gzip, io, lzma, pickle, sys, zipfile
def load_all_pickles(f):
    while True:
        try:
            pickle.load(f)
        except EOFError:
            return
def unsafe_load(path, kind):
    if kind == "pickle":
        with open(path, "rb") as f:
            load_all_pickles(f)
    elif kind.startswith("pickle-"):
        opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[kind[7:]]
        with opener(path, "rb") as f:
            pickle.load(f)
    elif kind == "numpy":
        import numpy as np
        np.load(path, allow_pickle=True)
    elif kind == "npz":
        import numpy as np
        with np.load(path, allow_pickle=True) as z:
            for k in z.files:
                z[k]
    elif kind == "joblib":
        import joblib
        joblib.load(path)
    elif kind == "torch":
        import torch
        torch.load(path, weights_only=False)
    elif kind == "zip-pickle":
        with zipfile.ZipFile(path) as outer:
            with zipfile.ZipFile(io.BytesIO(outer.read("inner.zip"))) as inner:
                pickle.loads(inner.read("model/payload.pkl"))
    else:
        raise SystemExit("unknown kind " + kind)
for line in sys.stdin.read().splitlines():
    path, kind = line.rsplit("\t", 1)
    try:
        unsafe_load(path, kind)
    except BaseException as exc:  # payload side effects already happened
        print("load error", path, type(exc).__name__, exc, file=sys.stderr)
'''
