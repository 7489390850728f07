"""Synthetic test functions the Bayesian tests search, on the unit cube."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BRANIN_MIN = 0.397887357729738

_H_A = np.array([
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
])  # fmt: skip
_H_P = 1e-4 * np.array([
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
])  # fmt: skip
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def branin_unit(params: dict[str, Any]) -> float:
    """Branin on the unit square (three minima of 0.397887), noiseless."""
    x1, x2 = -5.0 + 15.0 * params["x"], 15.0 * params["y"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return float((x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10)


def hartmann6(params: dict[str, Any]) -> float:
    """Hartmann-6 on [0, 1]^6 (minimum -3.32237), noiseless."""
    x = np.array([params[f"x{i}"] for i in range(6)])
    return float(-(_H_ALPHA * np.exp(-(_H_A * (x - _H_P) ** 2).sum(1))).sum())
