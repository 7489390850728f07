"""Journal cost: writing trials through ``JsonlWriter`` and reading a big journal back.

    python benchmarks/journal.py [--trials 100000]

Prints the encode+write cost per trial for batches of 1 and 64 trials (the
pump hands the writer everything that finished since its last write), with
``durability="flush"`` and ``"fsync"``, then the wall time and peak memory of
``at.load`` on a journal of ``--trials`` trials.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiotune as at

SPACE = at.Space(
    lr=at.Float(1e-5, 1e-1, log=True),
    layers=at.Int(1, 8),
    optimizer=at.Categorical(["adam", "sgd", "rmsprop"]),
    batchnorm=at.Bool(),
)


class Handle:
    """The little of a tuner that the writer looks at."""

    space = SPACE
    direction = "maximize"
    strategy = "benchmark"
    history = None

    def stop(self, reason: str) -> None:
        """Not used."""

    def stop_after(self, delay: float, reason: str) -> None:
        """Not used."""


def trial(number: int) -> at.Trial:
    """A realistic complete trial with five intermediate values."""
    import numpy as np

    params = SPACE.sample(np.random.default_rng(number))
    return at.Trial(
        number=number,
        params=params,
        status=at.TrialStatus.COMPLETE,
        score=0.5 + number * 1e-6,
        intermediate={step: 0.1 * step for step in range(5)},
        started_at=1.7e9 + number,
        finished_at=1.7e9 + number + 1.5,
        duration=1.5,
        worker="host:1234",
    )


async def write_cost(path: Path, trials: list[at.Trial], batch: int, durability: Any) -> float:
    """Microseconds per trial to record ``trials`` in batches of ``batch``."""
    writer = at.JsonlWriter(path, durability=durability)
    handle: Any = Handle()
    await writer.on_start(handle)
    began = time.perf_counter()
    for i in range(0, len(trials), batch):
        await writer.on_trials(trials[i : i + batch], handle)
    elapsed = time.perf_counter() - began
    await writer.on_finish(at.TuningResult(trials=()))
    return elapsed / len(trials) * 1e6


def main() -> None:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description="journal write and read costs")
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sample = [trial(n) for n in range(2000)]
    print(f"date: {time.strftime('%Y-%m-%d')}; medians of {args.repeats} runs\n")
    print("| measurement | result |")
    print("| --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for durability in ("flush", "fsync"):
            for batch in (1, 64):
                costs = [
                    asyncio.run(write_cost(Path(tmp) / f"w{i}.jsonl", sample, batch, durability))
                    for i in range(args.repeats)
                ]
                label = f"write, batches of {batch}, durability={durability!r}"
                print(f"| {label} | {statistics.median(costs):.0f} us/trial |")
        big = Path(tmp) / "big.jsonl"
        asyncio.run(write_cost(big, [trial(n) for n in range(args.trials)], 1000, "flush"))
        size_mb = big.stat().st_size / 1e6
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        began = time.perf_counter()
        loaded = at.load(big)
        elapsed = time.perf_counter() - began
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert len(loaded.trials) == args.trials
        print(
            f"| at.load of {args.trials:,} trials ({size_mb:.0f} MB) | {elapsed:.2f} s, "
            f"peak RSS {peak:.0f} MB (+{peak - before:.0f} MB) |"
        )


if __name__ == "__main__":
    main()
