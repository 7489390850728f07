"""Run one trial to its record: attempts, retries, the timeout clock, any executor."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from aiotune.errors import PoolClosedError
from aiotune.execution.call import Outcome, TrialCall
from aiotune.execution.channel import ReportChannel
from aiotune.execution.inbox import ReportInbox
from aiotune.trial import ErrorInfo, Params, Trial, TrialStatus

if TYPE_CHECKING:
    from aiotune.execution.pool import WorkerPool

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class TrialPlan:
    """How every trial of a study runs.

    ``executor`` is ``None`` for an ``async def`` objective (awaited on the
    loop). ``starts_reported`` says whether calls on this executor announce
    their start through a report channel (aiotune's pool, threads, the loop, a
    relayed executor such as Dask); when they don't, the ``timeout`` clock
    starts at submission. ``remote_channel`` travels with each call to an
    executor whose workers have no pipe to the orchestrator (its relay's
    channel).
    """

    objective: Callable[..., Any]
    takes_context: bool
    executor: Executor | None
    inbox: ReportInbox
    timeout: float | None = None
    retries: int = 0
    starts_reported: bool = True
    remote_channel: ReportChannel | None = None


async def run_trial(plan: TrialPlan, number: int, params: Params) -> Trial:
    """Run trial ``number`` (with its retries) and return its record.

    Cancellation propagates; the caller records the trial as cancelled, using
    :func:`cancelled_trial` with what the inbox kept.
    """
    errors: list[ErrorInfo] = []
    attempt = 1
    while True:
        trial = await _attempt(plan, number, params, attempt, tuple(errors))
        if trial.status is not TrialStatus.FAILED or attempt > plan.retries:
            return trial
        assert trial.error is not None
        errors.append(trial.error)
        attempt += 1


def submit_call(executor: Executor, call: Callable[[], _T]) -> asyncio.Future[_T]:
    """Hand ``call`` to ``executor``; an executor that refuses work ends the study.

    aiotune's pool gets the call through
    :meth:`~aiotune.execution.pool.WorkerPool.submit_async`, so the loop
    reads the result from the worker's pipe itself. Any other executor gets
    what ``loop.run_in_executor`` does, with one callback per side instead of
    its general future chaining (this runs once per trial). Either way,
    cancelling the returned future cancels the call (aiotune's pool then
    kills the worker).

    A shut-down executor raises ``RuntimeError`` (the standard pools) or
    :class:`~aiotune.errors.PoolClosedError` (aiotune's): that is raised, as
    a ``PoolClosedError``, rather than recorded as one failed trial after
    another.
    """
    try:
        if isinstance(executor, _worker_pool()):
            return executor.submit_async(call)
        running = executor.submit(call)
    except PoolClosedError:
        raise
    except RuntimeError as exc:
        raise PoolClosedError(f"the executor {executor!r} refused the trial: {exc}") from exc
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[_T] = loop.create_future()

    def settle(done: Future[_T]) -> None:  # on the loop
        if waiter.done():
            return
        if done.cancelled():
            waiter.cancel()
        elif (error := done.exception()) is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(done.result())

    def arrived(done: Future[_T]) -> None:  # in whichever thread settled ``running``
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, done)

    def abandoned(waiter: asyncio.Future[_T]) -> None:
        if waiter.cancelled():
            running.cancel()

    waiter.add_done_callback(abandoned)
    running.add_done_callback(arrived)
    return waiter


@functools.cache
def _worker_pool() -> type[WorkerPool]:
    """The pool's class, imported on first use (worker processes never need it)."""
    from aiotune.execution.pool import WorkerPool

    return WorkerPool


class _NoClock:
    """Stands in for the timeout's cancel scope when there is no timeout (it costs nothing)."""

    def __enter__(self) -> _NoClock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_CLOCK = _NoClock()


def cancelled_trial(number: int, params: Params, inbox: ReportInbox, *, attempts: int = 1) -> Trial:
    """The record of trial ``number`` cancelled in flight (with what it reported)."""
    started_at, worker, intermediate = inbox.forget(number)
    now = time.time()
    return Trial(
        number=number,
        params=params,
        status=TrialStatus.CANCELLED,
        intermediate=intermediate,
        error=ErrorInfo("Cancelled", "the study was cancelled while this trial ran"),
        attempts=attempts,
        started_at=started_at,
        finished_at=now,
        duration=None if started_at is None else now - started_at,
        worker=worker,
    )


async def _attempt(
    plan: TrialPlan,
    number: int,
    params: Params,
    attempt: int,
    previous_errors: tuple[ErrorInfo, ...],
) -> Trial:
    call = TrialCall(
        plan.objective,
        params,
        number,
        takes_context=plan.takes_context,
        # a remote channel always announces: that is how a Dask re-run after a lost worker
        # is recognised (and refused); it also starts the timeout clock
        announce_start=plan.remote_channel is not None
        or (plan.timeout is not None and plan.starts_reported),
        inbox=plan.inbox,
        remote_channel=plan.remote_channel,
    )
    outcome: Outcome | ErrorInfo
    # The timeout clock is a cancel scope whose deadline is set when the trial starts.
    clock = anyio.CancelScope() if plan.timeout is not None else None
    with clock if clock is not None else _NO_CLOCK:
        if clock is not None and plan.timeout is not None:
            timeout = plan.timeout

            def start_clock() -> None:
                clock.deadline = anyio.current_time() + timeout

            if plan.starts_reported:
                plan.inbox.watch(number, start_clock)
            else:
                plan.inbox.watch(number)
                start_clock()
        else:
            plan.inbox.watch(number)
        try:
            running = None if plan.executor is None else submit_call(plan.executor, call)
        except PoolClosedError:  # not this trial's failure: the study cannot go on
            plan.inbox.forget(number)
            raise
        try:
            outcome = await (call.run_async() if running is None else running)
        except Exception as exc:  # the executor failed the call (e.g. the worker died)
            outcome = ErrorInfo.from_exception(exc)
    timed_out = clock is not None and clock.cancelled_caught
    # On cancellation of the study (not of ``clock``) we never get here: the
    # caller records the trial with ``cancelled_trial``, which reads the inbox.
    if timed_out:
        message = f"trial ran over trial_timeout={plan.timeout} s and was stopped"
        outcome = ErrorInfo("TrialTimeout", message)
    return trial_record(
        number, params, outcome, plan.inbox, attempt, previous_errors, timed_out=timed_out
    )


def trial_record(
    number: int,
    params: Params,
    outcome: Outcome | ErrorInfo,
    inbox: ReportInbox,
    attempt: int = 1,
    previous_errors: tuple[ErrorInfo, ...] = (),
    *,
    timed_out: bool = False,
) -> Trial:
    """The record of one attempt of trial ``number`` that ended with ``outcome``.

    ``outcome`` is what the objective came to, or the error that stopped it
    from the outside (the worker died, the timeout ran out: ``timed_out``).
    Stops watching ``number`` in ``inbox`` (which kept when and where the
    trial started and what it reported, for the second case).
    """
    started_at, worker, intermediate = inbox.forget(number)
    if isinstance(outcome, ErrorInfo):
        now = time.time()
        return Trial(
            number=number,
            params=params,
            status=TrialStatus.TIMEOUT if timed_out else TrialStatus.FAILED,
            intermediate=intermediate,
            error=outcome,
            previous_errors=previous_errors,
            attempts=attempt,
            started_at=started_at,
            finished_at=now,
            duration=None if started_at is None else now - started_at,
            worker=worker,
        )
    if outcome.error is not None:
        status = TrialStatus.FAILED
    elif outcome.pruned:
        status = TrialStatus.PRUNED
    else:
        status = TrialStatus.COMPLETE
    return Trial(
        number=number,
        params=params,
        status=status,
        score=outcome.score,
        intermediate=dict(outcome.intermediate),
        error=outcome.error,
        previous_errors=previous_errors,
        attempts=attempt,
        started_at=outcome.started_at,
        finished_at=outcome.finished_at,
        duration=max(0.0, outcome.finished_at - outcome.started_at),
        worker=outcome.worker,
        scores=outcome.scores,
        constraints=outcome.constraints,
    )
