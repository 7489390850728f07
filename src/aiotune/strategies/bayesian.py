"""Bayesian optimisation: a Gaussian process with log expected improvement.

The core (:class:`BayesianCore`) is a seeded, sans-I/O ask/tell object:

1. The first ``n_initial`` trials (by default ``d + 1`` for ``d`` parameters,
   clipped to [5, 20]) follow a scrambled Sobol sequence (Owen, 1998;
   ``scipy.stats.qmc.Sobol``), a space-filling start. ``2 (d + 1)`` spent 14
   of 25 trials in 6-D on it and measured behind (benchmarks/README.md).
2. Then each ask fits a GP (ARD Matérn-5/2, plus an overlap term that gives
   each categorical choice a level of its own across the combinations it
   appears in; MAP hyper-parameters; see :mod:`aiotune.strategies._gp`) to
   the finished trials and returns the
   point that maximises log expected improvement (Ament et al., 2023; see
   :mod:`aiotune.strategies._acquisition`), found by L-BFGS-B from the best
   of some 800 random and local candidates.
3. Params in flight are *kriging believers* (Ginsbourger, Le Riche & Carraro,
   2010): each is added to the data with the posterior mean as its value,
   taken as exact (no observation noise), so the GP's uncertainty collapses
   there whatever noise it fitted and the next point goes elsewhere; a point
   already evaluated or in flight is never suggested again, nor one within 1 %
   of a length-scale of a point in flight. (With the fitted noise in the
   believers, eight asks in flight could pile up within 1e-4 of each other.)
   Once the search stalls, the asks made while trials are in flight also
   share a trust region (TuRBO; Eriksson et al., 2019; see
   :mod:`aiotune.strategies._trust`): a box around the trial with the best
   posterior mean, its sides proportional to the length-scales, halved after
   ``max(4, d)`` told trials in a row without improvement and doubled after 3
   improvements in a row (judged by the posterior mean at the told trials,
   not their noisy values); it applies only while smaller than its initial
   size, so a batch searches everywhere while the search improves and refines
   the incumbent's basin when it stops. A sequential ask (nothing in flight)
   is never restricted.

Scores are turned into a minimisation and standardised, either as they are
or with the worse half compressed logarithmically first, so that a few huge
values (Rosenbrock's 1e5 beside its 0) do not flatten the good region the
model must get right; each fit of the hyper-parameters tries both and keeps
the one whose GP explains the scores best, compared in the scores' own units
(see :mod:`aiotune.strategies._warp`). Noisy scores mostly keep their plain
scale, heavy-tailed ones the compression. A pruned trial counts as no better
than the median complete trial; failed and timed-out trials are not
modelled, only never repeated. Once a trial has been pruned, one ask in
three (trial numbers 2, 5, 8, ...) is a uniformly random point, as in BOHB
(Falkner, Klein & Hutter, 2018): the pruned trials teach the model the early ranking,
which favours fast starters, and a pruner judges each trial against the
others, so proposals from the model alone raise the bar of the first rung
past the slow starters that end best.
Constraints (trials that carry ``constraints``): each constraint gets its own
GP on the same inputs, and the acquisition is multiplied by the probability
that every constraint holds (see :mod:`aiotune.strategies._acquisition`); the
incumbent is the best *feasible* trial, and until one exists the search
maximises the probability of feasibility alone. Params in flight are
believers for the constraint GPs too.

Several objectives: for two, one GP per objective (each objective
compressed and standardised as above, all on the same encoding) and the
point of greatest expected hypervolume improvement over the feasible Pareto
front of the trials so far, exact by a box decomposition, times the
probability of feasibility (see :mod:`aiotune.strategies._hypervolume`).
Params in flight are believers for every objective and join the front. For
three objectives or more (where EHVI measured behind it), ParEGO (Knowles,
2006): each ask draws a fresh weight vector uniformly from the simplex and
models the augmented Chebyshev scalarisation ``max_i(w_i f_i) + 0.05
sum_i(w_i f_i)`` of the objectives, each normalised to [0, 1] over the
trials so far, with one
GP and log EI as above (its targets always compressed: the warp is chosen
for one objective only); over many asks the weights sweep the whole front.
Pruned trials are not modelled in a multi-objective study.

Cost stays bounded as the history grows: the GP conditions on at most
``MAX_POINTS`` trials (the best half and a random half of the rest), fits
its hyper-parameters on at most ``MAX_FIT`` of them, and refits only after
the data has grown by 5 %.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from aiotune._checks import check_seed, optional_int
from aiotune.errors import SpaceError, TuningError
from aiotune.strategies import _acquisition as acq
from aiotune.strategies import _trust
from aiotune.strategies._encoding import Encoding, Key
from aiotune.strategies._gp import (
    MAX_FIT,
    MAX_POINTS,
    Array,
    Posterior,
    default_theta,
    fit_theta,
    single_threaded_blas,
    subset,
)
from aiotune.strategies._hypervolume import HypervolumeSearch
from aiotune.strategies._scipy import qmc
from aiotune.strategies._warp import WARPS, WarpKind, fit_warped, unwarp, warp
from aiotune.strategies.base import drive
from aiotune.trial import Params, StudyDirection, Trial, TrialStatus, directions_of

if TYPE_CHECKING:
    from aiotune.history import History
    from aiotune.space import Space

logger = logging.getLogger("aiotune")

_MIN_OBS = 3  # fewer modelled trials than this: keep sampling space-filling points
_N_RANDOM = 512  # uniform candidates per ask
_N_LOCAL = 256  # candidates perturbed around the best trials
_N_TOP = 5  # ... around this many of them
_N_STARTS = 6  # candidates refined by L-BFGS-B
_RHO = 0.05  # ParEGO's augmentation of the Chebyshev scalarisation
_MIN_GAP = 0.01  # in length-scales: closer to a point in flight is a near-duplicate
_RANDOM_EVERY = 3  # once a trial is pruned, every third ask is random (BOHB's 1/3)


class BayesianCore:
    """The ask/tell core of :class:`Bayesian` (see the module docstring for the method).

    ``tell`` every finished trial, ``ask(number, pending)`` for the next params.
    Deterministic for a given seed, sequence of tells and trial numbers.
    """

    def __init__(
        self,
        space: Space,
        seed: int,
        *,
        direction: StudyDirection = "maximize",
        n_initial: int | None = None,
    ) -> None:
        self._enc = Encoding(space)
        self._seed = seed
        self._signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions_of(direction)])
        self._sign = float(self._signs[0])
        self._ys: list[Array] = []  # every objective, as a minimisation (several objectives)
        self._cons: list[tuple[float, ...] | None] = []  # constraint values, by row of _x
        self._theta_c: list[Array] = []  # the constraint GPs' hyper-parameters
        d = len(space)
        self.n_initial = min(max(d + 1, 5), 20) if n_initial is None else n_initial
        self._x: list[Array] = []
        self._y: list[float] = []  # as a minimisation
        self._pruned: list[bool] = []
        self._seen: set[Key] = set()
        self._theta: Array | None = None
        self._warp: WarpKind = "compressed"  # the targets' warp, chosen with each fit
        self._fitted_at = 0
        self._design_size = 2 ** max(math.ceil(math.log2(max(self.n_initial, 1))), 0)
        self._design: Array | None = None  # made on first use, in the strategy's thread
        self._hv = HypervolumeSearch()  # the acquisition for several objectives

    def _start(self) -> Array:
        """The space-filling start: scrambled Sobol points (scipy loads here, off the loop)."""
        if self._design is None:
            rng = np.random.default_rng([self._seed, 1 << 40])
            sobol = qmc.Sobol(len(self._enc.space), scramble=True, seed=rng)
            m = int(math.log2(self._design_size))
            self._design = self._enc.from_unit(np.asarray(sobol.random_base2(m)))
        return self._design

    def tell(self, trial: Trial) -> None:
        """Learn from a finished trial: complete and pruned ones are modelled."""
        if trial.status is TrialStatus.CANCELLED:
            return
        try:
            params = self._enc.space.validate(trial.params)
        except SpaceError:  # params from elsewhere that do not fit: nothing to learn
            logger.warning("Bayesian: ignoring trial %d, params outside the space", trial.number)
            return
        row = self._enc.encode(params)
        self._seen.add(self._enc.key(params))
        modelled = trial.status in (TrialStatus.COMPLETE, TrialStatus.PRUNED)
        if len(self._signs) > 1:  # several objectives: complete trials with every score
            if trial.is_complete and len(trial.scores) == len(self._signs):
                self._x.append(row)
                self._ys.append(self._signs * np.array(trial.scores))
                self._y.append(0.0)  # the scalarisation is drawn per ask
                self._pruned.append(False)
                self._cons.append(trial.constraints)
        elif modelled and trial.score is not None and math.isfinite(trial.score):
            self._x.append(row)
            self._y.append(self._sign * trial.score)
            self._pruned.append(trial.status is TrialStatus.PRUNED)
            self._cons.append(trial.constraints)

    def ask(self, number: int, pending: Mapping[int, Params]) -> Params | None:
        """Params for trial ``number``, never one evaluated or in flight; ``None`` when a
        finite space has no point left."""
        rng = np.random.default_rng([self._seed, number])
        busy = self._seen | {self._enc.key(params) for params in pending.values()}
        if self._enc.finite_size is not None and len(busy) >= self._enc.finite_size:
            return None
        # The space-filling start ends early when trials told from elsewhere (initial
        # points, a warm start) already give the model as much data.
        n = len(self._y)
        if (number < self.n_initial and n < self.n_initial) or n < _MIN_OBS:
            if number < self._design_size:
                params = self._enc.decode(self._start()[number])
                if self._enc.key(params) not in busy:
                    return params
            return self._random_unseen(rng, busy)
        if any(self._pruned) and number % _RANDOM_EVERY == _RANDOM_EVERY - 1:
            return self._random_unseen(rng, busy)
        with single_threaded_blas():
            if len(self._signs) > 1:
                chosen = self._hypervolume_ask(rng, pending, busy)
                if chosen is not None:
                    return chosen
            return self._model_ask(rng, pending, busy)

    def _hypervolume_ask(
        self, rng: np.random.Generator, pending: Mapping[int, Params], busy: set[Key]
    ) -> Params | None:
        """Several objectives: the point of greatest expected hypervolume improvement
        (:mod:`aiotune.strategies._hypervolume`); ``None``: ParEGO this ask instead."""
        enc = self._enc
        targets = np.column_stack([warp(column) for column in np.array(self._ys).T])
        cons, feasible = self._constraints()
        xp = np.array([enc.encode(p) for p in pending.values()]).reshape(len(pending), enc.n_cols)
        found = self._hv.propose(
            enc,
            np.array(self._x),
            targets,
            [_standard(column) for column in cons.T],
            feasible,
            xp,
            rng,
            self._local,
        )
        if found is None:
            return None
        for row, crowded in zip(*found, strict=True):
            params = enc.decode(row)
            if not crowded and enc.key(params) not in busy:
                return params
        return self._random_unseen(rng, busy)

    def _random_unseen(self, rng: np.random.Generator, busy: set[Key]) -> Params:
        """A uniformly random point not in ``busy`` (found by enumeration in a small,
        crowded finite space)."""
        space = self._enc.space
        for _ in range(64):
            params = space.sample(rng)
            if self._enc.key(params) not in busy:
                return params
        if self._enc.finite_size is not None and self._enc.finite_size <= 100_000:
            left = [p for p in space.grid() if self._enc.key(p) not in busy]
            return left[int(rng.integers(len(left)))]
        return params  # a vast space with 64 misses in a row: give up on novelty

    def _scores(self, rng: np.random.Generator | None = None) -> Array:
        """The one score the GP models per trial, as a minimisation, before its warp."""
        if len(self._signs) > 1:  # a fresh random scalarisation of the objectives
            rng = np.random.default_rng(self._seed) if rng is None else rng
            return _parego(np.array(self._ys), rng)
        y = np.array(self._y)
        pruned = np.array(self._pruned)
        if pruned.any() and not pruned.all():
            # A pruned trial stopped early, so its last value flatters it less than its
            # final one would have hurt it: count it as no better than the median.
            # (benchmarks/pruning.py --mode compare: better than dropping pruned trials,
            # ranking them below every complete one, or adding the curves' typical gain.)
            y[pruned] = np.maximum(y[pruned], float(np.median(y[~pruned])))
        return y

    def _model_ask(
        self, rng: np.random.Generator, pending: Mapping[int, Params], busy: set[Key]
    ) -> Params:
        enc = self._enc
        told, scores = np.array(self._x), self._scores(rng)
        cons, feasible = self._constraints()
        n = len(scores)
        keep = subset(scores, MAX_POINTS, rng) if n > MAX_POINTS else np.arange(n)
        x, cons, feasible = told[keep], cons[keep], feasible[keep]
        if self._theta is None or n - self._fitted_at >= max(1, self._fitted_at // 20):
            fit = subset(scores[keep], MAX_FIT, rng) if len(x) > MAX_FIT else np.arange(len(x))
            inits = [default_theta(enc.kernel)]
            if self._theta is not None:
                inits.insert(0, self._theta)
            # One objective: the warp is chosen with the fit; ParEGO's scalarisation, a
            # fresh one per ask, keeps the compression.
            warps = WARPS if len(self._signs) == 1 else ("compressed",)
            self._warp, self._theta = fit_warped(
                enc.kernel, told, scores, keep[fit], inits, maxiter=100, warps=warps
            )
            self._theta_c = [
                fit_theta(enc.kernel, x[fit], _standard(c)[0][fit], inits[-1:], maxiter=50)
                for c in cons.T
            ]
            self._fitted_at = n
            logger.debug(
                "Bayesian: GP hyper-parameters %s, %s targets, after %d trials",
                self._theta,
                self._warp,
                n,
            )
        y = warp(scores, self._warp)[keep]
        posterior = Posterior(enc.kernel, self._theta, x, y)
        models: list[tuple[Posterior, float]] = []
        for j, column in enumerate(cons.T):
            standard, threshold = _standard(column)
            theta = self._theta_c[j] if j < len(self._theta_c) else default_theta(enc.kernel)
            models.append((Posterior(enc.kernel, theta, x, standard), threshold))
        # The incumbent is the best feasible trial; with none yet, only feasibility counts.
        best: float | None = float(y[feasible].min()) if feasible.any() else None
        if pending:
            xp = np.array([enc.encode(params) for params in pending.values()])
            believed, _ = posterior.predict(xp)
            posterior = posterior.condition(xp, believed, exact=True)
            models = [(m.condition(xp, m.predict(xp)[0]), t) for m, t in models]
            if best is not None:
                best = min(best, float(believed.min()))

        # With trials in flight and the search stalled, every ask keeps to one trust
        # region around the incumbent (see _region); otherwise it searches everywhere.
        region = self._region(posterior, x, feasible) if pending else None
        unit = rng.random((_N_RANDOM, enc.n_cols))
        local = self._local(
            x[np.argsort(np.where(feasible, y, y + 1e6))[:_N_TOP]], posterior.lengthscales, rng
        )
        if region is not None:  # the same draws, moved into the region
            unit, local = region.place(unit), enc.snap(region.clip(local))
        candidates: Array = np.vstack([enc.from_unit(unit), local])
        scores = acq.score(posterior, candidates, best, models)
        starts = candidates[np.argsort(-scores, kind="stable")[:_N_STARTS]]
        prepare = (lambda xs: enc.activate(xs, enc.snap(xs))) if enc.space.is_conditional else None
        refined = acq.refine(
            posterior,
            starts,
            best,
            enc.movable,
            enc.snap,
            maxiter=15 if models else 60,  # each step costs a model per constraint more
            prepare=prepare,
            feasibility=models,
        )
        if region is not None:
            refined = enc.snap(region.clip(refined))
        pool: Array = np.vstack([refined, candidates])
        scores = np.concatenate([acq.score(posterior, refined, best, models), scores])
        # A confident model can put its best EI a hair's breadth from a point in flight,
        # whose value it believes it knows: such a near-duplicate is not asked.
        crowded = np.zeros(len(pool), dtype=bool)
        if pending:
            gaps = enc.kernel.sq_dist(pool, xp, posterior.lengthscales).min(axis=1)
            crowded = gaps < _MIN_GAP**2
        for i in np.argsort(-scores, kind="stable"):
            if crowded[i]:
                continue
            params = enc.decode(pool[i])
            if enc.key(params) not in busy:
                return params
        return self._random_unseen(rng, busy)

    def _region(
        self, posterior: Posterior, x: Array, feasible: np.ndarray[tuple[int], np.dtype[np.bool_]]
    ) -> _trust.Box | None:
        """The trust region shared by the asks made while trials are in flight, or ``None``.

        TuRBO's box (see :mod:`aiotune.strategies._trust`) around the feasible
        row of ``x`` with the best posterior mean (on a noisy objective the best
        observation is often a lucky draw), its side set by the improvements
        and failures of the complete trials told since the initial design,
        judged by the posterior mean at each of them in the order told (so a
        lucky draw is no improvement, nor an unlucky one a failure); ``None``
        while that side is still at least ``L_INIT`` (the search is improving:
        the batch searches everywhere) and with several objectives.
        """
        if len(self._signs) > 1 or not feasible.any():
            return None
        rows = np.array(self._x)[~np.array(self._pruned, dtype=np.bool_)]
        told = posterior.mean(rows) if len(rows) else np.zeros(0)
        movable = self._enc.movable
        side = _trust.side(told, self.n_initial, int(movable.sum()))
        if side >= _trust.L_INIT:
            return None
        mean = posterior.mean(x)
        centre = x[int(np.argmin(np.where(feasible, mean, np.inf)))]
        return _trust.Box(centre, posterior.lengthscales, side, movable)

    def _constraints(self) -> tuple[Array, np.ndarray[tuple[int], np.dtype[np.bool_]]]:
        """The constraint values (one column per constraint) and which rows are feasible.

        Rows without constraint values (told before any had them) count as
        feasible, with the column's mean as their value.
        """
        count = max((len(c) for c in self._cons if c is not None), default=0)
        n = len(self._cons)
        if count == 0:
            return np.zeros((n, 0)), np.ones(n, dtype=bool)
        values = np.full((n, count), np.nan)
        for i, c in enumerate(self._cons):
            if c is not None and len(c) == count:
                values[i] = c
        feasible = np.all(np.nan_to_num(values, nan=0.0) <= 0.0, axis=1)
        means = np.nanmean(values, axis=0)
        values = np.where(np.isnan(values), np.where(np.isnan(means), 0.0, means), values)
        return values, feasible

    def _local(self, top: Array, lengthscales: Array, rng: np.random.Generator) -> Array:
        """Candidates around the best points: Gaussian steps of a random fraction of the
        length-scales, and for categorical columns a random choice 20 % of the time."""
        enc = self._enc
        rows = np.repeat(top, -(-_N_LOCAL // len(top)), axis=0)[:_N_LOCAL]
        scale = np.exp(rng.uniform(math.log(0.01), math.log(0.5), size=(len(rows), 1)))
        steps = rng.normal(size=rows.shape) * scale * lengthscales
        out = rows + np.where(enc.movable, steps, 0.0)
        for j, k in enumerate(enc.n_choices):
            if k:
                flip = rng.random(len(rows)) < 0.2
                out[flip, j] = rng.integers(k, size=int(flip.sum()))
        return enc.snap(out)


def _parego(ys: Array, rng: np.random.Generator) -> Array:
    """ParEGO's augmented Chebyshev scalarisation of minimisation ``ys`` with a random weight."""
    low, high = ys.min(axis=0), ys.max(axis=0)
    normal = (ys - low) / np.where(high > low, high - low, 1.0)
    weights = rng.dirichlet(np.ones(ys.shape[1]))
    weighted = normal * weights
    out: Array = weighted.max(axis=1) + _RHO * weighted.sum(axis=1)
    return out


