"""The GP's targets: scores (as a minimisation) warped and standardised, and back.

Two warps, each followed by standardisation:

* ``"compressed"``: ``y <= median`` is kept as it is; above the median, ``y``
  becomes ``median + s * log(1 + (y - median) / s)`` with ``s`` the median
  absolute deviation. The good half, where the model must be accurate, keeps
  its shape, while a few huge values (Rosenbrock's 1e5 beside its 0) no
  longer flatten everything else to one level.
* ``"plain"``: standardisation alone, which keeps the slope of the bad region;
  on noisy scores the compression bends the noise of the worse half too.

:func:`fit_warped` fits the GP's hyper-parameters under each warp and keeps
the warp whose fit explains the scores best. The two fits see different
numbers, so they are compared in the scores' own units: the log posterior of
the warped targets plus the log of the warp's slope at each score (the
Jacobian of the change of variables, as when choosing a Box-Cox transform by
likelihood).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from aiotune.strategies._gp import Array, Kernel, fit_map

WarpKind = Literal["compressed", "plain"]
WARPS: tuple[WarpKind, ...] = ("compressed", "plain")


def _compress(y: Array) -> tuple[Array, float, float]:
    """``y`` with its worse half compressed logarithmically, the median and the scale."""
    median = float(np.median(y))
    s = float(np.median(np.abs(y - median)))
    if not s > 0:
        s = float(np.ptp(y)) or 1.0
    z = median + s * np.log1p(np.maximum(y - median, 0.0) / s) + np.minimum(y - median, 0.0)
    return z, median, s


def _spread(z: Array) -> float:
    return max(float(z.std()), 1e-12)


def warp(y: Array, kind: WarpKind = "compressed") -> Array:
    """``y`` warped by ``kind`` and standardised (mean 0, standard deviation 1)."""
    z = _compress(y)[0] if kind == "compressed" else y
    out: Array = (z - z.mean()) / _spread(z)
    return out


def unwarp(w: Array, y: Array, kind: WarpKind = "compressed") -> Array:
    """The inverse of :func:`warp` fitted to ``y``: values in its units back in ``y``'s."""
    if kind == "plain":
        back: Array = w * _spread(y) + y.mean()
        return back
    z, median, s = _compress(y)
    u = w * _spread(z) + z.mean()
    out: Array = np.where(u > median, median + s * np.expm1(np.minimum((u - median) / s, 700.0)), u)
    return out


def log_slope(y: Array, kind: WarpKind) -> Array:
    """``log(d warp(y) / dy)`` at each of ``y`` (the warp's statistics held fixed)."""
    if kind == "plain":
        return np.full(len(y), -math.log(_spread(y)))
    z, median, s = _compress(y)
    slope = 1.0 / (1.0 + np.maximum(y - median, 0.0) / s)
    out: Array = np.log(slope) - math.log(_spread(z))
    return out


def fit_warped(
    kernel: Kernel,
    x: Array,
    y: Array,
    rows: np.ndarray[Any, Any],
    starts: list[Array],
    maxiter: int,
    warps: tuple[WarpKind, ...] = WARPS,
) -> tuple[WarpKind, Array]:
    """The warp of ``y`` (one of ``warps``) and the MAP hyper-parameters fitted to its
    ``rows`` that explain those scores best: the largest log posterior plus log-Jacobian,
    in ``y``'s units. Each warp is fitted to all of ``y``, as the GP will see it."""
    fits: list[tuple[float, WarpKind, Array]] = []
    for kind in warps:
        theta, neg_log_post = fit_map(kernel, x[rows], warp(y, kind)[rows], starts, maxiter)
        fits.append((-neg_log_post + float(log_slope(y, kind)[rows].sum()), kind, theta))
    _, kind, theta = max(fits, key=lambda fit: fit[0])  # on a tie, the first
    return kind, theta
