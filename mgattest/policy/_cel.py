"""Custom policy checks in CEL: compiled once, evaluated in a worker process under a
time budget that is enforced while the expression runs.

Backend: ``common-expression-language`` (module ``cel``, Rust) — ~15 µs per evaluation
against ~360 µs for the pure-Python ``cel-python`` (``celpy``), which is the fallback
when ``cel`` is not installed.

Bound: neither library offers a cost limit, and the Rust one holds the GIL while it
runs, so nothing in this process could interrupt it. Counting macros in the text does
not bound the work either (``x in list`` inside a macro is quadratic; a ``//`` comment
hides parentheses). So every evaluation runs in a separate worker process
(:mod:`mgattest.policy._celworker`) with a capped address space, and the caller waits
at most the remaining budget of the policy evaluation (:data:`EVAL_BUDGET_S` wall-clock
seconds for all CEL checks of one verdict); when it runs out the worker is killed and
the checks still pending fail closed. Compiling stays in this process: the parser
rejects deep nesting and expressions are at most :data:`MAX_EXPR_LEN` characters.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterable

from mgattest._jsonutil import JSONObject

MAX_EXPR_LEN = 4096
EVAL_BUDGET_S = 5.0  # wall-clock seconds of CEL evaluation per verdict
WORKER_START_TIMEOUT_S = 60.0  # starting Python and importing the backend (not budgeted)
WORKER_MEMORY_BYTES = 4 << 30  # RLIMIT_AS of the worker

_context_ids = itertools.count(1)
_session_ids = itertools.count(1)


class CelCompileError(ValueError):
    """The expression does not parse or breaks a bound."""


@dataclass(frozen=True)
class CelProgram:
    """A compiled CEL expression."""

    expr: str
    backend: str
    used: frozenset[str] | None = None  # top-level variables the expression reads

    def evaluate(self, activation: "JSONObject | Activation", *,
                 session: "CelSession | None" = None) -> tuple[bool, str | None]:
        """Return ``(result, error)``; a non-boolean result or any error is ``False``.

        *activation* is a dict of variables or an :class:`Activation`. Without a
        *session* the evaluation gets a budget of its own.
        """
        act = activation if isinstance(activation, Activation) else Activation(
            {k: v for k, v in activation.items() if self.used is None or k in self.used})
        [(hit, error)] = (session or CelSession()).first_true(self, [[act]])
        return hit is not None, error


class Activation:
    """Variables for CEL programs, sent to the worker once per session."""

    def __init__(self, values: JSONObject) -> None:
        self.values = values
        self.cid = str(next(_context_ids))


def compile_cel(expr: str) -> CelProgram:
    """Compile *expr*; raise :class:`CelCompileError` with the parser's message."""
    if len(expr) > MAX_EXPR_LEN:
        raise CelCompileError(f"CEL expression longer than {MAX_EXPR_LEN} characters")
    try:
        import cel  # noqa: PLC0415 - the Rust CEL binding is optional (cel-python is the fallback)
    except ImportError:
        return _compile_celpy(expr)
    try:
        program = cel.compile(expr)
    except Exception as exc:  # noqa: BLE001 - the binding raises ValueError/RuntimeError
        raise CelCompileError(_describe(exc)) from None
    try:
        used = frozenset(program.variables())
    except Exception:  # noqa: BLE001 - older bindings: send every variable
        used = None
    return CelProgram(expr, "cel", used)


def _compile_celpy(expr: str) -> CelProgram:
    import celpy  # noqa: PLC0415 - fallback CEL implementation, only when the Rust binding is missing

    env = celpy.Environment()
    try:
        env.compile(expr)
    except Exception as exc:  # noqa: BLE001 - celpy raises many unrelated types on bad input
        raise CelCompileError(_describe(exc)) from None
    return CelProgram(expr, "celpy")


