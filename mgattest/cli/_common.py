"""Helpers shared by the CLI command modules.

Command modules import only ``typer`` and this module at import time; everything heavy
is imported inside the command functions so ``mgattest --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import TYPE_CHECKING, Callable, NoReturn, ParamSpec, TypeVar

import typer

from mgattest._text import escape_text

if TYPE_CHECKING:
    from mgattest.errors import MgattestError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2

#: Addresses a server command may listen on without ``--allow-remote``.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def check_listen_options(host: str, port: int, allow_remote: bool, *,
                         any_port: bool = False) -> None:
    """``--host``/``--port``/``--allow-remote`` of a server command: loopback unless the
    operator says otherwise, and a valid port (``any_port``: 0, "pick a free one", too)."""
    from mgattest.errors import InputError

    if host not in LOOPBACK_HOSTS and not allow_remote:
        raise InputError(f"refusing to listen on non-loopback address {host!r} without "
                         "--allow-remote (put TLS in front of it)", what="usage")
    lowest = 0 if any_port else 1
    if not lowest <= port < 65536:
        raise InputError(f"--port must be {lowest}..65535, got {port}", what="usage")


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn mgattest errors into a clear message and the documented exit code.

    VerificationError → exit 1, InputError (and any other MgattestError) → exit 2.
    OSError on user-supplied paths is an input error, not a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from mgattest.errors import MgattestError

        try:
            return func(*args, **kwargs)
        except MgattestError as exc:
            fail(exc)
        except (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError) as exc:
            err(f"error: {exc.strerror or exc}: {exc.filename}")
            raise typer.Exit(EXIT_USAGE) from None
        except RecursionError:
            # json/yaml parsers recurse per nesting level; hostile input must not
            # surface as a traceback.
            err("error: input is nested too deeply to parse")
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def fail(exc: MgattestError, *, as_json: bool = False) -> NoReturn:
    """Report a MgattestError and exit with its code."""
    if as_json:
        out(json.dumps({"ok": False, **exc.to_dict()}, indent=2))
    else:
        label = "rejected" if exc.exit_code == EXIT_REJECTED else "error"
        msg = f"{label}: {exc.message}"
        if getattr(exc, "where", None):
            msg += f" [at {escape_text(exc.where)}]"
        err(msg)
    raise typer.Exit(exc.exit_code)


def out(text: str) -> None:
    """Write one line to stdout, control and bidi characters escaped (see mgattest._text)."""
    sys.stdout.write(escape_text(text, keep_newlines=True) + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    """Write one line to stderr, control and bidi characters escaped (see mgattest._text)."""
    sys.stderr.write(escape_text(text, keep_newlines=True) + "\n")
    sys.stderr.flush()


def output_format(fmt: str, as_json: bool, formats: tuple[str, ...]) -> str:
    """The ``--format`` chosen (``--json`` is ``--format json``); a bad one is an
    InputError."""
    from mgattest.errors import InputError

    chosen = "json" if as_json else fmt
    if chosen not in formats:
        raise InputError(f"--format must be one of {', '.join(formats)}, not {fmt!r}",
                         what="--format")
    if as_json and fmt not in ("table", "json"):
        raise InputError("give --json or --format, not both", what="--json")
    return chosen
