"""The CEL evaluation worker: a separate process the policy engine can kill.

``mgattest.policy._cel`` starts this file as ``python -I -c <source>`` (it imports
nothing from mgattest) and talks to it over stdin/stdout in frames: a 4-byte
big-endian length, then UTF-8 JSON. The worker caps its own address space
(``RLIMIT_AS``, the first argument in bytes) so a comprehension that builds huge
lists dies here, not in the verifier.

Frames from the parent:

``{"session": S, "contexts": {C: {var: value}}, "jobs": [{"expr": E, "tasks": [[C, ...], ...]}]}``
    For each job, evaluate E over each task's contexts in order, stopping at the first
    that yields ``true``. Contexts are kept per session (the last few sessions) so one
    evaluation sends each attestation's variables once; all CEL checks of one verdict
    travel in one frame.

Replies: ``{"results": [job result, ...]}``, one per job: ``{"results": [[index of the
first true context | null, first error | null], ...]}`` or ``{"error": message}`` when
E does not compile; or ``{"missing": [C, ...]}`` when a context must be (re)sent. The
first frame the worker writes is ``{"ready": backend}``.
"""

import json
import resource
import struct
import sys
from collections import OrderedDict

KEEP_SESSIONS = 8
KEEP_PROGRAMS = 256


class RustBackend:
    name = "cel"

    def __init__(self, cel):
        self.cel = cel

    def compile(self, expr):
        return self.cel.compile(expr)

    def context(self, values):
        ctx = self.cel.Context()
        for name, value in values.items():
            ctx.add_variable(name, value)
        return ctx

    def run(self, program, ctx):
        return program.execute(ctx)


class PythonBackend:
    name = "celpy"

    def __init__(self, celpy):
        self.celpy = celpy
        self.env = celpy.Environment()

    def compile(self, expr):
        return self.env.program(self.env.compile(expr))

    def context(self, values):
        return {k: self.celpy.json_to_cel(v) for k, v in values.items()}

    def run(self, program, ctx):
        value = program.evaluate(ctx)
        return bool(value) if isinstance(value, self.celpy.celtypes.BoolType) else value


def backend():
    try:
        import cel  # noqa: PLC0415 - the CEL bindings load in the worker process only
    except ImportError:
        import celpy  # noqa: PLC0415 - fallback CEL implementation, only when the Rust binding is missing
        return PythonBackend(celpy)
    return RustBackend(cel)


def describe(exc):
    if isinstance(exc, KeyError):
        return f"no such field {exc}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {' '.join(text)[:300]}" if text else type(exc).__name__


def evaluate_task(engine, program, contexts):
    """[index of the first context where the program is true, first error]."""
    first_error = None
    for index, ctx in enumerate(contexts):
        try:
            value = engine.run(program, ctx)
        except Exception as exc:  # noqa: BLE001 - CEL runtime errors of any type
            first_error = first_error or describe(exc)
            continue
        if value is True:
            return [index, first_error]
        if not isinstance(value, bool):
            first_error = first_error or f"expression returned {type(value).__name__}, not bool"
    return [None, first_error]


def handle(request, engine, programs, sessions):
    sid = request["session"]
    session = sessions.pop(sid, None) or {}
    sessions[sid] = session
    while len(sessions) > KEEP_SESSIONS:
        sessions.popitem(last=False)
    for cid, values in request.get("contexts", {}).items():
        session[cid] = engine.context(values)
    jobs = request["jobs"]
    missing = sorted({cid for job in jobs for task in job["tasks"] for cid in task
                      if cid not in session})
    if missing:
        return {"missing": missing}
    return {"results": [run_job(job, engine, programs, session) for job in jobs]}


def run_job(job, engine, programs, session):
    """One program over its tasks: {"results": [...]} or {"error": message}."""
    expr = job["expr"]
    program = programs.pop(expr, None)
    if program is None:
        try:
            program = engine.compile(expr)
        except Exception as exc:  # noqa: BLE001 - reported to the parent as a clause error
            return {"error": describe(exc)}
    programs[expr] = program
    while len(programs) > KEEP_PROGRAMS:
        programs.popitem(last=False)
    return {"results": [evaluate_task(engine, program, [session[c] for c in task])
                        for task in job["tasks"]]}


def read_frame(stream):
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    return json.loads(stream.read(size))


def write_frame(stream, message):
    data = json.dumps(message).encode()
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def main():
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    engine = backend()
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    write_frame(out, {"ready": engine.name})
    # compiled programs by expression; per-session activations by session id
    programs: OrderedDict[str, object] = OrderedDict()
    sessions: OrderedDict[object, dict[str, object]] = OrderedDict()
    while True:
        request = read_frame(inp)
        if request is None:
            return
        write_frame(out, handle(request, engine, programs, sessions))


if __name__ == "__main__":
    main()
