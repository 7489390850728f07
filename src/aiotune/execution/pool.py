"""aiotune's own process pool: a :class:`concurrent.futures.Executor` that can kill one job.

:class:`WorkerPool` is driven like any executor (``loop.run_in_executor``),
with the powers the standard :class:`~concurrent.futures.ProcessPoolExecutor`
lacks:

* ``future.cancel()`` on a *running* job SIGKILLs the process running it and
  returns True; the pool starts a fresh worker when one is next needed;
* a worker that dies under a job (crash, ``os._exit``, OOM kill) fails only
  that job, with :class:`WorkerDied`; the others carry on;
* a job's intermediate reports reach its inbox in the parent: before a job
  is sent, the pool reads ``fn.inbox`` (any
  :class:`~aiotune.execution.channel.ReportChannel`, usually the study's
  :class:`~aiotune.execution.inbox.ReportInbox`), and forwards the worker's
  ``started``/``report`` messages to it;
* each worker can run under an address-space limit (``memory_limit``).

One daemon thread per pool, started by the first ``submit``, owns every
worker: it starts them lazily (spawn context: they inherit ``sys.path`` and
the working directory *as they are when the worker starts*), pickles jobs,
and waits with :func:`multiprocessing.connection.wait` on every worker's pipe,
every process sentinel and a wake-up pipe. ``submit`` and ``cancel`` only
queue a request and wake it, so neither ever blocks the event loop.

Errors a job's future can hold besides the job's own exception::

    WorkerDied           the worker process died while running the job
    └── WorkerStartError the worker died or hung before it was ready (or could not be started)
    RemoteError          stand-in for a job's exception that does not pickle
    BrokenExecutor       (stdlib) the pool's management thread failed

A job's exception arrives with ``__cause__`` set to a :class:`RemoteTraceback`
whose ``text`` is the traceback formatted in the worker.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from aiotune.errors import ConfigurationError
from aiotune.execution._manager import REAP_TIMEOUT, Manager, State, live_managers
from aiotune.execution.pool_errors import (
    RemoteError,
    RemoteTraceback,
    WorkerDied,
    WorkerStartError,
)

__all__ = [
    "PoolStatistics",
    "RemoteError",
    "RemoteTraceback",
    "WorkerDied",
    "WorkerPool",
    "WorkerStartError",
]

_T = TypeVar("_T")
_P = ParamSpec("_P")


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A snapshot of a :class:`WorkerPool`.

    ``workers_alive`` counts processes started and not yet reaped (starting,
    idle, busy or exiting); ``busy`` those running a job; ``queued`` jobs
    waiting for a worker; ``processes_started`` every process ever started;
    ``workers_died`` those that died on their own (crashed under a job, died
    idle, or never became ready), not those the pool killed or retired.
    """

    max_workers: int
    workers_alive: int
    busy: int
    queued: int
    processes_started: int
    workers_died: int


class WorkerPool(Executor):
    """A process pool for trials: kill one job, survive dead workers, carry reports.

    ``max_workers`` processes at most, started lazily by ``submit``;
    ``memory_limit`` (bytes) caps each worker's address space
    (``RLIMIT_AS``), so a job allocating past it gets ``MemoryError``;
    ``mp_context`` is the :mod:`multiprocessing` start method.

    ``submit`` never blocks. Its futures extend ``cancel()`` to running jobs:
    the worker is SIGKILLed (asynchronously, by the management thread) and a
    fresh one started when next needed. ``shutdown()`` blocks when ``wait``
    is true: call it from a thread, not the event loop. ``terminate()``
    kills every worker at once and never blocks. A pool dropped without
    ``shutdown()`` shuts down like ``shutdown(wait=False)`` when collected;
    at interpreter exit every pool still running is terminated.
    """

    def __init__(
        self, max_workers: int, *, memory_limit: int | None = None, mp_context: str = "spawn"
    ) -> None:
        if max_workers < 1:
            raise ConfigurationError("max_workers", f"must be at least 1, not {max_workers}")
        if memory_limit is not None and memory_limit <= 0:
            raise ConfigurationError(
                "memory_limit", f"must be a positive number of bytes, not {memory_limit}"
            )
        try:
            context = multiprocessing.get_context(mp_context)
        except ValueError as exc:
            raise ConfigurationError("mp_context", str(exc)) from None
        self._manager = Manager(max_workers, memory_limit, context)
        # An abandoned pool finishes its queued jobs, then its workers exit.
        self._finalizer = weakref.finalize(self, self._manager.shutdown, False)
        self._finalizer.atexit = False  # at exit, _terminate_all() kills instead

    @property
    def max_workers(self) -> int:
        return self._manager.max_workers

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Queue ``fn(*args, **kwargs)`` for a worker (``fn`` and its arguments must pickle)."""
        return self._manager.submit(fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new jobs; let queued (unless ``cancel_futures``) and running jobs finish.

        Idle workers are told to exit (and killed if they have not within 2 s).
        With ``wait``, block until every worker is reaped and the management
        thread has ended.
        """
        self._manager.shutdown(wait, cancel_futures=cancel_futures)

    def terminate(self) -> None:
        """Kill every worker now and cancel every job, queued or running. Never blocks."""
        self._manager.terminate()

    def statistics(self) -> PoolStatistics:
        m = self._manager
        workers = list(m.workers)
        with m.lock:
            queued = sum(not job.future.cancelled() for job in m.pending)
        return PoolStatistics(
            max_workers=m.max_workers,
            workers_alive=len(workers),
            busy=sum(w.state is State.BUSY for w in workers),
            queued=queued,
            processes_started=m.processes_started,
            workers_died=m.workers_died,
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<aiotune.WorkerPool max_workers={s.max_workers} alive={s.workers_alive}"
            f" busy={s.busy} queued={s.queued}>"
        )


def _terminate_all() -> None:
    """At interpreter exit, kill the workers of every pool still running (before
    :mod:`multiprocessing` joins its children, which would wait for running jobs)."""
    managers = list(live_managers)
    for manager in managers:
        manager.terminate()
    deadline = time.monotonic() + REAP_TIMEOUT
    for manager in managers:
        if manager.thread is not None:
            manager.thread.join(max(0.0, deadline - time.monotonic()))


atexit.register(_terminate_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=live_managers.clear)
