"""Hypothesis budgets for the parser fuzz tests: fast by default, long on demand.

``MGATTEST_FUZZ=long pytest tests/test_inspect_fuzz.py`` runs each property with 100x
the examples and no deadline; the default keeps each property to a few seconds.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("MGATTEST_FUZZ") == "long"


def fuzz(examples: int) -> settings:
    """Settings for a parser property: ``examples`` by default, 100x under MGATTEST_FUZZ=long."""
    return settings(max_examples=examples * 100 if LONG else examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])
