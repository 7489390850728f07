"""The arguments of a study, checked once, before anything runs."""

from __future__ import annotations

import inspect
import math
import numbers
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from aiotune.errors import ConfigurationError
from aiotune.execution.executors import ExecutorSpec
from aiotune.pruning import Pruner
from aiotune.space import Space
from aiotune.strategies import Bayesian, StrategyLike
from aiotune.trial import Direction

Objective = Callable[..., Any]
PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class StudyConfig:
    """Validated arguments of ``Tuner``; see :class:`aiotune.Tuner` for their meaning."""

    objective: Objective
    space: Space
    strategy: StrategyLike
    max_trials: int | None
    concurrency: int
    direction: Direction
    observers: tuple[Any, ...]
    executor: ExecutorSpec
    trial_timeout: float | None
    trial_memory_limit: int | None
    retries: int
    pruner: Pruner | None
    resume: PathLike | None
    is_async: bool
    takes_context: bool


def is_async_objective(objective: Objective) -> bool:
    """Whether calling ``objective`` returns a coroutine (``async def`` or async ``__call__``)."""
    if inspect.iscoroutinefunction(objective):
        return True
    call = getattr(objective, "__call__", None)  # noqa: B004 - callable objects' own method
    return inspect.iscoroutinefunction(call)


def takes_context(objective: Objective) -> bool:
    """Whether ``objective`` accepts a second positional argument (the trial context)."""
    try:
        signature = inspect.signature(objective)
    except (TypeError, ValueError):  # builtins without a signature: call with params only
        return False
    positional = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            positional += 1
    if positional == 0:
        raise ConfigurationError(
            "objective", f"{objective!r} must take the params dict as its first argument"
        )
    return positional >= 2


def _optional_int(name: str, value: object, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigurationError(name, f"must be an int >= {minimum}, got {value!r}")
    return int(value)


def _optional_seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (0 < float(value) < math.inf)
    ):
        raise ConfigurationError(name, f"must be a positive number of seconds, got {value!r}")
    return float(value)


def make_config(
    objective: Objective,
    space: Space,
    *,
    strategy: StrategyLike | None,
    max_trials: int | None,
    concurrency: int | None,
    direction: str,
    observers: Sequence[Any],
    executor: ExecutorSpec | None,
    trial_timeout: float | None,
    trial_memory_limit: int | None,
    retries: int,
    pruner: Pruner | None,
    resume: PathLike | None,
) -> StudyConfig:
    """Check every argument and return the study's configuration, or raise ConfigurationError."""
    if not callable(objective):
        raise ConfigurationError("objective", f"must be callable, got {objective!r}")
    if not isinstance(space, Space):
        raise ConfigurationError("space", f"must be an aiotune.Space, got {type(space).__name__}")
    if direction not in ("maximize", "minimize"):
        raise ConfigurationError(
            "direction", f"must be 'maximize' or 'minimize', got {direction!r}"
        )
    if strategy is not None and not (hasattr(strategy, "suggest") or callable(strategy)):
        raise ConfigurationError(
            "strategy",
            f"must have a suggest(space, history) method or be an async generator function, "
            f"got {strategy!r}",
        )
    for observer in observers:
        if not callable(getattr(observer, "on_trial", None)) and not callable(
            getattr(observer, "on_trials", None)
        ):
            raise ConfigurationError(
                "observers", f"{observer!r} has no async on_trial(trial, tuner) method"
            )
    is_async = is_async_objective(objective)
    if executor is None:
        executor = "process"
    elif is_async:
        raise ConfigurationError(
            "executor", "an async def objective runs on the event loop; executor= is for sync ones"
        )
    if not isinstance(executor, Executor) and executor not in ("process", "thread"):
        raise ConfigurationError(
            "executor",
            f"must be 'process', 'thread' or a concurrent.futures.Executor, got {executor!r}",
        )
    memory_limit = _optional_int("trial_memory_limit", trial_memory_limit, 1)
    if memory_limit is not None and (executor != "process" or is_async):
        raise ConfigurationError(
            "trial_memory_limit", "needs aiotune's own process pool (executor='process')"
        )
    if pruner is not None and not isinstance(pruner, Pruner):
        raise ConfigurationError(
            "pruner",
            f"must have a bind(direction) method, e.g. aiotune.MedianPruner(); got {pruner!r}",
        )
    concurrency = _optional_int("concurrency", concurrency, 1) or os.cpu_count() or 1
    return StudyConfig(
        objective=objective,
        space=space,
        strategy=Bayesian() if strategy is None else strategy,
        max_trials=_optional_int("max_trials", max_trials, 1),
        concurrency=concurrency,
        direction=direction,  # type: ignore[arg-type]  # checked above
        observers=tuple(observers),
        executor=executor,
        trial_timeout=_optional_seconds("trial_timeout", trial_timeout),
        trial_memory_limit=memory_limit,
        retries=_optional_int("retries", retries, 0) or 0,
        pruner=pruner,
        resume=resume,
        is_async=is_async,
        takes_context=takes_context(objective),
    )
