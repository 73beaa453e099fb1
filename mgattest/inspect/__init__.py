"""mgattest.inspect: content inspection of model files, without loading them.

Knows nothing of signatures. The public surface::

    scan_bytes(name, data) -> FileReport
    scan_path(path) -> list[FileReport]
    restricted.restricted_loads(data, extra_allowed=())
    restricted.restricted_joblib_load(data_or_file, extra_allowed=())
"""

from mgattest.inspect.allowlist import SAFE_GLOBALS
from mgattest.inspect.errors import InspectInputError, RestrictedLoadError, UnsafeContentError
from mgattest.inspect.limits import DEFAULT_LIMITS, Limits
from mgattest.inspect.report import (DANGEROUS, MALFORMED, SAFE, SUSPICIOUS, VERDICTS,
                                     FileReport, Finding, ImportRecord, worst)
from mgattest.inspect.scanner import scan_bytes, scan_path

__all__ = [
    "DANGEROUS", "DEFAULT_LIMITS", "FileReport", "Finding", "ImportRecord",
    "InspectInputError", "Limits", "MALFORMED", "RestrictedLoadError", "SAFE",
    "SAFE_GLOBALS", "SUSPICIOUS", "UnsafeContentError", "VERDICTS", "scan_bytes",
    "scan_path", "worst",
]
