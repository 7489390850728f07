"""The GP's targets: the two warps, their inverse and slope, and the choice between them."""

from __future__ import annotations

import numpy as np
import pytest

import aiotune as at
from aiotune.strategies._encoding import Encoding
from aiotune.strategies._gp import default_theta
from aiotune.strategies._warp import WARPS, WarpKind, fit_warped, log_slope, unwarp, warp
from aiotune.strategies.bayesian import BayesianCore

SQUARE = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))


def heavy_tailed(x: np.ndarray) -> np.ndarray:
    """Scores spanning seven decades, as Rosenbrock's do: 1 at (0.2, 0), 1e7 far away."""
    return np.asarray(10 ** (5 * np.abs(x[:, 0] - 0.2) + 2 * x[:, 1]))


def noisy_bowl(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bowl observed with Gaussian noise of a tenth of its range."""
    return np.asarray((x[:, 0] - 0.3) ** 2 + (x[:, 1] - 0.6) ** 2 + rng.normal(0, 0.05, len(x)))


@pytest.mark.parametrize("kind", WARPS)
def test_each_warp_is_standardised_and_undone_by_unwarp(kind: WarpKind) -> None:
    y = heavy_tailed(np.random.default_rng(0).random((50, 2)))
    w = warp(y, kind)
    assert abs(w.mean()) < 1e-12
    assert abs(w.std() - 1.0) < 1e-12
    assert np.all(np.diff(w[np.argsort(y)]) > 0)  # the order of the scores is kept
    np.testing.assert_allclose(unwarp(w, y, kind), y, rtol=1e-9)


@pytest.mark.parametrize("kind", WARPS)
def test_the_log_slope_is_the_warps_derivative(kind: WarpKind) -> None:
    # Moving one score of many barely moves the warp's statistics (median, spread), so a
    # finite difference of that score's target is the slope the Jacobian counts.
    y = heavy_tailed(np.random.default_rng(1).random((4001, 2)))
    w = warp(y, kind)
    slopes = np.exp(log_slope(y, kind))
    for i in np.argsort(y)[[100, 1000, 3000, 3900]]:  # below and above the median
        h = 1e-6 * max(1.0, abs(y[i]))
        moved = y.copy()
        moved[i] += h
        assert (warp(moved, kind)[i] - w[i]) / h == pytest.approx(slopes[i], rel=2e-3)


@pytest.mark.parametrize("seed", range(4))
def test_heavy_tails_choose_the_compression_and_noise_the_plain_targets(seed: int) -> None:
    enc = Encoding(SQUARE)
    rng = np.random.default_rng(seed)
    x = rng.random((30, 2))
    every = np.arange(30)
    start = [default_theta(enc.kernel)]
    assert fit_warped(enc.kernel, x, heavy_tailed(x), every, start, 100)[0] == "compressed"
    assert fit_warped(enc.kernel, x, noisy_bowl(x, rng), every, start, 100)[0] == "plain"
    # ... and the choice is only among the warps offered (ParEGO's scalarisations)
    only = ("compressed",)
    assert fit_warped(enc.kernel, x, noisy_bowl(x, rng), every, start, 100, only)[0] == only[0]


def test_a_study_models_its_scores_with_the_warp_its_fit_chose() -> None:
    rng = np.random.default_rng(0)
    objectives = {
        "heavy": heavy_tailed,
        "noisy": lambda x: noisy_bowl(x, rng),
    }
    chosen = {}
    for name, objective in objectives.items():
        core = BayesianCore(SQUARE, 0, direction="minimize")
        for k in range(20):
            params = core.ask(k, {})
            assert params is not None
            score = float(objective(np.array([[params["x"], params["y"]]]))[0])
            core.tell(at.Trial(k, params, at.TrialStatus.COMPLETE, score))
        chosen[name] = core._warp
    assert chosen == {"heavy": "compressed", "noisy": "plain"}
