"""The executor trials run on: what it can do for a trial, and the ones aiotune owns.

The orchestrator knows no executor type. It asks :func:`route_reports` how
reports travel from trials on an executor to the study's inbox, and gets a
:class:`ReportRoute`. What an executor can do is an :class:`ExecutorTraits`:

* aiotune's :class:`~aiotune.execution.pool.WorkerPool` and thread pools
  report a trial's start and its reports live (a pipe, or the inbox called
  directly);
* an executor whose workers have no line to the orchestrator (Dask) needs a
  *relay*: an async context manager, opened around the study, that carries
  messages from a picklable *remote channel* travelling with each call back
  to the inbox. Its integration (:mod:`aiotune.integrations.dask`) registers
  an :data:`ExecutorAdapter` with :func:`register_executor_adapter`;
* any other executor does neither: the ``trial_timeout`` clock starts when a
  call is submitted, and reports are only kept in the trial's record.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

import anyio

from aiotune.execution.channel import ReportChannel
from aiotune.execution.inbox import ReportInbox

logger = logging.getLogger("aiotune")

ExecutorSpec = Literal["process", "thread"] | Executor

SHUTDOWN_DEADLINE = 10.0
"""Seconds an owned pool gets to wind down before its workers are killed."""


class ReportRelay(Protocol):
    """The orchestrator's side of a channel through a third party (e.g. the Dask scheduler)."""

    @property
    def channel(self) -> ReportChannel:
        """The picklable remote channel to send along with every call."""
        ...


OpenRelay = Callable[[ReportInbox], AbstractAsyncContextManager[ReportRelay]]
"""Opens a relay delivering to the given inbox, for the life of a study."""


@dataclass(frozen=True, slots=True)
class ExecutorTraits:
    """What an executor can do for a running trial.

    ``starts_reported``: a call announces its start (the ``trial_timeout``
    clock starts then, not at submission). ``reports_live``: a trial's
    reports reach the pruner while it runs, so it can be stopped early.
    ``open_relay``: set when neither works without a relay (the executor's
    workers have no line to the orchestrator of their own).
    """

    starts_reported: bool = False
    reports_live: bool = False
    open_relay: OpenRelay | None = None


ExecutorAdapter = Callable[[Executor], ExecutorTraits | None]
"""Says what an executor of the kind it knows can do; ``None`` for any other executor."""

_adapters: list[ExecutorAdapter] = []

_INTEGRATIONS = {"distributed": "aiotune.integrations.dask"}
"""A third-party package whose executors aiotune adapts -> the module registering the adapter."""

_LOCAL = ExecutorTraits(starts_reported=True, reports_live=True)


def register_executor_adapter(adapter: ExecutorAdapter) -> None:
    """Teach :func:`executor_traits` about a kind of executor (integrations call this)."""
    if adapter not in _adapters:
        _adapters.append(adapter)


def executor_traits(executor: Executor) -> ExecutorTraits:
    """What ``executor`` can do for a trial (see :class:`ExecutorTraits`).

    An executor from a package listed in ``_INTEGRATIONS`` loads its
    integration first, which registers its adapter.
    """
    from aiotune.execution.pool import WorkerPool

    if isinstance(executor, WorkerPool | ThreadPoolExecutor):
        return _LOCAL
    for cls in type(executor).__mro__:
        module = _INTEGRATIONS.get(cls.__module__.partition(".")[0])
        if module is not None:
            importlib.import_module(module)
    for adapter in _adapters:
        traits = adapter(executor)
        if traits is not None:
            return traits
    return ExecutorTraits()


@dataclass(frozen=True, slots=True)
class ReportRoute:
    """How reports travel from a study's trials to its inbox, for the life of the study.

    ``remote_channel`` goes with each call when the executor needs a relay;
    ``starts_reported`` and ``reports_live`` are as in :class:`ExecutorTraits`.
    """

    starts_reported: bool
    reports_live: bool
    remote_channel: ReportChannel | None = None


@asynccontextmanager
async def route_reports(executor: Executor, inbox: ReportInbox) -> AsyncIterator[ReportRoute]:
    """The route from trials run by ``executor`` to ``inbox``; a relay stays open inside."""
    traits = executor_traits(executor)
    if traits.open_relay is None:
        yield ReportRoute(traits.starts_reported, traits.reports_live)
        return
    async with traits.open_relay(inbox) as relay:
        yield ReportRoute(traits.starts_reported, traits.reports_live, relay.channel)


@asynccontextmanager
async def executor_scope(
    spec: ExecutorSpec, *, workers: int, memory_limit: int | None = None
) -> AsyncIterator[Executor]:
    """Yield the executor for ``spec``; one aiotune built is shut down on every exit path.

    ``"process"`` is aiotune's own worker pool (processes start lazily, on
    the first trial), ``"thread"`` a thread pool; an ``Executor`` instance is
    the user's and is never shut down. Shutdown runs shielded, in a thread,
    with a deadline, so it never blocks the event loop nor is skipped.
    """
    if not isinstance(spec, str):
        yield spec
        return
    if spec == "process":
        from aiotune.execution.pool import WorkerPool

        pool = WorkerPool(workers, memory_limit=memory_limit)
        try:
            yield pool
        finally:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(SHUTDOWN_DEADLINE):
                    await anyio.to_thread.run_sync(pool.shutdown, abandon_on_cancel=True)
                pool.terminate()  # a no-op after a clean shutdown
        return
    threads = ThreadPoolExecutor(workers, thread_name_prefix="aiotune-trial")
    try:
        yield threads
    finally:
        threads.shutdown(wait=False, cancel_futures=True)
        with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_DEADLINE) as waited:
            await anyio.to_thread.run_sync(threads.shutdown, abandon_on_cancel=True)
        if waited.cancelled_caught:
            logger.warning(
                "trial threads still running %s s after the study ended: threads cannot be "
                "killed; use executor='process' for objectives that may hang",
                SHUTDOWN_DEADLINE,
            )
