"""mgattest.inspect: content inspection of model files, without loading them.

Knows nothing of signatures. Entry points (re-exported lazily, PEP 562, so importing
``mgattest.inspect.errors`` does not load every format checker)::

    scan_bytes(name, data) -> FileReport        scan_path(path) -> list[FileReport]
    restricted_loads(data, extra_allowed=())    a pickle through the allow-list unpickler
    restricted_joblib_load(data_or_file, extra_allowed=())
    FileReport, Finding, ImportRecord, worst    the report; verdicts SAFE ... MALFORMED
    Limits, DEFAULT_LIMITS, SAFE_GLOBALS        scan bounds; the unpickler's allow-list
    policy_format, PICKLED_FORMATS, NOT_INSPECTED   the one format vocabulary (policy names)

Typed errors live in the public module :mod:`mgattest.inspect.errors` (and are
re-exported here). Every other module is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgattest._lazy import LazyExports

if TYPE_CHECKING:  # the public names, for type checkers; at run time they load lazily
    from mgattest.inspect._allowlist import SAFE_GLOBALS
    from mgattest.inspect._detect import NOT_INSPECTED, PICKLED_FORMATS, policy_format
    from mgattest.inspect.errors import InspectInputError, RestrictedLoadError, UnsafeContentError
    from mgattest.inspect._limits import DEFAULT_LIMITS, Limits
    from mgattest.inspect._report import (
        DANGEROUS,
        FileReport,
        Finding,
        INFO,
        ImportRecord,
        MALFORMED,
        SAFE,
        SUSPICIOUS,
        VERDICTS,
        worst,
    )
    from mgattest.inspect._restricted import (
        restricted_joblib_load,
        restricted_loads,
        restricted_numpy_load,
    )
    from mgattest.inspect._scanner import scan_bytes, scan_path
    from mgattest.inspect._admission import Admission

_EXPORTS = LazyExports("mgattest.inspect", {
    "SAFE_GLOBALS": "mgattest.inspect._allowlist",
    "InspectInputError": "mgattest.inspect.errors",
    "RestrictedLoadError": "mgattest.inspect.errors",
    "UnsafeContentError": "mgattest.inspect.errors",
    "DEFAULT_LIMITS": "mgattest.inspect._limits",
    "Limits": "mgattest.inspect._limits",
    "DANGEROUS": "mgattest.inspect._report",
    "MALFORMED": "mgattest.inspect._report",
    "SAFE": "mgattest.inspect._report",
    "SUSPICIOUS": "mgattest.inspect._report",
    "INFO": "mgattest.inspect._report",
    "VERDICTS": "mgattest.inspect._report",
    "FileReport": "mgattest.inspect._report",
    "Finding": "mgattest.inspect._report",
    "ImportRecord": "mgattest.inspect._report",
    "worst": "mgattest.inspect._report",
    "scan_bytes": "mgattest.inspect._scanner",
    "scan_path": "mgattest.inspect._scanner",
    "restricted_loads": "mgattest.inspect._restricted",
    "restricted_numpy_load": "mgattest.inspect._restricted",
    "restricted_joblib_load": "mgattest.inspect._restricted",
    "policy_format": "mgattest.inspect._detect",
    "PICKLED_FORMATS": "mgattest.inspect._detect",
    "NOT_INSPECTED": "mgattest.inspect._detect",
    "Admission": "mgattest.inspect._admission",
})

__all__ = [
    "Admission", "DANGEROUS", "DEFAULT_LIMITS", "FileReport", "Finding", "ImportRecord",
    "INFO", "InspectInputError", "Limits", "MALFORMED", "NOT_INSPECTED",
    "PICKLED_FORMATS", "policy_format", "restricted_joblib_load", "restricted_loads",
    "restricted_numpy_load", "RestrictedLoadError", "SAFE", "SAFE_GLOBALS",
    "scan_bytes", "scan_path", "SUSPICIOUS", "UnsafeContentError", "VERDICTS", "worst",
]


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return list(__all__)
