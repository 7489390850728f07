"""Log expected improvement and its optimisation over the unit cube.

Expected improvement (Jones, Schonlau & Welch, 1998) of a minimisation, at a
point with posterior mean ``mu`` and standard deviation ``sigma``, against the
best value ``best``: ``EI = sigma * h(z)`` with ``z = (best - mu) / sigma`` and
``h(z) = phi(z) + z Phi(z)``. EI underflows to 0 far from the incumbent and
its gradient vanishes with it, so the optimiser works on ``log EI``, computed
stably as in Ament et al., *Unexpected Improvements to Expected Improvement
for Bayesian Optimization* (NeurIPS 2023), eq. 9.

Constraints (Gardner et al., *Bayesian Optimization with Inequality
Constraints*, ICML 2014): each constraint ``c_j(x) <= 0`` has its own GP,
and the acquisition is multiplied by the probability of feasibility
``prod_j Phi((t_j - mu_j) / sigma_j)``, i.e. ``log PF`` is added to ``log EI``.
While no trial is feasible there is no incumbent: the acquisition is ``log PF``
alone, so the search looks for the feasible region first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from aiotune.strategies._gp import Array, Posterior
from aiotune.strategies._scipy import optimize, special

_C1 = math.log(2.0 * math.pi) / 2.0
_C2 = math.log(math.pi / 2.0) / 2.0
_TAIL = -1.0 / math.sqrt(np.finfo(np.float64).eps)


def _log1mexp(x: Array) -> Array:
    """``log(1 - exp(x))`` for ``x < 0`` (Mächler, 2012)."""
    small = x > -math.log(2.0)
    out = np.empty_like(x)
    out[small] = np.log(-np.expm1(x[small]))
    out[~small] = np.log1p(-np.exp(x[~small]))
    return out


def log_h(z: Array) -> Array:
    """``log(phi(z) + z Phi(z))``, accurate for every finite ``z`` (Ament et al., eq. 9)."""
    z = np.asarray(z, dtype=np.float64)
    upper = z > -1.0
    if upper.all():  # the usual case near the incumbent: one branch, no masking
        out: Array = np.log(special.ndtr(z) * z + np.exp(-0.5 * z * z - _C1))
        return out
    out = np.empty_like(z)
    tail = z <= _TAIL
    middle = ~upper & ~tail
    zu = z[upper]
    out[upper] = np.log(special.ndtr(zu) * zu + np.exp(-0.5 * zu * zu - _C1))
    zm = z[middle]
    inner = np.log(special.erfcx(-zm / math.sqrt(2.0)) * np.abs(zm)) + _C2
    out[middle] = -0.5 * zm * zm - _C1 + _log1mexp(inner)
    zt = z[tail]
    out[tail] = -0.5 * zt * zt - _C1 - 2.0 * np.log(np.abs(zt))
    return out


def log_ei(mean: Array, var: Array, best: float) -> tuple[Array, Array, Array]:
    """``log EI`` of a minimisation and its derivatives w.r.t. ``mean`` and ``var``."""
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    lh = log_h(z)
    # d log h / dz = Phi(z) / h(z), in logs so that it stays finite in the far tail.
    dlh = np.exp(special.log_ndtr(z) - lh)
    value = np.log(sigma) + lh
    d_mean = -dlh / sigma
    d_var = (1.0 - z * dlh) / (2.0 * var)
    return value, d_mean, d_var


_Term = Callable[[Array, Array, float], tuple[Array, Array, Array]]
Feasibility = Sequence[tuple[Posterior, float]]
"""Each constraint's GP and its threshold (``0`` in the GP's standardised units)."""


def log_pf(mean: Array, var: Array, threshold: float) -> tuple[Array, Array, Array]:
    """``log P(c <= threshold)`` of a GP output and its derivatives w.r.t. ``mean`` and ``var``."""
    sigma = np.sqrt(var)
    z = (threshold - mean) / sigma
    value = special.log_ndtr(z)
    # d log Phi(z) / dz = phi(z) / Phi(z), in logs so that it stays finite in the tail.
    ratio = np.exp(-0.5 * z * z - _C1 - value)
    return value, -ratio / sigma, -ratio * z / (2.0 * var)


def score(
    posterior: Posterior, xs: Array, best: float | None, feasibility: Feasibility = ()
) -> Array:
    """``log EI`` (none while ``best`` is ``None``) plus ``log PF`` at the rows of ``xs``."""
    total = np.zeros(len(xs))
    if best is not None:
        mean, var = posterior.predict(xs)
        total += log_ei(mean, var, best)[0]
    for model, threshold in feasibility:
        mean, var = model.predict(xs)
        total += log_pf(mean, var, threshold)[0]
    return total


def refine(
    posterior: Posterior,
    starts: Array,
    best: float | None,
    movable: np.ndarray[tuple[int], np.dtype[np.bool_]],
    snap: Callable[[Array], Array],
    maxiter: int = 60,
    prepare: Callable[[Array], Array] | None = None,
    feasibility: Feasibility = (),
) -> Array:
    """Climb ``log EI`` from each row of ``starts`` with L-BFGS-B, moving only ``movable`` columns.

    The starts are optimised jointly (:func:`climb`). Returns the snapped end
    points. ``prepare`` maps the optimiser's points to model rows first (a conditional
    space marks its inactive columns there, which then get no gradient).
    With ``feasibility``, the objective is :func:`score`'s: ``log EI + log PF``.
    """
    if not movable.any():
        return starts

    def value(xs: Array) -> tuple[float, Array]:
        if prepare is not None:
            xs = prepare(xs)
        total, grad = 0.0, np.zeros_like(xs)
        terms: list[tuple[Posterior, _Term, float]] = []
        if best is not None:
            terms.append((posterior, log_ei, best))
        terms += [(model, log_pf, threshold) for model, threshold in feasibility]
        for model, function, level in terms:
            mean, var, dmean, dvar = model.predict_grad(xs)
            values, d_mean, d_var = function(mean, var, level)
            total += float(values.sum())
            grad += d_mean[:, None] * dmean + d_var[:, None] * dvar
        return total, grad

    # A sharp feasibility edge can make the line search take many steps: bound them.
    return snap(
        climb(starts, movable, value, maxiter=maxiter, maxfun=2 * maxiter if feasibility else None)
    )


def climb(
    starts: Array,
    movable: np.ndarray[tuple[int], np.dtype[np.bool_]],
    value: Callable[[Array], tuple[float, Array]],
    *,
    maxiter: int,
    maxfun: int | None = None,
) -> Array:
    """Maximise ``value`` from each row of ``starts`` with L-BFGS-B in the unit cube,
    moving only the ``movable`` columns; return the end points (not snapped).

    ``value(xs)`` gives the sum over the rows ``xs`` of the acquisition and its
    gradient (one row per start). The starts are optimised jointly as one
    problem whose objective is the sum of their separate ones (as BoTorch's
    ``gen_candidates_scipy`` does): one scipy call, vectorised numpy inside.
    """
    if not movable.any():
        return starts
    fixed = starts.copy()
    m, n_move = len(starts), int(movable.sum())

    def objective(flat: Array) -> tuple[float, Array]:
        xs = fixed.copy()
        xs[:, movable] = flat.reshape(m, n_move)
        total, grad = value(xs)
        return -total, -grad[:, movable].ravel()

    result = optimize.minimize(
        objective,
        starts[:, movable].ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * (m * n_move),
        options={"maxiter": maxiter, **({"maxfun": maxfun} if maxfun is not None else {})},
    )
    out = fixed.copy()
    out[:, movable] = np.clip(np.asarray(result.x).reshape(m, n_move), 0.0, 1.0)
    return out
