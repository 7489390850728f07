"""Seeing a study at scale: report size and render time, dashboard latency and loop lag.

    python benchmarks/views.py [--trials 1000] [--big 20000] [--viewers 20] [--repeats 3]
                               [--screenshots docs/img]

1. The HTML report of a ``--trials`` journal and of a ``--big`` journal:
   the file's size, the time to build it, and the time headless Chromium
   takes from navigation until every plot is drawn (medians of ``--repeats``);
   for comparison, the time a page that only loads Plotly.js takes (when
   ``plotly`` is installed: what the report inlined before it drew its own
   charts).
2. The dashboard following a journal: the delay from appending a trial to
   the server-sent event that carries it (median of several appends).
3. The dashboard served (uvicorn, in the study's own event loop) for a
   running ``Tuner`` resumed from the ``--trials`` journal, watched by
   ``--viewers`` SSE clients in another process: the loop's lag (a 5 ms
   heartbeat), p50/p99/max, against the same study with no viewer.

With ``--screenshots DIR`` it also saves the report and the dashboard of a
small study, and the top of the report of a small two-objective study (its
Pareto front), as PNGs there (the README's pictures).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np

import aiotune as at
from aiotune.journal.format import encode_header, encode_trial

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

SPACE = at.Space(
    lr=at.Float(1e-5, 1e-1, log=True),
    dropout=at.Float(0.0, 0.5),
    layers=at.Int(1, 8),
    width=at.Int(16, 1024, log=True),
    optimizer=at.Categorical(["adam", "sgd", "rmsprop"]),
    batchnorm=at.Bool(),
)


def score_of(params: dict[str, Any], rng: random.Random) -> float:
    """A smooth, noisy response surface over SPACE."""
    lr = math.log10(params["lr"])
    value = 0.9 - 0.02 * (lr + 3) ** 2 - 0.3 * (params["dropout"] - 0.2) ** 2
    value -= 0.01 * abs(params["layers"] - 4) + (0.03 if params["optimizer"] == "sgd" else 0.0)
    return value + rng.gauss(0, 0.01)


def write_journal(path: Path, n: int, seed: int = 0) -> None:
    """A journal of ``n`` trials: 4 workers, 5 learning-curve steps, 10% pruned, 5% failed."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    clock = [1.8e9] * 4
    with path.open("wb") as file:
        file.write(encode_header(SPACE, "maximize", "benchmark"))
        for number in range(n):
            params = SPACE.sample(np_rng)
            worker = min(range(4), key=clock.__getitem__)
            duration = rng.uniform(0.5, 3.0)
            started = clock[worker] + rng.uniform(0.0, 0.2)
            clock[worker] = started + duration
            final = score_of(params, rng)
            roll = rng.random()
            steps = 5 if roll >= 0.1 else rng.randint(1, 3)
            curve = {s: final * (s + 1) / 5 for s in range(steps)}
            if roll < 0.05:
                status, score, error = (
                    at.TrialStatus.FAILED,
                    None,
                    at.ErrorInfo("ValueError", "diverged"),
                )
            elif roll < 0.15:
                status, score, error = at.TrialStatus.PRUNED, curve[steps - 1], None
            else:
                status, score, error = at.TrialStatus.COMPLETE, final, None
            trial = at.Trial(
                number=number, params=params, status=status, score=score, intermediate=curve,
                error=error, started_at=started, finished_at=started + duration,
                duration=duration, worker=f"host:{4000 + worker}",
            )  # fmt: skip
            file.write(encode_trial(trial))


def render_seconds(browser: Any, url: str, plots: int = 7) -> tuple[float, float | None]:
    """Seconds from navigation until every plot of the page is drawn, two ways.

    Wall: until Playwright sees ``data-ready`` (includes its polling). In-page:
    the page's own ``aiotune-drawn`` mark, set once the last plot is drawn,
    from the navigation's start (``None`` on a page without it).
    """
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    began = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=120_000)
    elapsed = time.perf_counter() - began
    mark = page.evaluate(
        "(performance.getEntriesByName('aiotune-drawn')[0] || {startTime: null}).startTime"
    )
    drawn = page.locator("svg.chart").count()
    page.close()
    if errors or drawn < plots:
        raise RuntimeError(f"the page did not render: {drawn} plots, errors {errors}")
    return elapsed, None if mark is None else mark / 1000


