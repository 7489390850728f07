"""Search strategies: async generators of params, built on sans-I/O ask/tell cores."""

from aiotune.strategies.base import AskTell, Strategy, StrategyLike, drive, suggest_function
from aiotune.strategies.bayesian import Bayesian
from aiotune.strategies.grid import Grid
from aiotune.strategies.random import Random

__all__ = [
    "AskTell",
    "Bayesian",
    "Grid",
    "Random",
    "Strategy",
    "StrategyLike",
    "drive",
    "suggest_function",
]
