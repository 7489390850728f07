"""Random search, reproducible per trial number."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

import numpy as np

from aiotune._checks import check_seed
from aiotune.strategies.base import drive
from aiotune.trial import Params, Trial

if TYPE_CHECKING:
    from aiotune.history import History
    from aiotune.space import Space


class RandomCore:
    """The ask/tell core of :class:`Random`: trial ``k`` samples a stream seeded by (seed, k)."""

    def __init__(self, space: Space, seed: int) -> None:
        self._space = space
        self._seed = seed

    def tell(self, trial: Trial) -> None:
        """Random search learns nothing from results."""

    def ask(self, number: int, pending: Mapping[int, Params]) -> Params:
        """The params of trial ``number``: the same for the same seed, whatever else ran."""
        return self._space.sample(np.random.default_rng([self._seed, number]))


class Random:
    """Sample params uniformly (log-uniformly for ``log`` domains).

    Trial number ``k`` gets its params from a random stream derived from
    ``seed`` and ``k`` alone, so the same seed gives the same params for each
    trial number whatever the concurrency or finishing order, and a resumed
    study re-runs exactly the points its crash interrupted. Without a seed one
    is drawn, and shown in the ``repr`` (and so in the journal's header).
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = check_seed(seed)

    def suggest(self, space: Space, history: History) -> AsyncIterator[Params]:
        """Yield random params forever; the study's ``max_trials`` or observers end it."""
        return drive(RandomCore(space, self.seed), history)

    def __repr__(self) -> str:
        return f"Random(seed={self.seed})"
