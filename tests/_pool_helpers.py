"""Jobs for tests/test_pool.py: top-level functions, so worker processes can import them."""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path
from typing import Any

from aiotune.execution.channel import ReportChannel, request_worker_exit, worker_channel


def identity(x: Any) -> Any:
    return x


def pid() -> int:
    return os.getpid()


def fail(message: str) -> None:
    raise ValueError(message)


class TwoArgumentError(Exception):
    """Pickles, but cannot be rebuilt from its ``args``."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a} and {b}")


def fail_unpicklable() -> None:
    raise TwoArgumentError("first", "second")


def exit_system() -> None:
    raise SystemExit(4)


def return_unpicklable() -> Any:
    return lambda: None


def exit_with(code: int) -> None:
    os._exit(code)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def segfault() -> None:
    ctypes.string_at(0)


def allocate(size: int) -> int:
    return len(bytearray(size))


def retire() -> int:
    request_worker_exit()
    return os.getpid()


def wait_for_file(path: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def write_pid_and_wait(pid_path: str, go_path: str | None = None, timeout: float = 60.0) -> int:
    """Write this process's pid to ``pid_path``, then wait for ``go_path`` to exist (or forever).

    The file appears whole (written aside, then renamed): a waiter that sees it can read it.
    """
    Path(f"{pid_path}.tmp").write_text(str(os.getpid()))
    os.replace(f"{pid_path}.tmp", pid_path)
    if go_path is None:
        time.sleep(timeout)
    else:
        wait_for_file(go_path, timeout)
    return os.getpid()


def report_steps(number: int, steps: int) -> list[bool]:
    """What an objective does: announce its start, report each step, collect the answers."""
    channel = worker_channel()
    assert channel is not None, "no worker report channel installed"
    channel.started(number, f"pid-{os.getpid()}")
    return [channel.report(number, step, step / 10) for step in range(steps)]


class ReportingJob:
    """A job carrying an inbox in the parent, the way the orchestrator's calls do."""

    def __init__(self, inbox: ReportChannel | None) -> None:
        self.inbox = inbox

    def __getstate__(self) -> dict[str, Any]:
        return {"inbox": None}

    def __call__(self, number: int, steps: int) -> list[bool]:
        return report_steps(number, steps)


def exit_before_ready(conn: Any, memory_limit: int | None) -> None:
    """Stands in for the worker's main loop: dies before saying it is ready."""
    os._exit(7)


class GroupedJob:
    """A job of the study whose inbox is ``inbox`` (its fairness group); returns ``label``."""

    def __init__(self, inbox: object, label: str) -> None:
        self.inbox = inbox
        self.label = label

    def __getstate__(self) -> dict[str, Any]:
        return {"inbox": None, "label": self.label}

    def __call__(self) -> str:
        return self.label


IMPORTED_BY = os.getpid()  # the process that imported this module


def imported_by() -> tuple[int, int]:
    """(the pid of the process that imported this module, this worker's pid)."""
    return IMPORTED_BY, os.getpid()
