"""The loop each worker process of :class:`~aiotune.execution.pool.WorkerPool` runs.

It serves jobs from its pipe, one at a time, speaking
:mod:`~aiotune.execution.pool._protocol`. This module is imported by every
worker: it keeps to the standard library and
:mod:`aiotune.execution.channel`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from aiotune.execution import channel
from aiotune.execution.pool import _protocol as wire

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_logger = logging.getLogger("aiotune")


class PipeChannel:
    """The :class:`~aiotune.execution.channel.ReportChannel` installed in a worker.

    ``started`` sends a message; ``report`` sends one and blocks for the
    parent's one-byte answer; ``item_done`` sends one finished item of the
    running batch job. A lock keeps the pipe's messages whole when an
    objective reports from several threads.
    """

    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock
        self.job = b""  # the id of the job this worker is running

    def started(self, number: int, worker: str) -> None:
        message = wire.started_message(number, worker)
        with self._lock:
            self._conn.send_bytes(message)

    def report(self, number: int, step: int, value: float) -> bool:
        message = wire.report_message(number, step, value)
        with self._lock:
            self._conn.send_bytes(message)
            return wire.read_answer(self._conn.recv_bytes())

    def item_done(self, index: int, value: Any) -> None:
        """Send item ``index`` of the running batch job (raises if ``value`` does not pickle)."""
        message = wire.item_message(self.job, index, value)
        with self._lock:
            self._conn.send_bytes(message)


def main(conn: Connection, memory_limit: int | None) -> None:
    """Serve jobs from ``conn`` until told to exit, the pipe closes, or a job asks to retire."""
    _ignore_sigint()
    _die_with_parent()
    if memory_limit is not None:
        _limit_address_space(memory_limit)
    lock = threading.Lock()
    pipe = PipeChannel(conn, lock)
    channel.set_worker_channel(pipe)
    try:
        conn.send_bytes(wire.READY)
        while True:
            message = conn.recv_bytes()
            kind = wire.kind(message)
            if kind == wire.QUIT:
                return
            if kind != wire.JOB:
                raise RuntimeError(f"aiotune worker: unexpected message {kind!r}")
            ok, body = _run(pipe, message)
            del message
            retire = channel.take_exit_request()
            reply = wire.done_message(pipe.job, ok, body, retire=retire)
            del body
            with lock:
                conn.send_bytes(reply)
            if retire:
                return
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the parent is gone or closed our pipe: nothing left to do
    finally:
        channel.set_worker_channel(None)
        conn.close()


def _run(pipe: PipeChannel, message: bytes) -> tuple[bool, bytes]:
    """Run one job message; return whether it returned, and its packed result or error."""
    pipe.job = message[1 : 1 + wire.ID_SIZE]
    try:
        _, (fn, args, kwargs) = wire.read_job(message)
        result = fn(*args, **kwargs)
    except BaseException as exc:  # the job's own failure, whatever it is, goes back to the parent
        return False, wire.pack_error(exc)
    return wire.pack_result(result)


def _ignore_sigint() -> None:
    # The pool's management thread blocks SIGINT before starting us, so a
    # Ctrl-C while we start up stays pending; ignore it, then unblock.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _die_with_parent() -> None:
    """On Linux, ask the kernel to SIGKILL this process when its parent dies (best effort).

    The "parent" is the thread that started us: the pool's management
    thread, which outlives every worker it starts (or, under the forkserver
    start method, the fork server, which exits when the pool's process does).
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    except (OSError, AttributeError) as exc:
        _logger.debug("aiotune worker %d cannot follow its parent's death: %s", os.getpid(), exc)
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid and not parent.is_alive():
        os._exit(1)  # the parent died before the request took effect


def _limit_address_space(limit: int) -> None:
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, AttributeError, ValueError, OSError) as exc:
        _logger.warning("aiotune worker %d cannot apply memory_limit: %s", os.getpid(), exc)
