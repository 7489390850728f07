"""Per-trial cost, batching and start-up, side by side in one run.

1. Lean path: trials/s of a trivial sync objective through ``at.tune``
   (Random, JSONL journal on, ``concurrency=2``) against a bare loop keeping 2
   ``loop.run_in_executor`` calls in flight on the same warmed-up
   ``WorkerPool(2)``; and the stdlib ``ProcessPoolExecutor`` for reference.
2. Batching: the same study with ``batch="auto"``, and a 10 us objective
   with ``batch="auto"`` against Optuna's in-process Random sampler on the
   same objective (when optuna, the ``bench`` extra, is installed).
3. Start-up: 40 trials of a 50 ms CPU-bound objective on 2 workers against
   the ideal 40 * 50 ms / 2 = 1.0 s, *including* the pool's start-up: the
   default ``executor="process"`` (spawn), and a new
   ``WorkerPool(2, mp_context="forkserver")`` (the fork server, already
   running, has aiotune and the objective's module preloaded); plus the time
   from calling ``tune()`` to the first trial's result in each case. These
   runs are timed without the heartbeat of 4. (which takes CPU from the busy
   workers); as many runs again, with it, measure the stalls.
4. The event loop's worst stall (a 5 ms heartbeat's largest lateness) over
   every aiotune run above.

Beside the rates it prints the CPU time this process spent per trial (every
thread: the loop, the pool's thread, the journal's): the parent's side of
the work, which is what limits cheap trials on two cores and depends less on
the machine's load than the rates do.

Medians of --repeats runs; the machine is shared and noisy, so compare the
ratios, which are measured side by side.

    python benchmarks/overhead.py [--trials 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import _objectives

import aiotune as at
from aiotune.execution.pool import WorkerPool

SPACE = at.Space(x=at.Float(0.0, 1.0))

phase = ""  # what is being measured now
stalls: dict[str, float] = {}  # phase -> the heartbeat's largest lateness in it
longest_gc: dict[str, float] = {}  # phase -> the longest full (generation 2) collection in it
_gc_began = 0.0


def _time_full_collections(stage: str, info: dict[str, int]) -> None:
    """A gc callback: keep, per phase, the longest generation-2 collection."""
    global _gc_began
    if info["generation"] != 2:
        return
    if stage == "start":
        _gc_began = time.perf_counter()
    else:
        spent = time.perf_counter() - _gc_began
        longest_gc[phase] = max(longest_gc.get(phase, 0.0), spent)


gc.callbacks.append(_time_full_collections)


async def heartbeat() -> None:
    """Sleep 5 ms at a time and keep the worst lateness: how long the loop was blocked."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.005)
        late = loop.time() - before - 0.005
        stalls[phase] = max(stalls.get(phase, 0.0), late)


async def watched(work: Awaitable[Any]) -> Any:
    """Run ``work`` with the heartbeat beside it."""
    beat = asyncio.ensure_future(heartbeat())
    try:
        return await work
    finally:
        beat.cancel()


async def bare_submit_async(pool: WorkerPool, trials: int, in_flight: int) -> None:
    """The bare loop through ``pool.submit_async``: the loop reads the workers' pipes."""
    started = 0

    async def one_slot() -> None:
        nonlocal started
        while started < trials:
            started += 1
            await pool.submit_async(_objectives.trivial, {"x": 0.5})

    await asyncio.gather(*(one_slot() for _ in range(in_flight)))


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


class FirstResult:
    """An observer noting when the first trial's result arrived."""

    def __init__(self) -> None:
        self.at: float | None = None

    async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
        if self.at is None:
            self.at = time.perf_counter()


async def aiotune_study(
    executor: Executor | str,
    trials: int,
    workers: int,
    objective: Callable[..., float],
    *,
    batch: int | str | None = None,
    first: FirstResult | None = None,
    probe: bool = True,
) -> None:
    """The work through the orchestrator, with the journal written (and, with ``probe``,
    the heartbeat beside it)."""
    with tempfile.TemporaryDirectory() as tmp:
        observers: list[Any] = [at.JsonlWriter(Path(tmp) / "trials.jsonl")]
        if first is not None:
            observers.append(first)
        study = at.tune(
            objective,
            SPACE,
            strategy=at.Random(seed=0),
            max_trials=trials,
            concurrency=workers,
            executor=executor,
            observers=observers,
            batch=batch,  # type: ignore[arg-type]
        )
        await (watched(study) if probe else study)


