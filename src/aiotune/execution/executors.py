"""Choosing the executor trials run on, and cleaning up the ones aiotune owns."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Literal

import anyio

logger = logging.getLogger("aiotune")

ExecutorSpec = Literal["process", "thread"] | Executor

SHUTDOWN_DEADLINE = 10.0
"""Seconds an owned pool gets to wind down before its workers are killed."""


def starts_reported(executor: Executor) -> bool:
    """Whether calls on ``executor`` announce their start to the orchestrator.

    aiotune's pool and thread pools do; on any other executor the
    ``trial_timeout`` clock starts when the call is submitted.
    """
    from aiotune.execution.pool import WorkerPool

    return isinstance(executor, WorkerPool | ThreadPoolExecutor)


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
