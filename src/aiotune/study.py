"""Ask/tell: :class:`Study`, the one owner of a study's state.

A study is the history of its trials, the strategy that suggests the next
params, the observers that see each finished trial (the journal among them),
the pruner's state and, when resumed, the journal it continues. :class:`Study`
owns all of it and nothing else: it never runs an objective. Trials are
evaluated anywhere (a training job, an A/B test, a person) and the results
are told back::

    async with at.Study(space, strategy=at.Bayesian(seed=0)) as study:
        while (trial := await study.ask()) is not None:
            await study.tell(trial.number, evaluate(trial.params))

:class:`~aiotune.Tuner` is a Study plus an executor and trial slots: they
ask, run each trial, and tell the study each finished record, through the
same code paths.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio

from aiotune._checks import check_finite, check_int
from aiotune._config import PathLike, StudyConfig, make_study_config
from aiotune.errors import (
    ConfigurationError,
    JournalError,
    SpaceError,
    StrategyError,
    TunerStateError,
    TuningError,
)
from aiotune.history import History
from aiotune.journal import read_for_resume, read_journal
from aiotune.observers._fanout import Fanout
from aiotune.observers.base import StudyHandle
from aiotune.pruning import Pruner, PrunerState
from aiotune.space import Space
from aiotune.strategies import StrategyLike, suggest_function, yields_valid_params
from aiotune.strategies.primed import WarmSource, fitting_trials, primed
from aiotune.trial import (
    ConstraintsFunction,
    Direction,
    ErrorInfo,
    Outcome,
    Params,
    StudyDirection,
    Trial,
    TrialStatus,
    TuningResult,
    coerce_result,
    settle,
)

logger = logging.getLogger("aiotune")

CLOSE_DEADLINE = 10.0
"""Seconds a strategy's generator gets to close when the study ends."""


@dataclass(frozen=True, slots=True)
class AskedTrial:
    """A trial handed out by :meth:`Study.ask`: evaluate ``params``, then tell ``number``."""

    number: int
    params: Params


class _InFlight:
    """A trial asked through :meth:`Study.ask` and not yet told."""

    __slots__ = ("intermediate", "params", "started_at")

    def __init__(self, params: Params) -> None:
        self.params = params
        self.started_at = time.time()
        self.intermediate: dict[int, float] = {}


class _Live:
    """A study's running state: made when it opens, dropped when it closes.

    ``pulling`` is the cancel scope around whatever waits on the strategy (one
    ``ask``, or a Tuner slot's turn at asking): :meth:`Study.stop` cancels it.
    ``running`` is the scope of trials being evaluated by a Tuner: a failure
    of the study cancels it too.
    """

    __slots__ = (
        "fanout",
        "generator",
        "prune_lock",
        "pruning",
        "pull_lock",
        "pulling",
        "pumps",
        "running",
        "timers",
        "trusted",
    )

    def __init__(
        self, generator: AsyncIterator[Params], pruning: PrunerState | None, fanout: Fanout
    ) -> None:
        self.generator = generator
        self.pruning = pruning
        self.fanout = fanout
        self.pumps = anyio.create_task_group()
        self.pull_lock = anyio.Lock()
        self.prune_lock = threading.Lock()  # reports arrive from worker threads too
        self.pulling: anyio.CancelScope | None = None
        self.running: anyio.CancelScope | None = None
        self.timers: list[anyio.CancelScope] = []
        self.trusted = False  # the strategy's params need no check (a built-in one)