cpu_seconds: dict[str, float] = {}  # label -> median CPU seconds of this process per run


def timed(make: Callable[[], Awaitable[None]], repeats: int, label: str = "") -> float:
    """Median wall seconds of ``repeats`` runs of ``make()`` (and, under ``label``, the
    median CPU time of this process, every thread: the parent's side of the work)."""
    global phase
    phase = label
    times, cpus = [], []
    for _ in range(repeats):
        began, cpu = time.perf_counter(), time.process_time()
        asyncio.run(make())  # type: ignore[arg-type]
        times.append(time.perf_counter() - began)
        cpus.append(time.process_time() - cpu)
    if label:
        cpu_seconds[label] = statistics.median(cpus)
    return statistics.median(times)


def start_up(make_executor: Callable[[], Any], trials: int, workers: int, repeats: int) -> Any:
    """Medians of ``trials`` 50 ms trials on a new pool: wall time and first result
    without the heartbeat, then the wall time of as many runs with it.

    The heartbeat wakes the loop every 5 ms, which on two busy cores takes CPU from
    the workers (about 3 % of the wall time here): the start-up is timed without
    it, and the extra runs measure the loop's stalls (and show what it costs).
    """
    walls, firsts, probed = [], [], []
    for run in range(2 * repeats):
        began = time.perf_counter()  # the pool's construction counts too
        executor = make_executor()
        first = FirstResult()
        probe = run >= repeats
        asyncio.run(
            aiotune_study(
                executor, trials, workers, _objectives.busy_50ms, first=first, probe=probe
            )
        )
        wall = time.perf_counter() - began
        if isinstance(executor, WorkerPool):
            executor.shutdown()
        if probe:
            probed.append(wall)
            continue
        walls.append(wall)
        assert first.at is not None
        firsts.append(first.at - began)
    return statistics.median(walls), statistics.median(firsts), statistics.median(probed)


def optuna_random(trials: int) -> float | None:
    """Seconds for Optuna's in-process Random sampler to run ``trials`` 10 us trials."""
    try:
        import optuna
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    began = time.perf_counter()
    study.optimize(
        lambda trial: _objectives.busy_10us({"x": trial.suggest_float("x", 0.0, 1.0)}),
        n_trials=trials,
    )
    return time.perf_counter() - began


