"""The live dashboard under real uvicorn: a browser sees appended trials; a live Tuner streams."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

import aiotune as at
from aiotune.journal.format import encode_trial
from aiotune.web import dashboard
from views_browser import PageLog, browser
from views_study import make_mo_study_sync, make_study_sync

__all__ = ["browser"]  # the fixture


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "trials.jsonl"
    make_study_sync(path, trials=12)
    return path


@contextlib.contextmanager
def serving(journal: Path) -> Iterator[str]:
    """``aiotune serve journal`` (real uvicorn, in its own process) on a free port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aiotune", "serve", str(journal), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/view", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.2)
        yield url
    finally:
        os.kill(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()


@pytest.fixture
def served(journal: Path) -> Iterator[str]:
    """The dashboard of the small study's journal."""
    with serving(journal) as url:
        yield url


def appended_trial(number: int, score: float) -> bytes:
    trial = at.Trial(
        number=number,
        params={"lr": 0.01, "layers": 3, "opt": "adam", "bn": True},
        status=at.TrialStatus.COMPLETE,
        score=score,
        started_at=time.time() - 1,
        finished_at=time.time(),
        duration=1.0,
        worker="appended",
    )
    return encode_trial(trial)


@pytest.mark.slow
def test_dashboard_updates_live_when_another_process_appends_to_the_journal(
    browser: Any, served: str, journal: Path
) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    log = PageLog(page)
    page.goto(served + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    before = int(page.evaluate("document.body.dataset.trials"))
    assert before == 12
    plots = page.locator("svg.chart").count()
    assert plots >= 7

    # A torn write: half a line changes nothing until the writer ends it.
    line = appended_trial(100, 5.0)
    with journal.open("ab") as file:
        file.write(line[:25])
    time.sleep(1.0)
    assert int(page.evaluate("document.body.dataset.trials")) == before

    began = time.monotonic()
    with journal.open("ab") as file:
        file.write(line[25:])
    page.wait_for_function(
        f"document.body.dataset.trials === '{before + 1}'", timeout=10_000, polling=50
    )
    latency = time.monotonic() - began
    assert latency < 5.0  # typically ~0.3 s: one journal poll (0.2 s) and one build
    cards = page.locator("#cards").inner_text()
    assert "5 (#100)" in cards  # the new best score, with its trial number
    assert page.locator("svg.chart").count() == plots
    assert log.errors == []
    assert log.external == []
    page.close()


@pytest.mark.slow
def test_dashboard_of_a_multi_objective_journal_redraws_its_pareto_front_live(
    browser: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "mo.jsonl"
    result = make_mo_study_sync(journal, trials=20)
    front = result.pareto_front
    with serving(journal) as url:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        log = PageLog(page)
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        points = "document.querySelector('#fig-pareto g.trace[data-name=\"Pareto front\"]')"
        assert int(page.evaluate(f"{points}.dataset.points")) == len(front)
        assert [
            int(r.split()[0]) for r in page.locator("#front table tr").all_inner_texts()[1:]
        ] == [t.number for t in front]
        # A trial better in both objectives than every other one: the front is that trial alone.
        winner = at.Trial(
            number=100, params={"x": 1.0, "y": 0.0, "kind": "plain"},
            status=at.TrialStatus.COMPLETE, scores=(5.0, -5.0), constraints=(-0.6,),
        )  # fmt: skip
        with journal.open("ab") as file:
            file.write(encode_trial(winner))
        page.wait_for_function(f"{points}.dataset.points === '1'", timeout=10_000, polling=50)
        assert page.locator("#front table tr").all_inner_texts()[1].split()[:3] == [
            "100",
            "5",
            "-5",
        ]
        assert "pareto front\n1 trials" in page.locator("#cards").inner_text().lower()
        assert log.errors == []
        page.close()


def test_the_dashboard_only_reads(served: str, journal: Path) -> None:
    before = journal.read_bytes()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for route in ("/", "/events", "/api/view"):
            assert httpx.request(method, served + route, timeout=10).status_code == 405
    view = httpx.get(served + "/api/view", timeout=10).json()
    assert view["summary"]["trials"] == 12
    assert journal.read_bytes() == before


async def slow_square(params: dict[str, Any]) -> float:
    await asyncio.sleep(0.4)  # long enough for views to catch trials in flight
    return float(params["x"] ** 2)


@pytest.mark.slow
async def test_a_running_tuner_mounted_in_an_app_streams_each_change(tmp_path: Path) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    space = at.Space(x=at.Int(0, 9))
    journal = tmp_path / "trials.jsonl"
    await at.tune(
        slow_square, space, strategy=at.Grid(), max_trials=3, observers=[at.JsonlWriter(journal)]
    )
    # Built before it runs; resuming replaces the tuner's history as it starts.
    tuner = at.Tuner(
        slow_square, space, strategy=at.Grid(), concurrency=2, max_trials=8, resume=journal
    )
    app = Starlette(routes=[Mount("/tuning", app=dashboard(tuner))])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    seen: list[dict[str, Any]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
            await anyio.sleep(0.02)
        base = f"http://127.0.0.1:{port}/tuning"
        async with httpx.AsyncClient(timeout=30) as client:
            page = await client.get(base + "/")
            assert page.status_code == 200
            assert '"/tuning/events?since=' in page.text  # links under the mount point
            assert "<script src=" not in page.text  # self-contained
            async with tuner, client.stream("GET", base + "/events") as events:
                with anyio.fail_after(60):
                    async for line in events.aiter_lines():
                        if line.startswith("data: "):
                            seen.append(orjson.loads(line[6:]))
                            if seen[-1]["summary"]["trials"] == 8:
                                break
        server.should_exit = True
    assert seen[0]["live"] is True
    trials = [view["summary"]["trials"] for view in seen]
    assert trials == sorted(trials)
    assert len(seen) >= 2  # the first view, then live updates
    assert seen[-1]["summary"]["best"]["number"] == 7  # x = 7 is the largest square of 0..7
    assert any(view["summary"]["running"] > 0 for view in seen)


def test_the_journal_follower_reads_only_what_was_appended_and_waits_for_torn_lines(
    journal: Path,
) -> None:
    from aiotune.journal.format import encode_repair
    from aiotune.views.source import JournalFollower

    follower = JournalFollower(journal)
    assert follower.poll() is True
    assert len(follower.trials) == 12
    assert follower.poll() is False  # nothing new
    line = appended_trial(50, 1.0)
    with journal.open("ab") as file:
        file.write(line[:30])
    assert follower.poll() is False
    assert any("incomplete" in note for note in follower.notes())
    # The writer was killed: the next one ends the torn line and marks it repaired.
    with journal.open("ab") as file:
        file.write(encode_repair() + appended_trial(51, 2.0))
    assert follower.poll() is True
    assert sorted(follower.trials)[-1] == 51
    assert 50 not in follower.trials
    assert follower.notes() == []  # a repaired torn write is not corruption
    with journal.open("ab") as file:
        file.write(b"not json\n" + appended_trial(52, 3.0))
    assert follower.poll() is True
    assert len(follower.notes()) == 1
    assert "skipped" in follower.notes()[0]
    journal.write_bytes(journal.read_bytes()[:2000])  # replaced by a shorter file
    follower.poll()
    assert len(follower.trials) < 12
    journal.unlink()
    assert follower.poll() is False
    assert any("no such file" in note for note in follower.notes())
