"""The loop each worker process of :class:`~aiotune.execution.pool.WorkerPool` runs.

A worker talks to the pool's management thread over one duplex pipe. Every
message is a single ``send_bytes`` whose first byte says what it is::

    parent -> worker
      J + job id (8 bytes) + pickle((fn, args, kwargs))   run a job
      Q                                                   exit (so does end of file)
      \\x01 or \\x00                                      the answer to a report
    worker -> parent
      R                                                   ready for jobs
      S + pickle((number, worker))                        ReportChannel.started
      P + pickle((number, step, value))                   ReportChannel.report; then wait
      D + job id + \\x01 + pickle(result)                 the job returned
      D + job id + \\x00 + pickle(error)                  the job raised
      X ...                                               as D, and this worker exits after it

``error`` is ``(exception or None, type name, message, traceback text)``; the
exception is ``None`` when it does not survive a pickle round trip (the pool
then raises a stand-in). This module is imported by every worker: it keeps to
the standard library and :mod:`aiotune.execution.channel`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import traceback
from multiprocessing.connection import Connection

from aiotune.execution import channel

JOB = b"J"
QUIT = b"Q"
READY = b"R"
STARTED = b"S"
REPORT = b"P"
DONE = b"D"
DONE_EXIT = b"X"
YES = b"\x01"
NO = b"\x00"
ID_SIZE = 8

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_logger = logging.getLogger("aiotune")


class PipeChannel:
    """The :class:`~aiotune.execution.channel.ReportChannel` installed in a worker.

    ``started`` sends a message; ``report`` sends one and blocks for the
    parent's one-byte answer. A lock keeps the pipe's messages whole when an
    objective reports from several threads.
    """

    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    def started(self, number: int, worker: str) -> None:
        message = STARTED + pickle.dumps((number, worker), pickle.HIGHEST_PROTOCOL)
        with self._lock:
            self._conn.send_bytes(message)

    def report(self, number: int, step: int, value: float) -> bool:
        message = REPORT + pickle.dumps((number, step, value), pickle.HIGHEST_PROTOCOL)
        with self._lock:
            self._conn.send_bytes(message)
            return self._conn.recv_bytes() == YES


def main(conn: Connection, memory_limit: int | None) -> None:
    """Serve jobs from ``conn`` until told to exit, the pipe closes, or a job asks to retire."""
    _ignore_sigint()
    _die_with_parent()
    if memory_limit is not None:
        _limit_address_space(memory_limit)
    lock = threading.Lock()
    channel.set_worker_channel(PipeChannel(conn, lock))
    try:
        conn.send_bytes(READY)
        while True:
            message = conn.recv_bytes()
            kind = message[:1]
            if kind == QUIT:
                return
            if kind != JOB:
                raise RuntimeError(f"aiotune worker: unexpected message {kind!r}")
            job_id = message[1 : 1 + ID_SIZE]
            ok, body = _run(memoryview(message)[1 + ID_SIZE :])
            del message
            retire = channel.take_exit_request()
            reply = b"".join((DONE_EXIT if retire else DONE, job_id, YES if ok else NO, body))
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


def _run(payload: memoryview) -> tuple[bool, bytes]:
    """Run one pickled job; return whether it returned, and the pickled result or error."""
    try:
        fn, args, kwargs = pickle.loads(payload)
        result = fn(*args, **kwargs)
    except BaseException as exc:  # the job's own failure, whatever it is, goes back to the parent
        return False, _pickle_error(exc)
    try:
        return True, pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        error = pickle.PicklingError(f"the job's return value does not pickle: {exc}")
        error.__cause__ = exc
        return False, _pickle_error(error)


def _pickle_error(exc: BaseException) -> bytes:
    """Pickle ``exc`` with its traceback text, or only its type name and message if it must."""
    tb_text = "".join(traceback.format_exception(exc))
    cls = type(exc)
    type_name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    try:
        message = str(exc)
    except Exception:
        message = "<the exception's message could not be built>"
    if isinstance(exc, Exception):  # a BaseException (SystemExit...) must not reach the event loop
        try:
            data = pickle.dumps((exc, type_name, message, tb_text), pickle.HIGHEST_PROTOCOL)
            pickle.loads(data)  # some exceptions pickle but cannot be rebuilt
        except Exception:
            pass
        else:
            return data
    return pickle.dumps((None, type_name, message, tb_text), pickle.HIGHEST_PROTOCOL)


def _ignore_sigint() -> None:
    # The pool's management thread blocks SIGINT before starting us, so a
    # Ctrl-C while we start up stays pending; ignore it, then unblock.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _die_with_parent() -> None:
    """On Linux, ask the kernel to SIGKILL this process when its parent dies (best effort).

    The "parent" is the thread that started us: the pool's management
    thread, which outlives every worker it starts.
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
    if parent is not None and os.getppid() != parent.pid:
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
