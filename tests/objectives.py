"""Top-level objectives for the tests: worker processes import them by name."""

from __future__ import annotations

import asyncio
import os
import random
import time
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
