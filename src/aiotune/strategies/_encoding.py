"""Params as rows of model features, and back.

One column per parameter. Numeric domains (``Float``, stepped ``Float``,
``Int``, log or not) use their unit-cube coordinate (``Domain.to_unit``);
a discrete one takes only the values its bins map to, which :meth:`snap`
enforces on any candidate. ``Categorical`` and ``Bool`` columns hold the
index of the choice, which the GP compares by equality only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from aiotune.space import Bool, Categorical, Float, Int, Space
from aiotune.strategies._gp import Array, Kernel
from aiotune.trial import Params

Key = tuple[tuple[type, Any], ...]


class Encoding:
    """The feature layout of a :class:`~aiotune.space.Space`."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.names = list(space)
        domains = list(space.values())
        # Per column: number of choices of a categorical column, else 0.
        self.n_choices = [d.size if isinstance(d, Categorical | Bool) else 0 for d in domains]
        categorical = np.array([k > 0 for k in self.n_choices], dtype=np.bool_)
        self.kernel = Kernel(categorical, self.n_choices)
        self.movable = ~categorical
        # Snapping data of the discrete numeric columns: (column, bins, log range or None).
        self._bins: list[tuple[int, int, tuple[float, float, int, int] | None]] = []
        for j, d in enumerate(domains):
            if isinstance(d, Int) and d.log:
                a, b = math.log(d.low - 0.5), math.log(d.high + 0.5)
                self._bins.append((j, d.size, (a, b, d.low, d.high)))
            elif isinstance(d, Int) or (isinstance(d, Float) and d.step is not None):
                self._bins.append((j, d.size or 0, None))
        sizes = [d.size for d in domains]
        # How many distinct points the space has, if it is finite.
        self.finite_size: int | None = None
        if all(size is not None for size in sizes):
            self.finite_size = math.prod(size or 1 for size in sizes)

    def key(self, params: Mapping[str, Any]) -> Key:
        """A hashable identity of ``params``; type-aware, so ``True``, ``1`` and ``1.0`` differ."""
        return tuple((type(value), value) for value in map(params.__getitem__, self.names))

    @property
    def n_cols(self) -> int:
        """How many feature columns (one per parameter)."""
        return len(self.names)

    def encode(self, params: Mapping[str, Any]) -> Array:
        """The feature row of valid ``params``."""
        unit = self.space.to_unit(params)
        for j, k in enumerate(self.n_choices):
            if k:
                unit[j] = round(unit[j] * k - 0.5)
        return unit

    def to_unit(self, rows: Array) -> Array:
        """Unit-cube coordinates of feature rows (categorical indices to bin centres)."""
        out = rows.copy()
        for j, k in enumerate(self.n_choices):
            if k:
                out[..., j] = (rows[..., j] + 0.5) / k
        return out

    def decode(self, row: Array) -> Params:
        """The params of a feature row (plain Python values)."""
        return self.space.from_unit(self.to_unit(row))

    def from_unit(self, unit: Array) -> Array:
        """Feature rows of unit-cube points: categorical bins to indices, then :meth:`snap`."""
        out = np.clip(unit, 0.0, 1.0)
        for j, k in enumerate(self.n_choices):
            if k:
                out[:, j] = np.minimum(np.floor(out[:, j] * k), k - 1)
        return self.snap(out)

    def snap(self, rows: Array) -> Array:
        """Move each discrete numeric coordinate to the value its domain would return.

        Matches ``domain.to_unit(domain.from_unit(u))`` (see ``aiotune.space``):
        bin centres ``(i + 0.5) / n``, or for a log ``Int`` the log-scaled
        position of the rounded integer.
        """
        out = np.clip(rows, 0.0, 1.0)
        for j, n, log in self._bins:
            u = out[:, j]
            if log is None:
                out[:, j] = (np.minimum(np.floor(u * n), n - 1) + 0.5) / n
            else:
                a, b, low, high = log
                v = np.clip(np.floor(np.exp(a + u * (b - a)) + 0.5), low, high)
                out[:, j] = (np.log(v) - a) / (b - a)
        for j, k in enumerate(self.n_choices):
            if k:
                out[:, j] = np.clip(np.round(rows[:, j]), 0, k - 1)
        return out
