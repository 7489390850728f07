"""The trust region Bayesian's asks share while trials are in flight (TuRBO's rule)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import aiotune as at
from _synthetic import branin_unit
from aiotune.strategies import _trust
from aiotune.strategies._gp import Posterior
from aiotune.strategies._warp import warp
from aiotune.strategies.bayesian import BayesianCore

XY = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))
COMPLETE = at.TrialStatus.COMPLETE


def test_the_side_doubles_after_improvements_halves_after_failures_and_restarts() -> None:
    start, d = 4, 2  # fail_tol = max(4, 2) = 4 trials
    design = [5.0, 6.0, 7.0, 8.0]

    def side(*told: float, dims: int = d) -> float:
        return _trust.side(np.array(design + list(told)), start, dims)

    assert side() == _trust.L_INIT
    assert side(4.0, 3.0, 2.0) == 2 * _trust.L_INIT
    assert side(*(4.0 - k for k in range(12))) == _trust.L_MAX  # capped
    assert side(*[9.0] * 3) == _trust.L_INIT
    assert side(*[9.0] * 4) == _trust.L_INIT / 2
    assert side(*[9.0] * 8) == _trust.L_INIT / 4
    assert side(*[5.0] * 4) == _trust.L_INIT / 2  # a tie is no improvement
    assert side(*[9.0] * 3, 1.0, *[9.0] * 3) == _trust.L_INIT  # an improvement resets
    # Six halvings reach 0.8 / 64 = 0.0125; the seventh, below L_MIN, starts it again.
    assert side(*[9.0] * 24) == _trust.L_INIT / 64
    assert side(*[9.0] * 28) == _trust.L_INIT
    assert side(*[9.0] * 4, dims=6) == _trust.L_INIT  # in 6-D a halving takes 6 failures


def test_the_box_is_scaled_by_the_length_scales_and_leaves_categoricals_free() -> None:
    movable = np.array([True, True, False])
    box = _trust.Box(np.array([0.5, 0.9, 1.0]), np.array([0.1, 0.4, 1.0]), 0.4, movable)
    # Length-scales over their geometric mean (0.2): 0.5 and 2, times the side 0.4.
    np.testing.assert_allclose(box.low[:2], [0.4, 0.5])
    np.testing.assert_allclose(box.high[:2], [0.6, 1.0])  # clipped to the unit cube
    rows = np.array([[0.0, 0.0, 2.0], [0.45, 0.7, 0.0]])
    np.testing.assert_allclose(box.clip(rows), [[0.4, 0.5, 2.0], [0.45, 0.7, 0.0]])
    assert list(box.contains(rows)) == [False, True]
    assert box.contains(box.clip(rows)).all()
    np.testing.assert_allclose(box.place(np.array([[0.0, 1.0, 0.3]])), [[0.4, 1.0, 0.3]])


def core_on_branin(seed: int, improving: bool) -> BayesianCore:
    """A core after 12 Branin trials, then 8 that improve nothing or 3 that each improve."""
    core = BayesianCore(XY, seed, direction="minimize")
    for k in range(12):
        params = core.ask(k, {})
        assert params is not None
        core.tell(at.Trial(k, params, COMPLETE, branin_unit(params)))
    if improving:
        for k in range(12, 15):
            core.tell(at.Trial(k, {"x": 0.5, "y": k / 20}, COMPLETE, -float(k)))
    else:  # worse than everything so far: failures
        for k in range(12, 20):
            core.tell(at.Trial(k, {"x": k / 40, "y": 0.99}, COMPLETE, 1e3))
    return core


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_asks_in_flight_keep_to_the_region_once_the_search_stalls(
    seed: int, regions: list[_trust.Box | None]
) -> None:
    core = core_on_branin(seed, improving=False)
    pending: dict[int, dict[str, Any]] = {20: {"x": 0.5, "y": 0.5}}
    for k in range(21, 28):
        params = core.ask(k, pending)
        assert params is not None
        box = regions[-1]
        assert box is not None
        assert core._theta is not None
        lengthscales = np.exp(core._theta[:2])
        weights = lengthscales / np.exp(np.mean(np.log(lengthscales)))
        # On only once halved: sides of at most L_INIT / 2 of the scaled length-scales.
        assert np.all(box.high - box.low <= _trust.L_INIT / 2 * weights + 1e-12)
        row = core._enc.encode(params)
        assert box.contains(row[None], tol=1e-9)[0], (seed, k, row, box.low, box.high)
        pending[k] = params
    assert len(regions) == 7
    assert len({tuple(p.values()) for p in pending.values()}) == 8  # a region, not a point


def test_no_region_while_the_search_improves(regions: list[_trust.Box | None]) -> None:
    core = core_on_branin(0, improving=True)
    assert core.ask(15, {14: {"x": 0.5, "y": 0.5}}) is not None
    assert regions == [None]


def test_sequential_asks_never_consult_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    core = core_on_branin(0, improving=False)

    def refuse(*args: Any) -> Any:
        raise AssertionError("the region was consulted with nothing in flight")

    monkeypatch.setattr(BayesianCore, "_region", refuse)
    assert core.ask(20, {}) is not None
    with pytest.raises(AssertionError, match="consulted"):
        core.ask(21, {20: {"x": 0.5, "y": 0.5}})


@pytest.mark.parametrize("seed", [0, 1])
def test_lucky_draws_at_one_point_are_no_improvement(
    seed: int, regions: list[_trust.Box | None]
) -> None:
    # Twelve noisy draws of one point, twice three in a row below the best so far: as
    # observations those are improvements (the side would double twice), but the model has
    # one posterior mean at that point, so after the first draw they are failures: a stall.
    core = BayesianCore(XY, seed, direction="minimize")
    for k in range(12):
        params = core.ask(k, {})
        assert params is not None
        core.tell(at.Trial(k, params, COMPLETE, branin_unit(params)))
    draws = [-1.0, -2.0, -3.0, 0.0, 0.0, 0.0, -4.0, -5.0, -6.0, 0.0, 0.0, 0.0]
    for j, value in enumerate(draws):
        core.tell(at.Trial(12 + j, {"x": 0.55, "y": 0.15}, COMPLETE, value))
    by_draws = _trust.side(np.array(core._y), core.n_initial, 2)
    assert by_draws >= _trust.L_INIT  # counted on the observations, no region
    assert core.ask(25, {24: {"x": 0.2, "y": 0.8}}) is not None
    box = regions[-1]
    assert box is not None  # counted on the posterior mean: 11 failures, two halvings
    assert box.contains(np.array([[0.55, 0.15]]))[0]  # around the draws' point


def test_the_told_means_are_the_posterior_means() -> None:
    # The region's success rule reads the posterior mean at every told trial without the
    # variance (Posterior.mean): it must stay exactly what Posterior.predict gives.
    space = at.Space(
        x=at.Float(0.0, 1.0), y=at.Float(1e-3, 1.0, log=True), c=at.Categorical(["a", "b", "c"])
    )
    core = BayesianCore(space, 0, direction="minimize")
    rng = np.random.default_rng(0)
    for k in range(12):
        params = space.sample(rng)
        core.tell(at.Trial(k, params, COMPLETE, params["x"] + params["y"] + (params["c"] == "b")))
    assert core.ask(12, {}) is not None  # fits the GP
    assert core._theta is not None
    x = np.array(core._x)
    posterior = Posterior(core._enc.kernel, core._theta, x, warp(core._scores(), core._warp))
    rows = np.vstack([x, core._enc.encode(space.sample(rng))[None]])
    np.testing.assert_array_equal(posterior.mean(rows), posterior.predict(rows)[0])
