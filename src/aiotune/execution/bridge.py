"""An executor's future, awaited on an event loop: :func:`loop_future`."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from typing import TypeVar

_T = TypeVar("_T")


def loop_future(running: Future[_T], loop: asyncio.AbstractEventLoop) -> asyncio.Future[_T]:
    """An asyncio future of ``loop`` that follows ``running``, made on ``loop``'s thread.

    What ``asyncio.wrap_future`` does, with one callback per side (this runs
    once per trial). When ``running`` is settled by a callback of the loop
    itself (aiotune's pool settles a job lent to the loop there), the
    returned future is settled at once, with no hop at all. Cancelling the returned future
    cancels ``running`` (aiotune's pool then kills the job's worker).
    """
    waiter: asyncio.Future[_T] = loop.create_future()
    loop_thread = threading.get_ident()
    armed = False  # False while add_done_callback runs: it calls back at once if done

    def settle(done: Future[_T]) -> None:  # on the loop
        if waiter.done():
            return
        if done.cancelled():
            waiter.cancel()
        elif (error := done.exception()) is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(done.result())

    def arrived(done: Future[_T]) -> None:  # in whichever thread settled ``running``
        if threading.get_ident() == loop_thread:
            if armed:
                settle(done)  # a loop callback settled it (a job lent to the loop)
            else:
                loop.call_soon(settle, done)  # done before we got here: in turn, as ever
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, done)

    def abandoned(waiter: asyncio.Future[_T]) -> None:
        if waiter.cancelled():
            running.cancel()

    waiter.add_done_callback(abandoned)
    running.add_done_callback(arrived)
    armed = True
    return waiter
