"""Embed a study in a running asyncio application.

A toy service keeps answering (a heartbeat every 10 ms) while a study runs in
the same event loop; the study's trials run in worker processes and stream
back as they finish. At the end it prints the best trial and the worst
heartbeat lag: how long the loop was ever kept from the service.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.model_selection import cross_val_score

import aiotune as at

SPACE = at.Space(alpha=at.Float(1e-4, 10.0, log=True), l1_ratio=at.Float(0.0, 1.0))


def objective(params: dict[str, Any]) -> float:
    """Mean 5-fold cross-validated R^2 of an elastic net on the diabetes data."""
    x, y = load_diabetes(return_X_y=True)
    model = ElasticNet(max_iter=5000, **params)
    return float(cross_val_score(model, x, y, cv=5).mean())


async def heartbeat(lags: list[float], stop: asyncio.Event) -> None:
    """The 'service': wakes every 10 ms and records how late each wake-up was."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - before - 0.01)


async def main() -> None:
    """Run the service and a study side by side."""
    lags: list[float] = []
    stop = asyncio.Event()
    service = asyncio.create_task(heartbeat(lags, stop))
    async with at.Tuner(
        objective, SPACE, strategy=at.Random(seed=1), max_trials=30, concurrency=2
    ) as tuner:
        async for trial in tuner.stream():
            print(f"trial {trial.number:2d} {trial.status:8s} R^2={trial.score or 0:.4f}")
    stop.set()
    await service
    best = tuner.result.best
    print(f"best: alpha={best.params['alpha']:.4g} l1_ratio={best.params['l1_ratio']:.3f}")
    print(f"R^2 {best.score:.4f}; worst heartbeat lag {max(lags) * 1000:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
