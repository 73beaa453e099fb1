#!/usr/bin/env python3
"""Generate mgattest/inspect/_estimators.json: the estimator classes a pickle may build.

    python scripts/gen_estimator_allowlist.py [--check]

Derived from the installed libraries, never written by hand:

1. every class of ``sklearn.utils.all_estimators()`` (default-constructible or not),
   and the XGBoost / LightGBM / CatBoost model classes when installed;
2. every *class* that a joblib dump of a fitted, default-constructed estimator imports
   (tree structures, losses, kernels, scipy.sparse matrices ...), from the estimator
   libraries, numpy and scipy only;
3. functions only when they are in REVIEWED_FUNCTIONS below (pure numeric functions
   estimators keep as default parameters). Any other function a dump imports is
   reported and left out: pickles naming it stay refused.

The library versions are recorded in the file. ``--check`` exits 1 when the committed
file differs from what the installed libraries produce.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mgattest.inspect._allowlist import JOBLIB_GLOBALS, SAFE_GLOBALS  # noqa: E402 - after the sys.path line above
from mgattest.inspect._estimators import DATA_FILE, example_estimators  # noqa: E402 - after the sys.path line above
from mgattest.inspect._scanner import scan_bytes  # noqa: E402 - after the sys.path line above

# Module roots whose classes estimators legitimately pickle.
CLASS_ROOTS = ("sklearn", "numpy", "scipy", "xgboost", "lightgbm", "catboost")

# Reviewed by hand: pure numeric functions that default-constructed estimators hold as
# parameters (so a dump of them imports the function). Nothing here touches files,
# processes, the network or the interpreter.
REVIEWED_FUNCTIONS = {
    ("numpy", "mean"): "FeatureAgglomeration(pooling_func=np.mean)",
    ("scipy._lib.array_api_compat.numpy._aliases", "asarray"):
        "SplineTransformer keeps the array namespace's asarray",
    ("sklearn.cluster._kmeans", "_kmeans_single_lloyd"): "BisectingKMeans algorithm='lloyd'",
    ("sklearn.cluster._kmeans", "_kmeans_single_elkan"): "BisectingKMeans algorithm='elkan'",
    ("sklearn.feature_selection._univariate_selection", "f_classif"):
        "SelectKBest & co default score_func",
    ("sklearn.feature_selection._univariate_selection", "f_regression"): "score_func",
    ("sklearn.feature_selection._univariate_selection", "r_regression"): "score_func",
    ("sklearn.feature_selection._univariate_selection", "chi2"): "score_func",
    ("sklearn.feature_selection._mutual_info", "mutual_info_classif"): "score_func",
    ("sklearn.feature_selection._mutual_info", "mutual_info_regression"): "score_func",
}

LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib", "xgboost", "lightgbm", "catboost")


# Import name of each library whose distribution name differs.
IMPORT_NAMES = {"scikit-learn": "sklearn"}


def library_versions() -> dict[str, str]:
    """Installed version of each library, found by import name, so that a library
    shipped under another distribution name (``xgboost-cpu`` for ``xgboost``) counts."""
    from importlib.metadata import packages_distributions, version

    providers = packages_distributions()
    out = {}
    for lib in LIBRARIES:
        dists = sorted(set(providers.get(IMPORT_NAMES.get(lib, lib), ())))
        if not dists:
            out[lib] = "not installed"
        elif dists == [lib]:
            out[lib] = version(lib)
        else:
            out[lib] = ", ".join(f"{version(d)} ({d})" for d in dists)
    return out


def resolve(module: str, name: str) -> object | None:
    try:
        obj = importlib.import_module(module)
    except ImportError:
        return None
    return getattr(obj, name, None)


def estimator_classes() -> set[tuple[str, str]]:
    from sklearn.utils import all_estimators

    from mgattest.inspect._estimators import _boosting_classes

    classes = {(cls.__module__, cls.__qualname__) for _, cls in all_estimators()}
    classes |= {(cls.__module__, cls.__qualname__) for _, cls in _boosting_classes()}
    return classes


def pickled_globals(report: list[str]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(classes, reviewed functions) imported by dumps of every example estimator."""
    import joblib

    classes: set[tuple[str, str]] = set()
    functions: set[tuple[str, str]] = set()
    for name, estimator in example_estimators():
        buf = io.BytesIO()
        joblib.dump(estimator, buf)
        for imp in scan_bytes(f"{name}.joblib", buf.getvalue()).imports:
            pair = (imp.module, imp.name)
            obj = resolve(*pair)
            if isinstance(obj, type) and imp.module.split(".")[0] in CLASS_ROOTS:
                classes.add(pair)
            elif pair in REVIEWED_FUNCTIONS:
                functions.add(pair)
            elif pair not in SAFE_GLOBALS | JOBLIB_GLOBALS:
                report.append(f"left out {imp.module}.{imp.name} (from {name}): "
                              f"{'not a class' if obj is not None else 'unresolvable'}")
    return classes, functions


def generate(report: list[str]) -> dict:
    classes, functions = pickled_globals(report)
    classes |= estimator_classes()
    functions |= {p for p in REVIEWED_FUNCTIONS if resolve(*p) is not None}
    return {
        "generated_by": "scripts/gen_estimator_allowlist.py",
        "libraries": library_versions(),
        "classes": sorted(map(list, classes)),
        "functions": sorted(map(list, functions)),
    }


def render(doc: dict) -> str:
    """JSON with one ``[module, name]`` pair per line (reviewable diffs)."""
    def pairs(items: list) -> str:
        return "[\n" + ",\n".join(f"  {json.dumps(p)}" for p in items) + "\n ]"
    return ("{\n"
            f' "generated_by": {json.dumps(doc["generated_by"])},\n'
            f' "libraries": {json.dumps(doc["libraries"])},\n'
            f' "classes": {pairs(doc["classes"])},\n'
            f' "functions": {pairs(doc["functions"])}\n'
            "}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed file instead of writing it")
    args = parser.parse_args()
    report: list[str] = []
    doc = generate(report)
    for line in sorted(set(report)):
        print(line, file=sys.stderr)
    text = render(doc)
    if args.check:
        same = DATA_FILE.exists() and DATA_FILE.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{DATA_FILE} is stale: re-run without --check")
        return 0 if same else 1
    DATA_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {DATA_FILE}: {len(doc['classes'])} classes, {len(doc['functions'])} "
          f"functions ({', '.join(f'{k} {v}' for k, v in doc['libraries'].items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
