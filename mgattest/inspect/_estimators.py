"""The scikit-learn / XGBoost / LightGBM / CatBoost classes a pickle may construct.

The list is *generated* from the libraries themselves by
``scripts/gen_estimator_allowlist.py`` and committed as ``estimators.json`` next to this
module, with the library versions it was generated from. It holds:

* every estimator and transformer class of ``sklearn.utils.all_estimators()`` (and the
  model classes of XGBoost, LightGBM and CatBoost when they were installed);
* the helper classes those estimators pickle besides themselves (``sklearn.tree._tree.Tree``,
  loss and link objects, ``scipy.sparse`` matrices, numpy dtypes ...), found by dumping a
  fitted instance of every default-constructible estimator and reading the pickle's
  imports. Only *classes* from the estimator libraries, numpy and scipy.sparse are taken;
* functions only from the reviewed list in the generator (score functions and the like
  that estimators keep as default parameters). Every other function stays refused.

Nothing here imports scikit-learn at scan time: the scanner reads the JSON.
:func:`example_estimators` (used by the generator and the tests) does import it.
"""

from __future__ import annotations

import copy
import importlib
import json
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

DATA_FILE = Path(__file__).with_name("estimators.json")

Pair = tuple[str, str]


@lru_cache(maxsize=1)
def estimator_globals() -> frozenset[Pair]:
    """The generated ``(module, name)`` pairs (empty when the data file is missing)."""
    try:
        doc = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return frozenset()
    return frozenset((m, n) for m, n in doc["classes"] + doc["functions"])


# --- building example instances (generator and tests only) ---------------------------

def _inputs() -> list[tuple[Any, ...]]:
    """Argument tuples to try with ``fit``, most common shapes first."""
    import numpy as np  # noqa: PLC0415 - heavy (numpy), only to probe estimators

    rng = np.random.RandomState(0)
    x = rng.rand(40, 4) + 0.1
    y_class = np.array([0, 1] * 20)
    y_reg = x @ np.array([1.0, 2.0, 0.5, -1.0]) + rng.rand(40) * 0.1
    y_multi = np.stack([y_reg, -y_reg], axis=1)
    texts = ["the cat sat", "a dog ran", "the dog sat down", "cats and dogs"] * 10
    dicts = [{"a": float(i), "b": "x" if i % 2 else "y"} for i in range(40)]
    images = rng.rand(4, 8, 8)
    groups = np.repeat(np.arange(4), 10)
    return [(x, y_class), (x, y_reg), (x,), (x, y_multi), (y_class,), (x[:, 0], y_reg),
            (texts,), (texts, y_class), (dicts,), (images,), ([["a", "b"], ["b"]] * 20,),
            (x, y_class, groups), (x.astype(int) + 1,), (np.abs(x), y_class)]


def _fit(estimator: Any, inputs: list[tuple[Any, ...]]) -> Any:
    """``estimator`` fitted with the first input it accepts, or unfitted."""

    for args in inputs:
        candidate = copy.deepcopy(estimator)
        try:
            candidate.fit(*args)
        except Exception:  # noqa: BLE001 - try the next input shape
            continue
        return candidate
    return estimator


def example_estimators() -> Iterator[tuple[str, object]]:
    """``(name, instance)`` for every default-constructible estimator, fitted when possible.

    scikit-learn's ``all_estimators()`` plus XGBoost/LightGBM/CatBoost model classes
    when those libraries are installed.
    """
    from sklearn.utils import all_estimators  # noqa: PLC0415 - optional extra (scikit-learn), only when regenerating the allow-list

    inputs = _inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls in all_estimators():
            try:
                estimator = cls()
            except TypeError:  # needs an estimator or other required argument
                continue
            yield name, _fit(estimator, inputs)
        for name, cls in _boosting_classes():
            quiet = QUIET_PARAMS[name.split(".")[0]]
            try:
                estimator = cls(n_estimators=2, **quiet)
            except TypeError:  # catboost.CatBoost takes one params dict
                estimator = cls({"iterations": 2, **quiet})
            yield name, _fit(estimator, inputs)


# Constructor arguments that keep each boosting library silent and off the disk.
QUIET_PARAMS: dict[str, dict[str, Any]] = {"xgboost": {"verbosity": 0}, "lightgbm": {"verbose": -1},
          "catboost": {"verbose": False, "allow_writing_files": False}}


def _boosting_classes() -> Iterator[tuple[str, type]]:

    for module, names in (("xgboost", ("XGBClassifier", "XGBRegressor", "XGBRanker",
                                       "XGBRFClassifier", "XGBRFRegressor", "Booster")),
                          ("lightgbm", ("LGBMClassifier", "LGBMRegressor", "LGBMRanker",
                                        "Booster")),
                          ("catboost", ("CatBoost", "CatBoostClassifier", "CatBoostRegressor",
                                        "CatBoostRanker"))):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        for name in names:
            cls = getattr(mod, name, None)
            if isinstance(cls, type) and name != "Booster":
                yield f"{module}.{name}", cls
