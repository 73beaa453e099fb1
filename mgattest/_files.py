"""Reading user-supplied files with a size bound, shared by every package.

Bundles, trusted roots, policies, attestation files and trust configs all arrive as paths
from the command line or a policy file. Each is read with the same rules: never more than
``limit + 1`` bytes (so a huge or endless file cannot exhaust memory), and every failure
is a typed mgattest error naming the file — never an ``OSError`` traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from mgattest.errors import InputError, MgattestError


def read_bounded(path: str | os.PathLike[str], limit: int, *, what: str,
                 error: type[MgattestError] = InputError,
                 too_large: type[MgattestError] | None = None) -> bytes:
    """The bytes of the file at ``path``, refusing files larger than ``limit``.

    ``what`` names the file in messages ("bundle", "policy file", ...). Unreadable files
    and directories raise ``error``; an oversized file raises ``too_large`` (default
    ``error``).
    """
    label = str(Path(path))
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except IsADirectoryError:
        raise error(f"{what} {label} is a directory", what=what, where=label) from None
    except OSError as exc:
        raise error(f"cannot read {what} {label}: {exc.strerror or exc}", what=what,
                    where=label) from None
    if len(data) > limit:
        raise (too_large or error)(f"{what} {label} is larger than {_size(limit)}",
                                   what=what, where=label)
    return data


def _size(limit: int) -> str:
    if limit >= 1 << 20 and limit % (1 << 20) == 0:
        return f"{limit >> 20} MiB ({limit} bytes)"
    return f"{limit} bytes"
