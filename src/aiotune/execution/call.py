"""The objective's evaluations, packaged to run anywhere: :class:`TrialCall`, :class:`BatchCall`.

A ``TrialCall`` is what the orchestrator hands to an executor (through
``loop.run_in_executor``) or awaits on the loop. It runs the objective,
catches whatever the objective does, and returns an :class:`Outcome` of
plain data, so only plain data ever crosses a process or machine boundary.
A ``BatchCall`` runs several of them in one job (see
:mod:`aiotune.execution.batch`). This module is what a worker process
needs to run trials: it imports neither anyio nor numpy.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, cast

from aiotune.errors import Pruned
from aiotune.execution.channel import (
    ReportChannel,
    exit_requested,
    request_worker_exit,
    worker_channel,
)
from aiotune.execution.context import RunningTrial
from aiotune.trial import ErrorInfo, Params, coerce_result


class Outcome(NamedTuple):
    """What one run of the objective came to.

    Exactly one holds: ``error`` is set (the objective raised or returned no
    valid score), ``pruned`` is true (``score`` is the last value reported, if
    any), or ``score`` is the finite result. ``scores`` holds every
    objective's score (``score`` is ``None`` when there are several) and
    ``constraints`` the values an objective returned in an ``aiotune.Outcome``.
    A named tuple: one crosses a pipe per trial, and a tuple is built,
    pickled and unpickled several times faster than a dataclass.
    """

    score: float | None
    error: ErrorInfo | None
    pruned: bool
    intermediate: tuple[tuple[int, float], ...]
    started_at: float
    finished_at: float
    worker: str
    scores: tuple[float, ...] = ()
    constraints: tuple[float, ...] | None = None


class _NoChannel:
    """Used where nothing connects the trial to the orchestrator: reports are only recorded."""

    def started(self, number: int, worker: str) -> None:
        pass

    def report(self, number: int, step: int, value: float) -> bool:
        return False


_NO_CHANNEL = _NoChannel()

_TOKEN_PREFIX = uuid.uuid4().hex  # with the pid and a counter: unique per call, and cheap
_tokens = itertools.count()
_token_start = f"{_TOKEN_PREFIX}-{os.getpid()}-"  # made again in a forked child


def _new_token_start() -> None:
    global _token_start
    _token_start = f"{_TOKEN_PREFIX}-{os.getpid()}-"


_worker_names: dict[int, tuple[threading.Thread, str]] = {}  # emptied in a forked child


def _worker_name() -> str:
    """``host:pid``, plus ``:thread`` off the main thread (cached per thread)."""
    thread = threading.current_thread()
    cached = _worker_names.get(thread.ident or 0)
    if cached is not None and cached[0] is thread:
        return cached[1]
    name = f"{socket.gethostname()}:{os.getpid()}"
    if thread is not threading.main_thread():
        name = f"{name}:{thread.name}"
    if len(_worker_names) > 1000:  # threads come and go
        _worker_names.clear()
    _worker_names[thread.ident or 0] = (thread, name)
    return name


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_worker_names.clear)
    os.register_at_fork(after_in_child=_new_token_start)


class TrialCall:
    """Run ``objective`` on ``params`` as trial ``number`` and return an :class:`Outcome`.

    ``announce_start`` sends ``started`` through the report channel (which
    starts the ``trial_timeout`` clock). ``inbox`` is the orchestrator's
    :class:`~aiotune.execution.inbox.ReportInbox`: used directly when the call
    runs in the orchestrator's process (loop or thread) and dropped when the
    call is pickled; a worker of aiotune's pool then uses its pipe channel
    (the pool delivers to the inbox it read off the call before sending it),
    and a ``remote_channel`` (picklable) serves executors that have neither.
    """

    __slots__ = (
        "announce_start",
        "inbox",
        "number",
        "objective",
        "params",
        "remote_channel",
        "takes_context",
        "token",
    )

    def __init__(
        self,
        objective: Callable[..., Any],
        params: Params,
        number: int,
        *,
        takes_context: bool,
        announce_start: bool = True,
        inbox: ReportChannel | None = None,
        remote_channel: ReportChannel | None = None,
    ) -> None:
        self.objective = objective
        self.params = params
        self.number = number
        self.takes_context = takes_context
        self.announce_start = announce_start
        self.inbox = inbox
        self.remote_channel = remote_channel
        self.token = f"{_token_start}{next(_tokens)}"  # see __dask_tokenize__

    @property
    def preload(self) -> str | None:
        """The module a worker needs to run this call (the objective's): a fork server
        preloads it (see :class:`~aiotune.execution.pool.WorkerPool`)."""
        return getattr(self.objective, "__module__", None)

    def __dask_tokenize__(self) -> tuple[str, int, str]:
        """Unique per call: Dask (``pure=True``) must never serve one attempt another's result."""
        return ("aiotune.TrialCall", self.number, self.token)

    def __reduce__(self) -> tuple[Any, ...]:
        # A flat tuple, rebuilt by one call: the cheapest form to pickle, one per trial.
        # The inbox lives in the orchestrator's process only.
        return (
            _rebuilt_call,
            (
                self.objective,
                self.params,
                self.number,
                self.takes_context,
                self.announce_start,
                self.remote_channel,
                self.token,
            ),
        )

    def _channel(self) -> ReportChannel:
        return self.inbox or worker_channel() or self.remote_channel or _NO_CHANNEL

    def _begin(self) -> tuple[RunningTrial, tuple[Any, ...], str, float]:
        worker = _worker_name()
        channel = self._channel()
        context = RunningTrial(self.number, self.params, channel)
        args = (self.params, context) if self.takes_context else (self.params,)
        if self.announce_start:  # only the timeout clock needs it: save the message otherwise
            channel.started(self.number, worker)
        return context, args, worker, time.time()

    def __call__(self) -> Outcome:
        """Run a synchronous objective (in a worker process or thread)."""
        context, args, worker, started_at = self._begin()
        try:
            value = self.objective(*args)
        except Pruned:
            return self._pruned(context, worker, started_at)
        except MemoryError as exc:
            request_worker_exit()  # the process may be in a bad state: the pool replaces it
            return self._failed(_memory_error(exc), context, worker, started_at)
        except BaseException as exc:
            return self._failed(ErrorInfo.from_exception(exc), context, worker, started_at)
        return self._finished(value, context, worker, started_at)

    async def run_async(self) -> Outcome:
        """Await an ``async def`` objective on the event loop (cancellation propagates)."""
        context, args, worker, started_at = self._begin()
        try:
            value = await cast(Awaitable[object], self.objective(*args))
        except Pruned:
            return self._pruned(context, worker, started_at)
        except Exception as exc:
            return self._failed(ErrorInfo.from_exception(exc), context, worker, started_at)
        return self._finished(value, context, worker, started_at)

    def _finished(
        self, value: object, context: RunningTrial, worker: str, started_at: float
    ) -> Outcome:
        result = coerce_result(value)
        if isinstance(result, str):
            return self._failed(ErrorInfo("InvalidScore", result), context, worker, started_at)
        scores, constraints = result
        score = scores[0] if len(scores) == 1 else None
        return self._outcome(score, None, False, context, worker, started_at, scores, constraints)

    def _pruned(self, context: RunningTrial, worker: str, started_at: float) -> Outcome:
        reported = context.intermediate
        last = reported[max(reported)] if reported else None
        return self._outcome(last, None, True, context, worker, started_at)

    def _failed(
        self, error: ErrorInfo, context: RunningTrial, worker: str, started_at: float
    ) -> Outcome:
        return self._outcome(None, error, False, context, worker, started_at)

    def _outcome(
        self,
        score: float | None,
        error: ErrorInfo | None,
        pruned: bool,
        context: RunningTrial,
        worker: str,
        started_at: float,
        scores: tuple[float, ...] = (),
        constraints: tuple[float, ...] | None = None,
    ) -> Outcome:
        return Outcome(
            score=score,
            error=error,
            pruned=pruned,
            intermediate=tuple(sorted(context.intermediate.items())),
            started_at=started_at,
            finished_at=time.time(),
            worker=worker,
            scores=scores,
            constraints=constraints,
        )

    def __repr__(self) -> str:
        name = getattr(self.objective, "__qualname__", repr(self.objective))
        return f"TrialCall({name}, number={self.number})"


def _rebuilt_call(
    objective: Callable[..., Any],
    params: Params,
    number: int,
    takes_context: bool,
    announce_start: bool,
    remote_channel: ReportChannel | None,
    token: str,
) -> TrialCall:
    """A :class:`TrialCall` unpickled (see ``TrialCall.__reduce__``)."""
    call = TrialCall.__new__(TrialCall)
    call.objective, call.params, call.number = objective, params, number
    call.takes_context, call.announce_start = takes_context, announce_start
    call.inbox, call.remote_channel, call.token = None, remote_channel, token
    return call


def _memory_error(exc: MemoryError) -> ErrorInfo:
    record = ErrorInfo.from_exception(exc)
    try:
        import resource

        limit, unlimited = resource.getrlimit(resource.RLIMIT_AS)[0], resource.RLIM_INFINITY
    except (ImportError, OSError, ValueError):  # pragma: no cover - not Linux
        return record
    if limit == unlimited:
        return record
    message = f"trial exceeded trial_memory_limit ({limit} bytes of address space)"
    return ErrorInfo("MemoryError", message, record.traceback)


Deliver = Callable[[int, Outcome], None]
"""Receives the outcome of item ``index`` of a batch, from any thread."""


class BatchCall:
    """Run several trials of one objective in turn in one executor job; stream each outcome.

    ``first`` is the first trial's :class:`TrialCall`; every trial runs as it
    does, with its own number and params from ``items`` (so the objective
    and the call's settings travel once, each trial as a pair). ``on_item``
    lives in the orchestrator's process only, like the first call's
    ``inbox`` (the study's, for the pool's fair queue and its reports): both
    are dropped when the batch is pickled. The job returns one entry per
    trial: its outcome, or ``None`` when it was already delivered (or never
    ran, after a ``MemoryError``).
    """

    __slots__ = ("first", "items", "on_item")

    def __init__(self, first: TrialCall, items: list[tuple[int, Params]]) -> None:
        self.first = first
        self.items = items
        self.on_item: Deliver | None = None

    @property
    def inbox(self) -> ReportChannel | None:
        """The study's inbox, in the orchestrator's process (see :class:`TrialCall`)."""
        return self.first.inbox

    @property
    def preload(self) -> str | None:
        """The module a worker needs (the objective's)."""
        return self.first.preload

    def call(self, index: int) -> TrialCall:
        """Trial ``index`` of the batch, as a call of its own."""
        number, params = self.items[index]
        first = self.first
        call = _rebuilt_call(
            first.objective,
            params,
            number,
            first.takes_context,
            first.announce_start,
            first.remote_channel,
            first.token,  # only a call of its own reaches Dask: this one stays in the batch
        )
        call.inbox = first.inbox
        return call

    def __dask_tokenize__(self) -> tuple[str, str]:
        """Unique per batch, like :meth:`TrialCall.__dask_tokenize__`."""
        return ("aiotune.BatchCall", self.first.token)

    def __reduce__(self) -> tuple[Any, ...]:
        return (BatchCall, (self.first, self.items))

    def __call__(self) -> list[Outcome | None]:
        deliver: Deliver | None = self.on_item  # in this process (a thread pool)
        if deliver is None:
            deliver = getattr(worker_channel(), "item_done", None)  # in a pool worker
        results: list[Outcome | None] = [None] * len(self.items)
        for index in range(len(self.items)):
            outcome = self.call(index)()
            if deliver is not None:
                deliver(index, outcome)
            else:
                results[index] = outcome
            if exit_requested():  # a MemoryError: this process may be in a bad state
                break
        return results

    def __repr__(self) -> str:
        return f"BatchCall({len(self.items)} trials)"