def plotly_floor(browser: Any, repeats: int, work: Path) -> list[tuple[str, str]]:
    """For comparison: a page that only loads Plotly.js (what the report inlined before)."""
    try:
        import plotly
    except ImportError:
        return []
    path = Path(str(plotly.__file__)).parent / "package_data" / "plotly.min.js"
    floor = work / "plotly-only.html"
    floor.write_text(
        f"<!DOCTYPE html><html><head><script>{path.read_text()}</script></head>"
        "<body><script>document.body.dataset.ready = '1'</script></body></html>"
    )
    times = [render_seconds(browser, floor.as_uri(), plots=0)[0] for _ in range(repeats)]
    return [("for comparison, a page with only Plotly.js inlined: load",
             f"{statistics.median(times):.2f} s")]  # fmt: skip


def bench_reports(sizes: list[int], repeats: int, work: Path) -> list[tuple[str, str]]:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            rows += plotly_floor(browser, repeats, work)
            for n in sizes:
                journal = work / f"j{n}.jsonl"
                write_journal(journal, n)
                builds, renders, marks = [], [], []
                for _ in range(repeats):
                    began = time.perf_counter()
                    out = at.report(journal, work / f"r{n}.html")
                    builds.append(time.perf_counter() - began)
                    wall, mark = render_seconds(browser, out.as_uri())
                    renders.append(wall)
                    marks.append(mark or math.nan)
                size = out.stat().st_size / 1e6
                rows.append((f"report of {n:,} trials: file size", f"{size:.2f} MB"))
                rows.append(
                    (
                        f"report of {n:,} trials: build (Python)",
                        f"{statistics.median(builds):.2f} s",
                    )
                )
                rows.append(
                    (
                        f"report of {n:,} trials: render in headless Chromium (every plot drawn)",
                        f"{statistics.median(renders):.2f} s "
                        f"(in-page: {statistics.median(marks):.2f} s)",
                    )
                )
        finally:
            browser.close()
    return rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def bench_append_latency(n: int, appends: int, work: Path) -> list[tuple[str, str]]:
    journal = work / "follow.jsonl"
    write_journal(journal, n, seed=1)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aiotune", "serve", str(journal), "--port", str(port)]
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/api/view")
        latencies = []
        with httpx.Client(timeout=60) as client:
            with client.stream("GET", url + "/events") as events:
                lines = events.iter_lines()
                for line in lines:  # the current view first
                    if line.startswith("data: "):
                        break
                rng = random.Random(2)
                for i in range(appends):
                    time.sleep(0.5)
                    trial = at.Trial(
                        number=n + i, params=SPACE.sample(np.random.default_rng(i)),
                        status=at.TrialStatus.COMPLETE, score=rng.random(),
                    )  # fmt: skip
                    began = time.perf_counter()
                    with journal.open("ab") as file:
                        file.write(encode_trial(trial))
                    for line in lines:
                        if line.startswith("data: ") and f'"trials":{n + i + 1},' in line:
                            latencies.append(time.perf_counter() - began)
                            break
    finally:
        server.terminate()
        server.wait(timeout=15)
    return [
        (
            f"dashboard on a {n:,}-trial journal: append to SSE event (median of {appends})",
            f"{statistics.median(latencies) * 1000:.0f} ms",
        )
    ]


VIEWERS = textwrap.dedent(
    """
    import asyncio, sys, httpx
    async def view(url, counts, i):
        async with httpx.AsyncClient(timeout=None) as client:
            async with client.stream("GET", url) as events:
                async for line in events.aiter_lines():
                    if line.startswith("data: "):
                        counts[i] += 1
    async def main(url, n, seconds):
        counts = [0] * n
        tasks = [asyncio.create_task(view(url, counts, i)) for i in range(n)]
        await asyncio.sleep(seconds)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        print(min(counts), max(counts))
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
    """
)


async def noisy_objective(params: dict[str, Any]) -> float:
    await asyncio.sleep(random.uniform(0.02, 0.08))
    return score_of(params, random.Random())


