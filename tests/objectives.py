"""Top-level objectives for the tests: worker processes import them by name."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path
from typing import Any


def paraboloid(params: dict[str, Any]) -> float:
    """The noisy paraboloid of the reference tests: best 1 at (0.42, 0.69)."""
    x, y = params["x"], params["y"]
    return 1 - (x - 0.42) ** 2 - (y - 0.69) ** 2 + random.uniform(0, 0.01)


def pid(params: dict[str, Any]) -> float:
    """Score = the pid of the process that ran the trial."""
    return float(os.getpid())


def sum_xy(params: dict[str, Any]) -> float:
    """Deterministic score."""
    return float(params["x"] + params["y"])


def fail_when_negative(params: dict[str, Any]) -> float:
    """Raise for x < 0, else return x."""
    if params["x"] < 0:
        raise ValueError(f"negative x: {params['x']}")
    return float(params["x"])


def bad_return(params: dict[str, Any]) -> Any:
    """Returns what the 'kind' param names: a valid float, NaN, inf, a string or None."""
    return {"ok": 1.0, "nan": float("nan"), "inf": float("inf"), "str": "0.5", "none": None}[
        params["kind"]
    ]


def sleepy(params: dict[str, Any]) -> float:
    """Sleep params['seconds'] and return it."""
    time.sleep(params["seconds"])
    return float(params["seconds"])


def with_context(params: dict[str, Any], trial: Any) -> float:
    """Report three values, return the last, and show the trial number in the score."""
    for step in range(3):
        trial.report(params["x"] * step, step)
    return float(trial.number)


async def async_sum(params: dict[str, Any]) -> float:
    """An async objective: yields to the loop once."""
    await asyncio.sleep(0)
    return float(params["x"] + params["y"])


def chaos(params: dict[str, Any]) -> float:
    """Do what params['mode'] says: return, raise, hang, exit or crash the process."""
    mode = params["mode"]
    if mode == "raise":
        raise ValueError("chaos says raise")
    if mode == "hang":
        time.sleep(120)
    if mode == "exit":
        os._exit(7)
    if mode == "segfault":
        import ctypes

        ctypes.string_at(0)
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    return float(params["x"])


def pid_then_sleep(params: dict[str, Any], trial: Any) -> float:
    """Report this process's pid (as the value at step 0), then sleep params['seconds']."""
    trial.report(float(os.getpid()), 0)
    time.sleep(params["seconds"])
    return float(params["seconds"])


def fail_first_attempt(params: dict[str, Any]) -> float:
    """Fail the first time a trial number runs (tracked with a marker file), then succeed."""
    marker = Path(params["dir"]) / f"attempted-{params['x']}"
    if not marker.exists():
        marker.touch()
        raise RuntimeError(f"first attempt of x={params['x']} fails")
    return float(params["x"])


def allocate(params: dict[str, Any]) -> float:
    """Allocate params['mb'] megabytes and touch them."""
    block = bytearray(params["mb"] * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])
    return float(len(block))
