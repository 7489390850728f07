"""Pruners: stop hopeless trials early, from the intermediate values they report.

``Tuner(..., pruner=MedianPruner())`` or ``pruner=ASHA(...)``. A pruner is a
factory of sans-I/O, synchronous per-study state (see :mod:`aiotune.pruning.base`
for the protocol and the order of calls); write your own by implementing
:class:`Pruner` and :class:`PrunerState`.
"""

from aiotune.pruning.asha import ASHA, ASHAState
from aiotune.pruning.base import Pruner, PrunerState
from aiotune.pruning.median import MedianPruner, MedianState

__all__ = ["ASHA", "ASHAState", "MedianPruner", "MedianState", "Pruner", "PrunerState"]
