"""Several trials per executor round trip, for cheap objectives: :func:`run_batch`.

A :class:`~aiotune.execution.call.BatchCall` carries several trials (the
first trial's call, then each trial's number and params) to one executor
job, which runs them one after the other. Each trial's
:class:`~aiotune.execution.call.Outcome` comes back as soon as it is known,
not with the batch: from a worker of aiotune's pool in chunks (the outcomes
of quick trials travel together, within 5 ms), in a thread by calling
``on_item`` directly; on any other executor with the job's result. So
observers and the journal still get trials one by one.

What befalls a batch befalls only the trials it hit:

* a trial that raises, returns no valid score or is pruned is recorded as
  such; the batch goes on with the next trial;
* a trial that runs over ``trial_timeout`` is recorded ``timeout``; its
  worker is killed (that is the only way to stop it), and the trials of the
  batch that had not run yet go to a new batch;
* a worker that dies while running a batch fails no trial outright: the
  outcomes of a batch travel in chunks, so which trial it was running is not
  known. Every trial without an outcome runs again alone, one per job, and
  the one whose worker dies there is failed with that error (a trial that
  kills its worker thus runs twice);
* a ``MemoryError`` under ``trial_memory_limit`` fails its trial and ends
  the batch there (the worker retires); the rest go to a new batch;
* a failed trial with ``retries`` left runs again in a later batch.

When the study is cancelled, every trial of the batch without a record yet
is recorded ``cancelled``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Literal

import anyio

from aiotune.errors import ConfigurationError
from aiotune.execution.call import BatchCall, Outcome, TrialCall
from aiotune.execution.runner import TrialPlan, cancelled_trial, submit_call, trial_record
from aiotune.trial import ErrorInfo, Params, Trial, TrialStatus


class _Item:
    __slots__ = ("attempt", "errors", "number", "params")

    def __init__(self, number: int, params: Params) -> None:
        self.number = number
        self.params = params
        self.attempt = 1
        self.errors: tuple[ErrorInfo, ...] = ()


async def run_batch(
    plan: TrialPlan, items: list[tuple[int, Params]], tell: Callable[[Trial], None]
) -> None:
    """Run ``items`` (trial number, params) in batch jobs; ``tell`` each record as it comes.

    Returns once every item has its record. On cancellation, the items
    without one are told ``cancelled``, then the cancellation propagates.
    """
    todo = [_Item(number, params) for number, params in items]
    told: set[int] = set()

    def record(item: _Item, trial: Trial) -> None:
        if trial.status is TrialStatus.FAILED and item.attempt <= plan.retries:
            assert trial.error is not None
            item.errors = (*item.errors, trial.error)
            item.attempt += 1
            todo.append(item)  # runs again in a later batch
            return
        told.add(item.number)
        tell(trial)

    alone: list[_Item] = []  # after a worker died mid-batch: these run one per job
    try:
        while todo or alone:
            if alone:
                batch = [alone.pop(0)]
            else:
                batch, todo[:] = list(todo), []
            leftover, died = await _run_once(plan, batch, record)
            if died:
                alone[:0] = leftover
            else:
                todo[:0] = leftover
    except anyio.get_cancelled_exc_class():
        for item in todo + alone:
            if item.number not in told:
                plan.inbox.watch(item.number)  # not in flight: nothing was kept
        for number, params in items:
            if number not in told:
                tell(cancelled_trial(number, params, plan.inbox))
        raise


async def _run_once(
    plan: TrialPlan, batch: list[_Item], record: Callable[[_Item, Trial], None]
) -> tuple[list[_Item], bool]:
    """One batch job; return the items that did not run, and whether its worker died
    with more than one of them left (they then run again one per job)."""
    loop = asyncio.get_running_loop()
    announce = plan.remote_channel is not None or (
        plan.timeout is not None and plan.starts_reported
    )
    first = TrialCall(
        plan.objective,
        batch[0].params,
        batch[0].number,
        takes_context=plan.takes_context,
        announce_start=announce,
        inbox=plan.inbox,
        remote_channel=plan.remote_channel,
    )
    job = BatchCall(first, [(item.number, item.params) for item in batch])
    changed = asyncio.Event()
    arrived: list[tuple[int, Outcome]] = []
    lock = threading.Lock()
    started: dict[int, float] = {}  # index -> when it started (loop clock)
    done = [False] * len(batch)

    def on_item(index: int, outcome: Outcome) -> None:  # any thread
        with lock:
            first = not arrived
            arrived.append((index, outcome))
        if first:
            loop.call_soon_threadsafe(changed.set)

    def on_started(index: int) -> Callable[[], None]:
        def mark() -> None:  # on the loop
            started[index] = loop.time()
            changed.set()

        return mark

    def drain() -> None:
        with lock:
            ready, arrived[:] = list(arrived), []
        for index, outcome in ready:
            if not done[index]:
                done[index] = True
                item = batch[index]
                record(item, _record(item, outcome, plan))

    if announce:
        for index, item in enumerate(batch):
            plan.inbox.watch(item.number, on_started(index))
    else:
        plan.inbox.watch_all(item.number for item in batch)
    job.on_item = on_item
    try:
        future = None if plan.executor is None else submit_call(plan.executor, job)
    except BaseException:
        for item in batch:
            plan.inbox.forget(item.number)
        raise
    if future is None:  # an async objective: the batch runs on the loop, one by one
        for index, item in enumerate(batch):
            done[index] = True
            record(item, _record(item, await job.call(index).run_async(), plan))
        return [], False
    future.add_done_callback(lambda _: changed.set())
    try:
        while not future.done():
            changed.clear()
            drain()
            if future.done():
                break
            deadline = _deadline(plan, started, done)
            with anyio.move_on_after(None if deadline is None else deadline - loop.time()):
                await changed.wait()
                continue
            late = _running(started, done)
            assert late is not None
            done[late] = True
            item = batch[late]
            message = f"trial ran over trial_timeout={plan.timeout} s and was stopped"
            error = ErrorInfo("TrialTimeout", message)
            record(item, _record(item, error, plan, timed_out=True))
            if future.cancel():  # killed its worker: the trials after it go to a new batch
                break
            # (a thread cannot be stopped: the batch runs on, and its later outcomes count)
    except BaseException:
        future.cancel()  # kills the worker running the batch
        drain()
        for index, item in enumerate(batch):
            if not done[index]:
                plan.inbox.forget(item.number)
        raise
    if future.cancelled():
        drain()
        return _not_run(plan, batch, done), False
    drain()
    try:
        results = future.result()
    except Exception as exc:  # the worker died running one of the trials without an outcome
        left = [i for i, d in enumerate(done) if not d]
        if len(left) > 1:
            return _not_run(plan, batch, done), True
        if left:
            done[left[0]] = True
            item = batch[left[0]]
            record(item, _record(item, ErrorInfo.from_exception(exc), plan))
        return [], False
    for index, result in enumerate(results):
        if result is not None and not done[index]:
            done[index] = True
            record(batch[index], _record(batch[index], result, plan))
    return _not_run(plan, batch, done), False


def _record(
    item: _Item, outcome: Outcome | ErrorInfo, plan: TrialPlan, *, timed_out: bool = False
) -> Trial:
    return trial_record(
        item.number,
        item.params,
        outcome,
        plan.inbox,
        item.attempt,
        item.errors,
        timed_out=timed_out,
    )


def _deadline(plan: TrialPlan, started: dict[int, float], done: list[bool]) -> float | None:
    """When the running trial of the batch runs out of time (loop clock); None: no clock."""
    if plan.timeout is None:
        return None
    running = _running(started, done)
    return None if running is None else started[running] + plan.timeout


def _running(started: dict[int, float], done: list[bool]) -> int | None:
    """The trial of the batch that has started and has no outcome yet, if any."""
    return next((i for i in sorted(started) if not done[i]), None)


def _not_run(plan: TrialPlan, batch: list[_Item], done: list[bool]) -> list[_Item]:
    left = [item for index, item in enumerate(batch) if not done[index]]
    for item in left:
        plan.inbox.forget(item.number)
    return left


BatchSpec = int | Literal["auto"]
"""``batch=`` of a study: trials per executor job, or ``"auto"``."""


class BatchSizer:
    """How many trials the next batch job of a study carries.

    A number is used as it is. ``"auto"`` starts with one trial per job and
    then sizes each job to about :attr:`TARGET` seconds of objective time,
    from a running mean of the trials' measured durations: cheap objectives
    get up to :attr:`LIMIT` trials per job, slow ones one (no batching).
    """

    TARGET = 0.05
    LIMIT = 256

    def __init__(self, spec: BatchSpec) -> None:
        self.auto = spec == "auto"
        self._fixed = 1 if spec == "auto" else int(spec)
        self._mean: float | None = None

    def size(self, remaining: int | None = None) -> int:
        """Trials for the next job (at most ``remaining``, when the study has a limit)."""
        if self.auto:
            if self._mean is None:
                wanted = 1
            else:
                wanted = max(1, min(self.LIMIT, int(self.TARGET / max(self._mean, 1e-7))))
        else:
            wanted = self._fixed
        return wanted if remaining is None else max(1, min(wanted, remaining))

    def observe(self, trial: Trial) -> None:
        """Learn from a finished trial's duration (only ``"auto"`` does)."""
        if self.auto and trial.duration is not None:
            if self._mean is None:
                self._mean = trial.duration
            else:
                self._mean += 0.1 * (trial.duration - self._mean)


def check_batch(batch: object, *, is_async: bool) -> BatchSpec | None:
    """``batch=`` checked: None (one trial per job), a positive int, or ``"auto"``."""
    if isinstance(batch, bool):
        raise ConfigurationError("batch", f"must be a positive int or 'auto', got {batch!r}")
    if batch is None or batch == 1:
        return None
    if is_async:
        raise ConfigurationError(
            "batch", "is for sync objectives run on an executor; an async def one runs on the loop"
        )
    if batch == "auto":
        return "auto"
    if not isinstance(batch, int) or batch < 1:
        raise ConfigurationError("batch", f"must be a positive int or 'auto', got {batch!r}")
    return batch
