"""Custom policy checks in CEL, compiled once and evaluated with bounds.

Backend: ``common-expression-language`` (module ``cel``, Rust) — measured at ~15 µs per
evaluation against ~360 µs for the pure-Python ``cel-python`` (``celpy``) on the same
expression, and maintained. ``celpy`` is used only when ``cel`` is not installed.

Bounds: CEL has no loops or recursion, so an expression without comprehension macros
runs in time linear in its length (≤ 4096 characters) and its input. Comprehension
macros (``all``, ``exists``, ``exists_one``, ``map``, ``filter``) nest into polynomial
work: at most :data:`MAX_MACROS` are allowed, and before each evaluation the work bound
``(largest list or map in the input) ** (macro nesting depth)`` must stay under
:data:`MAX_WORK`, else the check fails closed. (The Rust backend holds the GIL while it
runs, so a thread deadline could not interrupt it; the bound is computed up front.)
"""

from __future__ import annotations

import concurrent.futures
import re
from dataclasses import dataclass
from typing import Any

MAX_EXPR_LEN = 4096
MAX_MACROS = 3
MAX_WORK = 200_000
EVAL_DEADLINE_S = 0.25  # celpy fallback only (pure Python, interruptible by waiting)

_MACRO_RE = re.compile(r"\.\s*(all|exists|exists_one|map|filter)\s*\(")
_executor: concurrent.futures.ThreadPoolExecutor | None = None


class CelCompileError(ValueError):
    """The expression does not parse or breaks a bound."""


@dataclass(frozen=True)
class CelProgram:
    """A compiled CEL expression."""

    expr: str
    backend: str
    program: Any
    macro_depth: int
    used: frozenset[str] | None = None  # top-level variables the expression reads

    @property
    def uses_macros(self) -> bool:
        return self.macro_depth > 0

    def evaluate(self, activation: "dict[str, Any] | Activation") -> tuple[bool, str | None]:
        """Return ``(result, error)``; a non-boolean result or any error is ``False``.

        *activation* is a dict of variables, or an :class:`Activation` reused across
        programs (its conversion to CEL values happens once).
        """
        act = activation if isinstance(activation, Activation) else Activation(
            {k: v for k, v in activation.items() if self.used is None or k in self.used})
        if self.uses_macros:
            width = max(act.width(), self.expr.count(",") + 1)
            if width ** self.macro_depth > MAX_WORK:
                return False, (f"input too large for {self.macro_depth} nested comprehension(s) "
                               f"(a list or map of {width} items; bound {MAX_WORK} steps)")
        if self.uses_macros and self.backend == "celpy":
            future = _pool().submit(self._run, act)
            try:
                value = future.result(timeout=EVAL_DEADLINE_S)
            except concurrent.futures.TimeoutError:
                return False, f"evaluation exceeded {EVAL_DEADLINE_S}s"
            except Exception as exc:  # noqa: BLE001 - CEL runtime errors of any type
                return False, _describe(exc)
        else:
            try:
                value = self._run(act)
            except Exception as exc:  # noqa: BLE001
                return False, _describe(exc)
        if not isinstance(value, bool):
            return False, f"expression returned {type(value).__name__}, not bool"
        return value, None

    def _run(self, act: "Activation") -> Any:
        if self.backend == "cel":
            return self.program.execute(act.cel_context())
        import celpy  # noqa: PLC0415

        result = self.program.evaluate({k: celpy.json_to_cel(v) for k, v in act.values.items()})
        return bool(result) if isinstance(result, celpy.celtypes.BoolType) else result


class Activation:
    """Variables for CEL programs, converted to CEL values once and reused."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self._width: int | None = None
        self._ctx: Any = None

    def width(self) -> int:
        """Size of the largest list or map in the variables."""
        if self._width is None:
            self._width = _widest(self.values)
        return self._width

    def cel_context(self) -> Any:
        """A ``cel.Context`` holding the variables (built on first use)."""
        if self._ctx is None:
            import cel  # noqa: PLC0415

            ctx = cel.Context()
            for name, value in self.values.items():
                ctx.add_variable(name, value)
            self._ctx = ctx
        return self._ctx


def compile_cel(expr: str) -> CelProgram:
    """Compile *expr*; raise :class:`CelCompileError` with the parser's message."""
    if len(expr) > MAX_EXPR_LEN:
        raise CelCompileError(f"CEL expression longer than {MAX_EXPR_LEN} characters")
    macros = len(_MACRO_RE.findall(expr))
    if macros > MAX_MACROS:
        raise CelCompileError(f"CEL expression uses {macros} comprehension macros "
                              f"(at most {MAX_MACROS} allowed)")
    depth = _macro_depth(expr)
    try:
        import cel  # noqa: PLC0415
    except ImportError:
        return _compile_celpy(expr, depth)
    try:
        program = cel.compile(expr)
    except Exception as exc:  # noqa: BLE001 - the binding raises ValueError/RuntimeError
        raise CelCompileError(_describe(exc)) from None
    try:
        used = frozenset(program.variables())
    except Exception:  # noqa: BLE001 - older bindings: convert every variable
        used = None
    return CelProgram(expr, "cel", program, depth, used)


def _macro_depth(expr: str) -> int:
    """Deepest nesting of comprehension macros (conservative: ignores string quoting)."""
    stack: list[bool] = []
    deepest = 0
    macro_opens = {m.end() - 1 for m in _MACRO_RE.finditer(expr)}
    for i, ch in enumerate(expr):
        if ch == "(":
            stack.append(i in macro_opens)
            deepest = max(deepest, sum(stack))
        elif ch == ")" and stack:
            stack.pop()
    return deepest


def _widest(value: Any, depth: int = 0) -> int:
    """Size of the largest list or map anywhere in *value*."""
    if depth > 64:
        return 0
    if isinstance(value, dict):
        return max([len(value)] + [_widest(v, depth + 1) for v in value.values()])
    if isinstance(value, (list, tuple)):
        return max([len(value)] + [_widest(v, depth + 1) for v in value])
    return 0


def _compile_celpy(expr: str, depth: int) -> CelProgram:
    import celpy  # noqa: PLC0415

    env = celpy.Environment()
    try:
        program = env.program(env.compile(expr))
    except Exception as exc:  # noqa: BLE001
        raise CelCompileError(_describe(exc)) from None
    return CelProgram(expr, "celpy", program, depth)


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = concurrent.futures.ThreadPoolExecutor(max_workers=2,
                                                          thread_name_prefix="mgattest-cel")
    return _executor


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no such field {exc}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {' '.join(text)[:300]}" if text else type(exc).__name__
