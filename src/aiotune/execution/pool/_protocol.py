"""The wire protocol between a :class:`~aiotune.execution.pool.WorkerPool` and its workers.

Both sides build and read messages only through this module. A worker talks
to the pool's management thread over one duplex pipe
(:func:`multiprocessing.Pipe`); every message is one ``send_bytes`` whose
first byte says what it is::

    parent -> worker
      J + job id (8 bytes) + pickle((fn, args, kwargs))   run a job
      Q                                                   exit (so does end of file)
      \\x01 or \\x00                                      the answer to a report: prune?
    worker -> parent
      R                                                   ready for jobs
      S + pickle((number, worker))                        ReportChannel.started
      P + pickle((number, step, value))                   ReportChannel.report; then wait
      I + job id + pickle([(index, value), ...])          items of a batch job are done
      D + job id + \\x01 + pickle(result)                 the job returned
      D + job id + \\x00 + pickle(error)                  the job raised
      X ...                                               as D, and this worker exits after it

A worker runs one job at a time; ``S``, ``P`` and ``I`` belong to the job it
is running. ``error`` is ``(exception or None, type name, message,
traceback text)``: the exception is ``None`` when it does not survive a
pickle round trip, and the parent raises a :class:`RemoteError` in its
place; either way its ``__cause__`` is a :class:`RemoteTraceback` holding
the worker's traceback text.

This module is imported by every worker: it keeps to the standard library
and the pool's own error classes.
"""

from __future__ import annotations

import pickle
import traceback
from typing import Any

from aiotune.execution.pool._errors import RemoteError, RemoteTraceback

JOB = b"J"
QUIT = b"Q"
READY = b"R"
STARTED = b"S"
REPORT = b"P"
ITEM = b"I"
DONE = b"D"
DONE_EXIT = b"X"
YES = b"\x01"
NO = b"\x00"
ID_SIZE = 8

_PROTOCOL = pickle.HIGHEST_PROTOCOL


def kind(message: bytes) -> bytes:
    """What ``message`` is: one of the one-byte kinds above."""
    return message[:1]


def job_id(number: int) -> bytes:
    """The wire form of the pool's ``number``-th job id."""
    return number.to_bytes(ID_SIZE, "little")


# -- parent -> worker -----------------------------------------------------------------------


def job_message(job: bytes, fn: Any, args: Any, kwargs: Any) -> bytes:
    """Run ``fn(*args, **kwargs)`` as job ``job`` (raises if they do not pickle)."""
    return b"".join((JOB, job, pickle.dumps((fn, args, kwargs), _PROTOCOL)))


def read_job(message: bytes) -> tuple[bytes, tuple[Any, Any, Any]]:
    """The job id and ``(fn, args, kwargs)`` of a ``J`` message (unpickling may raise)."""
    return message[1 : 1 + ID_SIZE], pickle.loads(memoryview(message)[1 + ID_SIZE :])


def answer_message(prune: bool) -> bytes:
    """The answer to a report."""
    return YES if prune else NO


def read_answer(message: bytes) -> bool:
    """Whether the answer to a report says prune."""
    return message == YES


# -- worker -> parent -----------------------------------------------------------------------


def started_message(number: int, worker: str) -> bytes:
    """Trial ``number`` has begun on ``worker``."""
    return STARTED + pickle.dumps((number, worker), _PROTOCOL)


def read_started(message: bytes) -> tuple[int, str]:
    """``(number, worker)`` of an ``S`` message."""
    number, worker = pickle.loads(memoryview(message)[1:])
    return int(number), str(worker)


def report_message(number: int, step: int, value: float) -> bytes:
    """Trial ``number`` reached ``value`` at ``step`` (the worker then waits for the answer)."""
    return REPORT + pickle.dumps((number, step, value), _PROTOCOL)


def read_report(message: bytes) -> tuple[int, int, float]:
    """``(number, step, value)`` of a ``P`` message."""
    number, step, value = pickle.loads(memoryview(message)[1:])
    return int(number), int(step), float(value)


def items_message(job: bytes, items: list[tuple[int, Any]]) -> bytes:
    """Items ``(index, value)`` of batch job ``job`` have ended (raises if they do not pickle)."""
    return b"".join((ITEM, job, pickle.dumps(items, _PROTOCOL)))


def read_items(message: bytes) -> tuple[bytes, list[tuple[int, Any]]]:
    """The job id and the ``(index, value)`` items of an ``I`` message (unpickling may raise)."""
    items = pickle.loads(memoryview(message)[1 + ID_SIZE :])
    return message[1 : 1 + ID_SIZE], [(int(index), value) for index, value in items]


def done_message(job: bytes, ok: bool, body: bytes, *, retire: bool = False) -> bytes:
    """Job ``job`` returned (``ok``) or raised; ``body`` is :func:`pack_result`/:func:`pack_error`.

    ``retire``: the worker exits after sending it.
    """
    return b"".join((DONE_EXIT if retire else DONE, job, YES if ok else NO, body))


def read_done(message: bytes) -> tuple[bytes, bool, Any]:
    """The job id of a ``D``/``X`` message, whether the job returned, and its result or error.

    An error arrives as the exception to raise (its ``__cause__`` the worker's
    traceback); a body that does not unpickle as a :class:`pickle.UnpicklingError`.
    """
    job = message[1 : 1 + ID_SIZE]
    ok = message[1 + ID_SIZE : 2 + ID_SIZE] == YES
    try:
        value = pickle.loads(memoryview(message)[2 + ID_SIZE :])
    except Exception as exc:
        failure = pickle.UnpicklingError(f"the job's outcome could not be unpickled: {exc!r}")
        failure.__cause__ = exc
        return job, False, failure
    if ok:
        return job, True, value
    error, type_name, text, tb_text = value
    if error is None:
        error = RemoteError(type_name, text)
    error.__cause__ = RemoteTraceback(tb_text)
    return job, False, error


def pack_result(result: Any) -> tuple[bool, bytes]:
    """``(True, pickled result)``, or ``(False, packed error)`` when it does not pickle."""
    try:
        return True, pickle.dumps(result, _PROTOCOL)
    except Exception as exc:
        error = pickle.PicklingError(f"the job's return value does not pickle: {exc}")
        error.__cause__ = exc
        return False, pack_error(error)


def pack_error(exc: BaseException) -> bytes:
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
            data = pickle.dumps((exc, type_name, message, tb_text), _PROTOCOL)
            pickle.loads(data)  # some exceptions pickle but cannot be rebuilt
        except Exception:
            pass
        else:
            return data
    return pickle.dumps((None, type_name, message, tb_text), _PROTOCOL)
