"""How a running trial talks to the orchestrator: the :class:`Transport` seam.

A trial tells the orchestrator when it starts (the ``trial_timeout`` clock
starts then) and sends each intermediate value it reports, getting back
whether the pruner wants it stopped. Where the trial runs decides how:

* on the event loop or in a thread, it calls the orchestrator's own
  transport directly (that object is thread-safe);
* in a worker of aiotune's own pool, the worker installs a transport that
  sends messages over its pipe; the pool hands them to the orchestrator's
  transport in the parent process;
* anywhere else (a user's executor), a picklable transport travels with the
  call, or there is none and reports are only kept for the trial's record.

This module also holds the tiny worker-side registry the pool uses.
"""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    """A channel from a running trial to the orchestrator. Implementations are thread-safe."""

    def started(self, number: int, worker: str) -> None:
        """Trial ``number`` has begun running on ``worker``."""

    def report(self, number: int, step: int, value: float) -> bool:
        """Trial ``number`` reached ``value`` at ``step``; return whether to prune it."""


_worker_transport: Transport | None = None
_exit_requested = False


def set_worker_transport(transport: Transport | None) -> None:
    """Install the transport of the current worker process (called by the pool's worker loop)."""
    global _worker_transport
    _worker_transport = transport


def worker_transport() -> Transport | None:
    """The transport installed by the pool's worker loop in this process, if any."""
    return _worker_transport


def request_worker_exit() -> None:
    """Ask the pool's worker loop to retire this process after the current job.

    Used after a ``MemoryError`` under ``trial_memory_limit``: the process may
    be left in a bad state, so the pool replaces it with a fresh one.
    """
    global _exit_requested
    _exit_requested = True


def take_exit_request() -> bool:
    """Whether a retirement was requested since the last call (clears the request)."""
    global _exit_requested
    requested, _exit_requested = _exit_requested, False
    return requested
