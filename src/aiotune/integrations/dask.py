"""Run trials on a Dask cluster (``pip install 'aiotune[dask]'``): :class:`DaskExecutor`.

``executor=DaskExecutor(address)``, or ``executor=client.get_executor()`` with
a ``distributed.Client`` of your own, runs a study's trials on Dask workers.
This module is Dask's side of the executor seam
(:mod:`aiotune.execution.executors`): importing it registers
:func:`dask_traits`, which tells the orchestrator that a Dask executor needs
a relay (:class:`DaskReportRelay`, in :mod:`aiotune.integrations._dask_relay`
with what aiotune makes of Dask's behaviour: lost workers, timeouts).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

from aiotune.errors import ConfigurationError
from aiotune.execution.executors import ExecutorTraits, register_executor_adapter
from aiotune.execution.inbox import ReportInbox
from aiotune.integrations._dask_relay import (
    DaskRelayStatistics,
    DaskReportChannel,
    DaskReportRelay,
    WorkerLost,
    dask_client_of,
    import_distributed,
    is_dask_executor,
)

_P = ParamSpec("_P")
_T = TypeVar("_T")


class DaskExecutor(Executor):
    """A ``concurrent.futures.Executor`` on a Dask cluster that owns its ``distributed.Client``.

    ``DaskExecutor("tcp://scheduler:8786")`` connects to a running scheduler;
    ``DaskExecutor()`` starts a ``LocalCluster`` (``client_options`` such as
    ``n_workers`` go to it), which closing the executor closes too. Tasks are
    submitted with ``pure=False``: every call runs, none is served from a
    cached result. Connecting and closing block: build and close it outside
    the event loop (``with DaskExecutor(...) as executor: at.run(...)``), or
    in a thread (``await anyio.to_thread.run_sync(DaskExecutor, address)``).
    """

    def __init__(self, address: str | None = None, **client_options: Any) -> None:
        distributed = import_distributed()
        client_options.setdefault("set_as_default", False)
        try:
            self._client: Any = distributed.Client(address, **client_options)
        except (OSError, TimeoutError) as exc:
            where = f"the Dask scheduler at {address}" if address else "a LocalCluster"
            raise ConfigurationError("address", f"cannot connect to {where}: {exc}") from exc
        self._executor: Executor = self._client.get_executor(pure=False)
        self._closed = False

    @property
    def dask_client(self) -> Any:
        """The ``distributed.Client`` this executor owns."""
        return self._client

    def submit(
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> concurrent.futures.Future[_T]:
        """Run ``fn(*args, **kwargs)`` on a Dask worker; return its future."""
        if self._closed:
            raise RuntimeError("cannot submit to a DaskExecutor after shutdown")
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work and close the client (and the cluster it started, if any).

        ``wait`` waits for submitted calls to finish first; ``cancel_futures``
        (or ``wait=False``) cancels them (Dask cannot stop a call already
        running: its worker finishes it). Safe to call more than once.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._executor.shutdown(wait=wait and not cancel_futures)
        finally:
            self._client.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else getattr(self._client, "scheduler_address", None)
        return f"<aiotune.DaskExecutor {state}>"


def dask_traits(executor: Executor) -> ExecutorTraits | None:
    """What a Dask executor can do for a trial (a relay carries its reports); None off Dask.

    Never imports Dask itself: an executor is on Dask only if Dask is loaded.
    """
    if not is_dask_executor(executor):
        return None

    @asynccontextmanager
    async def open_relay(inbox: ReportInbox) -> AsyncIterator[DaskReportRelay]:
        async with DaskReportRelay.for_executor(executor, inbox) as relay:
            yield relay

    return ExecutorTraits(starts_reported=True, reports_live=True, open_relay=open_relay)


register_executor_adapter(dask_traits)

__all__ = [
    "DaskExecutor",
    "DaskRelayStatistics",
    "DaskReportChannel",
    "DaskReportRelay",
    "WorkerLost",
    "dask_client_of",
    "dask_traits",
    "import_distributed",
    "is_dask_executor",
]