async def lag_run(journal: Path, viewers: int, seconds: float) -> tuple[list[float], str, int]:
    import uvicorn

    from aiotune.web import dashboard

    tuner = at.Tuner(
        noisy_objective, SPACE, strategy=at.Random(seed=3), concurrency=8, resume=journal,
    )  # fmt: skip
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(dashboard(tuner), host="127.0.0.1", port=port, log_level="warning",
                       lifespan="off")
    )  # fmt: skip
    lags: list[float] = []
    seen = ""

    async def heartbeat() -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - began - 0.005)

    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:
            await anyio.sleep(0.02)
        async with tuner:
            await anyio.sleep(1.0)  # the resumed history is loaded
            tg.start_soon(heartbeat)
            if viewers:
                watchers = await anyio.open_process(
                    [sys.executable, "-c", VIEWERS, f"http://127.0.0.1:{port}/events",
                     str(viewers), str(seconds)]
                )  # fmt: skip
                async with watchers:
                    assert watchers.stdout is not None
                    out = b"".join([chunk async for chunk in watchers.stdout])
                    await watchers.wait()
                seen = out.decode().strip()
            else:
                await anyio.sleep(seconds)
            trials = len(tuner.history.trials)
            tuner.stop("benchmark over")
        server.should_exit = True
        tg.cancel_scope.cancel()
    return lags, seen, trials


def bench_viewers(n: int, viewers: int, seconds: float, work: Path) -> list[tuple[str, str]]:
    journal = work / "live.jsonl"
    rows = []
    for count in (0, viewers):
        write_journal(journal, n, seed=4)
        lags, seen, trials = asyncio.run(lag_run(journal, count, seconds))
        lags.sort()
        p50 = lags[len(lags) // 2] * 1000
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000
        label = f"loop lag, running study ({n:,} resumed + {trials - n} new trials), "
        label += f"{count} SSE viewers"
        extra = f" (events per viewer: min/max {seen})" if seen else ""
        rows.append(
            (label, f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lags[-1] * 1000:.0f} ms{extra}")
        )
    return rows


async def two_objectives(params: dict[str, Any]) -> at.Outcome:
    """Accuracy (maximise) against latency (minimise), with a limit on ``dropout``."""
    latency = params["layers"] * math.log2(params["width"])  # bigger models: slower ...
    accuracy = score_of(params, random.Random(params["lr"])) + 0.002 * latency  # ... and better
    return at.Outcome((accuracy, latency), constraints=(params["dropout"] - 0.4,))


def screenshots(out_dir: Path, work: Path) -> None:
    from playwright.sync_api import sync_playwright

    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # the pages show the journal's path as given: keep it short
    journal = Path("trials.jsonl")
    write_journal(journal, 150, seed=7)
    report = at.report(journal, work / "report.html").resolve()
    multi = at.run(
        two_objectives, SPACE, strategy=at.Random(seed=5), max_trials=150,
        direction=("maximize", "minimize"),
    )  # fmt: skip
    pareto = at.report(multi, work / "pareto.html").resolve()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aiotune", "serve", str(journal), "--port", str(port)]
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/view")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(report.as_uri())
            page.wait_for_selector("body[data-ready='1']")
            page.screenshot(path=str(out_dir / "report.png"), full_page=True)
            page.goto(pareto.as_uri())
            page.wait_for_selector("body[data-ready='1']")
            box = page.locator("#figures").bounding_box()
            assert box is not None
            clip = {"x": 0, "y": 0, "width": 1280, "height": box["y"] + 520}
            page.screenshot(path=str(out_dir / "pareto.png"), clip=clip)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("body[data-ready='1']")
            page.wait_for_function("document.getElementById('dot').classList.contains('on')")
            page.screenshot(path=str(out_dir / "dashboard.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=15)
    print(f"screenshots: {out_dir}: report.png, pareto.png, dashboard.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--big", type=int, default=20000)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0, help="of each loop-lag run")
    parser.add_argument("--appends", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--screenshots", type=Path, help="save report.png and dashboard.png here")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.screenshots:
            screenshots(args.screenshots, work)
        rows = bench_reports([args.trials, args.big], args.repeats, work)
        rows += bench_append_latency(args.trials, args.appends, work)
        rows += bench_viewers(args.trials, args.viewers, args.seconds, work)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
