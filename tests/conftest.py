"""Shared fixtures: every test checks it leaves no worker process behind; `regions` records
Bayesian's trust regions."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from multiprocessing import forkserver, resource_tracker
from typing import Any

import pytest


def children() -> set[int]:
    """Pids of this process's live children (from /proc: no psutil needed).

    multiprocessing's resource tracker and fork server, which live as long
    as the test session, are not counted; the workers the fork server
    started for a pool are.
    """
    mine = str(os.getpid())
    helpers = {
        getattr(resource_tracker._resource_tracker, "_pid", None),
        getattr(forkserver._forkserver, "_forkserver_pid", None),
    }
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent = int(fields[1])
        if fields[0] == "Z" or int(entry) in helpers:
            continue
        if fields[1] == mine or parent in helpers:  # a fork server's children are workers
            found.add(int(entry))
    return found


def wait_no_children(before: set[int], timeout: float = 10.0) -> set[int]:
    """Wait up to ``timeout`` seconds for children not in ``before`` to go; return the rest."""
    deadline = time.monotonic() + timeout
    while True:
        multiprocessing.active_children()  # reaps finished multiprocessing children
        left = children() - before
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Fail a test that leaves a child process running."""
    before = children()
    yield
    left = wait_no_children(before)
    assert not left, f"child processes outlived the test: {sorted(left)}"


@pytest.fixture
def regions(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every trust region ``BayesianCore`` computes during the test (``None`` where none
    applies), in order."""
    from aiotune.strategies.bayesian import BayesianCore  # not at import: scripts use conftest

    seen: list[Any] = []
    region = BayesianCore._region

    def recorded(self: BayesianCore, *args: Any) -> Any:
        seen.append(region(self, *args))
        return seen[-1]

    monkeypatch.setattr(BayesianCore, "_region", recorded)
    return seen
