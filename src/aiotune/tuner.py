"""The orchestrator: :class:`Tuner`, and the ``tune``/``run`` front doors.

One study, one task group. The launch loop pulls params from the strategy
(from this one task only) whenever a trial slot is free, starts a task per
trial, and each finished trial goes to the history, the observers' pumps and
the ``stream()`` of the caller. Nothing started here outlives ``run()``.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from aiotune.config import Objective, PathLike, StudyConfig, make_config
from aiotune.errors import (
    ConfigurationError,
    JournalError,
    ObjectiveError,
    SpaceError,
    StrategyError,
    TunerStateError,
    TuningError,
)
from aiotune.execution.dask import dask_link
from aiotune.execution.executors import ExecutorSpec, executor_scope, starts_reported
from aiotune.execution.hub import ReportHub
from aiotune.execution.runner import TrialPlan, cancelled_trial, run_trial
from aiotune.history import History
from aiotune.journal import read_journal
from aiotune.observers.fanout import Fanout
from aiotune.pruning import Pruner, PrunerState
from aiotune.space import Space
from aiotune.strategies import StrategyLike, suggest_function
from aiotune.trial import Direction, Params, Trial, TrialStatus, TuningResult

logger = logging.getLogger("aiotune")


class Tuner:
    """A study: tunes ``objective`` over ``space`` when run.

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
    * ``direction`` — ``"maximize"`` (default) or ``"minimize"``.
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
    """

    def __init__(
        self,
        objective: Objective,
        space: Space,
        *,
        strategy: StrategyLike | None = None,
        max_trials: int | None = None,
        concurrency: int | None = None,
        direction: Direction = "maximize",
        observers: Sequence[Any] = (),
        executor: ExecutorSpec | None = None,
        trial_timeout: float | None = None,
        trial_memory_limit: int | None = None,
        retries: int = 0,
        pruner: Pruner | None = None,
        resume: PathLike | None = None,
    ) -> None:
        self._config: StudyConfig = make_config(
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
        )
        self._history = History(self._config.direction)
        self._stop_reason: str | None = None
        self._error: BaseException | None = None
        self._result: TuningResult | None = None
        self._entered = False
        self._task_group: TaskGroup | None = None
        self._trials_scope: anyio.CancelScope | None = None
        self._waiting: anyio.CancelScope | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._fanout: Fanout | None = None
        self._stream_send: MemoryObjectSendStream[Trial] | None = None
        self._stream_receive: MemoryObjectReceiveStream[Trial] | None = None
        self._hub: ReportHub | None = None
        self._pruning: PrunerState | None = None

    # -- what observers and callers see --------------------------------------------------

    @property
    def space(self) -> Space:
        """The search space."""
        return self._config.space

    @property
    def direction(self) -> Direction:
        """``"maximize"`` or ``"minimize"``."""
        return self._config.direction

    @property
    def max_trials(self) -> int | None:
        """The study's trial budget (``None``: until the strategy or an observer stops it)."""
        return self._config.max_trials

    @property
    def strategy(self) -> object:
        """The strategy suggesting params."""
        return self._config.strategy

    @property
    def history(self) -> History:
        """The study's live record."""
        return self._history

    @property
    def result(self) -> TuningResult:
        """The study's result, once it has ended."""
        if self._result is None:
            raise TunerStateError("the study has not finished: its result is not ready")
        return self._result

    def stop(self, reason: str) -> None:
        """Launch no new trials; trials in flight finish. The first reason is kept."""
        if self._stop_reason is None:
            self._stop_reason = reason
            logger.info("stopping the study: %s", reason)
        if self._waiting is not None:
            self._waiting.cancel()

    def stop_after(self, delay: float, reason: str) -> None:
        """Call :meth:`stop` with ``reason`` in ``delay`` seconds, unless the study ends first."""
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(delay, self.stop, reason))

    # -- running -------------------------------------------------------------------------

    async def run(self) -> TuningResult:
        """Run the study to its end and return its result."""
        async with self:
            pass
        return self.result

    async def stream(self) -> AsyncIterator[Trial]:
        """Yield each trial as it finishes (inside ``async with tuner``; one reader)."""
        if self._stream_receive is None:
            raise TunerStateError("stream() needs the tuner running: use 'async with tuner'")
        async for trial in self._stream_receive:
            yield trial

    async def __aenter__(self) -> Tuner:
        if self._entered:
            raise TunerStateError("a Tuner runs once; build a new one (resume= continues a study)")
        self._entered = True
        self._stream_send, self._stream_receive = anyio.create_memory_object_stream[Trial](
            float("inf")
        )
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._study)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        if exc is not None and self._trials_scope is not None:
            self._trials_scope.cancel()
        try:
            suppressed = await self._task_group.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            raise _single(group) from None
        finally:
            if self._stream_receive is not None:
                self._stream_receive.close()
        if self._error is not None and exc is None:
            raise self._error
        return suppressed

    async def _study(self) -> None:
        assert self._stream_send is not None
        try:
            await self._run_study()
        except (TuningError, OSError) as exc:
            self._error = exc
        except Exception as exc:  # an aiotune bug: still reach the caller bare
            logger.exception("internal error in the study")
            self._error = exc
        finally:
            for timer in self._timers:
                timer.cancel()
            self._stream_send.close()

    async def _run_study(self) -> None:
        config = self._config
        if config.resume is not None:
            await self._load_resume(config.resume)
        if config.executor == "process" and not config.is_async:
            await anyio.to_thread.run_sync(_check_pickles, config.objective)
        pruning = None if config.pruner is None else config.pruner.bind(self.direction)
        if pruning is not None and self._history.trials:  # a resumed study: warm start
            await anyio.to_thread.run_sync(_warm_start, pruning, self._history.trials)
        hub = ReportHub(
            asyncio.get_running_loop(),
            decide=None if pruning is None else pruning.report,
            on_report=self._on_report,
        )
        self._hub, self._pruning = hub, pruning
        fanout = self._fanout = Fanout(config.observers, self, self._fail)
        async with (
            executor_scope(
                config.executor, workers=config.concurrency, memory_limit=config.trial_memory_limit
            ) as executor,
            dask_link(executor, hub) as link,
        ):
            plan = TrialPlan(
                objective=config.objective,
                takes_context=config.takes_context,
                executor=None if config.is_async else executor,
                hub=hub,
                timeout=config.trial_timeout,
                retries=config.retries,
                starts_reported=config.is_async or starts_reported(executor) or link is not None,
                remote_transport=None if link is None else link.remote,
            )
            if pruning is not None and not plan.starts_reported:
                logger.warning(
                    "pruner=%r cannot stop trials on %r: its workers cannot report back while "
                    "they run (intermediate values are still recorded); use executor='process', "
                    "'thread' or a Dask executor",
                    config.pruner,
                    executor,
                )
            hurry = True
            async with anyio.create_task_group() as pumps:
                await fanout.start(pumps)
                try:
                    if self._error is None:  # else the journal could not start: no trial runs
                        with anyio.CancelScope() as self._trials_scope:
                            await self._launch(plan)
                        hurry = self._error is not None or self._trials_scope.cancel_called
                finally:
                    assert self._stream_send is not None
                    self._stream_send.close()  # every trial is in: stream() ends now
                    fanout.close(self._make_result(fanout), hurry=hurry)
        if self._error is not None:
            raise self._error
        self._result = self._make_result(fanout)

    async def _load_resume(self, path: PathLike) -> None:
        journal = await anyio.to_thread.run_sync(read_journal, path)
        if journal.space.fingerprint != self.space.fingerprint:
            differences = "; ".join(self.space.diff(journal.space)) or "definitions differ"
            raise JournalError(path, None, f"cannot resume a different space: {differences}")
        if journal.direction != self.direction:
            raise JournalError(
                path, None, f"cannot resume a {journal.direction} study as {self.direction}"
            )
        resumed = [t for t in journal.trials if t.status is not TrialStatus.CANCELLED]
        # A big journal takes a while to index: do it off the loop.
        self._history = await anyio.to_thread.run_sync(History, self.direction, resumed)
        logger.info("resuming %s: %d finished trials loaded", path, len(resumed))

    async def _launch(self, plan: TrialPlan) -> None:
        config, history = self._config, self._history
        slots = asyncio.Semaphore(config.concurrency)
        generator = suggest_function(config.strategy)(config.space, history)
        async with _closing(generator), anyio.create_task_group() as trials:
            # stop() cancels this scope: launching ends wherever it waits (for a free
            # slot, or on a strategy waiting for results); trials in flight go on.
            with anyio.CancelScope() as self._waiting:
                try:
                    while self._stop_reason is None:
                        if config.max_trials is not None and (
                            len(history) + len(history.pending) >= config.max_trials
                        ):
                            self._stop_reason = "max_trials reached"
                            break
                        await slots.acquire()
                        params = await self._next_params(generator)
                        if params is None or self._stop_reason is not None:
                            break
                        number = history.next_number
                        history.add_pending(number, params)
                        trials.start_soon(self._trial, plan, number, params, slots)
                except Exception as exc:  # a bad strategy: end the study with its error, bare
                    self._fail(exc)
            self._waiting = None

    async def _next_params(self, generator: AsyncIterator[Params]) -> Params | None:
        """The strategy's next params, validated; ``None`` when it is exhausted."""
        try:
            params = await anext(generator)
        except StopAsyncIteration:
            self._stop_reason = self._stop_reason or "strategy exhausted"
            return None
        try:
            return self.space.validate(params)
        except Exception as exc:
            problem = str(exc) if isinstance(exc, SpaceError) else "not a params dict"
            raise StrategyError(
                f"strategy {_name_of(self.strategy)} yielded invalid params {params!r}: {problem}"
            ) from exc

    async def _trial(
        self, plan: TrialPlan, number: int, params: Params, slots: asyncio.Semaphore
    ) -> None:
        try:
            trial = await run_trial(plan, number, params)
        except anyio.get_cancelled_exc_class():
            self._finish(cancelled_trial(number, params, plan.hub))
            raise
        except Exception as exc:  # an aiotune bug: fail the study, not silently
            self._fail(exc)
            return
        finally:
            slots.release()  # the launch loop wakes only at its next await: after _finish
        self._finish(trial)

    def _finish(self, trial: Trial) -> None:
        if self._pruning is not None:
            assert self._hub is not None
            self._hub.call_locked(self._pruning.finish, trial)
        self._history.record(trial)
        assert self._fanout is not None
        assert self._stream_send is not None
        self._fanout.publish_trial(trial)
        self._stream_send.send_nowait(trial)

    def _on_report(self, number: int, step: int, value: float) -> None:
        if self._fanout is not None:
            self._fanout.publish_report(number, step, value)

    def _fail(self, error: BaseException) -> None:
        """End the study with ``error`` (the first one wins): in-flight trials are cancelled."""
        if self._error is None:
            self._error = error
        if self._trials_scope is not None:
            self._trials_scope.cancel()
        if self._waiting is not None:
            self._waiting.cancel()

    def _make_result(self, fanout: Fanout) -> TuningResult:
        trials = tuple(sorted(self._history.trials, key=lambda trial: trial.number))
        return TuningResult(
            trials=trials,
            direction=self.direction,
            stop_reason=self._stop_reason,
            observer_errors=tuple(fanout.failures),
        )

    def __repr__(self) -> str:
        objective = getattr(self._config.objective, "__qualname__", self._config.objective)
        return (
            f"Tuner({objective}, strategy={self.strategy!r}, max_trials={self._config.max_trials})"
        )


