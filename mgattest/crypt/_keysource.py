"""Where the KEK key set comes from: an environment variable, a file, or a command.

A command (``--key-command "vault kv get -field=keyset secret/models"``) lets any secret
manager supply the key set without a new dependency: it runs without a shell (the
string is split like a POSIX command line), with a time limit and an output cap, and a
failure (not found, non-zero exit, timeout, no output, too much output) is a
:class:`KeySourceError` naming the command, never a traceback.
"""

from __future__ import annotations

import os
import selectors
import shlex
import subprocess
import time
from dataclasses import dataclass
from typing import Literal

from mgattest._files import read_text
from mgattest.crypt._keysets import KekKeyset
from mgattest.crypt.errors import KeySourceError

__all__ = ["KeySource"]

MAX_KEY_OUTPUT = 1 << 20
DEFAULT_COMMAND_TIMEOUT = 30.0

KeySourceKind = Literal["env", "file", "command"]


@dataclass(frozen=True)
class KeySource:
    """One place to read the KEK key set (Tink JSON) from.

    ``KeySource.env("MGATTEST_KEYSET")``, ``KeySource.file(path)`` or
    ``KeySource.command("secret-tool lookup model kek")``; :meth:`load` reads it.
    """

    kind: KeySourceKind
    value: str
    timeout: float = DEFAULT_COMMAND_TIMEOUT

    @classmethod
    def env(cls, name: str) -> KeySource:
        """The key set is the value of environment variable *name*."""
        return cls("env", name)

    @classmethod
    def file(cls, path: str | os.PathLike[str]) -> KeySource:
        """The key set is the content of the file at *path*."""
        return cls("file", os.fspath(path))

    @classmethod
    def command(cls, command_line: str, *, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> KeySource:
        """The key set is what *command_line* prints (run without a shell)."""
        return cls("command", command_line, timeout)

    @property
    def label(self) -> str:
        """How messages name this source."""
        return {"env": f"environment variable {self.value}", "file": f"file {self.value}",
                "command": f"key command {self.value!r}"}[self.kind]

    def read_text(self) -> str:
        """The key set text this source supplies."""
        if self.kind == "env":
            text = os.environ.get(self.value)
            if not text:
                raise KeySourceError(f"{self.label} is unset or empty", what="key source",
                                     where=self.value)
        elif self.kind == "file":
            text = read_text(self.value, "key set file", MAX_KEY_OUTPUT)
        else:
            text = _run_key_command(self.value, self.timeout, self.label)
        if not text.strip():
            raise KeySourceError(f"{self.label} supplied an empty key set", what="key source",
                                 where=self.value)
        return text

    def load(self) -> KekKeyset:
        """The KEK key set this source supplies, parsed and checked."""
        return KekKeyset(self.read_text(), source=self.label)


def _run_key_command(command_line: str, timeout: float, label: str) -> str:
    """What the command prints on stdout, read with a deadline and a size cap."""
    try:
        argv = shlex.split(command_line)
    except ValueError as exc:
        raise KeySourceError(f"{label}: cannot split the command line ({exc})",
                             what="key command", where=command_line) from None
    if not argv:
        raise KeySourceError("the key command is empty", what="key command", where="")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,  # the user's command, no shell
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise KeySourceError(f"{label} cannot run: {exc.strerror or exc}",
                             what="key command", where=argv[0]) from None
    try:
        out, err = _bounded_output(proc, timeout, label, argv[0])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if proc.returncode != 0:
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise KeySourceError(f"{label} exited with status {proc.returncode}"
                             + (f": {last[0][:200]}" if last else ""),
                             what="key command", where=argv[0])
    return out.decode("utf-8", "replace")


def _bounded_output(proc: subprocess.Popen[bytes], timeout: float, label: str,
                    program: str) -> tuple[bytes, bytes]:
    """Read stdout and stderr until both close, within *timeout* seconds and
    :data:`MAX_KEY_OUTPUT` bytes each (an endless command cannot fill memory)."""
    deadline = time.monotonic() + timeout
    buffers = {stream: bytearray() for stream in (proc.stdout, proc.stderr) if stream}
    with selectors.DefaultSelector() as selector:
        for stream in buffers:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KeySourceError(f"{label} did not finish within {timeout:g} s",
                                     what="key command", where=program)
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer = next(b for s, b in buffers.items() if s.fileno() == key.fd)
                buffer += chunk
                if len(buffer) > MAX_KEY_OUTPUT:
                    raise KeySourceError(f"{label} printed more than {MAX_KEY_OUTPUT} bytes",
                                         what="key command", where=program)
    remaining = max(deadline - time.monotonic(), 0.0)
    try:
        proc.wait(remaining)
    except subprocess.TimeoutExpired:
        raise KeySourceError(f"{label} did not finish within {timeout:g} s",
                             what="key command", where=program) from None
    out, err = buffers.values()
    return bytes(out), bytes(err)
