"""Bayesian with a pruner: pruned trials are told to the model, at the step they reached."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

import aiotune as at
from aiotune.strategies import _fidelity
from aiotune.strategies.base import drive
from aiotune.strategies.bayesian import BayesianCore, _warp

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
    assert len(core._targets()) == 5
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
    np.testing.assert_allclose(core._targets(), alone._targets())


def test_pruned_trials_steer_the_search_away() -> None:
    """Complete trials alone point between 0.5 and 0.9; trials pruned there, low at their
    rung beside the complete trials' values at the same step, send the next suggestion
    elsewhere."""
    complete = [trial(0, 0.1), trial(1, 0.5), trial(2, 0.9), trial(3, 0.3)]
    low = 0.5 * curve(0.1, 1)[1]  # half of the worst complete trial's value at step 1
    pruned = [
        at.Trial(4 + k, {"x": x}, PRUNED, low, {1: low})
        for k, x in enumerate([0.6, 0.65, 0.7, 0.75, 0.8])
    ]
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


def inverted(x: float, step: int) -> float:
    """A learning curve whose early ranking inverts the final one: at step 1 the best
    trials are those with small ``x``, at ``STEPS`` those with large ``x``."""
    return 0.5 + (x - 0.5) * (2.0 * math.log(step) / math.log(STEPS) - 1.0)


def inverted_trial(number: int, x: float, steps: int = STEPS) -> at.Trial:
    values = {s: inverted(x, s) for s in range(1, steps + 1)}
    status = COMPLETE if steps == STEPS else PRUNED
    return at.Trial(number, {"x": x}, status, values[steps], values)


def test_an_early_value_is_not_taken_for_a_final_one() -> None:
    """Pruned trials' step-1 values rank small ``x`` first; the complete trials' curves show
    that the ranking inverts by the last step. The model predicts the full-fidelity score
    in the final order, and the next suggestion is where that is best."""
    core = BayesianCore(X, 0, n_initial=3)
    told = [inverted_trial(0, 0.1), inverted_trial(1, 0.5), inverted_trial(2, 0.7)]
    pruned_early = [0.05, 0.2, 0.3, 0.8, 0.85, 0.9, 0.95]  # step 1 ranks 0.05 first, 0.95 last
    told += [inverted_trial(3 + k, x, 1) for k, x in enumerate(pruned_early)]
    told += [inverted_trial(10, 0.4, 3), inverted_trial(11, 0.6, 3)]
    for t in told:
        core.tell(t)
    data = core._fidelity.data(core._sign)
    assert data is not None
    xz, y = data
    # One row per rung a trial passed (steps 1 and 3) and one at its last step.
    assert len(xz) == 3 * 3 + 7 + 2 * 2
    np.testing.assert_allclose(sorted(set(xz[:, 1].round(6))), [0.0, 0.5, 1.0])
    posterior, _, _ = core._fidelity.posterior(core._enc, xz, _warp(y), rng(), len(told))
    xs = np.linspace(0.1, 0.9, 9)
    final, first = (posterior.predict(np.column_stack([xs, np.full(9, z)]))[0] for z in (1, 0))
    assert np.all(np.diff(final) < 0)  # a minimisation: larger x is better at full fidelity
    assert np.all(np.diff(first) > 0)  # ... and worse at the first step
    nxt = core.ask(12, {})
    assert nxt is not None
    assert nxt["x"] > 0.8
    # The same trials told without their fidelity (the last value as a final one, no
    # better than the median complete trial): large x looks bad, the search stays below.
    plain = BayesianCore(X, 0, n_initial=3)
    plain._fidelity = Unaware()
    for t in told:
        plain.tell(t)
    misled = plain.ask(12, {})
    assert misled is not None
    assert misled["x"] < 0.75


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


class Unaware(_fidelity.Fidelity):
    """The model without fidelities: Bayesian as it was before pruned studies had them."""

    def data(self, sign: float) -> None:
        return None


def test_a_study_without_pruned_trials_is_modelled_as_before() -> None:
    """Complete trials that reported learning curves, failed trials and params in flight:
    the suggestions are exactly those of the model without fidelities."""
    space = at.Space(x=at.Float(0.0, 1.0), n=at.Int(1, 8), kind=at.Categorical(["a", "b"]))
    cores = [BayesianCore(space, 3), BayesianCore(space, 3)]
    cores[1]._fidelity = Unaware()
    asked: list[list[at.Params | None]] = [[], []]
    for core, out in zip(cores, asked, strict=True):
        for number in range(14):
            params = core.ask(number, {99: {"x": 0.5, "n": 4, "kind": "a"}})
            assert params is not None
            out.append(params)
            value = params["x"] * params["n"] + (params["kind"] == "b")
            if number % 5 == 4:
                core.tell(at.Trial(number, params, at.TrialStatus.FAILED))
            else:
                curve = {s: value * s / 9 for s in range(1, 10)}
                core.tell(at.Trial(number, params, COMPLETE, value, curve))
    assert asked[0] == asked[1]
    assert cores[0]._fidelity.data(cores[0]._sign) is None


@pytest.mark.slow
async def test_bayesian_with_asha_models_the_fidelity_end_to_end() -> None:
    """Through ``at.tune`` and the real ASHA on the inverted curves: ASHA completes only
    small ``x`` (best early), yet once trials are pruned the model is asked at full
    fidelity, and the search goes on to the large ``x`` that would win at the last step
    (where ASHA, judging at step 1, prunes them)."""
    asked: list[int] = []
    ask = _fidelity.ask

    def counted(*args: Any) -> at.Params:
        asked.append(1)
        return ask(*args)

    async def objective(params: dict[str, Any], context: Any) -> float:
        for step in range(1, STEPS + 1):
            context.report(inverted(params["x"], step), step)
        return inverted(params["x"], STEPS)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_fidelity, "ask", counted)
        result = await at.tune(
            objective,
            X,
            strategy=at.Bayesian(seed=0, n_initial=4),
            max_trials=20,
            concurrency=1,
            pruner=at.ASHA(min_resource=1, reduction_factor=3, max_resource=STEPS),
        )
    assert any(t.status is PRUNED for t in result.trials)
    assert asked
    late = [t.params["x"] for t in result.trials[-8:]]
    assert sum(x > 0.8 for x in late) >= 6, late
