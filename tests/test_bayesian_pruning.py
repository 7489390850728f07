"""Bayesian with a pruner: pruned trials are told to the model, at the value they reached."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

import aiotune as at
from aiotune.strategies.base import drive
from aiotune.strategies.bayesian import BayesianCore

COMPLETE, PRUNED = at.TrialStatus.COMPLETE, at.TrialStatus.PRUNED
X = at.Space(x=at.Float(0.0, 1.0))
XY = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))
STEPS = 9


def final(x: float) -> float:
    """The score a trial at ``x`` reaches after ``STEPS`` steps (best at x = 0.7)."""
    return 1.0 - (x - 0.7) ** 2


def curve(x: float, steps: int) -> dict[int, float]:
    """The learning curve up to ``steps``: rising towards :func:`final`, in the same order."""
    return {s: final(x) * (1.0 - 0.5**s) for s in range(1, steps + 1)}


def trial(number: int, x: float, steps: int = STEPS) -> at.Trial:
    """A trial at ``x`` that ran ``steps`` steps: complete at ``STEPS``, pruned before."""
    values = curve(x, steps)
    status = COMPLETE if steps == STEPS else PRUNED
    return at.Trial(number, {"x": x}, status, values[steps], values)


def test_pruned_trials_are_rows_of_the_model() -> None:
    core = BayesianCore(X, 0, n_initial=3)
    told = [trial(0, 0.1), trial(1, 0.5), trial(2, 0.9), trial(3, 0.3, 1), trial(4, 0.6, 3)]
    for t in told:
        core.tell(t)
    core.tell(at.Trial(5, {"x": 0.2}, PRUNED))  # pruned before its first report: no value
    assert len(core._scores()) == 5
    assert [bool(p) for p in core._pruned] == [False, False, False, True, True]
    np.testing.assert_allclose(np.array(core._x)[:, 0], [0.1, 0.5, 0.9, 0.3, 0.6])


@pytest.mark.slow
async def test_a_bayesian_study_with_asha_models_its_pruned_trials() -> None:
    """Through the real orchestrator and ASHA: every trial that finished before the last
    ask, pruned ones included, is a row of the model."""
    cores: list[BayesianCore] = []

    class Watched(at.Bayesian):
        def suggest(self, space: at.Space, history: at.History) -> AsyncIterator[at.Params]:
            cores.append(BayesianCore(space, self.seed, direction=history.direction))
            return drive(cores[-1], history, in_thread=True)

    async def objective(params: dict[str, Any], context: Any) -> float:
        values = curve(params["x"], STEPS)
        for step, value in values.items():
            context.report(value, step)
        return values[STEPS]

    result = await at.tune(
        objective,
        X,
        strategy=Watched(seed=0, n_initial=4),
        max_trials=16,
        concurrency=1,
        pruner=at.ASHA(min_resource=1, reduction_factor=3, max_resource=STEPS),
    )
    (core,) = cores
    pruned = [t for t in result.trials if t.status is PRUNED]
    assert len(pruned) >= 4
    told = len(core._x)
    assert told == len(result.trials) - 1  # all but the last, finished after the last ask
    assert sum(core._pruned) == sum(t.status is PRUNED for t in result.trials[:told])
    for row, t in zip(core._x, result.trials, strict=False):
        assert row[0] == t.params["x"]


def test_a_pruned_trial_counts_as_its_last_value_but_no_better_than_the_median() -> None:
    core = BayesianCore(X, 0, n_initial=3)
    for t in [trial(0, 0.1), trial(1, 0.5), trial(2, 0.9)]:  # the median: x = 0.5's
        core.tell(t)
    core.tell(at.Trial(3, {"x": 0.2}, PRUNED, 0.99, {1: 0.99}))  # flattering: early luck
    core.tell(trial(4, 0.6, 1))  # 0.495 at its first step: as bad as it looked
    assert core._y[-2:] == [-0.99, -curve(0.6, 1)[1]]  # told as reported (as a minimisation)
    alone = BayesianCore(X, 0, n_initial=3)
    for t in [trial(0, 0.1), trial(1, 0.5), trial(2, 0.9)]:
        alone.tell(t)
    median = curve(0.5, STEPS)[STEPS]
    alone.tell(at.Trial(3, {"x": 0.2}, COMPLETE, median))  # the median, complete
    alone.tell(at.Trial(4, {"x": 0.6}, COMPLETE, curve(0.6, 1)[1]))
    np.testing.assert_allclose(core._scores(), alone._scores())


def test_pruned_trials_steer_the_search_away() -> None:
    """Complete trials alone point between 0.5 and 0.9; trials pruned there, low at their
    rungs, send the next suggestion elsewhere."""
    complete = [trial(0, 0.1), trial(1, 0.5), trial(2, 0.9), trial(3, 0.3)]
    pruned = [trial(4 + k, x, 1) for k, x in enumerate([0.6, 0.65, 0.7, 0.75, 0.8])]
    alone, told = BayesianCore(X, 0, n_initial=4), BayesianCore(X, 0, n_initial=4)
    for t in complete:
        alone.tell(t)
        told.tell(t)
    for t in pruned:
        told.tell(t)
    near = alone.ask(9, {})
    assert near is not None
    assert 0.5 < near["x"] < 0.9
    away = told.ask(9, {})
    assert away is not None
    assert min(abs(away["x"] - t.params["x"]) for t in pruned) > 0.04


def test_once_a_trial_is_pruned_every_third_ask_is_random() -> None:
    """As in BOHB: asks 2, 5, 8, ... ignore the model once a trial has been pruned, so
    two studies that saw the same points score opposite ways ask the same there."""

    def core_told(sign: float, with_pruned: bool) -> BayesianCore:
        core = BayesianCore(X, 0, n_initial=4)
        for k, x in enumerate([0.1, 0.3, 0.5, 0.9]):
            core.tell(at.Trial(k, {"x": x}, COMPLETE, sign * final(x)))
        if with_pruned:
            core.tell(at.Trial(4, {"x": 0.7}, PRUNED, sign * 0.5, {1: sign * 0.5}))
        else:
            core.tell(at.Trial(4, {"x": 0.7}, COMPLETE, sign * final(0.7)))
        return core

    up, down = core_told(1.0, True), core_told(-1.0, True)
    for number in (5, 8, 11):  # random: the same whatever the scores
        assert up.ask(number, {}) == down.ask(number, {})
    for number in (6, 7, 9):  # the model's: the scores decide
        assert up.ask(number, {}) != down.ask(number, {})
    up, down = core_told(1.0, False), core_told(-1.0, False)
    assert up.ask(11, {}) != down.ask(11, {})  # without a pruned trial, the model's too
