"""TuningResult.recommend: the best observed trial, or the best by a model's estimate."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

import aiotune as at
from aiotune.strategies import Bayesian
from aiotune.trial import StudyDirection

COMPLETE, FAILED = at.TrialStatus.COMPLETE, at.TrialStatus.FAILED
LINE = at.Space(x=at.Float(0.0, 1.0))


def result_of(scores: Sequence[float | None], direction: str = "minimize") -> at.TuningResult:
    trials = tuple(
        at.Trial(k, {"x": k / 10}, COMPLETE if s is not None else FAILED, s)
        for k, s in enumerate(scores)
    )
    return at.TuningResult(trials, direction=direction)  # type: ignore[arg-type]


def test_by_default_the_recommendation_is_the_best_observed_trial() -> None:
    for direction in ("minimize", "maximize"):
        result = result_of([3.0, None, 1.0, 2.0], direction)
        assert result.recommend() == result.best
        assert result.recommend("observed") == result.best


def test_an_estimator_picks_the_feasible_complete_trial_it_estimates_best() -> None:
    trials = (
        at.Trial(0, {"x": 0.0}, COMPLETE, 1.0),
        at.Trial(1, {"x": 0.1}, COMPLETE, 5.0),
        at.Trial(2, {"x": 0.2}, FAILED),
        at.Trial(3, {"x": 0.3}, COMPLETE, 4.0, constraints=(1.0,)),  # infeasible
        at.Trial(4, {"x": 0.4}, COMPLETE, 3.0),
    )
    estimates = [2.0, 9.0, -1.0, 10.0, math.nan]

    def estimate(seen: Sequence[at.Trial], direction: StudyDirection) -> list[float]:
        assert seen == trials
        return estimates

    result = at.TuningResult(trials, direction="maximize")
    # The failed and infeasible trials score higher but are not candidates; NaN is skipped.
    assert result.recommend(by=estimate).number == 1
    minimize = at.TuningResult(trials, direction="minimize")
    assert minimize.recommend(by=estimate).number == 0
    # The recommended trial keeps its observed score: the estimate only chooses.
    assert result.recommend(by=estimate).score == 5.0


def test_recommend_has_the_same_errors_as_best() -> None:
    with pytest.raises(at.NoCompleteTrialError):
        result_of([None, None]).recommend()
    with pytest.raises(at.NoCompleteTrialError):
        result_of([None]).recommend(by=lambda trials, direction: [0.0])
    two = at.TuningResult(
        (at.Trial(0, {"x": 0.0}, COMPLETE, scores=(1.0, 2.0)),), direction=("minimize",) * 2
    )
    with pytest.raises(at.TuningError, match="objectives"):
        two.recommend()
    with pytest.raises(ValueError, match="by"):
        result_of([1.0]).recommend(by="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="estimate"):
        result_of([1.0, 2.0]).recommend(by=lambda trials, direction: [0.0])


def test_the_posterior_mean_reproduces_noiseless_scores_in_their_units() -> None:
    xs = np.linspace(0.0, 1.0, 15)
    trials = (
        *(
            at.Trial(k, {"x": float(x)}, COMPLETE, 100.0 + 40.0 * math.sin(5 * x))
            for k, x in enumerate(xs)
        ),
        at.Trial(15, {"x": 0.5}, FAILED),
    )
    for direction in ("minimize", "maximize"):
        means = Bayesian(seed=0).posterior_mean(LINE)(trials, direction)  # type: ignore[arg-type]
        assert len(means) == len(trials)
        assert math.isnan(means[-1])
        scores = np.array([t.score for t in trials[:-1]])
        assert np.allclose(means[:-1], scores, atol=0.05 * np.ptp(scores))


def test_the_posterior_mean_recommends_closer_to_the_true_optimum_under_noise() -> None:
    # A bowl with its minimum 0 at 0.3, observed with Gaussian noise of sd 0.05: the
    # luckiest observation is often far from 0.3, the smoothed best rarely.
    regret_observed, regret_mean = [], []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        xs = rng.random(40)
        trials = tuple(
            at.Trial(k, {"x": float(x)}, COMPLETE, float((x - 0.3) ** 2 + rng.normal(0, 0.05)))
            for k, x in enumerate(xs)
        )
        result = at.TuningResult(trials, direction="minimize")
        by_mean = result.recommend(by=Bayesian(seed=seed).posterior_mean(LINE))
        regret_observed.append((result.best.params["x"] - 0.3) ** 2)
        regret_mean.append((by_mean.params["x"] - 0.3) ** 2)
    assert sum(regret_mean) < 0.5 * sum(regret_observed)
    assert sum(m < o for m, o in zip(regret_mean, regret_observed, strict=True)) >= 18


def test_the_posterior_mean_is_for_one_objective_and_skips_params_outside_the_space() -> None:
    trials = (
        at.Trial(0, {"x": 0.2}, COMPLETE, 1.0),
        at.Trial(1, {"x": 7.0}, COMPLETE, 0.0),  # outside the space: no estimate
        at.Trial(2, {"x": 0.4}, COMPLETE, 2.0),
        at.Trial(3, {"x": 0.6}, COMPLETE, 3.0),
    )
    means = Bayesian(seed=0).posterior_mean(LINE)(trials, "minimize")
    assert math.isnan(means[1])
    assert not any(math.isnan(m) for m in (means[0], *means[2:]))
    with pytest.raises(at.TuningError, match="objectives"):
        Bayesian(seed=0).posterior_mean(LINE)(trials, ("minimize", "minimize"))
