"""How a running trial talks to the orchestrator: the :class:`ReportChannel` seam.

A trial tells the orchestrator when it starts (the ``trial_timeout`` clock
starts then) and sends each intermediate value it reports, getting back
whether the pruner wants it stopped. Every way of carrying those two
messages is a *report channel*; they all end at the study's
:class:`~aiotune.execution.inbox.ReportInbox`. Where the trial runs decides
which channel it uses:

* on the event loop or in a thread: the inbox itself (it is thread-safe);
* in a worker of aiotune's pool: the worker's *pipe channel*, installed by
  the worker loop; the pool hands its messages to the job's inbox in the
  parent process;
* on an executor with no pipe to the orchestrator (Dask): a picklable
  *remote channel* that travels with the call, whose other end is a *relay*
  in the orchestrator (see :mod:`aiotune.execution.executors`);
* anywhere else: none; reports are only kept for the trial's record.

This module also holds the tiny worker-side registry the pool uses.
"""

from __future__ import annotations

from typing import Protocol


class ReportChannel(Protocol):
    """Where a running trial sends its start and its intermediate values. Thread-safe."""

    def started(self, number: int, worker: str) -> None:
        """Trial ``number`` has begun running on ``worker``."""

    def report(self, number: int, step: int, value: float) -> bool:
        """Trial ``number`` reached ``value`` at ``step``; return whether to prune it."""


_worker_channel: ReportChannel | None = None
_exit_requested = False


def set_worker_channel(channel: ReportChannel | None) -> None:
    """Install the report channel of the current worker process (the pool's worker loop does)."""
    global _worker_channel
    _worker_channel = channel


def worker_channel() -> ReportChannel | None:
    """The report channel installed by the pool's worker loop in this process, if any."""
    return _worker_channel


def request_worker_exit() -> None:
    """Ask the pool's worker loop to retire this process after the current job.

    Used after a ``MemoryError`` under ``trial_memory_limit``: the process may
    be left in a bad state, so the pool replaces it with a fresh one.
    """
    global _exit_requested
    _exit_requested = True


def exit_requested() -> bool:
    """Whether a retirement was requested since the last :func:`take_exit_request` (keeps it)."""
    return _exit_requested


def take_exit_request() -> bool:
    """Whether a retirement was requested since the last call (clears the request)."""
    global _exit_requested
    requested, _exit_requested = _exit_requested, False
    return requested
