"""A trust region shared by the asks made while trials are in flight (after TuRBO).

TuRBO (Eriksson, Pearce, Gardner, Turner & Poloczek, NeurIPS 2019) searches a
box centred on the incumbent whose sides are scaled by the GP's ARD
length-scales (over their geometric mean) and whose size doubles after
``SUCC_TOL`` improvements in a row, halves after ``max(FAIL_MIN, d)`` trials
in a row without one, and starts again from ``L_INIT`` when it falls below
``L_MIN``. Here the size is a pure function of the values told so far, in the
order they were told (:func:`side`), so the core stays deterministic and keeps
no state for it; :class:`Box` is the region for one ask.

``BayesianCore`` uses the region only for asks made while trials are in flight
(a sequential ask is never restricted), and only once its side has fallen below
``L_INIT``, that is once ``max(FAIL_MIN, d)`` told trials in a row have not
improved: while the search improves, the batch keeps searching everywhere.
The box is centred on the trial with the best posterior mean, not the best
observation, which on a noisy objective is often a lucky draw, and the values
:func:`side` counts improvements on are the posterior means at the told
trials, in the order told, for the same reason. Measured on
``benchmarks/quality.py --core`` (benchmarks/README.md, "Seventh session"):
applied to every ask from the start, as TuRBO does, the region lost on
Hartmann-6 at 25 trials and on the noisy paraboloid at 4 in flight; centred on
the best observation, on the noisy Branin. Counting on the posterior means
rather than the observations ("Eighth session") lowered Branin's regret at 4
in flight and lost significantly nowhere.
"""

from __future__ import annotations

import math

import numpy as np

from aiotune.strategies._gp import Array

Mask = np.ndarray[tuple[int], np.dtype[np.bool_]]

L_INIT = 0.8  # TuRBO's: the initial side, in units of the length-scales' geometric mean
L_MIN = 0.5**7  # below this the region starts again from L_INIT
L_MAX = 1.6
SUCC_TOL = 3  # improvements in a row that double the side
FAIL_MIN = 4  # trials in a row without improvement that halve it: max(FAIL_MIN, d)
_MARGIN = 1e-3  # an improvement beats the best so far by this fraction of the values' range


def side(y: Array, start: int, d: int) -> float:
    """The region's side after the minimisation values ``y`` (in the order told), counting
    improvements and failures from the ``start``-th value on, for ``d`` numeric columns."""
    out = L_INIT
    if len(y) <= start:
        return out
    fail_tol = max(FAIL_MIN, d)
    start = max(start, 1)
    best = low = float(np.min(y[:start]))
    high = float(np.max(y[:start]))
    succ = fail = 0
    for value in map(float, y[start:]):
        low, high = min(low, value), max(high, value)
        if value < best - _MARGIN * (high - low):
            succ, fail = succ + 1, 0
        else:
            succ, fail = 0, fail + 1
        best = min(best, value)
        if succ >= SUCC_TOL:
            out, succ = min(2.0 * out, L_MAX), 0
        elif fail >= fail_tol:
            out, fail = out / 2.0, 0
        if out < L_MIN:
            out, succ, fail = L_INIT, 0, 0
    return out


class Box:
    """The region for one ask: ``[low, high]`` on the numeric columns active at ``centre``,
    free on the others (categorical columns, inactive ones of a conditional space)."""

    def __init__(self, centre: Array, lengthscales: Array, side: float, movable: Mask) -> None:
        self.bounded: Mask = movable & (centre >= 0.0)
        m = self.bounded
        scale = math.exp(float(np.mean(np.log(lengthscales[m])))) if m.any() else 1.0
        half = np.where(m, side * lengthscales / scale / 2.0, np.inf)
        self.low = np.clip(centre - half, 0.0, 1.0)
        self.high = np.clip(centre + half, 0.0, 1.0)

    def contains(self, rows: Array, tol: float = 0.0) -> Mask:
        """Which ``rows`` lie in the box (within ``tol``) on its bounded active columns."""
        inside = (rows >= self.low - tol) & (rows <= self.high + tol)
        out: Mask = np.all(inside | ~self.bounded | (rows < 0.0), axis=1)
        return out

    def clip(self, rows: Array) -> Array:
        """``rows`` moved into the box along its bounded columns (inactive entries kept)."""
        clipped = np.clip(rows, self.low, self.high)
        out: Array = np.where(self.bounded & (rows >= 0.0), clipped, rows)
        return out

    def place(self, unit: Array) -> Array:
        """Points of the unit cube mapped affinely into the box along its bounded columns."""
        out: Array = np.where(self.bounded, self.low + unit * (self.high - self.low), unit)
        return out
