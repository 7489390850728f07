"""The blocking entry points' event loop: ``asyncio.run`` that Ctrl-C always reaches.

``asyncio.run`` handles Ctrl-C with a Python-level SIGINT handler, which runs
on the main thread once that thread executes Python code again. The operating
system may deliver the signal to any thread of the process (the pool's manager
thread, a worker thread): the loop, asleep in ``select()`` until its next event,
then does not notice it until that event, which may be the end of a trial
minutes later. A *wakeup fd* (what ``loop.add_signal_handler`` sets up, and
``asyncio.run`` does not) turns the signal itself into an event of the loop,
whichever thread the signal lands on.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_blocking(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(work)``, with the loop woken by every signal the process gets.

    Ctrl-C cancels ``work`` and then raises ``KeyboardInterrupt``, as with
    ``asyncio.run``, but promptly even while the loop waits on long trials.
    """
    return asyncio.run(_woken_by_signals(work))


def _drain(receive: socket.socket) -> None:
    try:
        while receive.recv(4096):
            pass
    except BlockingIOError:
        pass


async def _woken_by_signals(work: Coroutine[Any, Any, T]) -> T:
    """Await ``work`` with a wakeup fd set (main thread only, and only if none is set)."""
    if threading.current_thread() is not threading.main_thread():
        return await work
    loop = asyncio.get_running_loop()
    receive, send = socket.socketpair()
    receive.setblocking(False)
    send.setblocking(False)
    try:
        previous = signal.set_wakeup_fd(send.fileno(), warn_on_full_buffer=False)
        if previous != -1:  # someone else wakes the loop (or wants the signals): leave it
            signal.set_wakeup_fd(previous)
            return await work
        try:
            loop.add_reader(receive.fileno(), _drain, receive)
        except NotImplementedError:  # a loop without add_reader (Windows' proactor)
            signal.set_wakeup_fd(-1)
            return await work
        try:
            return await work
        finally:
            loop.remove_reader(receive.fileno())
            signal.set_wakeup_fd(-1)
    finally:
        receive.close()
        send.close()
