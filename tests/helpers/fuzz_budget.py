"""The one fuzz-budget knob: how many hypothesis examples a property runs, by run mode.

Three run modes, read once from the environment:

* ``local`` (default): each property takes a few seconds.
* ``ci`` (``CI`` set): hypothesis runs derandomized with no example database, so a red CI
  is reproducible on any machine (``CI=true pytest ...``) and a green one does not depend
  on luck; some properties also run more examples (their ``FuzzScale.ci``).
* ``long`` (``MGATTEST_FUZZ=long``, wins over ``CI``): many more examples, minutes.

A property states its local budget and a ``FuzzScale`` saying how much more it runs in CI
and in long mode; :func:`fuzz_examples` turns that into a number and :func:`fuzz` into
hypothesis settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from hypothesis import HealthCheck, settings

RunMode = Literal["local", "ci", "long"]


def run_mode() -> RunMode:
    """The fuzz run mode the environment asks for (see the module docstring)."""
    if os.environ.get("MGATTEST_FUZZ") == "long":
        return "long"
    return "ci" if os.environ.get("CI") else "local"


RUN_MODE: RunMode = run_mode()


@dataclass(frozen=True)
class FuzzScale:
    """How many times the local budget a property runs in CI and in long mode."""

    ci: int
    long: int


# Parsers fed attacker bytes (inspect, npy dtypes, format detection): CI runs the local
# budget, long mode 100x.
PARSER = FuzzScale(ci=1, long=100)
# Log server and client abuse properties: 4x in CI, 20x in long mode.
SERVER = FuzzScale(ci=4, long=20)
# Pickle generators against CPython's unpicklers: 120 examples, 3000 in long mode.
PICKLE = FuzzScale(ci=1, long=25)
# The adversarial bundle mutators: 40 examples, 400 in CI, 5000 in long mode.
ADVERSARIAL = FuzzScale(ci=10, long=125)


def fuzz_examples(local: int, scale: FuzzScale) -> int:
    """How many examples a property with ``local`` examples runs in this run mode."""
    factor = {"local": 1, "ci": scale.ci, "long": scale.long}[RUN_MODE]
    return local * factor


def fuzz(local: int, scale: FuzzScale) -> settings:
    """Settings for a parser property: the budget for this run mode, no deadline, and the
    health checks that large generated inputs trip switched off."""
    return settings(max_examples=fuzz_examples(local, scale), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


def load_profile() -> None:
    """Register the ``ci`` hypothesis profile and load it when ``CI`` is set. Developers'
    runs stay random and keep a local example database, so exploration goes on locally."""
    settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
    if os.environ.get("CI"):
        settings.load_profile("ci")