def main() -> None:
    """Measure and print the Markdown table rows."""
    parser = argparse.ArgumentParser(description="aiotune per-trial cost, batching, start-up")
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--batched-trials", type=int, default=20000)
    parser.add_argument("--busy-trials", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, w, r, nb, b = args.trials, args.workers, args.repeats, args.batched_trials, args.busy_trials

    pool = WorkerPool(w)
    stdlib = ProcessPoolExecutor(w)
    try:
        for executor in (pool, stdlib):  # start every worker before timing
            for future in [executor.submit(_objectives.trivial, {"x": 0.0}) for _ in range(4 * w)]:
                future.result()
        bare = timed(lambda: bare_loop(pool, n, w), r, "bare")
        bare_async = timed(lambda: bare_submit_async(pool, n, w), r, "bare_async")
        bare_std = timed(lambda: bare_loop(stdlib, n, w), r)
        lean = timed(lambda: aiotune_study(pool, n, w, _objectives.trivial), r, "lean")
        auto = timed(
            lambda: aiotune_study(pool, n, w, _objectives.trivial, batch="auto"), r, "auto"
        )
        cheap = timed(
            lambda: aiotune_study(pool, nb, w, _objectives.busy_10us, batch="auto"), r, "cheap"
        )
    finally:
        pool.shutdown()
        stdlib.shutdown()
    global phase
    phase = "optuna"
    optuna_s = optuna_random(nb)
    phase = "spawn start-up"
    spawn_wall, spawn_first, spawn_probed = start_up(lambda: "process", b, w, r)
    warm_fork_server = WorkerPool(1, mp_context="forkserver")  # starts the fork server once
    warm_fork_server.submit(_objectives.trivial, {"x": 0.0}).result()
    warm_fork_server.shutdown()
    phase = "forkserver start-up"
    fork_wall, fork_first, fork_probed = start_up(
        lambda: WorkerPool(w, mp_context="forkserver"), b, w, r
    )
    ideal = b * 0.05 / w

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"date: {time.strftime('%Y-%m-%d')}; medians of {r} runs\n")
    print("| measurement | result | target |")
    print("| --- | --- | --- |")
    print(
        f"| bare `run_in_executor` loop, `WorkerPool({w})`, trivial calls | {n / bare:,.0f}/s | |"
    )
    print(f"| bare loop on `pool.submit_async`, `WorkerPool({w})` | {n / bare_async:,.0f}/s | |")
    print(f"| bare loop, stdlib `ProcessPoolExecutor({w})` | {n / bare_std:,.0f}/s | |")
    print(f"| aiotune, trivial trials, Random, journal on, concurrency {w} | {n / lean:,.0f}/s | |")
    print(f"| aiotune / bare loop | **{bare / lean:.2f}x** | >= 0.8x |")
    print(f"| aiotune / bare `submit_async` loop | {bare_async / lean:.2f}x | |")
    print(f"| aiotune / bare stdlib loop | {bare_std / lean:.2f}x | |")
    print(
        f"| parent CPU per trial: bare loop / bare `submit_async` / aiotune"
        f" | {cpu_seconds['bare'] / n * 1e6:.0f} / {cpu_seconds['bare_async'] / n * 1e6:.0f}"
        f" / {cpu_seconds['lean'] / n * 1e6:.0f} us | |"
    )
    print(f'| the same with `batch="auto"` | {n / auto:,.0f}/s ({bare / auto:.2f}x bare) | |')
    print(
        f'| 10 us objective, `batch="auto"`, journal on | **{nb / cheap:,.0f}/s** | >= 20,000/s |'
    )
    print(f"| parent CPU per trial, the same | {cpu_seconds['cheap'] / nb * 1e6:.0f} us | |")
    if optuna_s is not None:
        print(f"| Optuna `RandomSampler`, in-process, same objective | {nb / optuna_s:,.0f}/s | |")
    print(
        f'| {b} x 50 ms on {w} workers incl. start-up, `executor="process"` (spawn) '
        f"| {spawn_wall:.2f} s ({spawn_wall / ideal:.2f}x ideal) | <= 1.1x |"
    )
    print(
        f'| the same, a new `WorkerPool({w}, mp_context="forkserver")` '
        f"| {fork_wall:.2f} s ({fork_wall / ideal:.2f}x ideal) | <= 1.1x |"
    )
    print(
        f"| the same two, with the stall heartbeat beside them "
        f"| {spawn_probed / ideal:.2f}x, {fork_probed / ideal:.2f}x | |"
    )
    print(f"| first result after `tune()`, spawn | {spawn_first:.2f} s | |")
    print(f"| first result after `tune()`, forkserver | {fork_first:.2f} s | <= 0.3 s |")
    worst_stall = max(stalls.values())
    print(
        f"| event loop's worst stall, every aiotune run | {worst_stall * 1e3:.0f} ms | <= 100 ms |"
    )
    print("\nWorst stall and longest full garbage collection, per phase:\n")
    print("| phase | worst stall | longest generation-2 collection |")
    print("| --- | --- | --- |")
    for name in dict.fromkeys([*stalls, *longest_gc]):
        gc_ms = f"{longest_gc[name] * 1e3:.0f} ms" if name in longest_gc else "none"
        print(f"| {name or 'warm-up'} | {stalls.get(name, 0.0) * 1e3:.0f} ms | {gc_ms} |")


if __name__ == "__main__":
    main()