def _standard(values: Array) -> tuple[Array, float]:
    """``values`` standardised, and where ``0`` (the feasibility threshold) lands."""
    mean, std = float(values.mean()), float(values.std())
    if not std > 1e-9 * max(1.0, abs(mean)):  # no spread to learn from: a unit scale
        std = max(1.0, abs(mean))
    out: Array = (values - mean) / std
    return out, -mean / std


class _PosteriorMean:
    """The GP's posterior mean at each trial's params, in the score's units (an estimator
    for :meth:`aiotune.TuningResult.recommend`)."""

    def __init__(self, space: Space, seed: int) -> None:
        self._space, self._seed = space, seed

    def __call__(self, trials: Sequence[Trial], direction: StudyDirection) -> list[float]:
        if not isinstance(direction, str):
            raise TuningError(
                f"the posterior mean estimates one score; this study has {len(direction)} "
                "objectives: read result.pareto_front"
            )
        enc = Encoding(self._space)
        sign = -1.0 if direction == "maximize" else 1.0
        rows: list[Array] = []
        where: list[int] = []
        scores: list[float] = []
        for i, trial in enumerate(trials):
            if not trial.is_complete or trial.score is None or not math.isfinite(trial.score):
                continue
            try:
                params = self._space.validate(trial.params)
            except SpaceError:
                continue
            rows.append(enc.encode(params))
            where.append(i)
            scores.append(trial.score)
        out = [math.nan] * len(trials)
        if len(where) < _MIN_OBS:  # too little to model: the observed scores
            for i, score in zip(where, scores, strict=True):
                out[i] = score
            return out
        y = sign * np.array(scores)
        x = np.array(rows)
        rng = np.random.default_rng([self._seed, len(where)])
        keep = subset(y, MAX_POINTS, rng) if len(y) > MAX_POINTS else np.arange(len(y))
        fit = subset(y[keep], MAX_FIT, rng) if len(keep) > MAX_FIT else np.arange(len(keep))
        with single_threaded_blas():
            kind, theta = fit_warped(enc.kernel, x, y, keep[fit], [default_theta(enc.kernel)], 100)
            w = warp(y, kind)
            mean = Posterior(enc.kernel, theta, x[keep], w[keep]).predict(x)[0]
        for i, value in zip(where, unwarp(mean, y, kind), strict=True):
            out[i] = sign * float(value)
        return out


