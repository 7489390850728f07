"""Many studies on one shared pool, served over HTTP, against one pool per study.

Three set-ups run the same studies (``--studies`` x ``--trials`` trials of
the example's ``busy_sphere``, 50 ms of CPU each, 2 in flight per study),
in this order, in one process:

1. ``service``: the reference service (``examples/service``) under uvicorn
   in this process, all studies on its one ``WorkerPool(--workers)``,
   created over HTTP, with ``--clients`` server-sent-event clients
   following studies until their end;
2. ``shared pool``: the same studies as bare ``at.tune`` calls on one
   ``WorkerPool(--workers)`` (no HTTP: the service's own cost shows as the
   difference);
3. ``own pools``: each study with its own default pool (what a service that
   just awaits ``at.tune`` per request gets: one pool of ``os.cpu_count()``
   processes per study).

For each: wall time against the ideal (studies x trials x 50 ms / workers),
the event loop's lag (a 10 ms heartbeat in the same loop: p99 and max), the
most worker processes alive at once (children of this process, sampled
every 100 ms; a fork server's workers count, the fork server does not), and
where the cores' time went: this process's CPU time (every thread), its
workers' and fork server's (from /proc, last sample), and what is left of
cores x wall: other processes' time and idle cores together. Ratios compare
set-ups measured side by side in one run.

    python benchmarks/service.py [--studies 20] [--trials 30] [--clients 10] [--repeats 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

sys.path.insert(0, str(Path(__file__).parent.parent))  # the example is part of the repository

from examples.service.app import create_app
from examples.service.objectives import busy_sphere

import aiotune as at

SPACE = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))
TRIAL_SECONDS = 0.05


TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: str) -> list[str]:
    pids: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            pids += (task / "children").read_text().split()
        except OSError:
            continue
    return pids


def workers() -> dict[int, float]:
    """Worker processes of this process now (its children, and a fork server's children;
    not multiprocessing's resource tracker or fork server): pid -> CPU seconds so far.
    A fork server's own CPU time is kept under its negated pid (it is no worker)."""
    found: dict[int, float] = {}
    todo = [(pid, False) for pid in _children("self")]
    while todo:
        pid, forked = todo.pop()  # forked: a fork server's child (a worker, whatever its name)
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        if not forked and b"forkserver" in command:
            found[-int(pid)] = seconds
            todo += [(child, True) for child in _children(pid)]
        elif forked or b"resource_tracker" not in command:
            found[int(pid)] = seconds
    return found


class Watch:
    """While running: the loop's heartbeat lags, the most child processes seen, and the
    CPU time of this process and of its workers (the last sample of each)."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.max_children = 0
        self.worker_cpu: dict[int, float] = {}
        self._done = threading.Event()
        self._stop = asyncio.Event()

    def _sample(self) -> None:
        while not self._done.wait(0.1):
            children = workers()
            self.max_children = max(self.max_children, sum(pid > 0 for pid in children))
            self.worker_cpu.update(children)

    async def _heartbeat(self) -> None:
        while not self._stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags.append(time.perf_counter() - before - 0.01)

    async def measure(self, work: Callable[[], Awaitable[None]]) -> dict[str, float]:
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        heartbeat = asyncio.create_task(self._heartbeat())
        start, cpu = time.perf_counter(), time.process_time()
        try:
            await work()
            wall = time.perf_counter() - start
            parent_cpu = time.process_time() - cpu
        finally:
            self._stop.set()
            await heartbeat
            self._done.set()
            sampler.join()
        lags = sorted(self.lags)
        return {
            "wall": wall,
            "lag_p99": lags[min(len(lags) - 1, int(0.99 * len(lags)))] * 1000,
            "lag_max": lags[-1] * 1000,
            "processes": self.max_children,
            "parent_cpu": parent_cpu,
            "worker_cpu": sum(self.worker_cpu.values()),
        }


def request(seed: int, trials: int) -> dict[str, Any]:
    return {
        "id": f"s{seed:02d}",
        "space": SPACE.to_dict(),
        "objective": "busy_sphere",
        "strategy": "random",
        "seed": seed,
        "max_trials": trials,
        "concurrency": 2,
    }


async def through_the_service(args: argparse.Namespace) -> dict[str, float]:
    """The studies created over HTTP on the service, with SSE clients following them."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as data:
        app = create_app(data, workers=args.workers)
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        base = f"http://127.0.0.1:{port}"
        events = [0] * args.clients
        try:
            async with httpx.AsyncClient(base_url=base, timeout=120) as client:
                while not server.started:
                    await asyncio.sleep(0.05)

                async def follow(index: int) -> None:
                    study = f"s{index % args.studies:02d}"
                    async with client.stream("GET", f"/studies/{study}/events") as response:
                        async for line in response.aiter_lines():
                            if line == "event: trial":
                                events[index] += 1

                async def work() -> None:
                    for seed in range(args.studies):
                        response = await client.post("/studies", json=request(seed, args.trials))
                        response.raise_for_status()
                    followers = [asyncio.create_task(follow(i)) for i in range(args.clients)]
                    service = app.state.service
                    for run in list(service.runs.values()):
                        await run.wait_over()
                    await asyncio.gather(*followers)
                    states = {run.state for run in service.runs.values()}
                    assert states == {"finished"}, states

                result = await Watch().measure(work)
                listing = orjson.loads((await client.get("/studies")).content)["studies"]
                assert all(s["counts"]["complete"] == args.trials for s in listing)
        finally:
            server.should_exit = True
            await serving
    assert events == [args.trials] * args.clients, events  # every client saw every trial
    return result


async def bare_studies(args: argparse.Namespace, shared: bool) -> dict[str, float]:
    """The same studies as concurrent ``at.tune`` calls, on one pool or one pool each."""

    async def work() -> None:
        with tempfile.TemporaryDirectory() as data:
            pool = at.WorkerPool(args.workers) if shared else None
            try:
                results = await asyncio.gather(
                    *(
                        at.tune(
                            busy_sphere,
                            SPACE,
                            strategy=at.Random(seed=seed),
                            max_trials=args.trials,
                            concurrency=2 if shared else None,
                            executor=pool or "process",
                            observers=[at.JsonlWriter(Path(data) / f"s{seed}.jsonl")],
                        )
                        for seed in range(args.studies)
                    )
                )
            finally:
                if pool is not None:
                    await asyncio.to_thread(pool.shutdown)
        assert all(len(r.trials) == args.trials for r in results)

    return await Watch().measure(work)


def row(name: str, runs: list[dict[str, float]], ideal: float, cores: int) -> str:
    """One table row: medians of the runs (the worst lag and most processes of any)."""
    wall = statistics.median(r["wall"] for r in runs)
    p99 = statistics.median(r["lag_p99"] for r in runs)
    worst = max(r["lag_max"] for r in runs)
    processes = max(r["processes"] for r in runs)
    parent = statistics.median(r["parent_cpu"] for r in runs)
    worker = statistics.median(r["worker_cpu"] for r in runs)
    # The cores' time not spent by this benchmark's processes: others' load, or idle.
    other = max(0.0, cores * wall - parent - worker)
    return (
        f"| {name} | {wall:.2f} s ({wall / ideal - 1:+.0%}) | {p99:.1f} ms | {worst:.0f} ms |"
        f" {processes:.0f} | {parent:.1f} s | {worker:.1f} s | {other:.1f} s |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    ideal = args.studies * args.trials * TRIAL_SECONDS / args.workers
    runs: dict[str, list[dict[str, float]]] = {"service": [], "shared": [], "own": []}
    for repeat in range(args.repeats):
        runs["service"].append(await through_the_service(args))
        runs["shared"].append(await bare_studies(args, shared=True))
        runs["own"].append(await bare_studies(args, shared=False))
        walls = ", ".join(f"{name} {r[-1]['wall']:.2f} s" for name, r in runs.items())
        print(f"run {repeat + 1}: {walls}; load {os.getloadavg()[0]:.1f}", flush=True)
    print(
        f"{args.studies} studies x {args.trials} trials of 50 ms CPU, {args.workers} workers, "
        f"{args.clients} SSE clients; ideal {ideal:.1f} s; medians of {args.repeats}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(
        "| set-up | wall (vs ideal) | loop lag p99 | lag max | worker processes "
        "| parent CPU | workers' CPU | cores' time left over (others or idle) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    cores = os.cpu_count() or 1
    name = f"service, one `WorkerPool({args.workers})`, SSE clients"
    print(row(name, runs["service"], ideal, cores))
    print(row(f"bare `at.tune`, one `WorkerPool({args.workers})`", runs["shared"], ideal, cores))
    print(row("bare `at.tune`, a default pool per study", runs["own"], ideal, cores))


if __name__ == "__main__":
    asyncio.run(main())
