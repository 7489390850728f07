"""Concurrent, isolated delivery of a study's events to its observers.

One unbounded queue and one pump task per observer: a slow observer only
lets its own backlog grow, never stalls trials or the others.
Pumps run shielded, so every trial published before the study ends (even by
cancellation) reaches every observer; a cancelled study gives them a short
deadline to drain.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from aiotune.observers.base import StudyHandle
from aiotune.trial import ErrorInfo, ObserverFailure, Trial, TuningResult

logger = logging.getLogger("aiotune")

DRAIN_DEADLINE = 10.0
"""Seconds observers get to take their backlog after a study is cancelled or fails."""

_Event = tuple[str, Any]


class _Queue:
    """One observer's backlog: events are put without blocking, on the loop, and
    taken all at once (a queue per trial cost more than the rest of its fan-out)."""

    __slots__ = ("_events", "_wakeup", "closed")

    def __init__(self) -> None:
        self._events: deque[_Event] = deque()
        self._wakeup: anyio.Event | None = None
        self.closed = False

    def put(self, event: _Event) -> None:
        """Queue ``event``; dropped once the queue is closed."""
        if not self.closed:
            self._events.append(event)
            self._wake()

    def close(self, *, drop: bool = False) -> None:
        """No more events; with ``drop``, the backlog is thrown away too."""
        self.closed = True
        if drop:
            self._events.clear()
        self._wake()

    async def take(self) -> list[_Event] | None:
        """Every event queued (waiting for one), or ``None`` once closed and drained."""
        await anyio.lowlevel.checkpoint()
        while not self._events:
            if self.closed:
                return None
            self._wakeup = anyio.Event()
            await self._wakeup.wait()
        events = list(self._events)
        self._events.clear()
        return events

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None


class _Pump:
    def __init__(self, observer: Any) -> None:
        self.observer = observer
        self.queue = _Queue()
        self.scope = anyio.CancelScope(shield=True)
        self.critical = bool(getattr(observer, "critical", False))
        self.detached = False
        self.started = not hasattr(observer, "on_start")


class Fanout:
    """Deliver trials, reports and the final result to observers, each in its own task.

    ``on_critical`` is called with the exception of a ``critical`` observer
    (the journal) that failed; other failures are logged and listed in
    :attr:`failures`, and the observer is detached.
    """

    def __init__(
        self,
        observers: Sequence[Any],
        handle: StudyHandle,
        on_critical: Callable[[BaseException], None],
    ) -> None:
        self._handle = handle
        self._on_critical = on_critical
        self._pumps = [_Pump(observer) for observer in observers]
        self._result: TuningResult | None = None
        self.failures: list[ObserverFailure] = []

    async def start(self, task_group: TaskGroup) -> None:
        """Await every ``on_start`` (concurrently), then start the pumps in ``task_group``.

        A critical observer whose ``on_start`` fails raises here, before any trial runs.
        Cancelled while others still start, the observers that did start get
        their pumps all the same, so :meth:`close` reaches their ``on_finish``
        (the journal releases its lock there).
        """
        try:
            async with anyio.create_task_group() as starting:
                for pump in self._pumps:
                    if not pump.started:
                        starting.start_soon(self._start_one, pump)
        finally:
            for pump in self._pumps:
                if pump.started and not pump.detached:
                    task_group.start_soon(self._run, pump)
                else:  # its on_start failed or never ended: it gets nothing more
                    pump.queue.close(drop=True)

    async def _start_one(self, pump: _Pump) -> None:
        try:
            await pump.observer.on_start(self._handle)
        except Exception as exc:
            self._detach(pump, "on_start", exc)
        else:
            pump.started = True

    def publish_trial(self, trial: Trial) -> None:
        """Queue a finished trial for every attached observer (never blocks)."""
        self._publish(("trial", trial))

    def publish_report(self, number: int, step: int, value: float) -> None:
        """Queue an intermediate report for the observers that have ``on_report``."""
        self._publish(("report", (number, step, value)))

    def _publish(self, event: _Event) -> None:
        for pump in self._pumps:
            pump.queue.put(event)  # dropped if detached, or already closed

    def close(self, result: TuningResult, *, hurry: bool) -> None:
        """No more events: pumps deliver their backlog, then ``on_finish(result)``.

        With ``hurry`` (the study was cancelled or failed), they get
        :data:`DRAIN_DEADLINE` seconds to do it.
        """
        self._result = result
        for pump in self._pumps:
            pump.queue.close()
            if hurry:
                pump.scope.deadline = anyio.current_time() + DRAIN_DEADLINE

    async def _run(self, pump: _Pump) -> None:
        observer = pump.observer
        batches = hasattr(observer, "on_trials")
        reports = hasattr(observer, "on_report")
        hook = "on_trial"
        with pump.scope:
            try:
                while (events := await pump.queue.take()) is not None:
                    first = next((i for i, e in enumerate(events) if e[0] == "trial"), None)
                    if batches and first is not None:
                        # The reports before the first trial; then every trial in one
                        # call, and after it the reports that were queued among them.
                        trials = [payload for kind, payload in events if kind == "trial"]
                        later = [e for e in events[first:] if e[0] == "report"]
                        events = events[:first]
                    for kind, payload in events:
                        if kind == "trial":
                            hook = "on_trial"
                            await observer.on_trial(payload, self._handle)
                        elif reports:
                            hook = "on_report"
                            await observer.on_report(*payload)
                    if batches and first is not None:
                        hook = "on_trials"
                        await observer.on_trials(trials, self._handle)
                        for _, payload in later if reports else ():
                            hook = "on_report"
                            await observer.on_report(*payload)
                if hasattr(observer, "on_finish") and self._result is not None:
                    hook = "on_finish"
                    await observer.on_finish(self._result)
            except Exception as exc:
                self._detach(pump, hook, exc)
        if pump.scope.cancelled_caught:
            logger.warning("observer %r did not drain within %s s", observer, DRAIN_DEADLINE)

    def _detach(self, pump: _Pump, hook: str, exc: Exception) -> None:
        pump.detached = True
        pump.queue.close(drop=True)
        if pump.critical:
            self._on_critical(exc)
            return
        logger.error("observer %r failed in %s and was detached", pump.observer, hook, exc_info=exc)
        self.failures.append(
            ObserverFailure(repr(pump.observer), hook, ErrorInfo.from_exception(exc))
        )
