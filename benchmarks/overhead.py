"""Orchestration overhead: aiotune against a bare ``run_in_executor`` loop, in one run.

1. Throughput: trials/s of a trivial sync objective through ``at.tune`` (with
   the JSONL journal on) against a bare loop that keeps the same number of
   calls in flight with ``loop.run_in_executor`` on the same kind of pool
   (aiotune's ``WorkerPool``, warmed up for both), and against the standard
   ``ProcessPoolExecutor`` for reference.
2. Parallel efficiency: wall time of N trials of a 50 ms CPU-bound objective
   on 2 workers, against the ideal N * 50 ms / 2, cold (the pool starts
   inside the timed study, as users see it) and warm (a pool already running).

Each measurement is repeated and the median reported; the machine is shared
and noisy, so compare the ratios, which are measured side by side.

    python benchmarks/overhead.py [--trials 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _objectives

import aiotune as at
from aiotune.execution.pool import WorkerPool

SPACE = at.Space(x=at.Float(0.0, 1.0))


async def bare_loop(executor: Executor, trials: int, in_flight: int) -> None:
    """Keep ``in_flight`` calls running until ``trials`` have finished: the floor to beat."""
    loop = asyncio.get_running_loop()
    started = 0

    async def one_slot() -> None:
        nonlocal started
        while started < trials:
            started += 1
            await loop.run_in_executor(executor, _objectives.trivial, {"x": 0.5})

    await asyncio.gather(*(one_slot() for _ in range(in_flight)))


async def aiotune_study(
    executor: Executor | str, trials: int, workers: int, objective: Callable[..., float]
) -> None:
    """The same work through the orchestrator, with the journal written."""
    with tempfile.TemporaryDirectory() as tmp:
        await at.tune(
            objective,
            SPACE,
            strategy=at.Random(seed=0),
            max_trials=trials,
            concurrency=workers,
            executor=executor,
            observers=[at.JsonlWriter(Path(tmp) / "trials.jsonl")],
        )


def timed(make: Callable[[], Awaitable[None]], repeats: int) -> float:
    """Median wall seconds of ``repeats`` runs of ``make()``."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        asyncio.run(make())  # type: ignore[arg-type]
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def warm(executor: Executor, workers: int) -> None:
    """Start every worker process before timing."""
    futures = [executor.submit(_objectives.trivial, {"x": 0.0}) for _ in range(workers * 4)]
    for future in futures:
        future.result()


def main() -> None:
    """Measure and print the Markdown table rows."""
    parser = argparse.ArgumentParser(description="aiotune orchestration overhead")
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--busy-trials", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, w, r = args.trials, args.workers, args.repeats

    pool = WorkerPool(w)
    stdlib = ProcessPoolExecutor(w)
    try:
        warm(pool, w)
        warm(stdlib, w)
        bare = timed(lambda: bare_loop(pool, n, w), r)
        bare_std = timed(lambda: bare_loop(stdlib, n, w), r)
        ours = timed(lambda: aiotune_study(pool, n, w, _objectives.trivial), r)
        busy_warm = timed(
            lambda: aiotune_study(pool, args.busy_trials, w, _objectives.busy_50ms), r
        )
    finally:
        pool.shutdown()
        stdlib.shutdown()
    busy_cold = timed(
        lambda: aiotune_study("process", args.busy_trials, w, _objectives.busy_50ms), r
    )
    ideal = args.busy_trials * 0.05 / w

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}")
    print(f"date: {time.strftime('%Y-%m-%d')}; medians of {r} runs\n")
    print("| measurement | result |")
    print("| --- | --- |")
    print(
        f"| bare run_in_executor loop, WorkerPool({w}), {n} trivial calls "
        f"| {n / bare:,.0f} calls/s |"
    )
    print(f"| bare run_in_executor loop, ProcessPoolExecutor({w}) | {n / bare_std:,.0f} calls/s |")
    print(f"| aiotune, {n} trivial trials, JSONL journal on | {n / ours:,.0f} trials/s |")
    print(f"| aiotune / bare loop on the same pool | {bare / ours:.0%} |")
    print(
        f"| {args.busy_trials} x 50 ms CPU trials on {w} workers, warm pool | "
        f"{busy_warm:.2f} s (ideal {ideal:.2f} s, +{busy_warm / ideal - 1:.0%}) |"
    )
    print(
        f"| same, cold (pool start-up inside the study) | "
        f"{busy_cold:.2f} s (ideal {ideal:.2f} s, +{busy_cold / ideal - 1:.0%}) |"
    )


if __name__ == "__main__":
    main()