class CelSession:
    """The CEL work of one policy evaluation: one time budget, contexts sent once."""

    def __init__(self, budget_s: float | None = None) -> None:
        self.sid = str(next(_session_ids))
        self.remaining = EVAL_BUDGET_S if budget_s is None else budget_s
        self._sent: set[str] = set()
        self._generation = -1

    def first_true(self, program: CelProgram, tasks: list[list[Activation]]
                   ) -> list[tuple[int | None, str | None]]:
        """For each task (a list of activations), the index of the first activation
        for which *program* is true (or None) and the first error met.

        Fails closed: when the budget runs out, every task still pending gets
        ``(None, reason)``."""
        return self.first_true_many([(program, tasks)])[0]

    def first_true_many(self, jobs: list[tuple[CelProgram, list[list[Activation]]]]
                        ) -> list[list[tuple[int | None, str | None]]]:
        """:meth:`first_true` for several programs in ONE round trip to the worker
        (each activation sent once), under this session's single budget."""
        if not any(tasks for _, tasks in jobs):
            return [[] for _ in jobs]
        if self.remaining <= 0:
            return [[(None, f"CEL budget of {EVAL_BUDGET_S}s for this evaluation is "
                            "exhausted")] * len(tasks) for _, tasks in jobs]
        try:
            reply = _WORKER.exchange(self, jobs)
        except _BudgetExceeded as exc:
            return [[(None, str(exc))] * len(tasks) for _, tasks in jobs]
        out: list[list[tuple[int | None, str | None]]] = []
        for (_, tasks), job_reply in zip(jobs, reply["results"], strict=True):
            if "error" in job_reply:
                out.append([(None, job_reply["error"])] * len(tasks))
            else:
                out.append([(r[0], r[1]) for r in job_reply["results"]])
        return out

    def _contexts(self, tasks: Iterable[list[Activation]], generation: int,
                  resend: bool) -> dict[str, dict[str, Any]]:
        if generation != self._generation:  # a new worker knows nothing of us
            self._sent.clear()
            self._generation = generation
        out = {}
        for task in tasks:
            for act in task:
                if resend or act.cid not in self._sent:
                    out[act.cid] = act.values
        self._sent.update(out)
        return out


class _BudgetExceeded(Exception):
    pass


class _Worker:
    """The process-wide CEL worker, started on first use, restarted after a kill."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.owner = os.getpid()
        self.generation = 0

    def exchange(self, session: CelSession,
                 jobs: list[tuple[CelProgram, list[list[Activation]]]]) -> dict[str, Any]:
        with self.lock:
            proc = self._running()
            started = time.monotonic()
            try:
                for resend in (False, True):
                    tasks = [task for _, job_tasks in jobs for task in job_tasks]
                    request = {"session": session.sid,
                               "contexts": session._contexts(tasks, self.generation, resend),
                               "jobs": [{"expr": program.expr,
                                         "tasks": [[a.cid for a in task] for task in job_tasks]}
                                        for program, job_tasks in jobs]}
                    reply = self._call(proc, request, started + session.remaining)
                    if "missing" not in reply:
                        return reply
                raise _BudgetExceeded("the CEL worker lost this evaluation's variables")
            finally:
                session.remaining -= time.monotonic() - started

    def _running(self) -> subprocess.Popen[bytes]:
        if self.owner != os.getpid():  # forked: the parent's worker is not ours to use
            self.proc, self.owner = None, os.getpid()
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        return self.proc

    def _start(self) -> subprocess.Popen[bytes]:
        source = resources.files("mgattest.policy").joinpath("_celworker.py").read_text()
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-c", source,
                                     str(WORKER_MEMORY_BYTES)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, close_fds=True)
        except OSError as exc:
            raise _BudgetExceeded(f"cannot start the CEL worker: {exc}") from None
        self.generation += 1
        try:
            _read_frame(proc, time.monotonic() + WORKER_START_TIMEOUT_S)
        except _BudgetExceeded:
            self._kill(proc)
            raise _BudgetExceeded("the CEL worker did not start") from None
        return proc

    def _call(self, proc: subprocess.Popen[bytes], request: dict[str, Any],
              deadline: float) -> dict[str, Any]:
        data = json.dumps(request, default=str).encode()
        try:
            assert proc.stdin is not None
            proc.stdin.write(struct.pack(">I", len(data)) + data)
            proc.stdin.flush()
            return _read_frame(proc, deadline)
        except (_BudgetExceeded, OSError, ValueError) as exc:
            self._kill(proc)
            if isinstance(exc, _BudgetExceeded):
                raise
            raise _BudgetExceeded(f"the CEL worker failed: {exc}") from None

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        if self.proc is proc:
            self.proc = None

    def close(self) -> None:
        """Stop the worker (at interpreter exit)."""
        if self.proc is not None and self.owner == os.getpid():
            self._kill(self.proc)


def _read_frame(proc: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
    header = _read_exactly(proc, 4, deadline)
    (size,) = struct.unpack(">I", header)
    frame: dict[str, Any] = json.loads(_read_exactly(proc, size, deadline))
    return frame


def _read_exactly(proc: subprocess.Popen[bytes], size: int, deadline: float) -> bytes:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    chunks, got = [], 0
    while got < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise _BudgetExceeded("CEL evaluation exceeded the time budget of this policy "
                                  f"evaluation ({EVAL_BUDGET_S}s by default) and was stopped")
        chunk = os.read(fd, size - got)
        if not chunk:
            raise _BudgetExceeded("the CEL worker died (out of memory?)")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


_WORKER = _Worker()
atexit.register(_WORKER.close)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {' '.join(text)[:300]}" if text else type(exc).__name__
