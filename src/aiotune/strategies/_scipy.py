"""The parts of scipy the model-based strategy uses, each imported on first use.

Importing scipy (``scipy.stats`` above all) takes from half a second to
several seconds; :class:`~aiotune.strategies.bayesian.Bayesian` only needs
it once it fits a model, which happens in the strategy's worker thread. So
importing aiotune, building a ``Bayesian()`` or running any other strategy
never loads it, and the event loop never waits for it.
"""

from __future__ import annotations

import importlib
from typing import Any


class _OnFirstUse:
    """Stands for the module ``name``: the first attribute read imports it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(importlib.import_module(self._name), attribute)
        self.__dict__[attribute] = value  # later reads skip this method
        return value

    def __repr__(self) -> str:
        return f"<{self._name}, imported on first use>"


linalg: Any = _OnFirstUse("scipy.linalg")
optimize: Any = _OnFirstUse("scipy.optimize")
special: Any = _OnFirstUse("scipy.special")
qmc: Any = _OnFirstUse("scipy.stats.qmc")
