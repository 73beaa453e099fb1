"""CEL checks: compiled once, boolean results only, bounded by measured work.

The bound is a wall-clock budget enforced while the expression runs (in a worker
process that is killed when the budget runs out), not a count of macros in the text:
a macro count misses ``x in list`` inside a macro (quadratic) and parentheses hidden
in a ``//`` comment.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgattest.policy import _cel as cel_mod
from mgattest.policy._cel import MAX_EXPR_LEN, CelCompileError, compile_cel

BUDGET = 0.5  # seconds: small budgets keep the attack tests fast
SLACK = 3.0  # killing and reaping the worker on a loaded CI machine (main took 10-50 s)


def _warm_worker() -> None:
    """Start the worker (if a previous test killed it) outside the timed region:
    starting Python is not part of the budget. (The text-counting version this file
    also runs against has no sessions.)"""
    session = getattr(cel_mod, "CelSession", None)
    kwargs = {"session": session(60.0)} if session else {}
    assert compile_cel("true").evaluate({}, **kwargs) == (True, None)


def test_boolean_results_and_errors():
    assert compile_cel("a.b == 1").evaluate({"a": {"b": 1}}) == (True, None)
    assert compile_cel("a.b == 1").evaluate({"a": {"b": 2}}) == (False, None)
    ok, err = compile_cel("a.missing == 1").evaluate({"a": {}})
    assert not ok and "missing" in err
    ok, err = compile_cel("1 + 1").evaluate({})
    assert not ok and "not bool" in err
    ok, err = compile_cel("1 / 0 == 1").evaluate({})
    assert not ok and err


def test_compile_errors_and_bounds():
    with pytest.raises(CelCompileError):
        compile_cel("1 +")
    with pytest.raises(CelCompileError, match="longer"):
        compile_cel("true && " * (MAX_EXPR_LEN // 8 + 1) + "true")
    with pytest.raises(CelCompileError):
        compile_cel("(" * 3000 + "true" + ")" * 3000)


def _timed(expr: str, variables: dict, budget: float = BUDGET):
    program = compile_cel(expr)
    _warm_worker()
    start = time.perf_counter()
    result = program.evaluate(variables, session=cel_mod.CelSession(budget))
    return result, time.perf_counter() - start


@pytest.fixture()
def small_budget(monkeypatch):
    # raising=False: the same test runs (and fails) against the text-counting bound.
    monkeypatch.setattr(cel_mod, "EVAL_BUDGET_S", BUDGET, raising=False)


def _attack(expr: str, variables: dict):
    _warm_worker()
    start = time.perf_counter()
    result = compile_cel(expr).evaluate(variables)
    return result, time.perf_counter() - start


def test_membership_inside_a_macro_is_stopped_by_the_budget(small_budget):
    """`x in list` inside one macro costs width²: 20 000 items is 4e8 steps (~25 s)."""
    (ok, err), elapsed = _attack("predicate.xs.all(a, a in predicate.xs)",
                                 {"predicate": {"xs": list(range(20_000))}})
    assert elapsed < BUDGET + SLACK and not ok and "budget" in err
    assert _attack("predicate.xs.all(a, a in predicate.xs)",
                   {"predicate": {"xs": list(range(50))}})[0] == (True, None)


def test_macros_hidden_behind_a_comment_are_stopped_by_the_budget(small_budget):
    expr = "xs.all(a, // ))\n xs.all(b, xs.all(c, true)))"
    (ok, err), elapsed = _attack(expr, {"xs": list(range(300))})
    assert elapsed < BUDGET + SLACK and not ok and "budget" in err
    assert _attack(expr, {"xs": [1, 2]})[0] == (True, None)


def test_one_budget_for_a_whole_evaluation_and_the_worker_recovers():
    session = cel_mod.CelSession(BUDGET)
    slow = compile_cel("xs.all(a, xs.all(b, xs.all(c, a + b + c >= 0)))")
    _warm_worker()
    start = time.perf_counter()
    assert slow.evaluate({"xs": list(range(2000))}, session=session)[0] is False
    ok, err = compile_cel("true").evaluate({}, session=session)
    assert not ok and "exhausted" in err and time.perf_counter() - start < BUDGET + SLACK
    assert compile_cel("true").evaluate({}) == (True, None)  # a fresh worker, a new budget


def test_memory_hungry_expression_fails_closed(monkeypatch):
    monkeypatch.setattr(cel_mod, "WORKER_MEMORY_BYTES", 512 << 20)
    cel_mod._WORKER.close()
    try:
        expr = "xs.map(a, s + s + s + s + s + s + s + s).size() > 0"  # ~8 GB of strings
        (ok, err), _ = _timed(expr, {"xs": list(range(1000)), "s": "x" * 1_000_000},
                              budget=30)
        assert not ok and "died" in err
    finally:
        cel_mod._WORKER.close()


def test_macros_over_predicates():
    prog = compile_cel('predicate.deps.all(d, has(d.digest))')
    assert prog.evaluate({"predicate": {"deps": [{"digest": {"sha256": "a"}}]}}) == (True, None)
    assert prog.evaluate({"predicate": {"deps": [{"uri": "x"}]}})[0] is False


# Expressions built from the constructs that break text-based cost counting: nested
# comprehension macros, membership tests inside them, and comments between tokens.
_MACROS = st.sampled_from(["all", "exists", "exists_one"])
_COMMENTS = st.sampled_from(["", " // ))(\n ", " // .all(\n "])


@st.composite
def _expressions(draw, depth=0):
    if depth >= draw(st.integers(1, 4)):
        return draw(st.sampled_from(["true", "v0 >= 0", "v0 in xs", "size(xs) > 0"]))
    var = f"v{depth}"
    inner = draw(_expressions(depth + 1)).replace("v0", var) if depth else \
        draw(_expressions(depth + 1))
    return f"xs.{draw(_MACROS)}({var},{draw(_COMMENTS)}{inner} || {var} in xs)"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=_expressions(), width=st.sampled_from([3, 40, 400, 3000]))
def test_property_measured_time_never_exceeds_the_budget(expr, width):
    """Whatever the expression, evaluation returns within the budget (plus the time to
    stop the worker); a result is either an honest boolean or a fail-closed error."""
    try:
        program = compile_cel(expr)
    except CelCompileError:
        return
    _warm_worker()
    start = time.perf_counter()
    ok, err = program.evaluate({"xs": list(range(width))}, session=cel_mod.CelSession(0.3))
    elapsed = time.perf_counter() - start
    assert elapsed < 0.3 + SLACK, (expr, width, elapsed)
    assert ok in (True, False) and (ok or err is None or isinstance(err, str))
