"""The orchestrator: :class:`Tuner`, and the ``tune``/``run`` front doors.

A Tuner is a :class:`~aiotune.study.Study` (history, strategy, observers,
pruner, journal) plus where and how trials run. One task group per study:
``concurrency`` slot tasks take turns asking the study for params (one ask
at a time), each runs what it was given (a trial, or a batch of them) and
tells the study each finished record, which also goes to the caller's
``stream()``, then asks again. Nothing started here outlives ``run()``. See
docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from aiotune._blocking import run_blocking
from aiotune._config import Objective, PathLike, TunerConfig, make_config
from aiotune.errors import ConfigurationError, ObjectiveError, TunerStateError, TuningError
from aiotune.execution.batch import BatchSizer, BatchSpec, run_batch
from aiotune.execution.executors import ExecutorSpec, executor_scope, route_reports
from aiotune.execution.inbox import ReportInbox
from aiotune.execution.runner import TrialPlan, cancelled_trial, run_trial
from aiotune.history import History
from aiotune.pruning import Pruner
from aiotune.space import Space
from aiotune.strategies import StrategyLike
from aiotune.strategies.primed import WarmSource
from aiotune.study import Study, _single
from aiotune.trial import (
    ConstraintsFunction,
    Direction,
    Params,
    StudyDirection,
    Trial,
    TuningResult,
)

logger = logging.getLogger("aiotune")


class _Running:
    """A Tuner's state while it runs: made by ``async with tuner``, one per Tuner.

    ``trials`` is the cancel scope of the trials in flight (cancelled when the
    caller's block fails, or the study does); ``error`` is what the study
    ended with, raised to the caller bare.
    """

    __slots__ = ("error", "receive", "send", "streamed", "task_group", "trials")

    def __init__(self, *, streamed: bool = True) -> None:
        self.send: MemoryObjectSendStream[Trial]
        self.receive: MemoryObjectReceiveStream[Trial]
        self.send, self.receive = anyio.create_memory_object_stream[Trial](float("inf"))
        self.task_group: TaskGroup = anyio.create_task_group()
        self.trials = anyio.CancelScope()
        self.error: BaseException | None = None
        self.streamed = streamed  # False under run(): nobody reads the stream


class Tuner:
    """A study that runs its own trials: tunes ``objective`` over ``space`` when run.

    ``await Tuner(...).run()`` runs it to the end (that is :func:`tune`). As an
    async context manager it owns the study's task group and lets the caller
    watch trials as they finish::

        async with Tuner(objective, space, max_trials=50) as tuner:
            async for trial in tuner.stream():
                ...
        result = tuner.result

    Leaving the block waits for the study to end (call :meth:`stop` first to
    end it early); an exception in the block, or cancellation, cancels it.
    Building a Tuner needs no running event loop; it runs once.

    A Tuner is a :class:`~aiotune.Study` (which owns the history, the
    strategy, the observers, the pruner and the journal) plus the executor
    and the loop that asks the study for params, runs each trial, and tells
    the study how it ended.

    Arguments (all but the first two keyword-only):

    * ``objective`` — ``f(params) -> float`` or ``f(params, trial) -> float``;
      sync ones run in worker processes (they must pickle), ``async def`` ones
      on the loop.
    * ``space`` — the :class:`aiotune.Space` to search.
    * ``strategy`` — ``Bayesian(seed=...)`` (the default), ``Grid()``,
      ``Random(seed=...)``, or your own async generator.
    * ``max_trials`` — stop after this many trials (resumed ones count);
      default: until the strategy or an observer stops the study.
    * ``concurrency`` — trials in flight at once; default ``os.cpu_count()``.
    * ``direction`` — ``"maximize"`` (default) or ``"minimize"``; a sequence
      of them, e.g. ``("maximize", "minimize")``, makes the study
      multi-objective: the objective returns one number per direction.
    * ``constraints`` — ``fn(params, score) -> floats``, run in this process
      on each complete trial; it is feasible when every value is ``<= 0``
      (an objective may also return ``Outcome(score, constraints=...)``).
    * ``observers`` — e.g. ``JsonlWriter(path)``, ``Patience(n)``.
    * ``executor`` — ``"process"`` (default, aiotune's pool), ``"thread"``,
      or a ``concurrent.futures.Executor`` you own (never shut down here),
      e.g. a Dask ``client.get_executor()`` or :class:`aiotune.DaskExecutor`.
    * ``trial_timeout`` — seconds a trial may run once started; it is then
      recorded ``timeout`` and its worker process killed.
    * ``trial_memory_limit`` — bytes of address space per worker process
      (Linux; ``executor="process"`` only).
    * ``retries`` — run a failed trial again up to this many times.
    * ``pruner`` — ``MedianPruner(...)`` or ``ASHA(...)``: stops hopeless
      trials from their ``trial.report(value, step)`` values.
    * ``resume`` — a journal to continue: its trials are not rerun.
    * ``initial`` — params to evaluate first (checked now: ``SpaceError``);
      on resume, those already in the journal are not rerun.
    * ``warm_start`` — journal path(s) or ``TuningResult``(s) of earlier
      studies: their complete trials inform the strategy, but are not rerun,
      counted or recorded here.
    * ``batch`` — for cheap sync objectives: trials per executor round trip
      (an int, or ``"auto"``: sized from the trials' durations to about
      50 ms per job). Each trial still reaches the observers and the journal
      on its own; a timeout or a dead worker fails only the trial it hit.
    """

    def __init__(
        self,
        objective: Objective,
        space: Space,
        *,
        strategy: StrategyLike | None = None,
        max_trials: int | None = None,
        concurrency: int | None = None,
        direction: Direction | Sequence[Direction] = "maximize",
        observers: Sequence[Any] = (),
        executor: ExecutorSpec | None = None,
        trial_timeout: float | None = None,
        trial_memory_limit: int | None = None,
        retries: int = 0,
        pruner: Pruner | None = None,
        resume: PathLike | None = None,
        initial: Sequence[Mapping[str, Any]] | None = None,
        warm_start: WarmSource | Sequence[WarmSource] | None = None,
        batch: BatchSpec | None = None,
        constraints: ConstraintsFunction | None = None,
    ) -> None:
        self._config: TunerConfig = make_config(
            objective,
            space,
            strategy=strategy,
            max_trials=max_trials,
            concurrency=concurrency,
            direction=direction,
            observers=observers,
            executor=executor,
            trial_timeout=trial_timeout,
            trial_memory_limit=trial_memory_limit,
            retries=retries,
            pruner=pruner,
            resume=resume,
            initial=initial,
            warm_start=warm_start,
            batch=batch,
            constraints=constraints,
        )
        self._study = Study._for(self._config.study, handle=self)
        self._running: _Running | None = None
        self._result: TuningResult | None = None

    # -- what observers and callers see (the StudyHandle protocol) -----------------------

    @property
    def space(self) -> Space:
        """The search space."""
        return self._study.space

    @property
    def direction(self) -> StudyDirection:
        """``"maximize"`` or ``"minimize"``, or a tuple of them for several objectives."""
        return self._study.direction

    @property
    def max_trials(self) -> int | None:
        """The study's trial budget (``None``: until the strategy or an observer stops it)."""
        return self._config.max_trials

    @property
    def strategy(self) -> object:
        """The strategy suggesting params."""
        return self._study.strategy

    @property
    def history(self) -> History:
        """The study's live record."""
        return self._study.history

    @property
    def result(self) -> TuningResult:
        """The study's result, once it has ended."""
        if self._result is None:
            raise TunerStateError("the study has not finished: its result is not ready")
        return self._result

    def stop(self, reason: str) -> None:
        """Launch no new trials; trials in flight finish. The first reason is kept."""
        self._study.stop(reason)

    def stop_after(self, delay: float, reason: str) -> None:
        """Call :meth:`stop` with ``reason`` in ``delay`` seconds, unless the study ends first."""
        self._study.stop_after(delay, reason)

    # -- running -------------------------------------------------------------------------

    async def run(self) -> TuningResult:
        """Run the study to its end and return its result."""
        await self._enter(streamed=False)  # as ``async with self: pass``, without stream()
        await self.__aexit__(None, None, None)
        return self.result

    async def stream(self) -> AsyncIterator[Trial]:
        """Yield each trial as it finishes (inside ``async with tuner``; one reader)."""
        if self._running is None:
            raise TunerStateError("stream() needs the tuner running: use 'async with tuner'")
        async for trial in self._running.receive:
            yield trial

    async def __aenter__(self) -> Tuner:
        return await self._enter(streamed=True)

    async def _enter(self, *, streamed: bool) -> Tuner:
        if self._running is not None:
            raise TunerStateError("a Tuner runs once; build a new one (resume= continues a study)")
        running = self._running = _Running(streamed=streamed)
        await running.task_group.__aenter__()
        running.task_group.start_soon(self._study_task, running)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        running = self._running
        assert running is not None
        if exc is not None:
            running.trials.cancel()
        try:
            suppressed = await running.task_group.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            raise _single(group) from None
        finally:
            running.receive.close()
        if running.error is not None and exc is None:
            raise running.error
        return suppressed

    async def _study_task(self, running: _Running) -> None:
        config = self._config
        try:
            if config.executor == "process" and not config.is_async:
                await anyio.to_thread.run_sync(_check_pickles, config.objective)
            await self._study._open()
            try:
                hurry = await self._run_trials(running)
            except BaseException as exc:
                running.send.close()
                await self._study._close(exc, hurry=True)
                raise
            running.send.close()  # every trial is in: stream() ends now, observers may lag
            await self._study._close(None, hurry=hurry)
        except Exception as exc:  # reaches the caller bare, never as a group
            error = _single(exc) if isinstance(exc, ExceptionGroup) else exc
            # The study's own error came from user code (a strategy, a critical observer)
            # or is a TuningError; anything else is a bug of aiotune's: say so.
            if error is not self._study._error and not isinstance(error, TuningError | OSError):
                logger.error("internal error in the study", exc_info=error)
            running.error = error
        finally:
            running.send.close()
            self._result = self._study._result

    async def _run_trials(self, running: _Running) -> bool:
        """Start the executor, run the trial slots; return whether the study was cut short."""
        config, study = self._config, self._study
        inbox = ReportInbox(
            asyncio.get_running_loop(),
            decide=None if config.study.pruner is None else study._decide,
            on_report=study._publish_report,
        )
        async with (
            executor_scope(
                config.executor, workers=config.concurrency, memory_limit=config.trial_memory_limit
            ) as executor,
            route_reports(executor, inbox) as route,
        ):
            plan = TrialPlan(
                objective=config.objective,
                takes_context=config.takes_context,
                executor=None if config.is_async else executor,
                inbox=inbox,
                timeout=config.trial_timeout,
                retries=config.retries,
                starts_reported=config.is_async or route.starts_reported,
                remote_channel=route.remote_channel,
            )
            if config.study.pruner is not None and not (config.is_async or route.reports_live):
                logger.warning(
                    "pruner=%r cannot stop trials on %r: its workers cannot report back while "
                    "they run (intermediate values are still recorded); use executor='process', "
                    "'thread' or a Dask executor",
                    config.study.pruner,
                    executor,
                )
            with running.trials:
                study._watch_running(running.trials)
                await self._launch(plan, running)
            return running.trials.cancel_called or study._error is not None

    async def _launch(self, plan: TrialPlan, running: _Running) -> None:
        """Run ``concurrency`` slots, each asking the study for params and running them.

        The slots take turns asking (one ask at a time, so trial numbers and a
        strategy's view of what is in flight stay exact); each then runs its
        trial, or its batch of trials, and tells the study before asking again.
        """
        pull_lock = anyio.Lock(fast_acquire=True)
        batch = None if self._config.is_async else self._config.batch
        async with anyio.create_task_group() as slots:
            for _ in range(self._config.concurrency):
                sizer = None if batch is None else BatchSizer(batch)
                slots.start_soon(self._slot, plan, running, pull_lock, sizer)

    async def _slot(
        self,
        plan: TrialPlan,
        running: _Running,
        pull_lock: anyio.Lock,
        sizer: BatchSizer | None,
    ) -> None:
        """One trial slot: ask, run, tell, until the study stops launching trials."""
        study, max_trials = self._study, self._config.max_trials
        history = study.history
        while True:
            items: list[tuple[int, Params]] = []
            async with pull_lock:
                left = (
                    None if max_trials is None else max_trials - len(history) - len(history.pending)
                )
                if left is not None and left <= 0:
                    study._stopped("max_trials reached")
                    return
                wanted = 1 if sizer is None else sizer.size(left)
                # stop() cancels this scope: the wait on the strategy ends, trials go on.
                with anyio.CancelScope() as pulling:
                    study._watch_pulling(pulling)
                    while len(items) < wanted and (pulled := await study._next()) is not None:
                        items.append(pulled)
                study._watch_pulling(None)
            if sizer is not None and items:
                await self._batch(plan, running, items, sizer)
            elif items:
                await self._trial(plan, running, *items[0])
            if len(items) < wanted:  # the study stopped, or the strategy is exhausted
                return

    async def _batch(
        self,
        plan: TrialPlan,
        running: _Running,
        items: list[tuple[int, Params]],
        sizer: BatchSizer,
    ) -> None:
        def tell(trial: Trial) -> None:
            sizer.observe(trial)
            self._tell(running, trial)

        try:
            await run_batch(plan, items, tell)
        except Exception as exc:  # an aiotune bug, or the executor closed: fail the study
            self._study._fail(exc)

    async def _trial(self, plan: TrialPlan, running: _Running, number: int, params: Params) -> None:
        try:
            trial = await run_trial(plan, number, params)
        except anyio.get_cancelled_exc_class():
            self._tell(running, cancelled_trial(number, params, plan.inbox))
            raise
        except Exception as exc:  # an aiotune bug: fail the study, not silently
            logger.exception("internal error running trial %d", number)
            self._study._fail(exc)
            return
        self._tell(running, trial)

    def _tell(self, running: _Running, trial: Trial) -> None:
        recorded = self._study._finish(trial)
        if running.streamed:
            running.send.send_nowait(recorded)

    def __repr__(self) -> str:
        objective = getattr(self._config.objective, "__qualname__", self._config.objective)
        return (
            f"Tuner({objective}, strategy={self.strategy!r}, max_trials={self._config.max_trials})"
        )


def _check_pickles(objective: Objective) -> None:
    try:
        pickle.dumps(objective)
    except Exception as exc:
        name = getattr(objective, "__qualname__", repr(objective))
        raise ObjectiveError(
            f"objective {name} cannot be pickled for the process pool ({exc}); define it as "
            f"a top-level function in a module, or pass executor='thread'"
        ) from exc


async def tune(
    objective: Objective,
    space: Space,
    *,
    strategy: StrategyLike | None = None,
    max_trials: int | None = None,
    concurrency: int | None = None,
    direction: Direction | Sequence[Direction] = "maximize",
    observers: Sequence[Any] = (),
    executor: ExecutorSpec | None = None,
    trial_timeout: float | None = None,
    trial_memory_limit: int | None = None,
    retries: int = 0,
    pruner: Pruner | None = None,
    resume: PathLike | None = None,
    initial: Sequence[Mapping[str, Any]] | None = None,
    warm_start: WarmSource | Sequence[WarmSource] | None = None,
    batch: BatchSpec | None = None,
    constraints: ConstraintsFunction | None = None,
) -> TuningResult:
    """Run a study and return its result: ``await Tuner(objective, space, ...).run()``.

    The arguments are :class:`Tuner`'s.
    """
    tuner = Tuner(
        objective,
        space,
        strategy=strategy,
        max_trials=max_trials,
        concurrency=concurrency,
        direction=direction,
        observers=observers,
        executor=executor,
        trial_timeout=trial_timeout,
        trial_memory_limit=trial_memory_limit,
        retries=retries,
        pruner=pruner,
        resume=resume,
        initial=initial,
        warm_start=warm_start,
        batch=batch,
        constraints=constraints,
    )
    return await tuner.run()


def run(
    objective: Objective,
    space: Space,
    *,
    strategy: StrategyLike | None = None,
    max_trials: int | None = None,
    concurrency: int | None = None,
    direction: Direction | Sequence[Direction] = "maximize",
    observers: Sequence[Any] = (),
    executor: ExecutorSpec | None = None,
    trial_timeout: float | None = None,
    trial_memory_limit: int | None = None,
    retries: int = 0,
    pruner: Pruner | None = None,
    resume: PathLike | None = None,
    initial: Sequence[Mapping[str, Any]] | None = None,
    warm_start: WarmSource | Sequence[WarmSource] | None = None,
    batch: BatchSpec | None = None,
    constraints: ConstraintsFunction | None = None,
) -> TuningResult:
    """The blocking form of :func:`tune`, for scripts without an event loop.

    The arguments are :class:`Tuner`'s. Ctrl-C cancels the study (in-flight
    trials are recorded ``cancelled``, worker processes are killed) and then
    raises ``KeyboardInterrupt``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise ConfigurationError(
            "run", "cannot be called from a running event loop; use 'await aiotune.tune(...)'"
        )
    tuner = Tuner(
        objective,
        space,
        strategy=strategy,
        max_trials=max_trials,
        concurrency=concurrency,
        direction=direction,
        observers=observers,
        executor=executor,
        trial_timeout=trial_timeout,
        trial_memory_limit=trial_memory_limit,
        retries=retries,
        pruner=pruner,
        resume=resume,
        initial=initial,
        warm_start=warm_start,
        batch=batch,
        constraints=constraints,
    )
    return run_blocking(tuner.run())


__all__ = ["Tuner", "run", "tune"]
