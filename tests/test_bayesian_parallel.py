"""Pending-awareness of the Bayesian core with 8 trials in flight (issue #14).

The core is driven on a simulated clock, as ``benchmarks/quality.py --core``
does: each trial "takes" a duration fixed by its params, the earliest to end
is told first and a new ask is made at once, so from the 9th trial on every
ask is made with 7 params in flight. Nothing sleeps and the order of tells
does not depend on the machine's load, so the runs are exact.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import statistics
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import aiotune as at
from aiotune.strategies import Bayesian
from aiotune.strategies.bayesian import BayesianCore

COMPLETE = at.TrialStatus.COMPLETE
XY = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))
BRANIN_MIN = 0.397887357729738

Objective = Callable[[dict[str, Any]], float]


def branin_unit(params: dict[str, Any]) -> float:
    """Branin on the unit square (three minima of 0.397887)."""
    x1, x2 = -5.0 + 15.0 * params["x"], 15.0 * params["y"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return float((x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10)


def duration(params: dict[str, Any]) -> float:
    """A pseudo-random trial duration in [1, 3), fixed by the params."""
    return 1.0 + 2.0 * zlib.crc32(repr(sorted(params.items())).encode()) / 2**32


def simulate(
    f: Objective, seed: int, budget: int, concurrency: int, *, aware: bool = True
) -> tuple[list[dict[str, Any]], list[float], list[int]]:
    """Asked params, their values and the number in flight at each ask; ``aware=False``
    hides the params in flight from the core (what pending-awareness is compared with)."""
    core = BayesianCore(XY, seed, direction="minimize")
    pending: dict[int, dict[str, Any]] = {}
    ends: list[tuple[float, int]] = []
    asked: list[dict[str, Any]] = []
    values: list[float] = []
    in_flight: list[int] = []
    clock = 0.0
    while len(values) < budget:
        while len(pending) < concurrency and len(asked) < budget:
            number = len(asked)
            params = core.ask(number, pending if aware else {})
            assert params is not None
            in_flight.append(len(pending))
            pending[number] = params
            asked.append(params)
            heapq.heappush(ends, (clock + duration(params), number))
        clock, number = heapq.heappop(ends)
        done = pending.pop(number)
        values.append(f(done))
        core.tell(at.Trial(number, done, COMPLETE, values[-1]))
    return asked, [f(p) for p in asked], in_flight


def closest_pair(asked: list[dict[str, Any]]) -> float:
    points = np.array([[p["x"], p["y"]] for p in asked])
    gaps = np.linalg.norm(points[:, None] - points[None], axis=2)
    return float(gaps[np.triu_indices(len(points), 1)].min())


@pytest.mark.slow
def test_eight_in_flight_never_ask_near_duplicates_and_hidden_pending_would() -> None:
    # Aware of the 7 params in flight, the 32 asks are all distinct points; with
    # them hidden, the model asks its favourite point again and again (the check
    # that this test can fail).
    for seed in range(3):
        asked, _, in_flight = simulate(branin_unit, seed, 32, 8)
        assert in_flight[8:] == [7] * 24  # every model-based ask had 7 in flight
        assert closest_pair(asked) > 1e-3, seed
    blind, _, _ = simulate(branin_unit, 1, 32, 8, aware=False)
    assert closest_pair(blind) < 1e-4


@pytest.mark.slow
def test_eight_in_flight_find_the_optimum_almost_as_well_as_one() -> None:
    # Equal trials, 8 in flight against 1: the batch loses the information of the 7
    # results it is waiting for, but no more than a few trials' worth on Branin.
    regret: dict[int, list[float]] = {1: [], 8: []}
    for seed in range(3):
        for c in (1, 8):
            _, values, _ = simulate(branin_unit, seed, 40, c)
            regret[c].append(min(values) - BRANIN_MIN)
    c1, c8 = statistics.median(regret[1]), statistics.median(regret[8])
    assert c8 < 0.01, regret  # the initial design alone leaves ~1-3
    assert c8 < 30 * max(c1, 1e-4), regret


@pytest.mark.slow
async def test_eight_in_flight_through_the_tuner() -> None:
    # The real orchestrator: whatever the timing, two trials in flight at once are never
    # the same point nor within 1 % of a length-scale (>= 1e-4 here) of each other. A
    # trial may come close to one already *finished*: that is the model refining.
    most_in_flight = 0
    gaps: list[float] = []

    async def slow(params: dict[str, Any]) -> float:
        nonlocal most_in_flight
        others = list(tuner.history.pending.values())
        others.remove(params)  # this trial itself: a duplicate in flight would stay
        most_in_flight = max(most_in_flight, len(others) + 1)
        gaps.extend(closest_pair([params, p]) for p in others)
        await asyncio.sleep(0.2)
        return branin_unit(params)

    tuner = at.Tuner(slow, XY, strategy=Bayesian(seed=0), max_trials=24, concurrency=8)
    result = await tuner.run()
    assert len(result.trials) == 24
    assert most_in_flight >= 2  # suggestions were made with params in flight
    assert min(gaps) >= 1e-4
    points = [tuple(t.params.values()) for t in result.trials]
    assert len(set(points)) == 24
