"""The generated estimator allow-list (issue #11): dumps of every default-constructible
scikit-learn estimator scan clean; functions and other callables stay refused."""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import sys

import pytest

joblib = pytest.importorskip("joblib")
pytest.importorskip("sklearn")

from mgattest.inspect import SAFE_GLOBALS, scan_bytes  # noqa: E402
from mgattest.inspect._estimators import DATA_FILE, QUIET_PARAMS, example_estimators  # noqa: E402
from tests.helpers.paths import PROJECT_ROOT  # noqa: E402 - after the importorskip above

ROOT = PROJECT_ROOT


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


# --- XGBoost / CatBoost: real fitted models (issue #11) ---------------------------------

def _gb_data():
    import numpy as np
    rng = np.random.RandomState(0)
    x = rng.rand(60, 4)
    return x, np.array([0, 1] * 30), x @ np.array([1.0, 2.0, 0.5, -1.0])


def _xgboost_models():
    xgboost = pytest.importorskip("xgboost", reason="xgboost (xgboost-cpu) is not installed")
    import numpy as np
    x, y_class, y_reg = _gb_data()
    return {
        "XGBClassifier": xgboost.XGBClassifier(n_estimators=3).fit(x, y_class),
        "XGBRegressor": xgboost.XGBRegressor(n_estimators=3).fit(x, y_reg),
        "XGBRFClassifier": xgboost.XGBRFClassifier(n_estimators=3).fit(x, y_class),
        "XGBRFRegressor": xgboost.XGBRFRegressor(n_estimators=3).fit(x, y_reg),
        "XGBRanker": xgboost.XGBRanker(n_estimators=3).fit(
            x, np.arange(60) % 4, qid=np.repeat(np.arange(6), 10)),
        "Booster": xgboost.train({}, xgboost.DMatrix(x, y_reg), num_boost_round=2),
    }


def _catboost_models():
    catboost = pytest.importorskip("catboost", reason="catboost is not installed")
    x, y_class, y_reg = _gb_data()
    return {
        "CatBoostClassifier": catboost.CatBoostClassifier(iterations=3, **QUIET_PARAMS["catboost"])
        .fit(x, y_class),
        "CatBoostRegressor": catboost.CatBoostRegressor(iterations=3, **QUIET_PARAMS["catboost"])
        .fit(x, y_reg),
        "CatBoost": catboost.CatBoost({"iterations": 3, **QUIET_PARAMS["catboost"]}).fit(x, y_reg),
    }


def _assert_dumps_clean(models: dict) -> None:
    flagged = {}
    for name, model in models.items():
        for fmt, blob in (("joblib", dump(model)), ("pickle", pickle.dumps(model, protocol=5))):
            report = scan_bytes(f"{name}.{fmt}", blob)
            if findings(report) or report.verdict != "safe":
                flagged[f"{name}.{fmt}"] = findings(report)[:3]
    assert flagged == {}


def test_fitted_xgboost_model_dumps_have_no_findings():
    _assert_dumps_clean(_xgboost_models())


def test_fitted_catboost_model_dumps_have_no_findings():
    _assert_dumps_clean(_catboost_models())


def test_xgboost_model_holding_a_dangerous_function_is_flagged():
    xgboost = pytest.importorskip("xgboost", reason="xgboost (xgboost-cpu) is not installed")
    model = xgboost.XGBClassifier(n_estimators=2, eval_metric=os.system)
    for blob in (dump(model), pickle.dumps(model, protocol=5)):
        assert scan_bytes("xgb.joblib", blob).verdict == "dangerous"


def test_catboost_model_holding_a_dangerous_function_is_flagged():
    catboost = pytest.importorskip("catboost", reason="catboost is not installed")
    model = catboost.CatBoostClassifier(iterations=2, eval_metric=os.system, **QUIET_PARAMS["catboost"])
    for blob in (dump(model), pickle.dumps(model, protocol=5)):
        assert scan_bytes("cb.joblib", blob).verdict == "dangerous"


@pytest.mark.parametrize("module,name", [
    ("xgboost", "train"), ("xgboost.training", "cv"), ("xgboost.core", "_load_lib"),
    ("xgboost.tracker", "RabitTracker"), ("xgboost", "DMatrix"),
    ("catboost", "train"), ("catboost.core", "cv"), ("catboost", "Pool"),
])
def test_boosting_functions_and_non_model_classes_stay_refused(module, name):
    """Only the model classes (and what their dumps import) are listed: a training
    function, a data loader (DMatrix/Pool read files) or the network tracker is not."""
    assert (module, name) not in SAFE_GLOBALS
    blob = (b"\x80\x04\x8c" + bytes([len(module)]) + module.encode() + b"\x8c"
            + bytes([len(name)]) + name.encode() + b"\x93)R.")
    assert scan_bytes("x.pkl", blob).verdict != "safe"


def test_allow_list_records_an_xgboost_shipped_as_xgboost_cpu():
    """The generator finds a library by import name: xgboost-cpu provides ``xgboost``."""
    pytest.importorskip("xgboost", reason="xgboost (xgboost-cpu) is not installed")
    assert _generator().library_versions()["xgboost"] != "not installed"
