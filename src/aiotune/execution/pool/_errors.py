"""Errors a :class:`~aiotune.execution.pool.WorkerPool` future can hold besides the job's own."""

from __future__ import annotations

import signal
from typing import Any


def describe_exit(exitcode: int | None) -> str:
    """How a process ended, in words, from its exit code (negative: a signal)."""
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            return f"killed by signal {-exitcode}"
        return f"killed by signal {-exitcode} ({name})"
    return f"exited with code {exitcode}"


class WorkerDied(Exception):
    """The worker process running a job died before the job finished.

    ``pid`` is the worker's process id and ``exitcode`` its exit code as
    :attr:`multiprocessing.Process.exitcode` gives it (negative: killed by
    that signal; ``None``: unknown).
    """

    def __init__(self, pid: int | None, exitcode: int | None) -> None:
        self.pid = pid
        self.exitcode = exitcode
        super().__init__(f"worker process {pid} died: {describe_exit(exitcode)}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.pid, self.exitcode)


class WorkerStartError(WorkerDied):
    """A worker started for a job never became ready; ``problem`` says what happened."""

    def __init__(self, pid: int | None, exitcode: int | None, problem: str) -> None:
        self.pid = pid
        self.exitcode = exitcode
        self.problem = problem
        Exception.__init__(self, f"worker process {pid} failed to start: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.pid, self.exitcode, self.problem)


class RemoteError(Exception):
    """Stands in for a job's exception that could not be pickled back (or is not an ``Exception``).

    ``type_name`` is its qualified class name and ``message`` its ``str()``.
    """

    def __init__(self, type_name: str, message: str) -> None:
        self.type_name = type_name
        self.message = message
        super().__init__(f"{type_name}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.type_name, self.message)


class RemoteTraceback(Exception):
    """The ``__cause__`` of a job's exception; ``text`` is the traceback the worker formatted."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(text)

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'
