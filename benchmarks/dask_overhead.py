"""aiotune on Dask against aiotune's own process pool, side by side, in one run.

1. Report round trip: ms per ``trial.report`` from a trial on a Dask worker to
   the orchestrator's ``ReportInbox`` and back (``DaskReportRelay``, driven as
   the runner drives it), with one trial reporting and with two at once.
2. Overhead per trial: trivial trials one at a time (concurrency 1), and the
   throughput of trivial trials at concurrency 2.
3. Parallel efficiency: N trials of a 50 ms CPU-bound objective on 2 workers
   against the ideal N * 50 ms / 2.

Dask side: a 2-worker ``LocalCluster`` (processes, 1 thread each) on
loopback, through ``client.get_executor()``; local side: aiotune's
``WorkerPool(2)``. Both warm before timing; medians of --repeats runs.

    python benchmarks/dask_overhead.py [--trials 200] [--busy-trials 40] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import _objectives
import distributed
from overhead import timed

import aiotune as at
from aiotune.execution.call import TrialCall
from aiotune.execution.inbox import ReportInbox
from aiotune.execution.pool import WorkerPool
from aiotune.integrations.dask import DaskReportRelay

SPACE = at.Space(x=at.Float(0.0, 1.0))


def reporter(params: dict[str, Any], trial: Any) -> float:
    """Report ``n`` values; return the mean seconds per report."""
    began = time.perf_counter()
    for step in range(params["n"]):
        trial.report(float(step), step)
    return (time.perf_counter() - began) / params["n"]


async def report_round_trip(client: Any, reports: int, reporters: int) -> float:
    """Mean seconds per report, timed inside ``reporters`` trials running at once."""
    loop = asyncio.get_running_loop()
    executor = client.get_executor(pure=False)
    inbox = ReportInbox(loop)
    async with DaskReportRelay.for_executor(executor, inbox) as relay:
        calls = []
        for number in range(reporters):
            inbox.watch(number)
            call = TrialCall(
                reporter,
                {"n": reports},
                number,
                takes_context=True,
                announce_start=True,
                remote_channel=relay.channel,
            )
            calls.append(loop.run_in_executor(executor, call))
        outcomes = await asyncio.gather(*calls)
    return statistics.mean(outcome.score for outcome in outcomes)


async def study(
    executor: Any, trials: int, concurrency: int, objective: Callable[..., float]
) -> None:
    """A Random-search study of ``trials`` trials."""
    await at.tune(
        objective,
        SPACE,
        strategy=at.Random(seed=0),
        max_trials=trials,
        concurrency=concurrency,
        executor=executor,
    )


class _CountReports:
    """An observer counting the intermediate values that reach the study while it runs."""

    def __init__(self) -> None:
        self.reports = 0

    async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
        pass

    async def on_report(self, number: int, step: int, value: float) -> None:
        self.reports += 1


async def reports_reach_the_study(executor: Any) -> bool:
    """Whether the tuner is wired to Dask: trials' reports reach its observers as they run.

    Without the relay, reports on a Dask worker stay in the trial's record only.
    """
    counter = _CountReports()
    await at.tune(
        _objectives.report_twice,
        SPACE,
        strategy=at.Random(seed=0),
        max_trials=2,
        concurrency=2,
        executor=executor,
        observers=[counter],
    )
    return counter.reports == 4


def main() -> None:
    """Measure and print the Markdown table rows."""
    parser = argparse.ArgumentParser(description="aiotune on Dask vs the process pool")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--busy-trials", type=int, default=40)
    parser.add_argument("--reports", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, b, r, q = args.trials, args.busy_trials, args.repeats, args.trials // 4

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1"
    )
    client = distributed.Client(cluster, set_as_default=False)
    pool = WorkerPool(2)
    try:
        client.run(__import__, "_objectives")
        dask = client.get_executor(pure=False)
        asyncio.run(study(dask, 10, 2, _objectives.trivial))  # warm both
        asyncio.run(study(pool, 10, 2, _objectives.trivial))
        wired = asyncio.run(reports_reach_the_study(dask))
        one = statistics.median(
            asyncio.run(report_round_trip(client, args.reports, 1)) for _ in range(r)
        )
        two = statistics.median(
            asyncio.run(report_round_trip(client, args.reports, 2)) for _ in range(r)
        )
        seq_dask = timed(lambda: study(dask, q, 1, _objectives.trivial), r) / q
        seq_pool = timed(lambda: study(pool, q, 1, _objectives.trivial), r) / q
        par_dask = timed(lambda: study(dask, n, 2, _objectives.trivial), r)
        par_pool = timed(lambda: study(pool, n, 2, _objectives.trivial), r)
        busy_dask = timed(lambda: study(dask, b, 2, _objectives.busy_50ms), r)
        busy_pool = timed(lambda: study(pool, b, 2, _objectives.busy_50ms), r)
    finally:
        pool.shutdown()
        client.close()
        cluster.close()
    ideal = b * 0.05 / 2
    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"Python {platform.python_version()}; dask {distributed.__version__}; "
        f"reports from Dask trials reach the study live: {wired}"
    )
    print(f"date: {time.strftime('%Y-%m-%d')}; medians of {r} runs\n")
    print('| measurement | 2-worker LocalCluster | executor="process" (2 workers) |')
    print("| --- | ---: | ---: |")
    print(f"| report round trip, 1 trial reporting | {one * 1e3:.1f} ms | (pipe) |")
    print(f"| report round trip, 2 trials reporting at once | {two * 1e3:.1f} ms | |")
    print(
        f"| overhead per trial (trivial trials, concurrency 1) | {seq_dask * 1e3:.1f} ms "
        f"| {seq_pool * 1e3:.1f} ms |"
    )
    print(
        f"| {n} trivial trials, concurrency 2 | {n / par_dask:,.0f} trials/s "
        f"| {n / par_pool:,.0f} trials/s |"
    )
    print(
        f"| {b} x 50 ms CPU trials, concurrency 2 | {b / busy_dask:.1f} trials/s, efficiency "
        f"{ideal / busy_dask:.0%} | {b / busy_pool:.1f} trials/s, efficiency "
        f"{ideal / busy_pool:.0%} |"
    )


if __name__ == "__main__":
    main()
