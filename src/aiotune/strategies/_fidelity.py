"""Multi-fidelity modelling for :class:`~aiotune.strategies.bayesian.Bayesian` with a pruner.

A pruned trial's last value is a low-fidelity observation: the score after
a few epochs, not the score the trial would have reached. Counted as a full
observation, the many early values of pruned trials teach the GP the
*early* ranking of the configurations, which a learning curve can invert
(a configuration fast to start may plateau low). So once a study has pruned
trials, each modelled trial also gets its fidelity as an input:

    z = log(step) / log(max_step)  in [0, 1]

where ``step`` is the last step the trial reported and ``max_step`` the
largest step a complete trial reported (the full budget; a complete trial
that reported nothing counts as full). The GP is fitted on ``(params, z)``
with the same ARD Matérn-5/2 kernel (one more numeric column, with its own
length-scale), and the next point maximises log expected improvement
*at full fidelity* (``z = 1``) against the best complete trial — as in
multi-fidelity Bayesian optimisation with the budget as an input (Swersky,
Snoek & Adams, *Freeze-Thaw Bayesian Optimization*, 2014; Klein et al.,
*Fast Bayesian Optimization of Machine Learning Hyperparameters on Large
Datasets* (FABOLAS), 2017). Params in flight are believers at ``z = 1``.

A study without pruned trials, with constraints or with several objectives
never gets here: the plain model serves it, unchanged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from aiotune.strategies import _acquisition as acq
from aiotune.strategies._gp import (
    MAX_FIT,
    MAX_POINTS,
    Array,
    Kernel,
    Posterior,
    default_theta,
    fit_theta,
    subset,
)
from aiotune.trial import Params, Trial, TrialStatus

if TYPE_CHECKING:
    from aiotune.strategies._encoding import Encoding, Key
    from aiotune.strategies.bayesian import BayesianCore

logger = logging.getLogger("aiotune")

_N_RANDOM = 512  # as in bayesian: uniform candidates per ask
_N_TOP = 5  # candidates are perturbed around this many of the best complete trials
_N_STARTS = 6  # candidates refined by L-BFGS-B
_MIN_GAP = 0.01  # in length-scales: closer to a point in flight is a near-duplicate
_MIN_FULL = 2  # fewer complete trials than this: the plain model decides
_CENTRE = True  # each fidelity's values centred on their median
_EVERY_RUNG = True  # a row per rung a trial passed, not only at the last step it reported


class Fidelity:
    """The learning curves of the modelled trials, and the fidelity-aware GP over them."""

    def __init__(self) -> None:
        self._rows: list[Array] = []
        self._trials: list[tuple[bool, Mapping[int, float], float]] = []
        self._theta: Array | None = None
        self._fitted_at = 0

    def tell(self, trial: Trial, row: Array, value: float) -> None:
        """Record a trial the core has just modelled: its row, curve and (minimised) value."""
        self._rows.append(row)
        self._trials.append((trial.status is TrialStatus.COMPLETE, trial.intermediate, value))

    def data(self, sign: float) -> tuple[Array, Array] | None:
        """The model's rows ``(params..., z)`` and minimised values, or ``None`` when
        the study has no trial pruned below the full budget (or too few complete ones):
        the plain model then. ``sign`` turns a reported value into a minimisation."""
        complete = [done for done, _, _ in self._trials]
        if sum(complete) < _MIN_FULL or all(complete):
            return None
        full = max((max(c) for done, c, _ in self._trials if done and c), default=1)
        rungs = sorted({max(c) for done, c, _ in self._trials if not done and c and max(c) < full})
        if full <= 1 or not rungs:
            return None
        scale = math.log(full)
        xz: list[Array] = []
        y: list[float] = []
        for row, (done, curve, value) in zip(self._rows, self._trials, strict=True):
            last = max(curve) if curve else full
            if _EVERY_RUNG:
                for step in rungs:
                    if step < last and math.isfinite(curve.get(step, math.nan)):
                        xz.append(np.append(row, math.log(step) / scale))
                        y.append(sign * curve[step])
            xz.append(np.append(row, 1.0 if done else min(math.log(last) / scale, 1.0)))
            y.append(value)
        out, levels = np.array(y), np.array(xz)[:, -1]
        if _CENTRE:  # each fidelity's values around their median: the GP models the ranks
            for level in np.unique(levels):
                at = levels == level
                out[at] -= float(np.median(out[at]))
        return np.array(xz), out

    def posterior(
        self, enc: Encoding, xz: Array, y: Array, rng: np.random.Generator, told: int
    ) -> tuple[Posterior, Array, Array]:
        """The GP on ``xz -> y`` (refitted when the data has grown by 5 %), and the rows
        and targets it conditions on (at most ``MAX_POINTS`` of them)."""
        if len(y) > MAX_POINTS:
            keep = subset(y, MAX_POINTS, rng)
            xz, y = xz[keep], y[keep]
        kernel = _kernel(enc)
        if self._theta is None or told - self._fitted_at >= max(1, self._fitted_at // 20):
            fit = subset(y, MAX_FIT, rng) if len(y) > MAX_FIT else np.arange(len(y))
            inits = [default_theta(xz.shape[1])]
            if self._theta is not None:
                inits.insert(0, self._theta)
            self._theta = fit_theta(kernel, xz[fit], y[fit], inits, maxiter=100)
            self._fitted_at = told
            logger.debug("Bayesian: fidelity GP hyper-parameters %s", self._theta)
        return Posterior(kernel, self._theta, xz, y), xz, y


def _kernel(enc: Encoding) -> Kernel:
    """The encoding's kernel with one more numeric column: the fidelity."""
    k = enc.kernel
    return Kernel(np.append(k.categorical, False), [*k.n_choices, 0], np.append(k.arc, False))


