"""The blocking entry points' loop: a wakeup fd while it runs, nothing left behind."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading

from aiotune._blocking import run_blocking


async def _current_wakeup_fd() -> int:
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    return fd


def test_the_loop_has_a_wakeup_fd_while_it_runs_and_none_after() -> None:
    assert signal.set_wakeup_fd(-1) == -1
    assert run_blocking(_current_wakeup_fd()) != -1
    assert signal.set_wakeup_fd(-1) == -1


def test_a_wakeup_fd_set_by_someone_else_is_left_alone() -> None:
    receive, send = socket.socketpair()
    send.setblocking(False)
    try:
        signal.set_wakeup_fd(send.fileno())
        assert run_blocking(_current_wakeup_fd()) == send.fileno()
        assert signal.set_wakeup_fd(-1) == send.fileno()
    finally:
        signal.set_wakeup_fd(-1)
        receive.close()
        send.close()


def test_off_the_main_thread_it_is_plain_asyncio_run() -> None:
    results: list[object] = []

    def run() -> None:
        results.append(run_blocking(asyncio.sleep(0, result="done")))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert results == ["done"]