def _name_of(strategy: object) -> str:
    return getattr(strategy, "__qualname__", None) or repr(strategy)


@asynccontextmanager
async def _closing(iterator: AsyncIterator[Params]) -> AsyncIterator[None]:
    """Like ``contextlib.aclosing``, for any async iterator (``aclose`` is optional)."""
    try:
        yield
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _warm_start(pruning: PrunerState, trials: Iterable[Trial]) -> None:
    """Tell a fresh pruner state the trials of a resumed journal (off the loop: it may be long)."""
    for trial in trials:
        pruning.finish(trial)


def _check_pickles(objective: Objective) -> None:
    try:
        pickle.dumps(objective)
    except Exception as exc:
        name = getattr(objective, "__qualname__", repr(objective))
        raise ObjectiveError(
            f"objective {name} cannot be pickled for the process pool ({exc}); define it as "
            f"a top-level function in a module, or pass executor='thread'"
        ) from exc


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error inside ``group`` (nested groups flattened), or the group itself."""
    leaves: list[BaseException] = []

    def collect(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                collect(inner)
        else:
            leaves.append(error)

    collect(group)
    return leaves[0] if len(leaves) == 1 else group


async def tune(objective: Objective, space: Space, **options: Any) -> TuningResult:
    """Run a study and return its result: ``await Tuner(objective, space, **options).run()``."""
    return await Tuner(objective, space, **options).run()


def run(objective: Objective, space: Space, **options: Any) -> TuningResult:
    """The blocking form of :func:`tune`, for scripts without an event loop.

    Ctrl-C cancels the study (in-flight trials are recorded ``cancelled``,
    worker processes are killed) and then raises ``KeyboardInterrupt``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(tune(objective, space, **options))
    raise ConfigurationError(
        "run", "cannot be called from a running event loop; use 'await aiotune.tune(...)'"
    )


__all__ = ["Tuner", "run", "tune"]
