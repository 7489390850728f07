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
    once per trial) and no wake-up through the loop's self-pipe when
    ``running`` is settled on the loop's own thread (aiotune's pool settles a
    job lent to the loop there). Cancelling the returned future
    cancels ``running`` (aiotune's pool then kills the job's worker).
    """
    waiter: asyncio.Future[_T] = loop.create_future()
    loop_thread = threading.get_ident()

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
            loop.call_soon(settle, done)  # in turn with the results that came before
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, done)

    def abandoned(waiter: asyncio.Future[_T]) -> None:
        if waiter.cancelled():
            running.cancel()

    waiter.add_done_callback(abandoned)
    running.add_done_callback(arrived)
    return waiter
