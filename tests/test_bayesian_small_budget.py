"""Bayesian at small budgets (issue #14, part 1): the initial design size and the noise prior."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import aiotune as at
from _synthetic import branin_unit, hartmann6
from aiotune.strategies import _gp as gp
from aiotune.strategies._encoding import Encoding
from aiotune.strategies.bayesian import BayesianCore

COMPLETE = at.TrialStatus.COMPLETE
XY = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))
CUBE6 = at.Space({f"x{i}": at.Float(0.0, 1.0) for i in range(6)})


@pytest.mark.parametrize(
    ("dims", "expected"), [(1, 5), (2, 5), (4, 5), (5, 6), (6, 7), (12, 13), (30, 20)]
)
def test_the_initial_design_is_one_per_dimension_plus_one_within_5_and_20(
    dims: int, expected: int
) -> None:
    space = at.Space({f"x{i}": at.Float(0.0, 1.0) for i in range(dims)})
    core = BayesianCore(space, 0)
    assert core.n_initial == expected
    # The first n_initial asks are the Sobol start, the next one is the model's.
    rng = np.random.default_rng(0)
    for k in range(expected):
        params = core.ask(k, {})
        assert params is not None
        assert params == core._enc.decode(core._start()[k])
        core.tell(at.Trial(k, params, COMPLETE, float(rng.random())))
    model = core.ask(expected, {})
    design = [core._enc.decode(row) for row in core._start()]
    assert model is not None
    assert model not in design[expected:]


def test_n_initial_still_sets_the_design_size() -> None:
    assert BayesianCore(CUBE6, 0, n_initial=14).n_initial == 14  # the default before
    assert BayesianCore(CUBE6, 0, n_initial=3).n_initial == 3
    assert at.Bayesian(seed=0, n_initial=14).n_initial == 14


def _noise_at_refits(space: at.Space, f: Any, seed: int, n: int) -> list[float]:
    """The fitted noise variance (standardised units) after each refit over ``n`` trials."""
    core = BayesianCore(space, seed, direction="minimize")
    noises: list[float] = []
    for k in range(n):
        params = core.ask(k, {})
        assert params is not None
        core.tell(at.Trial(k, params, COMPLETE, f(params)))
        if core._theta is not None and core._fitted_at == len(core._y) - 1:
            noises.append(math.exp(float(core._theta[len(space) + 1])))  # log noise
    return noises


@pytest.mark.parametrize(
    ("space", "f", "seed", "n"), [(XY, branin_unit, 2, 16), (CUBE6, hartmann6, 1, 26)]
)
def test_the_noise_of_a_noiseless_objective_stays_off_its_upper_bound(
    space: at.Space, f: Any, seed: int, n: int
) -> None:
    # Without a prior on it, the likelihood alone sent the noise variance of these
    # noiseless objectives to its upper bound (half the target variance) at 6-12 trials
    # (Branin, seed 2) and 20-25 (Hartmann-6, seed 1): a model that calls half of what it
    # saw noise explores where it should refine. The 30 * noise penalty keeps it small.
    noises = _noise_at_refits(space, f, seed, n)
    assert len(noises) >= 3
    upper = math.exp(gp.bounds(Encoding(space).kernel)[len(space) + 1][1])
    assert max(noises) < 0.1 * upper, noises


def test_the_noise_prior_still_lets_real_noise_in() -> None:
    # Branin with Gaussian noise of sd 15 (5 % of its range): the fitted noise is a
    # real share of the variance, not pinned near zero by the prior.
    rng = np.random.default_rng(0)
    noisy = lambda p: branin_unit(p) + 15.4 * float(rng.normal())  # noqa: E731
    noises = _noise_at_refits(XY, noisy, 0, 40)
    assert noises[-1] > 0.01, noises
