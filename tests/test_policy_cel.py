"""CEL checks: compiled once, boolean results only, bounded."""

from __future__ import annotations

import pytest

from mgattest.policy.cel import MAX_EXPR_LEN, CelCompileError, compile_cel


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
    nested = "[1].all(a, [1].all(b, [1].all(c, [1].all(d, true))))"
    with pytest.raises(CelCompileError, match="macros"):
        compile_cel(nested)


def test_macro_evaluation_is_time_bounded():
    # Three nested comprehensions over 400 items would take 64M steps: refused up front.
    import time
    prog = compile_cel("xs.all(a, xs.all(b, xs.all(c, a + b + c >= 0)))")
    t = time.perf_counter()
    ok, err = prog.evaluate({"xs": list(range(400))})
    assert not ok and "too large" in err and time.perf_counter() - t < 0.5
    assert prog.evaluate({"xs": [1, 2]}) == (True, None)
    # Sequential (not nested) macros are bounded by their depth, not their count.
    seq = compile_cel("xs.all(a, a >= 0) && xs.exists(b, b == 399) && xs.all(c, c < 400)")
    assert seq.macro_depth == 1 and seq.evaluate({"xs": list(range(400))}) == (True, None)


def test_macros_over_predicates():
    prog = compile_cel('predicate.deps.all(d, has(d.digest))')
    assert prog.evaluate({"predicate": {"deps": [{"digest": {"sha256": "a"}}]}}) == (True, None)
    assert prog.evaluate({"predicate": {"deps": [{"uri": "x"}]}})[0] is False