def _on_params(fn: Callable[[Array], Array], d: int) -> Callable[[Array], Array]:
    """``fn`` applied to the params' columns of rows with a fidelity column, which it keeps."""

    def apply(rows: Array) -> Array:
        out = rows.copy()
        out[:, :d] = fn(rows[:, :d])
        return out

    return apply


def ask(
    core: BayesianCore,
    xz: Array,
    y: Array,
    rng: np.random.Generator,
    pending: Mapping[int, Params],
    busy: set[Key],
) -> Params:
    """The point of greatest log EI at full fidelity, given the rows ``xz`` of
    :meth:`Fidelity.data` and their warped, minimised targets ``y``."""
    enc, fid = core._enc, core._fidelity
    d = enc.n_cols
    posterior, xz, y = fid.posterior(enc, xz, y, rng, len(core._y))
    full = xz[:, d] >= 1.0
    best = float(y[full].min())
    xp = np.empty((0, d + 1))
    if pending:
        xp = np.array([[*enc.encode(params), 1.0] for params in pending.values()])
        believed, _ = posterior.predict(xp)
        posterior = posterior.condition(xp, believed, exact=True)
        best = min(best, float(believed.min()))

    top = xz[full][np.argsort(y[full], kind="stable")[:_N_TOP], :d]
    rows = np.vstack(
        [
            enc.from_unit(rng.random((_N_RANDOM, d))),
            core._local(top, posterior.lengthscales[:d], rng),
        ]
    )
    candidates = np.column_stack([rows, np.ones(len(rows))])
    scores = acq.score(posterior, candidates, best)
    starts = candidates[np.argsort(-scores, kind="stable")[:_N_STARTS]]
    snap = _on_params(enc.snap, d)
    prepare = (
        _on_params(lambda xs: enc.activate(xs, enc.snap(xs)), d)
        if enc.space.is_conditional
        else None
    )
    refined = acq.refine(
        posterior, starts, best, np.append(enc.movable, False), snap, maxiter=60, prepare=prepare
    )
    pool: Array = np.vstack([refined, candidates])
    scores = np.concatenate([acq.score(posterior, refined, best), scores])
    crowded = np.zeros(len(pool), dtype=bool)
    if pending:
        gaps = posterior.kernel.sq_dist(pool, xp, posterior.lengthscales).min(axis=1)
        crowded = gaps < _MIN_GAP**2
    for i in np.argsort(-scores, kind="stable"):
        if crowded[i]:
            continue
        params = enc.decode(pool[i, :d])
        if enc.key(params) not in busy:
            return params
    return core._random_unseen(rng, busy)
