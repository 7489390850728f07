"""How fast aiotune cleans up: timeout deadline to kill, and cancel to no child process.

    python benchmarks/failures.py [--repeats 5]

1. A trial with ``trial_timeout=T`` hangs; we time from its deadline (the
   moment the worker reported its start, plus T) to the moment its worker
   process is gone from ``/proc``.
2. A study with two hanging trials is cancelled; we time from ``cancel()``
   to the moment no child process of ours is left (and the cancellation has
   reached the caller).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import _objectives

import aiotune as at

SPACE = at.Space(x=at.Float(0.0, 1.0))


def children() -> set[int]:
    """Live child pids of this process, from /proc (multiprocessing's resource tracker too)."""
    mine, found = str(os.getpid()), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == mine and fields[0] != "Z":
                found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def deadline_to_kill(limit: float) -> float:
    """Seconds from a hanging trial's deadline to its worker being gone."""
    seen: dict[str, float] = {}

    class Watch:
        async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
            pass

        async def on_report(self, number: int, step: int, value: float) -> None:
            seen["pid"], seen["start"] = value, time.monotonic()

    async with at.Tuner(
        _objectives.report_pid_and_hang,
        SPACE,
        max_trials=1,
        concurrency=1,
        trial_timeout=limit,
        observers=[Watch()],
    ) as tuner:
        while "pid" not in seen:
            await asyncio.sleep(0.001)
        pid = int(seen["pid"])
        while alive(pid):
            await asyncio.sleep(0.001)
        gone = time.monotonic()
    assert tuner.result.trials[0].status is at.TrialStatus.TIMEOUT
    return gone - (seen["start"] + limit)


async def cancel_to_no_children() -> float:
    """Seconds from cancelling a study with two hung trials to no child process left."""
    before = children()
    task = asyncio.create_task(
        at.tune(_objectives.report_pid_and_hang, SPACE, max_trials=2, concurrency=2)
    )
    while len(children() - before) < 2:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)  # both trials running
    began = time.monotonic()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    while children() - before:
        await asyncio.sleep(0.001)
    return time.monotonic() - began


def main() -> None:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description="aiotune clean-up latencies")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    kills = [asyncio.run(deadline_to_kill(0.5)) for _ in range(args.repeats)]
    cancels = [asyncio.run(cancel_to_no_children()) for _ in range(args.repeats)]
    print(f"date: {time.strftime('%Y-%m-%d')}; {os.cpu_count()} cores; {args.repeats} runs\n")
    print("| measurement | median | max |")
    print("| --- | --- | --- |")
    print(
        f"| trial_timeout deadline to worker gone | {statistics.median(kills) * 1000:.0f} ms "
        f"| {max(kills) * 1000:.0f} ms |"
    )
    print(
        f"| cancel() to no child process | {statistics.median(cancels) * 1000:.0f} ms "
        f"| {max(cancels) * 1000:.0f} ms |"
    )


if __name__ == "__main__":
    main()
