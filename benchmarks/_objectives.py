"""Objectives for the benchmarks (top-level, so worker processes import them)."""

from __future__ import annotations

import time
from typing import Any


def trivial(params: dict[str, Any]) -> float:
    """Returns at once: measures pure orchestration overhead."""
    return float(params["x"])


def busy_50ms(params: dict[str, Any]) -> float:
    """Burns 50 ms of CPU (a spin, not a sleep: it needs a core to itself)."""
    end = time.process_time() + 0.05
    total = 0.0
    while time.process_time() < end:
        total += 1.0
    return float(params["x"])


def report_pid_and_hang(params: dict[str, Any], trial: Any) -> float:
    """Report this worker's pid, then sleep far past any timeout."""
    import os

    trial.report(float(os.getpid()), 0)
    time.sleep(3600)
    return 0.0


def report_twice(params: dict[str, Any], trial: Any) -> float:
    """Report two intermediate values, then return: shows whether reports reach the study."""
    trial.report(0.0, 0)
    trial.report(1.0, 1)
    return float(params["x"])


def busy_10us(params: dict[str, Any]) -> float:
    """Burns about 10 us of CPU: a cheap objective, where batching pays."""
    end = time.perf_counter() + 1e-5
    while time.perf_counter() < end:
        pass
    return float(params["x"])
