"""aiotune: asyncio-native hyper-parameter tuning.

One ``await`` runs a whole study: a strategy suggests params, trials run in
worker processes (or on the loop, a thread pool, or any executor), and each
finished trial is fanned out to observers such as the JSONL journal::

    import aiotune as at

    space = at.Space(lr=at.Float(1e-5, 1e-1, log=True), layers=at.Int(1, 8))
    result = await at.tune(objective, space, max_trials=100,
                           observers=[at.JsonlWriter("trials.jsonl")])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The public surface, listed once: each name and the module it lives in. Type
# checkers and IDEs read these imports; at run time they are read from this
# very block (see _homes) and each name is imported on first use, so a worker
# process that only runs a trial pays for neither numpy nor anyio.
if TYPE_CHECKING:
    from aiotune.errors import ConfigurationError as ConfigurationError
    from aiotune.errors import JournalError as JournalError
    from aiotune.errors import MissingExtraError as MissingExtraError
    from aiotune.errors import NoCompleteTrialError as NoCompleteTrialError
    from aiotune.errors import ObjectiveError as ObjectiveError
    from aiotune.errors import PoolClosedError as PoolClosedError
    from aiotune.errors import Pruned as Pruned
    from aiotune.errors import SpaceError as SpaceError
    from aiotune.errors import StrategyError as StrategyError
    from aiotune.errors import TunerStateError as TunerStateError
    from aiotune.errors import TuningError as TuningError
    from aiotune.execution.context import RunningTrial as RunningTrial
    from aiotune.execution.pool import WorkerPool as WorkerPool
    from aiotune.history import History as History
    from aiotune.integrations.dask import DaskExecutor as DaskExecutor
    from aiotune.journal import JsonlWriter as JsonlWriter
    from aiotune.journal import load as load
    from aiotune.observers.base import Observer as Observer
    from aiotune.observers.progress import Progress as Progress
    from aiotune.observers.stopping import MaxFailures as MaxFailures
    from aiotune.observers.stopping import Patience as Patience
    from aiotune.observers.stopping import Target as Target
    from aiotune.observers.stopping import TimeBudget as TimeBudget
    from aiotune.pruning import ASHA as ASHA
    from aiotune.pruning import MedianPruner as MedianPruner
    from aiotune.pruning import Pruner as Pruner
    from aiotune.pruning import PrunerState as PrunerState
    from aiotune.reports import report as report
    from aiotune.space import Bool as Bool
    from aiotune.space import Categorical as Categorical
    from aiotune.space import Float as Float
    from aiotune.space import Int as Int
    from aiotune.space import Space as Space
    from aiotune.strategies import Bayesian as Bayesian
    from aiotune.strategies import Grid as Grid
    from aiotune.strategies import Random as Random
    from aiotune.strategies import Strategy as Strategy
    from aiotune.study import AskedTrial as AskedTrial
    from aiotune.study import Study as Study
    from aiotune.trial import ErrorInfo as ErrorInfo
    from aiotune.trial import ObserverFailure as ObserverFailure
    from aiotune.trial import Outcome as Outcome
    from aiotune.trial import Trial as Trial
    from aiotune.trial import TrialStatus as TrialStatus
    from aiotune.trial import TuningResult as TuningResult
    from aiotune.tuner import Tuner as Tuner
    from aiotune.tuner import run as run
    from aiotune.tuner import tune as tune

__version__ = "0.1.0"

_HOMES: dict[str, str] = {}


def _homes() -> dict[str, str]:
    """Each public name's module, read from the ``if TYPE_CHECKING:`` block above."""
    if not _HOMES:
        import ast

        source = __spec__.loader.get_source(__name__)  # type: ignore[union-attr]
        if source is None:  # pragma: no cover - an install without .py files
            raise ImportError("aiotune's public names are read from its __init__.py source")
        for node in ast.parse(source).body:
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
                for statement in node.body:
                    if isinstance(statement, ast.ImportFrom) and statement.module:
                        for alias in statement.names:
                            _HOMES[alias.asname or alias.name] = statement.module
    return _HOMES


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted(_homes())
    home = _homes().get(name)
    if home is None:
        raise AttributeError(f"module 'aiotune' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    if getattr(value, "__module__", "").startswith("aiotune."):
        try:  # public objects report themselves as aiotune.X in reprs and tracebacks
            value.__module__ = "aiotune"
        except (AttributeError, TypeError):  # pragma: no cover - objects that refuse
            pass
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_homes()))
