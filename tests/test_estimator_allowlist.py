"""The generated estimator allow-list (issue #11): dumps of every default-constructible
scikit-learn estimator scan clean; functions and other callables stay refused."""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import sys
from pathlib import Path

import pytest

joblib = pytest.importorskip("joblib")
pytest.importorskip("sklearn")

from mgattest.inspect import SAFE_GLOBALS, scan_bytes  # noqa: E402
from mgattest.inspect.estimators import DATA_FILE, example_estimators  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def dump(obj) -> bytes:
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


def findings(report) -> list[str]:
    return [f"{f.severity}: {f.detail}" for f in report.findings if f.severity != "info"]


def test_isolation_forest_dump_is_safe():
    import numpy as np
    from sklearn.ensemble import IsolationForest
    model = IsolationForest(n_estimators=3, random_state=0).fit(np.random.RandomState(0).rand(20, 3))
    report = scan_bytes("iforest.joblib", dump(model))
    assert findings(report) == []


@pytest.mark.slow
def test_every_default_constructible_estimator_dump_has_no_findings():
    flagged = {}
    count = 0
    for name, estimator in example_estimators():
        count += 1
        for blob in (dump(estimator), pickle.dumps(estimator, protocol=5)):
            report = scan_bytes(f"{name}.joblib", blob)
            if findings(report):
                flagged[name] = findings(report)[:3]
    assert count > 150
    assert flagged == {}


def test_every_sklearn_estimator_class_is_listed():
    from sklearn.utils import all_estimators
    missing = [(c.__module__, c.__qualname__) for _, c in all_estimators()
               if (c.__module__, c.__qualname__) not in SAFE_GLOBALS]
    assert missing == []


def _generator():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module("gen_estimator_allowlist")
    finally:
        sys.path.pop(0)


def test_generated_file_records_versions_and_only_reviewed_functions():
    doc = json.loads(DATA_FILE.read_text())
    assert doc["generated_by"] == "scripts/gen_estimator_allowlist.py"
    assert doc["libraries"]["scikit-learn"] not in ("", "not installed")
    gen = _generator()
    assert {tuple(p) for p in doc["functions"]} <= set(gen.REVIEWED_FUNCTIONS)
    for module, name in doc["classes"]:
        obj = gen.resolve(module, name)
        assert obj is None or isinstance(obj, type), f"{module}.{name} is not a class"
        assert module.split(".")[0] in gen.CLASS_ROOTS


@pytest.mark.parametrize("module,name", [
    ("sklearn.datasets._openml", "fetch_openml"), ("sklearn.datasets", "fetch_openml"),
    ("sklearn.utils", "all_estimators"), ("sklearn.utils.discovery", "all_estimators"),
    ("joblib", "load"), ("joblib.numpy_pickle", "load"), ("numpy", "load"),
    ("sklearn.externals._packaging.version", "parse"), ("scipy.io", "loadmat"),
    ("sklearn.utils._show_versions", "show_versions"), ("builtins", "getattr"),
])
def test_functions_and_non_estimator_callables_stay_refused(module, name):
    assert (module, name) not in SAFE_GLOBALS
    blob = (b"\x80\x04\x8c" + bytes([len(module)]) + module.encode() + b"\x8c"
            + bytes([len(name)]) + name.encode() + b"\x93)R.")
    assert scan_bytes("x.pkl", blob).verdict != "safe"


def test_estimator_holding_a_dangerous_function_is_still_flagged():
    from sklearn.preprocessing import FunctionTransformer
    report = scan_bytes("ft.joblib", dump(FunctionTransformer(func=os.system)))
    assert report.verdict == "dangerous"
