"""The objectives a request may choose, by name. A request never sends code.

Each is a top-level function (worker processes import it by name) of a params
dict; higher is better. They work on any space: numbers (and bools) are
pulled toward 0.5, other values are ignored. Kept light: worker processes
import this module, so it imports nothing beyond the standard library.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def sphere(params: dict[str, Any]) -> float:
    """Instant: minus the squared distance of the numeric params from 0.5."""
    return -sum(
        (float(value) - 0.5) ** 2 for value in params.values() if isinstance(value, int | float)
    )


def sleepy_sphere(params: dict[str, Any]) -> float:
    """``sphere`` after sleeping 0.2 s: a trial that waits, as on a remote job."""
    time.sleep(0.2)
    return sphere(params)


def busy_sphere(params: dict[str, Any]) -> float:
    """``sphere`` after burning 50 ms of CPU: a trial that computes."""
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass
    return sphere(params)


def failing(params: dict[str, Any]) -> float:
    """Always raises: every trial is recorded ``failed``, the study goes on."""
    raise ValueError(f"this objective always fails (params {params})")


OBJECTIVES: dict[str, Callable[[dict[str, Any]], float]] = {
    "sphere": sphere,
    "sleepy_sphere": sleepy_sphere,
    "busy_sphere": busy_sphere,
    "failing": failing,
}
"""The registry: the name a request gives → the function trials run."""
