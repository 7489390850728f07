"""The orchestrator's end of every report channel: :class:`ReportInbox`."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

logger = logging.getLogger("aiotune")

Decide = Callable[[int, int, float], bool]
"""A pruning decision: (trial number, step, value) -> stop the trial?"""


class _Watch:
    __slots__ = ("intermediate", "on_started", "started_at", "worker")

    def __init__(self, on_started: Callable[[], None] | None) -> None:
        self.on_started = on_started
        self.started_at: float | None = None
        self.worker: str | None = None
        self.intermediate: dict[int, float] = {}


class ReportInbox:
    """Receives ``started`` and ``report`` from running trials, from any thread.

    Every :class:`~aiotune.execution.channel.ReportChannel` ends here, and
    the inbox is one itself (trials on the loop or in a thread call it
    directly). It keeps what each watched trial reported (so a trial that
    times out or is cancelled keeps its intermediate values), answers pruning
    decisions at once in the calling thread (a worker's report costs one pipe
    round trip, never a hop through the event loop), and hands ``started``
    and each report to the event loop for the orchestrator and the observers.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        decide: Decide | None = None,
        on_report: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._decide = decide
        self._on_report = on_report
        self._lock = threading.Lock()
        self._watches: dict[int, _Watch | None] = {}  # None: watched, nothing heard yet

    def watch(self, number: int, on_started: Callable[[], None] | None = None) -> None:
        """Keep trial ``number``'s reports; call ``on_started`` on the loop when it starts."""
        with self._lock:
            self._watches[number] = None if on_started is None else _Watch(on_started)

    def watch_all(self, numbers: Iterable[int]) -> None:
        """:meth:`watch` each of ``numbers``, with no ``on_started``."""
        with self._lock:
            self._watches.update(dict.fromkeys(numbers))

    def forget(self, number: int) -> tuple[float | None, str | None, dict[int, float]]:
        """Stop watching ``number``; return when and where it started and what it reported."""
        with self._lock:
            watch = self._watches.pop(number, None)
        if watch is None:
            return None, None, {}
        return watch.started_at, watch.worker, watch.intermediate

    def _watch(self, number: int) -> _Watch | None:
        """Trial ``number``'s watch (made on first use), or None if it is not watched.
        Call with the lock held."""
        watch = self._watches.get(number)
        if watch is None and number in self._watches:
            # Most trials never start a clock or report: their watch is made only if they do.
            watch = self._watches[number] = _Watch(None)
        return watch

    def started(self, number: int, worker: str) -> None:
        """Trial ``number`` began on ``worker`` (thread-safe)."""
        with self._lock:
            watch = self._watch(number)
            if watch is None:
                return
            watch.started_at, watch.worker = time.time(), worker
            callback = watch.on_started
        if callback is not None:
            self._in_loop(callback)

    def report(self, number: int, step: int, value: float) -> bool:
        """Record a report and return whether the trial should be pruned (thread-safe)."""
        with self._lock:
            watch = self._watch(number)
            if watch is None:  # the trial already ended (cancelled or timed out)
                return True
            watch.intermediate[step] = value
            try:
                prune = self._decide(number, step, value) if self._decide else False
            except Exception:
                logger.exception("pruner failed on trial %d step %d; not pruning", number, step)
                prune = False
        if self._on_report is not None:
            self._in_loop(self._on_report, number, step, value)
        return prune

    def _in_loop(self, callback: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            callback(*args)
            return
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the study is over
            pass
