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
import time
from multiprocessing.connection import Connection
from typing import Any

from aiotune.execution import channel
from aiotune.execution.pool import _protocol as wire

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_logger = logging.getLogger("aiotune")


class PipeChannel:
    """The :class:`~aiotune.execution.channel.ReportChannel` installed in a worker.

    ``started`` sends a message; ``report`` sends one and blocks for the
    parent's one-byte answer. ``item_done`` keeps a finished item of the
    running batch job; kept items travel together, at most :attr:`FLUSH_AFTER`
    seconds after the first of them finished (a background thread sees to
    that while a long item runs), and always before any other message of the
    job and before its end, so the parent sees everything in order. A lock
    keeps the pipe's messages whole when an objective reports from several
    threads.
    """

    FLUSH_AFTER = 0.005
    """Seconds a finished batch item may wait to travel with the next ones."""

    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock
        self._items: list[tuple[int, Any]] = []
        self._first_at = 0.0  # when the oldest kept item finished (monotonic clock)
        self._kept = threading.Condition(lock)  # notified when the first item is kept
        self._flusher: threading.Thread | None = None
        self._last_at = 0.0  # when the job began or its last item finished
        self.job = b""  # the id of the job this worker is running

    def started(self, number: int, worker: str) -> None:
        message = wire.started_message(number, worker)
        with self._lock:
            self._send_items()
            self._conn.send_bytes(message)

    def report(self, number: int, step: int, value: float) -> bool:
        message = wire.report_message(number, step, value)
        with self._lock:
            self._send_items()
            self._conn.send_bytes(message)
            return wire.read_answer(self._conn.recv_bytes())

    def begin(self, job: bytes) -> None:
        """Job ``job`` starts running."""
        self.job = job
        self._last_at = time.monotonic()

    def item_done(self, index: int, value: Any) -> None:
        """Keep item ``index`` of the running batch job, to send with the next ones.

        An item that took :attr:`FLUSH_AFTER` or more is sent at once, with
        those kept before it: only quick items wait for company.
        """
        now = time.monotonic()
        quick, self._last_at = now - self._last_at < self.FLUSH_AFTER, now
        with self._lock:
            if not self._items:
                self._first_at = now
                if self._flusher is None:
                    self._flusher = threading.Thread(
                        target=self._flush_late, name="aiotune-items", daemon=True
                    )
                    self._flusher.start()
                self._kept.notify()
            self._items.append((index, value))
            if not quick or now - self._first_at >= self.FLUSH_AFTER:
                self._send_items()

    def send(self, message: bytes) -> None:
        """Send ``message`` (the end of a job) after the items kept so far."""
        with self._lock:
            self._send_items()
            self._conn.send_bytes(message)

    def _send_items(self) -> None:  # with the lock held
        if self._items:
            items, self._items = self._items, []
            self._conn.send_bytes(wire.items_message(self.job, items))

    def _flush_late(self) -> None:
        """Send kept items that have waited too long (while a long item runs)."""
        with self._lock:
            while True:
                while not self._items:
                    self._kept.wait()
                late = self._first_at + self.FLUSH_AFTER - time.monotonic()
                if late > 0:
                    self._kept.wait(late)
                elif self._items:
                    try:
                        self._send_items()
                    except OSError:
                        return  # the parent is gone: the main loop finds out too


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
            pipe.send(reply)
            if retire:
                return
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the parent is gone or closed our pipe: nothing left to do
    finally:
        channel.set_worker_channel(None)
        conn.close()


def _run(pipe: PipeChannel, message: bytes) -> tuple[bool, bytes]:
    """Run one job message; return whether it returned, and its packed result or error."""
    pipe.begin(message[1 : 1 + wire.ID_SIZE])
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
