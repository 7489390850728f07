"""The arguments of a study, checked once, before anything runs.

:class:`StudyConfig` is what a :class:`~aiotune.Study` needs (the space, the
strategy, observers, pruner and journal); :class:`TunerConfig` adds what a
:class:`~aiotune.Tuner` needs to run trials itself (the objective and where
and how it runs). Every check lives in :mod:`aiotune._checks`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from aiotune._checks import check_directions, check_int, optional_int, optional_seconds
from aiotune.errors import ConfigurationError
from aiotune.execution.batch import BatchSpec, check_batch
from aiotune.execution.executors import ExecutorSpec
from aiotune.observers.stopping import Target
from aiotune.pruning import Pruner
from aiotune.space import Space
from aiotune.strategies import Bayesian, StrategyLike
from aiotune.strategies.primed import WarmSource, check_initial, check_warm_start
from aiotune.trial import ConstraintsFunction, Params, StudyDirection

Objective = Callable[..., Any]
PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class StudyConfig:
    """Validated arguments of ``Study``; see :class:`aiotune.Study` for their meaning."""

    space: Space
    strategy: StrategyLike
    direction: StudyDirection
    observers: tuple[Any, ...]
    pruner: Pruner | None
    resume: PathLike | None
    initial: tuple[Params, ...] = ()
    warm_start: tuple[WarmSource, ...] = ()
    constraints: ConstraintsFunction | None = None


@dataclass(frozen=True, slots=True)
class TunerConfig:
    """Validated arguments of ``Tuner``: its study's, and how its trials run."""

    study: StudyConfig
    objective: Objective
    max_trials: int | None
    concurrency: int
    executor: ExecutorSpec
    trial_timeout: float | None
    trial_memory_limit: int | None
    retries: int
    is_async: bool
    takes_context: bool
    batch: BatchSpec | None = None


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
            "objective", f"must take the params dict as its first argument, got {objective!r}"
        )
    return positional >= 2


def make_study_config(
    space: Space,
    *,
    strategy: StrategyLike | None,
    direction: object,
    observers: Iterable[Any],
    pruner: Pruner | None,
    resume: PathLike | None,
    initial: Sequence[Mapping[str, Any]] | None = None,
    warm_start: WarmSource | Sequence[WarmSource] | None = None,
    constraints: ConstraintsFunction | None = None,
) -> StudyConfig:
    """Check a study's arguments, or raise ConfigurationError naming the first bad one."""
    if not isinstance(space, Space):
        raise ConfigurationError("space", f"must be an aiotune.Space, got {type(space).__name__}")
    checked_direction = check_directions(direction)
    if constraints is not None and not callable(constraints):
        raise ConfigurationError(
            "constraints", f"must be a function (params, score) -> floats, got {constraints!r}"
        )
    if strategy is not None and not (hasattr(strategy, "suggest") or callable(strategy)):
        raise ConfigurationError(
            "strategy",
            f"must have a suggest(space, history) method or be an async generator function, "
            f"got {strategy!r}",
        )
    try:
        observer_list = tuple(observers)
    except TypeError:
        raise ConfigurationError("observers", f"must be a list, got {observers!r}") from None
    for observer in observer_list:
        if not callable(getattr(observer, "on_trial", None)) and not callable(
            getattr(observer, "on_trials", None)
        ):
            raise ConfigurationError(
                "observers", f"must have an async on_trial(trial, tuner) method, got {observer!r}"
            )
    if pruner is not None and not isinstance(pruner, Pruner):
        raise ConfigurationError(
            "pruner", f"must have a bind(direction) method, e.g. MedianPruner(), got {pruner!r}"
        )
    if not isinstance(checked_direction, str) and any(isinstance(o, Target) for o in observer_list):
        raise ConfigurationError(
            "observers", "Target(score) needs a single-objective study (it compares one score)"
        )
    if pruner is not None and not isinstance(checked_direction, str):
        raise ConfigurationError(
            "pruner", "must be None in a multi-objective study (a pruner compares one score)"
        )
    if resume is not None and not isinstance(resume, str | os.PathLike):
        raise ConfigurationError("resume", f"must be a path to a journal, got {resume!r}")
    return StudyConfig(
        space=space,
        strategy=Bayesian() if strategy is None else strategy,
        direction=checked_direction,
        observers=observer_list,
        pruner=pruner,
        resume=resume,
        initial=check_initial(space, initial),
        warm_start=check_warm_start(warm_start),
        constraints=constraints,
    )


def make_config(
    objective: Objective,
    space: Space,
    *,
    strategy: StrategyLike | None,
    max_trials: int | None,
    concurrency: int | None,
    direction: object,
    observers: Iterable[Any],
    executor: ExecutorSpec | None,
    trial_timeout: float | None,
    trial_memory_limit: int | None,
    retries: int,
    pruner: Pruner | None,
    resume: PathLike | None,
    initial: Sequence[Mapping[str, Any]] | None = None,
    warm_start: WarmSource | Sequence[WarmSource] | None = None,
    constraints: ConstraintsFunction | None = None,
    batch: BatchSpec | None = None,
) -> TunerConfig:
    """Check every argument of a Tuner, or raise ConfigurationError naming the first bad one."""
    if not callable(objective):
        raise ConfigurationError("objective", f"must be callable, got {objective!r}")
    study = make_study_config(
        space,
        strategy=strategy,
        direction=direction,
        observers=observers,
        pruner=pruner,
        resume=resume,
        initial=initial,
        warm_start=warm_start,
        constraints=constraints,
    )
    is_async = is_async_objective(objective)
    if executor is None:
        executor = "process"
    elif is_async:
        raise ConfigurationError(
            "executor", "must be left out: an async def objective runs on the event loop"
        )
    if not isinstance(executor, Executor) and executor not in ("process", "thread"):
        raise ConfigurationError(
            "executor",
            f"must be 'process', 'thread' or a concurrent.futures.Executor, got {executor!r}",
        )
    memory_limit = optional_int("trial_memory_limit", trial_memory_limit, 1)
    if memory_limit is not None and (executor != "process" or is_async):
        raise ConfigurationError(
            "trial_memory_limit", "needs aiotune's own process pool (executor='process')"
        )
    return TunerConfig(
        study=study,
        objective=objective,
        max_trials=optional_int("max_trials", max_trials, 1),
        concurrency=optional_int("concurrency", concurrency, 1) or os.cpu_count() or 1,
        executor=executor,
        trial_timeout=optional_seconds("trial_timeout", trial_timeout),
        trial_memory_limit=memory_limit,
        retries=check_int("retries", retries, 0),
        is_async=is_async,
        takes_context=takes_context(objective),
        batch=check_batch(batch, is_async=is_async),
    )