class Bayesian:
    """Model-based search: a Gaussian process proposes the params most likely to improve.

    Starts with ``n_initial`` space-filling (scrambled Sobol) trials — by
    default ``dimensions + 1`` clipped to [5, 20] (``2 * (dimensions + 1)``
    before; pass ``n_initial`` for a longer start) — then fits a GP with
    an ARD Matérn-5/2 kernel to every finished trial (its scores standardised
    as they are, or with their worse half log-compressed: whichever the GP
    explains better, chosen at each fit) and suggests the point of
    greatest log expected improvement. Handles log and stepped floats, ints,
    categoricals and bools; params in flight are accounted for (kriging
    believer), so parallel workers never evaluate the same point twice, and
    once the search stalls the asks made while trials are in flight share a
    trust region around the incumbent (after TuRBO).
    Failed trials are skipped by the model, a pruned trial counts as no better
    than the median one, and a resumed study warm-starts the model from its
    journal. Model fitting runs in a worker thread, never on the event loop.

    The same ``seed`` gives the same sequence of params at ``concurrency=1``;
    without a seed one is drawn, and shown in the ``repr`` (and so in the
    journal's header).
    """

    def __init__(self, seed: int | None = None, *, n_initial: int | None = None) -> None:
        self.seed = check_seed(seed)
        self.n_initial = optional_int("n_initial", n_initial, 1)

    def suggest(self, space: Space, history: History) -> AsyncIterator[Params]:
        """Yield model-based params forever; the study's ``max_trials`` or observers end it
        (or a finite space running out of unevaluated points)."""
        core = BayesianCore(space, self.seed, direction=history.direction, n_initial=self.n_initial)
        return drive(core, history, in_thread=True)

    def posterior_mean(
        self, space: Space
    ) -> Callable[[Sequence[Trial], StudyDirection], list[float]]:
        """An estimator for :meth:`aiotune.TuningResult.recommend`: the GP's posterior mean.

        Called with a study's trials and direction, it fits this strategy's GP
        (same kernel, priors and target transform) to the complete trials and
        returns its posterior mean at each one's params, in the score's units
        (``nan`` for trials that are not complete or whose params are outside
        ``space``). On a noisy objective the mean averages each observation
        with its neighbours', so the trial it ranks first is less often a
        lucky draw than the best observed one::

            result = await at.tune(f, space, strategy=at.Bayesian(seed=0), max_trials=50)
            trial = result.recommend(by=at.Bayesian(seed=0).posterior_mean(space))

        One objective only (a :class:`~aiotune.TuningError` otherwise). Each
        call fits the GP's hyper-parameters (on at most 128 trials, tens to
        hundreds of milliseconds): from async code, call it in a thread.
        """
        return _PosteriorMean(space, self.seed)

    def __repr__(self) -> str:
        extra = f", n_initial={self.n_initial}" if self.n_initial is not None else ""
        return f"Bayesian(seed={self.seed}{extra})"