class Study:
    """A study driven by ask and tell: trials are evaluated by the caller, anywhere.

    ``async with Study(space, ...) as study`` opens it (loads ``resume``,
    starts the observers, the journal first among them); then::

        trial = await study.ask()               # AskedTrial(.number, .params), or None
        stop = study.report(trial.number, 0.7, step=1)  # True: the pruner says stop
        await study.tell(trial.number, 0.93)    # or error="..." or pruned=True
        study.result                            # a TuningResult snapshot, any time

    ``ask`` is pending-aware: the strategy knows every asked, untold trial is
    in flight, so two asks in a row never hand out the same point of a
    model-based strategy. It returns ``None`` once the study has stopped (the
    strategy is exhausted, or :meth:`stop` was called). Telling a number that
    was never asked, or was told already, raises :class:`~aiotune.TunerStateError`.
    Leaving the block records every trial still untold as ``cancelled`` (not
    written to the journal: a study resumed from it runs them again) and
    waits for the observers to take every trial.

    Arguments, all but ``space`` keyword-only: ``strategy`` (default
    ``Bayesian()``), ``direction`` (``"maximize"`` or ``"minimize"``, or a
    sequence of them for several objectives), ``observers``, ``pruner``,
    ``resume`` (a journal to continue), ``initial`` (params to hand out
    first), ``warm_start`` (earlier studies to learn from) and
    ``constraints`` (``fn(params, score) -> floats``, feasible when all are
    ``<= 0``), as for :class:`~aiotune.Tuner`. A study runs once.
    """

    def __init__(
        self,
        space: Space,
        *,
        strategy: StrategyLike | None = None,
        direction: Direction | Sequence[Direction] = "maximize",
        observers: Sequence[Any] = (),
        pruner: Pruner | None = None,
        resume: PathLike | None = None,
        initial: Sequence[Mapping[str, Any]] | None = None,
        warm_start: WarmSource | Sequence[WarmSource] | None = None,
        constraints: ConstraintsFunction | None = None,
    ) -> None:
        config = make_study_config(
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
        self._setup(config, self)

    @classmethod
    def _for(cls, config: StudyConfig, handle: StudyHandle) -> Study:
        """The study of a Tuner: observers are handed ``handle`` (the Tuner) instead of it."""
        study = cls.__new__(cls)
        study._setup(config, handle)
        return study

    def _setup(self, config: StudyConfig, handle: StudyHandle) -> None:
        self._config = config
        # Weak: a Tuner holds its study, and a study would hold itself, so a strong
        # reference makes a cycle that keeps every trial alive until a full collection.
        self._handle_ref = weakref.ref(handle)
        self._history = History(config.direction)
        self._stop_reason: str | None = None
        self._error: BaseException | None = None
        self._opened = False
        self._live: _Live | None = None
        self._in_flight: dict[int, _InFlight] = {}
        self._result: TuningResult | None = None

    def _handle(self) -> StudyHandle:
        """Who observers see: this study, or the Tuner running it (alive while it opens)."""
        handle = self._handle_ref()
        assert handle is not None, "a study opens only while its handle runs it"
        return handle

    # -- what observers and callers see (the StudyHandle protocol) -----------------------

    @property
    def space(self) -> Space:
        """The search space."""
        return self._config.space

    @property
    def direction(self) -> StudyDirection:
        """``"maximize"`` or ``"minimize"``, or a tuple of them for several objectives."""
        return self._config.direction

    @property
    def strategy(self) -> object:
        """The strategy suggesting params."""
        return self._config.strategy

    @property
    def history(self) -> History:
        """The study's live record: finished trials and the params in flight."""
        return self._history

    @property
    def stop_reason(self) -> str | None:
        """Why the study stopped, or ``None`` while it goes on."""
        return self._stop_reason

    @property
    def result(self) -> TuningResult:
        """The study so far (or, once closed, in the end) as a :class:`~aiotune.TuningResult`."""
        if self._result is not None:
            return self._result
        failures = () if self._live is None else tuple(self._live.fanout.failures)
        return _result_of(self._history, self.direction, self._stop_reason, failures)

    def stop(self, reason: str) -> None:
        """Hand out no more trials (``ask`` returns ``None``). The first reason is kept."""
        if self._stop_reason is None:
            self._stop_reason = reason
            logger.info("stopping the study: %s", reason)
        if self._live is not None and self._live.pulling is not None:
            self._live.pulling.cancel()

    def stop_after(self, delay: float, reason: str) -> None:
        """Call :meth:`stop` with ``reason`` in ``delay`` seconds, unless the study ends first."""
        live = self._require_open("stop_after")
        scope = anyio.CancelScope()
        live.timers.append(scope)
        live.pumps.start_soon(self._stop_later, scope, delay, reason)

    async def _stop_later(self, scope: anyio.CancelScope, delay: float, reason: str) -> None:
        with scope:
            await anyio.sleep(delay)
            self.stop(reason)

    # -- ask, report, tell ---------------------------------------------------------------

    async def ask(self) -> AskedTrial | None:
        """The next trial to evaluate, or ``None`` once the study has stopped.

        Raises the study's error if it failed (e.g. its journal cannot be
        written), and :class:`~aiotune.StrategyError` for a strategy that
        yields invalid params (which fails the study).
        """
        live = self._require_open("ask")
        pulled = None  # stays None when stop() cancels the wait on the strategy
        async with live.pull_lock:  # the strategy is pulled from one task at a time
            with anyio.CancelScope() as live.pulling:
                pulled = await self._next()
            live.pulling = None
        if self._error is not None:
            raise self._error
        if pulled is None:
            return None
        number, params = pulled
        self._in_flight[number] = _InFlight(params)
        return AskedTrial(number, params)

    def report(self, number: int, value: float, step: int | None = None) -> bool:
        """Record trial ``number``'s intermediate ``value`` at ``step``; True means prune it.

        ``step`` defaults to the step after the last one reported. Observers
        get the report (``on_report``); the pruner decides. A pruned trial is
        then told with ``tell(number, pruned=True)``. Like every method of a
        study, call it on the event loop's thread (from another thread, go
        through ``anyio.from_thread.run_sync``).
        """
        entry = self._asked(number, "report")
        value = check_finite("value", value)
        if step is None:
            step = max(entry.intermediate, default=-1) + 1
        step = check_int("step", step, 0)
        entry.intermediate[step] = value
        prune = self._decide(number, step, value)
        self._publish_report(number, step, value)
        return prune

    async def tell(
        self,
        number: int,
        score: float | Sequence[float] | Outcome | None = None,
        *,
        error: str | BaseException | None = None,
        pruned: bool = False,
    ) -> Trial:
        """Record how trial ``number`` ended, and return its record.

        ``tell(n, score)``: it completed (a score that is not a finite number
        makes it ``failed``, with a message that says so; ``score`` may be a
        sequence, one per objective, or an :class:`~aiotune.Outcome`); ``tell(n,
        error="...")`` or ``error=exception``: it failed; ``tell(n,
        pruned=True)``: it was pruned (its score is ``score`` if given, else
        the last value reported).
        """
        entry = self._asked(number, "tell")
        given = (score is not None) + (error is not None) + pruned
        if given == 0 or (error is not None and given > 1):
            raise ConfigurationError("tell", "must get one of a score, error= or pruned=True")
        del self._in_flight[number]
        finished_at = time.time()
        status = TrialStatus.COMPLETE
        trial_error: ErrorInfo | None = None
        final: float | None = None
        scores: tuple[float, ...] = ()
        constraints: tuple[float, ...] | None = None
        if error is not None:
            status = TrialStatus.FAILED
            trial_error = (
                ErrorInfo.from_exception(error)
                if isinstance(error, BaseException)
                else ErrorInfo("Error", str(error))
            )
        elif pruned:
            status = TrialStatus.PRUNED
            reported = entry.intermediate
            final = reported[max(reported)] if reported else None
            if score is not None:
                final = check_finite("score", score)
        else:
            coerced = coerce_result(score)
            if isinstance(coerced, str):
                status = TrialStatus.FAILED
                message = coerced.replace("objective returned", "told", 1)
                trial_error = ErrorInfo("InvalidScore", message)
            else:
                scores, constraints = coerced
        trial = Trial(
            number=number,
            params=entry.params,
            status=status,
            score=final,
            scores=scores,
            constraints=constraints,
            intermediate=entry.intermediate,
            error=trial_error,
            started_at=entry.started_at,
            finished_at=finished_at,
            duration=max(0.0, finished_at - entry.started_at),
        )
        trial = self._finish(trial)
        await anyio.lowlevel.checkpoint()  # let the observers take it before the next ask
        return trial

    def _asked(self, number: int, what: str) -> _InFlight:
        self._require_open(what)
        entry = self._in_flight.get(number)
        if entry is not None:
            return entry
        if number in self._history:
            raise TunerStateError(f"trial {number} was already told")
        if number in self._history.pending:
            raise TunerStateError(f"trial {number} is run by the Tuner, not told")
        raise TunerStateError(f"trial {number} was never asked")

    # -- the engine's side: what a Tuner (and ask/tell) go through ----------------------

    async def _next(self) -> tuple[int, Params] | None:
        """Pull the strategy's next params and mark them in flight; ``None`` when stopped."""
        live = self._live
        assert live is not None
        if self._stop_reason is not None or self._error is not None:
            return None
        try:
            params = await anext(live.generator)
        except StopAsyncIteration:
            self._stopped("strategy exhausted")
            return None
        except Exception as exc:  # a broken strategy: the study fails with its error, bare
            self._fail(exc)
            return None
        if self._stop_reason is not None:
            return None
        try:
            if not live.trusted:
                params = self.space.validate(params)
        except Exception as exc:
            problem = str(exc) if isinstance(exc, SpaceError) else "not a params dict"
            name = getattr(self.strategy, "__qualname__", None) or repr(self.strategy)
            self._fail(
                StrategyError(f"strategy {name} yielded invalid params {params!r}: {problem}")
            )
            return None
        number = self._history.next_number
        self._history.add_pending(number, params)
        return number, params

    def _stopped(self, reason: str) -> None:
        """The study ran its course (``reason``): like :meth:`stop`, with nothing to wake."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def _watch_pulling(self, scope: anyio.CancelScope | None) -> None:
        """``scope`` waits on the strategy: :meth:`stop` and a failure cancel it."""
        assert self._live is not None
        self._live.pulling = scope

    def _watch_running(self, scope: anyio.CancelScope | None) -> None:
        """``scope`` runs trials (a Tuner's): a failure of the study cancels it."""
        assert self._live is not None
        self._live.running = scope

    def _finish(self, trial: Trial) -> Trial:
        """Record a finished trial: pruner state, history, observers (never blocks).

        Returns the trial as recorded: checked by :func:`~aiotune.trial.settle`.
        """
        live = self._live
        assert live is not None
        trial = settle(trial, self.direction, self._config.constraints)
        if live.pruning is not None:
            with live.prune_lock:
                try:
                    live.pruning.finish(trial)
                except Exception:
                    logger.exception("pruner failed on finished trial %d; ignored", trial.number)
        self._history.record(trial)
        live.fanout.publish_trial(trial)
        return trial

    def _decide(self, number: int, step: int, value: float) -> bool:
        """The pruner's decision on one report (thread-safe); an error counts as "go on"."""
        live = self._live
        if live is None or live.pruning is None:
            return False
        with live.prune_lock:
            try:
                return bool(live.pruning.report(number, step, value))
            except Exception:
                logger.exception("pruner failed on trial %d step %d; not pruning", number, step)
                return False

    def _publish_report(self, number: int, step: int, value: float) -> None:
        """Hand an intermediate value to the observers that have ``on_report``."""
        if self._live is not None:
            self._live.fanout.publish_report(number, step, value)

    def _fail(self, error: BaseException) -> None:
        """End the study with ``error`` (the first one wins): nothing more is asked or run."""
        if self._error is None:
            self._error = error
        live = self._live
        if live is not None:
            for scope in (live.pulling, live.running):
                if scope is not None:
                    scope.cancel()

    def _require_open(self, what: str) -> _Live:
        if self._live is None:
            raise TunerStateError(f"{what}() needs the study open: use 'async with study'")
        return self._live

    # -- opening and closing -------------------------------------------------------------

    async def __aenter__(self) -> Study:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close(exc, hurry=exc is not None)

    async def _open(self) -> None:
        """Read the journals, bind the pruner, start the strategy and the observers.

        Every error is a bare exception (a ``TuningError`` for aiotune's own);
        nothing started here is left running when it raises.
        """
        if self._opened:
            raise TunerStateError("a study runs once; build a new one (resume= continues it)")
        self._opened = True
        config = self._config
        warm: tuple[Trial, ...] = ()
        if config.warm_start:
            warm = await anyio.to_thread.run_sync(
                _read_warm_start, config.warm_start, self.space, self.direction
            )
        if config.resume is not None:
            # The handle (a Tuner's, or this study) is who the journal's writer will be.
            self._history = await _load_resume(
                config.resume, self._handle(), self.space, self.direction
            )
        pruning = None if config.pruner is None else _bind(config.pruner, self.direction)
        if pruning is not None and self._history.trials:  # a resumed study: warm start
            await anyio.to_thread.run_sync(_warm_start, pruning, self._history.trials)
        generator = self._start_strategy(primed(config.strategy, config.initial, warm))
        live = _Live(generator, pruning, Fanout(config.observers, self._handle(), self._fail))
        live.trusted = yields_valid_params(config.strategy)
        await live.pumps.__aenter__()
        self._live = live
        try:
            await live.fanout.start(live.pumps)
        except BaseException as exc:
            await self._close(exc, hurry=True)
            raise
        if self._error is not None:  # a critical observer (the journal) could not start
            await self._close(None, hurry=True)

    def _start_strategy(self, strategy: StrategyLike) -> AsyncIterator[Params]:
        try:
            return suggest_function(strategy)(self.space, self._history)
        except TuningError:
            raise
        except Exception as exc:
            name = getattr(self.strategy, "__qualname__", None) or repr(self.strategy)
            raise StrategyError(f"strategy {name} could not start: {exc!r}") from exc

    async def _close(self, exc: BaseException | None, *, hurry: bool) -> None:
        """Cancel untold trials, close the strategy, let observers drain, keep the result.

        Raises the study's error when ``exc`` is ``None``; with ``exc``
        (something went wrong in the block) returns for the caller to re-raise it.
        """
        live = self._live
        assert live is not None
        try:
            for number in list(self._in_flight):
                self._finish(self._cancelled(number))
            for scope in live.timers:
                scope.cancel()
            await self._close_strategy(live.generator)
            hurry = hurry or self._error is not None
            live.fanout.close(self.result, hurry=hurry)
        finally:
            try:
                exc_info = (
                    (None, None, None) if exc is None else (type(exc), exc, exc.__traceback__)
                )
                await live.pumps.__aexit__(*exc_info)
            except BaseExceptionGroup as group:
                raise _single(group) from None
            finally:
                self._result = self.result  # observers' failures while draining included
                self._live = None
        if exc is None and self._error is not None:
            raise self._error

    async def _close_strategy(self, generator: AsyncIterator[Params]) -> None:
        aclose = getattr(generator, "aclose", None)
        if aclose is None:
            return
        with anyio.move_on_after(CLOSE_DEADLINE, shield=True):
            try:
                await aclose()
            except Exception as exc:
                self._fail(exc)

    def _cancelled(self, number: int) -> Trial:
        entry = self._in_flight.pop(number)
        now = time.time()
        return Trial(
            number=number,
            params=entry.params,
            status=TrialStatus.CANCELLED,
            intermediate=entry.intermediate,
            error=ErrorInfo("Cancelled", "the study ended before this trial was told"),
            started_at=entry.started_at,
            finished_at=now,
            duration=max(0.0, now - entry.started_at),
        )

    def __repr__(self) -> str:
        return f"Study(strategy={self.strategy!r}, direction={self.direction!r})"


def _result_of(
    history: History,
    direction: StudyDirection,
    stop_reason: str | None,
    failures: tuple[Any, ...],
) -> TuningResult:
    return TuningResult(
        trials=tuple(sorted(history.trials, key=lambda trial: trial.number)),
        direction=direction,
        stop_reason=stop_reason,
        observer_errors=failures,
    )


async def _load_resume(
    path: PathLike, writer: object, space: Space, direction: StudyDirection
) -> History:
    journal = await read_for_resume(path, writer)  # refused while another study writes it
    if journal.space.fingerprint != space.fingerprint:
        differences = "; ".join(space.diff(journal.space)) or "definitions differ"
        raise JournalError(path, None, f"cannot resume a different space: {differences}")
    if journal.direction != direction:
        raise JournalError(path, None, f"cannot resume a {journal.direction} study as {direction}")
    resumed = [t for t in journal.trials if t.status is not TrialStatus.CANCELLED]
    # A big journal takes a while to index: do it off the loop.
    history = await anyio.to_thread.run_sync(History, direction, resumed)
    logger.info("resuming %s: %d finished trials loaded", path, len(resumed))
    return history


def _read_warm_start(
    sources: Sequence[WarmSource], space: Space, direction: StudyDirection
) -> tuple[Trial, ...]:
    """The warm-start trials that fit ``space``, journals read here (in a worker thread)."""
    studies: list[tuple[StudyDirection, Sequence[Trial]]] = []
    for source in sources:
        if isinstance(source, TuningResult):
            studies.append((source.direction, source.trials))
        else:
            journal = read_journal(source)
            studies.append((journal.direction, journal.trials))
    return fitting_trials(space, direction, studies)


def _bind(pruner: Pruner, direction: StudyDirection) -> PrunerState:
    assert isinstance(direction, str)  # _config refuses a pruner for several objectives
    try:
        return pruner.bind(direction)
    except TuningError:
        raise
    except Exception as exc:
        raise ConfigurationError("pruner", f"could not start: {exc!r}") from exc


def _warm_start(pruning: PrunerState, trials: Iterable[Trial]) -> None:
    """Tell a fresh pruner state the trials of a resumed journal (off the loop: it may be long)."""
    for trial in trials:
        pruning.finish(trial)


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


__all__ = ["AskedTrial", "Study"]
