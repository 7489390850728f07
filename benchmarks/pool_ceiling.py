"""How fast could trials go if the event loop talked to the workers itself?

Measured for a design decision, now taken: the worker pool's management
thread reads the workers' pipes and settles futures, so a result reached the
event loop through a second thread, and on two cores every such crossing is
a wait for the GIL. The ceiling of the alternative is a loop that writes
each job to a worker's pipe and reads the result itself (``loop.add_reader``).
``WorkerPool.submit_async`` now does that for a job sent straight to an idle
worker (it is *lent* to the loop), and every trial goes through it.

Side by side, on the same machine and in the same run, with a trivial
objective and 2 calls in flight:

1. ``loop-native``: a minimal loop-native pool (2 spawned processes, one pipe
   each, pickle in and out; no timeouts, kills or reports: a ceiling);
2. ``bare submit_async``: a bare loop awaiting ``pool.submit_async`` on
   ``WorkerPool(2)`` (the pool's own loop-native path, with all its duties);
3. ``bare run_in_executor``: the overhead benchmark's bare loop on the same
   pool (what ``benchmarks/overhead.py`` compares aiotune with: its result
   is read by the pool's thread);
4. ``aiotune``: the overhead benchmark's study (Random, journal on,
   concurrency 2) on the same pool.

Reported: trials per second and this process's CPU time per trial, medians
of ``--repeats`` runs.

    python benchmarks/pool_ceiling.py [--trials 3000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import pickle
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import _objectives
import overhead
from _machine import machine

from aiotune.execution.pool import WorkerPool


def serve(conn: Connection) -> None:
    """A worker of the minimal pool: run each pickled ``(fn, args)``, send the result."""
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        fn, args = pickle.loads(data)
        conn.send_bytes(pickle.dumps(fn(*args)))


def arrived(conn: Connection, result: asyncio.Future[Any]) -> None:
    """On the loop: the worker behind ``conn`` answered; hand the answer to ``result``."""
    asyncio.get_running_loop().remove_reader(conn.fileno())
    result.set_result(pickle.loads(conn.recv_bytes()))


async def loop_native(conns: list[Connection], trials: int) -> None:
    """Keep one call in flight per worker until ``trials`` have finished."""
    loop = asyncio.get_running_loop()
    started = 0

    async def slot(conn: Connection) -> None:
        nonlocal started
        while started < trials:
            started += 1
            result: asyncio.Future[Any] = loop.create_future()
            loop.add_reader(conn.fileno(), arrived, conn, result)
            conn.send_bytes(pickle.dumps((_objectives.trivial, ({"x": 0.5},))))
            await result

    await asyncio.gather(*(slot(conn) for conn in conns))


def measure(make: Callable[[], Awaitable[None]], trials: int, repeats: int) -> tuple[float, float]:
    """Median trials/s and median CPU microseconds of this process per trial."""
    rates, cpus = [], []
    for _ in range(repeats):
        began, cpu = time.perf_counter(), time.process_time()
        asyncio.run(make())  # type: ignore[arg-type]
        rates.append(trials / (time.perf_counter() - began))
        cpus.append((time.process_time() - cpu) / trials * 1e6)
    return statistics.median(rates), statistics.median(cpus)


def main() -> None:
    """Measure the three set-ups side by side and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, r = args.trials, args.repeats

    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe() for _ in range(2)]
    processes = [context.Process(target=serve, args=(child,)) for _, child in pipes]
    for process in processes:
        process.start()
    conns = [parent for parent, _ in pipes]
    pool = WorkerPool(2)
    try:
        for future in [pool.submit(_objectives.trivial, {"x": 0.0}) for _ in range(8)]:
            future.result()
        asyncio.run(loop_native(conns, 100))  # both minimal workers have started
        rows = {
            "loop-native (a ceiling: no timeouts, kills or reports)": measure(
                lambda: loop_native(conns, n), n, r
            ),
            "bare `submit_async` loop, `WorkerPool(2)`": measure(
                lambda: overhead.bare_submit_async(pool, n, 2), n, r
            ),
            "bare `run_in_executor` loop, `WorkerPool(2)`": measure(
                lambda: overhead.bare_loop(pool, n, 2), n, r
            ),
            "aiotune, Random, journal on, concurrency 2, `WorkerPool(2)`": measure(
                lambda: overhead.aiotune_study(pool, n, 2, _objectives.trivial), n, r
            ),
        }
    finally:
        pool.shutdown()
        for conn in conns:
            conn.close()
        for process in processes:
            process.join(10)
    bare = rows["bare `run_in_executor` loop, `WorkerPool(2)`"][0]
    print(f"{machine()}; trivial objective, {n} trials, medians of {r} runs\n")
    print("| set-up | trials/s | vs bare loop | parent CPU per trial |")
    print("| --- | --- | --- | --- |")
    for name, (rate, cpu) in rows.items():
        print(f"| {name} | {rate:,.0f} | {rate / bare:.2f}x | {cpu:.0f} us |")


if __name__ == "__main__":
    main()
