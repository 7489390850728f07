"""The parent's side of the pool: :class:`WorkerPool` and :class:`PoolStatistics`."""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from types import TracebackType
from typing import ParamSpec, TypeVar

from aiotune._checks import check_int, optional_int
from aiotune.errors import ConfigurationError
from aiotune.execution.pool._manager import REAP_TIMEOUT, Manager, State, live_managers

__all__ = ["PoolStatistics", "WorkerPool"]

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
    """A process pool for trials, which many studies can share: ``executor=pool``.

    ``workers`` processes at most (default ``os.cpu_count()``), started
    lazily by ``submit``; ``memory_limit`` (bytes) caps each worker's address
    space (``RLIMIT_AS``, Linux), so a job allocating past it gets
    ``MemoryError``; ``mp_context`` is the :mod:`multiprocessing` start method.
    ``"spawn"`` (the default) starts each worker as a fresh interpreter that
    imports the objective's module: a few hundred ms. ``"forkserver"`` keeps
    spawn's safety (no fork of this, threaded, process) and starts workers in
    a few ms once the fork server runs: before its first worker, aiotune asks
    the fork server to preload its worker loop and the first job's module
    (:func:`multiprocessing.set_forkserver_preload`, once per process; a fork
    server already running keeps its own), and to run the main script's top
    level once, which every worker would otherwise run again (start threads
    and open connections under ``if __name__ == "__main__":``, as spawn wants
    anyway: the fork server must stay single-threaded). The fork server
    imports them with this process's ``sys.path`` (so a module next to the
    main script, or on a path the script added, is preloaded too); a module it
    cannot import is loaded by each worker instead. The fork server is a child of this process
    and the workers its children.

    Use it as a context manager, sync or async (``async with
    at.WorkerPool(2) as pool``), and pass it to any number of concurrent
    studies: each study's ``concurrency`` caps its share, queued trials of
    different studies are served in turn, killing one trial's worker
    (timeout, cancellation, memory) touches no other trial, and a dead worker
    is replaced for everyone. aiotune never shuts down a pool it was given.

    ``submit`` never blocks. Its futures extend ``cancel()`` to running jobs:
    the worker is SIGKILLed (by the management thread) and a fresh one
    started when next needed. ``shutdown()`` finishes queued and running jobs
    and refuses new ones (:class:`aiotune.PoolClosedError`); it blocks when
    ``wait`` is true (``async with`` runs it in a thread). ``terminate()``
    kills every worker at once, fails every queued or running job with
    ``PoolClosedError`` and never blocks. A pool dropped without
    ``shutdown()`` shuts down like ``shutdown(wait=False)`` when collected;
    at interpreter exit every pool still running is terminated.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        memory_limit: int | None = None,
        mp_context: str = "spawn",
    ) -> None:
        if workers is None:
            workers = os.cpu_count() or 1
        workers = check_int("workers", workers, 1)
        memory_limit = optional_int("memory_limit", memory_limit, 1)
        try:
            context = multiprocessing.get_context(mp_context)
        except ValueError as exc:
            raise ConfigurationError("mp_context", str(exc)) from None
        self._manager = Manager(workers, memory_limit, context)
        # An abandoned pool finishes its queued jobs, then its workers exit.
        self._finalizer = weakref.finalize(self, self._manager.shutdown, False)
        self._finalizer.atexit = False  # at exit, _terminate_all() kills instead

    @property
    def workers(self) -> int:
        """The most worker processes this pool runs at once."""
        return self._manager.max_workers

    @property
    def max_workers(self) -> int:
        """The same as :attr:`workers` (the name ``concurrent.futures`` pools use)."""
        return self._manager.max_workers

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Queue ``fn(*args, **kwargs)`` for a worker (``fn`` and its arguments must pickle)."""
        return self._manager.submit(fn, args, kwargs)

    def submit_async(
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> asyncio.Future[_T]:
        """From a coroutine: run ``fn(*args, **kwargs)`` on a worker; await the result.

        Returns a future of the running event loop. When a worker is idle the
        job goes straight to it and the loop reads the result from the
        worker's pipe itself (no hop through the pool's thread), which is what
        ``loop.run_in_executor(pool, ...)`` cannot do. Cancelling the future
        cancels the job, killing its worker if it runs. The loop must keep
        running (or be closed) until the job ends; never block it waiting on
        the job.
        """
        return self._manager.submit_async(fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new jobs; let queued (unless ``cancel_futures``) and running jobs finish.

        Idle workers are told to exit (and killed if they have not within 2 s).
        With ``wait``, block until every worker is reaped and the management
        thread has ended (called on an event loop's thread, it first takes
        back the jobs :meth:`submit_async` lent to that loop).
        """
        self._manager.shutdown(wait, cancel_futures=cancel_futures)

    def terminate(self) -> None:
        """Kill every worker now; fail every queued or running job with PoolClosedError.

        Never blocks; later ``submit`` calls raise ``PoolClosedError``.
        """
        self._manager.terminate()

    async def __aenter__(self) -> WorkerPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down in a thread (the loop runs on); if cancelled meanwhile, terminate."""
        import anyio  # here, not at the top: worker processes import this package

        try:
            await anyio.to_thread.run_sync(self.shutdown, abandon_on_cancel=True)
        except BaseException:
            self.terminate()
            raise

    def statistics(self) -> PoolStatistics:
        """A snapshot of the pool's workers and queue."""
        m = self._manager
        workers = list(m.workers)
        with m.lock:
            queued = sum(job.future is not None and not job.future.cancelled() for job in m.pending)
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
            f"<aiotune.WorkerPool workers={s.max_workers} alive={s.workers_alive}"
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
