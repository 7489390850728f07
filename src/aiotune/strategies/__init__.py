"""Search strategies: async generators of params, built on sans-I/O ask/tell cores.

:class:`Bayesian` (and with it scipy) is imported on first use, so a study
with another strategy never loads it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from aiotune.strategies.base import AskTell, Strategy, StrategyLike, drive, suggest_function
from aiotune.strategies.grid import Grid
from aiotune.strategies.primed import Primed
from aiotune.strategies.random import Random

if TYPE_CHECKING:
    from aiotune.strategies.bayesian import Bayesian


def __getattr__(name: str) -> Any:
    if name == "Bayesian":
        from aiotune.strategies.bayesian import Bayesian

        return Bayesian
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def yields_valid_params(strategy: object) -> bool:
    """Whether ``strategy`` is a built-in one, whose params are valid by construction.

    The study checks every params dict a strategy yields; it skips the check
    for these (an exact type match: a subclass may override ``suggest``).
    """
    if type(strategy) is Primed:  # its initial points were checked when the study was built
        return yields_valid_params(strategy.strategy)
    if type(strategy) in (Grid, Random):
        return True
    bayesian = sys.modules.get("aiotune.strategies.bayesian")  # loaded if one was made
    return bayesian is not None and type(strategy) is bayesian.Bayesian


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
