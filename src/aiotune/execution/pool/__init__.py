"""aiotune's own process pool, :class:`WorkerPool`: a ``concurrent.futures.Executor`` for trials.

It is driven like any executor (``loop.run_in_executor``), or awaited directly
(``await pool.submit_async(fn, ...)``), with the powers a tuner needs and the
standard pool lacks:

* ``future.cancel()`` on a *running* job SIGKILLs the one process running it
  and returns True (that is how ``trial_timeout`` stops a trial); the pool
  starts a fresh worker when one is next needed, for everyone;
* a worker that dies under a job (crash, ``os._exit``, OOM kill) fails only
  that job, with :class:`WorkerDied`; the others carry on;
* a job's intermediate reports reach its inbox in the parent: before a job
  is sent, the pool reads ``fn.inbox`` (any
  :class:`~aiotune.execution.channel.ReportChannel`, usually the study's
  :class:`~aiotune.execution.inbox.ReportInbox`), and forwards the worker's
  ``started``/``report`` messages to it, answering each report with the
  pruner's decision;
* many studies can share one pool: it never runs more than ``workers``
  processes, and queued jobs wait in one queue per inbox (per study), served
  in turn, so no study starves behind another's long queue;
* each worker can run under an address-space limit (``memory_limit``).

Why not an existing pool:

* :class:`concurrent.futures.ProcessPoolExecutor` cannot cancel a running
  call, and one worker dying breaks the whole pool (``BrokenProcessPool``:
  every pending future fails, the pool must be rebuilt);
* ``anyio.to_process`` kills the worker of a cancelled call, but it is a
  function tied to one event loop (not an executor to hand to studies), has
  no channel back for reports while a call runs, no fair sharing and no
  per-process memory limit;
* ``loky`` replaces dead workers but cannot cancel one running call (its
  ``terminate`` is for the whole executor), and it is a dependency;
* ``pebble`` can time out and cancel one running call, but has its own
  future type, no duplex channel per job and no fair sharing between
  clients.

(docs/architecture.md, "The worker pool", has the comparison as a table.)

So the pool is small and ours. One daemon thread per pool (see
:mod:`._manager`), started by the first ``submit``, owns every worker: it
starts them lazily (spawn context: they inherit ``sys.path`` and the working
directory *as they are when the worker starts*), sends jobs, and waits in
one epoll selector on every worker's pipe, every process sentinel and a
wake-up pipe. ``submit`` and ``cancel`` only queue a
request and wake it (or send a small job to an idle worker themselves), so
neither ever blocks the event loop. ``submit_async``, from a coroutine, lends
a job sent straight to an idle worker to the event loop, which then reads
that worker's pipe itself until the job ends: no thread hop at all. The messages on
the pipes are defined in one module, :mod:`._protocol`; the worker's loop is
:mod:`._worker`. Futures use only the public ``Future`` API: a job's future
stays pending while it runs, which is what lets ``cancel()`` reach a running
job without touching ``concurrent.futures`` internals.

Errors a job's future can hold besides the job's own exception::

    WorkerDied           the worker process died while running the job
    └── WorkerStartError the worker died or hung before it was ready (or could not be started)
    RemoteError          stand-in for a job's exception that does not pickle
    PoolClosedError      (aiotune.errors) the pool was terminated before the job finished
    BrokenExecutor       (stdlib) the pool's management thread failed

A job's exception arrives with ``__cause__`` set to a :class:`RemoteTraceback`
whose ``text`` is the traceback formatted in the worker.

The names are loaded on first use (:mod:`._pool` holds the pool): a worker
process imports this package on its way to :mod:`._worker`, and needs none
of the parent's side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiotune.execution.pool._errors import (
    RemoteError,
    RemoteTraceback,
    WorkerDied,
    WorkerStartError,
)

if TYPE_CHECKING:
    from aiotune.execution.pool._pool import PoolStatistics, WorkerPool

__all__ = [
    "PoolStatistics",
    "RemoteError",
    "RemoteTraceback",
    "WorkerDied",
    "WorkerPool",
    "WorkerStartError",
]


def __getattr__(name: str) -> Any:
    if name in ("PoolStatistics", "WorkerPool"):
        from aiotune.execution.pool import _pool

        return getattr(_pool, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
