"""Grid search: every point of the cartesian product, once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from aiotune.strategies.base import drive
from aiotune.trial import Params, Trial, TrialStatus

if TYPE_CHECKING:
    from aiotune.history import History
    from aiotune.space import Space


def _key(params: Mapping[str, Any]) -> tuple[tuple[str, type, Any], ...]:
    # Type-aware, so that True and 1 (or 1 and 1.0) are different grid points.
    return tuple((name, type(value), value) for name, value in params.items())


class GridCore:
    """The ask/tell core of :class:`Grid`: walks the grid, skipping points already done."""

    def __init__(self, space: Space, resolution: int | Mapping[str, int] | None = None) -> None:
        space.grid_size(resolution)  # raises SpaceError for an ungriddable space, eagerly
        self._points: Iterator[Params] = space.grid(resolution)
        self._done: set[tuple[tuple[str, type, Any], ...]] = set()

    def tell(self, trial: Trial) -> None:
        """Mark the trial's point as done (a cancelled trial's point is not)."""
        if trial.status is not TrialStatus.CANCELLED:
            self._done.add(_key(trial.params))

    def ask(self, number: int, pending: Mapping[int, Params]) -> Params | None:
        """The next grid point neither done nor in flight, or ``None`` at the end."""
        busy = {_key(params) for params in pending.values()}
        for point in self._points:
            key = _key(point)
            if key not in self._done and key not in busy:
                return point
        return None


class Grid:
    """Evaluate every point of the space's grid once, in order.

    ``Int``, stepped ``Float``, ``Categorical`` and ``Bool`` parameters
    contribute all their values; a continuous ``Float`` needs a ``resolution``
    (points per continuous parameter, or a mapping of name to points), or the
    search raises a ``SpaceError`` before the first trial. A resumed study
    skips the points already in its journal.
    """

    def __init__(self, resolution: int | Mapping[str, int] | None = None) -> None:
        self.resolution = resolution

    def suggest(self, space: Space, history: History) -> AsyncIterator[Params]:
        """Yield each grid point not yet evaluated."""
        core = GridCore(space, self.resolution)  # a bad grid raises here, before any trial
        return drive(core, history)

    def __repr__(self) -> str:
        return "Grid()" if self.resolution is None else f"Grid(resolution={self.resolution!r})"
