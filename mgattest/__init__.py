"""mgattest: verifiable ML model supply chains.

Heavy submodules load lazily; ``import mgattest`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from mgattest.load import load  # noqa: PLC0415 - lazy: `import mgattest` stays cheap; load pulls in the whole stack

        return load
    raise AttributeError(f"module 'mgattest' has no attribute {name!r}")
