"""Params as rows of model features, and back.

One column per parameter. Numeric domains (``Float``, stepped ``Float``,
``Int``, log or not) use their unit-cube coordinate (``Domain.to_unit``);
a discrete one takes only the values its bins map to, which :meth:`snap`
enforces on any candidate. ``Categorical`` and ``Bool`` columns hold the
index of the choice, which the GP compares by equality only.

Conditional spaces: an inactive parameter has no value, and the row does not
pretend it has one. An inactive numeric column holds ``-1`` (:data:`INACTIVE`),
which the kernel embeds as the centre of the arc its active values lie on
(:class:`~aiotune.strategies._gp.Kernel`), so it is equally far from every
active value and two inactive rows agree on it; an inactive categorical
column holds the extra index ``k`` (one past the last choice), a category of
its own. :meth:`snap` recomputes which columns are active from the parents'
values, parents first, for every candidate row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from aiotune.space import Bool, Categorical, Float, Int, Space
from aiotune.strategies._gp import Array, Kernel
from aiotune.trial import Params

Key = tuple[tuple[str, type, Any], ...]
INACTIVE = -1.0  # the value of an inactive numeric column


class Encoding:
    """The feature layout of a :class:`~aiotune.space.Space`."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.names = list(space)
        domains = list(space.values())
        column = {name: j for j, name in enumerate(self.names)}
        # Per column: number of choices of a categorical column, else 0.
        self.n_choices = [d.size if isinstance(d, Categorical | Bool) else 0 for d in domains]
        categorical = np.array([k > 0 for k in self.n_choices], dtype=np.bool_)
        conditional = np.array([bool(d.when) for d in domains], dtype=np.bool_)
        # A conditional categorical column has one more category: "inactive".
        kernel_choices = [
            k + int(c and k > 0) for k, c in zip(self.n_choices, conditional, strict=True)
        ]
        self.kernel = Kernel(categorical, kernel_choices, arc=conditional & ~categorical)
        self.movable = ~categorical
        # Per conditional column, parents first: (column, ((parent column, allowed codes), ...)),
        # a code being a categorical index or the unit coordinate of an Int value.
        self._conditions: list[tuple[int, tuple[tuple[int, Array], ...]]] = []
        for name, parents in space.conditions.items():
            rules = []
            for parent, values in parents.items():
                domain = space[parent]
                codes = [domain.to_unit(v) for v in values]
                if isinstance(domain, Categorical | Bool):
                    codes = [round(c * domain.size - 0.5) for c in codes]
                rules.append((column[parent], np.array(codes, dtype=np.float64)))
            self._conditions.append((column[name], tuple(rules)))
        # Snapping data of the discrete numeric columns: (column, bins, log range or None).
        self._bins: list[tuple[int, int, tuple[float, float, int, int] | None]] = []
        for j, d in enumerate(domains):
            if isinstance(d, Int) and d.log:
                a, b = math.log(d.low - 0.5), math.log(d.high + 0.5)
                self._bins.append((j, d.size, (a, b, d.low, d.high)))
            elif isinstance(d, Int) or (isinstance(d, Float) and d.step is not None):
                self._bins.append((j, d.size or 0, None))
        # How many distinct points the space has, if it is finite.
        self.finite_size: int | None = None
        if all(d.size is not None for d in domains):
            self.finite_size = space.grid_size()

    def key(self, params: Mapping[str, Any]) -> Key:
        """A hashable identity of ``params``; type-aware, so ``True``, ``1`` and ``1.0`` differ."""
        return tuple((name, type(value), value) for name, value in params.items())

    @property
    def n_cols(self) -> int:
        """How many feature columns (one per parameter)."""
        return len(self.names)

    def encode(self, params: Mapping[str, Any]) -> Array:
        """The feature row of valid ``params``."""
        unit = self.space.to_unit(params)
        inactive = np.isnan(unit)
        unit[inactive] = INACTIVE
        for j, k in enumerate(self.n_choices):
            if k:
                unit[j] = k if inactive[j] else round(unit[j] * k - 0.5)
        return unit

    def to_unit(self, rows: Array) -> Array:
        """Unit-cube coordinates of feature rows (categorical indices to bin centres;
        inactive columns to ``nan``)."""
        out = rows.copy()
        for j, k in enumerate(self.n_choices):
            if k:
                out[..., j] = (rows[..., j] + 0.5) / k
                out[..., j][rows[..., j] >= k] = math.nan
            elif self.kernel.arc[j]:
                out[..., j][rows[..., j] < 0] = math.nan
        return out

    def decode(self, row: Array) -> Params:
        """The params of a (snapped) feature row (plain Python values)."""
        return self.space.from_unit(self.to_unit(row))

    def from_unit(self, unit: Array) -> Array:
        """Feature rows of unit-cube points: categorical bins to indices, then :meth:`snap`."""
        out = np.clip(unit, 0.0, 1.0)
        for j, k in enumerate(self.n_choices):
            if k:
                out[:, j] = np.minimum(np.floor(out[:, j] * k), k - 1)
        return self.snap(out)

    def snap(self, rows: Array) -> Array:
        """Move each discrete numeric coordinate to the value its domain would return,
        then mark the columns of inactive parameters (see :meth:`activate`).

        Matches ``domain.to_unit(domain.from_unit(u))`` (see ``aiotune.space``):
        bin centres ``(i + 0.5) / n``, or for a log ``Int`` the log-scaled
        position of the rounded integer.
        """
        out = np.clip(rows, 0.0, 1.0)
        for j, k in enumerate(self.n_choices):
            if k:
                out[:, j] = np.clip(np.round(rows[:, j]), 0, k - 1)
        if self._conditions:
            # An inactive column that becomes active starts from the middle / the first choice.
            for j, _ in self._conditions:
                if not self.n_choices[j]:
                    out[rows[:, j] < 0, j] = 0.5
        for j, n, log in self._bins:
            u = out[:, j]
            if log is None:
                out[:, j] = (np.minimum(np.floor(u * n), n - 1) + 0.5) / n
            else:
                a, b, low, high = log
                v = np.clip(np.floor(np.exp(a + u * (b - a)) + 0.5), low, high)
                out[:, j] = (np.log(v) - a) / (b - a)
        return self.activate(out, out)

    def activate(self, rows: Array, snapped: Array) -> Array:
        """``rows`` with the columns inactive under ``snapped`` (the same rows, snapped)
        set to their inactive value; an unconditional space's rows as they are."""
        if not self._conditions:
            return rows
        out = rows.copy()
        active = np.ones(rows.shape, dtype=np.bool_)
        for j, rules in self._conditions:
            on = np.ones(len(rows), dtype=np.bool_)
            for parent, codes in rules:
                # Codes are bin indices or snapped coordinates: equal up to rounding.
                near = np.abs(snapped[:, parent, None] - codes[None, :]) < 1e-9
                on &= active[:, parent] & near.any(1)
            active[:, j] = on
            out[~on, j] = self.n_choices[j] if self.n_choices[j] else INACTIVE
        return out
