"""Reading user-supplied files with a size bound, shared by every package.

Bundles, trusted roots, policies, attestation files and trust configs all arrive as paths
from the command line or a policy file. Each is read with the same rules: never more than
``limit + 1`` bytes (so a huge or endless file cannot exhaust memory), and every failure
is a typed mgattest error naming the file — never an ``OSError`` traceback. Only regular
files are read: a FIFO, socket or device is refused at once, without blocking.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Iterator

from mgattest.errors import InputError, MgattestError

_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def open_regular(path: str | os.PathLike[str], *, what: str,
                 error: type[MgattestError] = InputError, flags: int = os.O_RDONLY,
                 mode: int = 0o640) -> int:
    """A descriptor of the *regular* file at ``path`` (read-only unless ``flags`` say
    otherwise, e.g. ``O_WRONLY | O_APPEND | O_CREAT`` for a log); never blocks.

    The open is non-blocking and ``fstat`` then checks the type, so a FIFO, socket or
    device at ``path`` (planted in a model's ``.git/``, passed as a bundle, policy or
    audit log) gives an immediate ``error`` naming it instead of a hang or an endless
    read. ``mode`` applies when ``flags`` create the file.
    """
    label = str(Path(path))
    try:
        fd = os.open(path, flags | _O_NONBLOCK | _O_CLOEXEC, mode)
    except IsADirectoryError:
        raise error(f"{what} {label} is a directory", what=what, where=label) from None
    except OSError as exc:
        kind = _kind_at(path)  # a socket cannot be opened (ENXIO): say what it is
        reason = f"{label} is {kind}, not a regular file" if kind else \
            f"{label}: {exc.strerror or exc}"
        verb = "read" if flags & os.O_ACCMODE == os.O_RDONLY else "open"
        raise error(f"cannot {verb} {what} {reason}", what=what, where=label) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{what} {label} is {file_kind(mode)}, not a regular file",
                        what=what, where=label)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _kind_at(path: str | os.PathLike[str]) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else file_kind(mode)


def file_kind(mode: int) -> str:
    """What a ``st_mode`` that is not a regular file is, for messages."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return kind
    return "not a regular file"


def sha256_file(path: str | os.PathLike[str], *, what: str,
                error: type[MgattestError] = InputError) -> str:
    """Hex SHA-256 of the regular file at ``path`` (opened with :func:`open_regular`)."""
    h = hashlib.sha256()
    with os.fdopen(open_regular(path, what=what, error=error), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def entry_digest(path: str | os.PathLike[str], st: os.stat_result, *, what: str,
                 error: type[MgattestError] = InputError) -> str:
    """What a model tree records for one entry whose (l)stat is ``st``: the SHA-256 of a
    regular file, ``symlink:<target>``, or ``special:<kind>`` for a FIFO, socket or
    device (never opened: it could block)."""
    if stat.S_ISLNK(st.st_mode):
        return "symlink:" + os.readlink(path)
    if not stat.S_ISREG(st.st_mode):
        return "special:" + file_kind(st.st_mode)
    return sha256_file(path, what=what, error=error)


def tree_entries(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Every entry under the directory ``root`` that a model tree records, without
    following symlinks: files, FIFOs, sockets, devices and symlinks (to directories too),
    directory by directory in sorted order."""
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()
        links_to_dirs = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(names + links_to_dirs):
            yield Path(dirpath) / name


def read_bounded(path: str | os.PathLike[str], limit: int, *, what: str,
                 error: type[MgattestError] = InputError,
                 too_large: type[MgattestError] | None = None) -> bytes:
    """The bytes of the regular file at ``path``, refusing files larger than ``limit``.

    ``what`` names the file in messages ("bundle", "policy file", ...). Unreadable files,
    directories, FIFOs, sockets and devices raise ``error`` (at once: nothing blocks); an
    oversized file raises ``too_large`` (default ``error``).
    """
    label = str(Path(path))
    fd = open_regular(path, what=what, error=error)
    try:
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit + 1)
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


def read_text(path: str | os.PathLike[str], what: str, limit: int) -> str:
    """The UTF-8 text of the file at ``path`` (at most ``limit`` bytes), or InputError."""
    data = read_bounded(path, limit, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 (byte {exc.start})", what=what,
                         where=str(path)) from None


def read_json(path: str | os.PathLike[str], what: str, limit: int) -> object:
    """The JSON value in the file at ``path`` (at most ``limit`` bytes), or InputError."""
    text = read_text(path, what, limit)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{what} {path} is not valid JSON: {exc}", what=what,
                         where=str(path)) from None
