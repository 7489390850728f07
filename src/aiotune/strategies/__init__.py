"""Search strategies: async generators of params, built on sans-I/O ask/tell cores.

scipy, which :class:`Bayesian` needs, is loaded when its first model is
fitted (:mod:`aiotune.strategies._scipy`), not when this package is imported.
"""

from __future__ import annotations

from aiotune.strategies.base import AskTell, Strategy, StrategyLike, drive, suggest_function
from aiotune.strategies.bayesian import Bayesian
from aiotune.strategies.grid import Grid
from aiotune.strategies.primed import Primed
from aiotune.strategies.random import Random


def yields_valid_params(strategy: object) -> bool:
    """Whether ``strategy`` is a built-in one, whose params are valid by construction.

    The study checks every params dict a strategy yields; it skips the check
    for these (an exact type match: a subclass may override ``suggest``).
    """
    if type(strategy) is Primed:  # its initial points were checked when the study was built
        return yields_valid_params(strategy.strategy)
    return type(strategy) in (Bayesian, Grid, Random)


__all__ = [
    "AskTell",
    "Bayesian",
    "Grid",
    "Random",
    "Strategy",
    "StrategyLike",
    "drive",
    "suggest_function",
    "yields_valid_params",
]
