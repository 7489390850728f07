"""A real small study for the view tests: failures, pruned trials, and hostile strings."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any

import aiotune as at

XSS_CHOICE = "<script>window.__xss=1</script>"
XSS_ERROR = "<img src=x onerror=window.__xss=2> too deep"

SPACE = at.Space(
    lr=at.Float(1e-4, 1e-1, log=True),
    layers=at.Int(1, 6),
    opt=at.Categorical(["adam", "sgd", XSS_CHOICE]),
    bn=at.Bool(),
)


async def objective(params: dict[str, Any], trial: Any) -> float:
    """Learning curves of five steps; six layers always fail, with a hostile message."""
    await asyncio.sleep(0.005)
    if params["layers"] == 6:
        raise ValueError(XSS_ERROR)
    score = 0.0
    for step in range(5):
        shape = 1 - abs(params["layers"] - 3) / 6
        score = (step + 1) / 5 * shape + (0.1 if params["opt"] == "adam" else 0.0)
        trial.report(score, step)
    return score


async def make_study(path: Path, trials: int = 30, seed: int = 1) -> at.TuningResult:
    """Run the study, journaled at ``path``; return its result."""
    return await at.tune(
        objective,
        SPACE,
        strategy=at.Random(seed=seed),
        max_trials=trials,
        concurrency=3,
        pruner=at.MedianPruner(min_trials=3),
        observers=[at.JsonlWriter(path)],
    )


def make_study_sync(path: Path, trials: int = 30, seed: int = 1) -> at.TuningResult:
    """:func:`make_study` from sync code, in a thread of its own (Playwright's sync API
    keeps an event loop running in the test's thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make_study(path, trials, seed)).result()


MO_SPACE = at.Space(
    x=at.Float(0.0, 1.0),
    y=at.Float(0.0, 1.0),
    kind=at.Categorical(["plain", XSS_CHOICE]),
)
MO_DIRECTIONS = ("maximize", "minimize")


async def mo_objective(params: dict[str, Any]) -> at.Outcome:
    """Maximise x, minimise y + x² (a trade-off along y = 0); feasible when y <= 0.6."""
    await asyncio.sleep(0.002)
    cost = params["y"] + params["x"] ** 2 + (0.05 if params["kind"] == "plain" else 0.0)
    return at.Outcome((params["x"], cost), constraints=(params["y"] - 0.6,))


async def make_mo_study(path: Path, trials: int = 40, seed: int = 3) -> at.TuningResult:
    """A real two-objective, constrained study, journaled at ``path``."""
    return await at.tune(
        mo_objective,
        MO_SPACE,
        strategy=at.Random(seed=seed),
        max_trials=trials,
        concurrency=2,
        direction=MO_DIRECTIONS,
        observers=[at.JsonlWriter(path)],
    )


def make_mo_study_sync(path: Path, trials: int = 40, seed: int = 3) -> at.TuningResult:
    """:func:`make_mo_study` from sync code (see :func:`make_study_sync`)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make_mo_study(path, trials, seed)).result()
