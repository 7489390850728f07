"""The reference service (examples/service): its HTTP API over the real app, and a real
uvicorn process that is killed mid-study and restarted without losing or repeating a trial."""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

import aiotune as at

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))  # the example is a package of the repository, not installed
service_app = importlib.import_module("examples.service.app")
studies = importlib.import_module("examples.service.studies")

pytestmark = pytest.mark.slow  # real worker processes throughout

SPACE = at.Space(x=at.Float(0.0, 1.0), n=at.Int(0, 4), kind=at.Categorical(["a", "b"]))
DEADLINE = 180.0  # generous: the machine may be loaded


def request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "space": SPACE.to_dict(),
        "objective": "sphere",
        "strategy": "random",
        "seed": 0,
        "max_trials": 6,
        "concurrency": 2,
    }
    body.update(overrides)
    return body


@asynccontextmanager
async def serving(data: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any, Any]]:
    """The app with its lifespan running, a client over ASGI, the app's Service, the app."""
    app = service_app.create_app(data, workers=2)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://service") as client,
    ):
        yield client, app.state.service, app


async def wait_for_trials(run: Any, count: int) -> None:
    """Wait until the study ``run`` has finished ``count`` trials."""
    with anyio.fail_after(DEADLINE):
        while len(run.trials()) < count:
            await run.tuner.history.wait_for_change()


def parse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], orjson.loads(fields["data"])))
    return events


def journal_trials(path: Path) -> list[dict[str, Any]]:
    lines = (orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip())
    return [line for line in lines if line.get("kind") == "trial"]


# -- the API --------------------------------------------------------------------------


async def test_create_list_get_and_stream_to_many_clients(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, service, _):
        created = await client.post("/studies", json=request(id="one", max_trials=8))
        assert created.status_code == 201, created.text
        assert created.json()["state"] in ("running", "finished")
        other = await client.post("/studies", json=request(seed=3))
        assert other.status_code == 201, other.text

        streams: list[str] = []

        async def watch() -> None:
            response = await client.get("/studies/one/events")
            assert response.headers["content-type"].startswith("text/event-stream")
            streams.append(response.text)

        async with anyio.create_task_group() as clients:
            for _ in range(3):
                clients.start_soon(watch)
        for text in streams:  # each client saw every trial once, then the end
            events = parse_events(text)
            assert sorted(data["number"] for kind, data in events if kind == "trial") == list(
                range(8)
            )
            assert events[-1][0] == "end"
            assert events[-1][1]["state"] == "finished"

        one = (await client.get("/studies/one")).json()
        assert one["state"] == "finished"
        assert one["counts"]["complete"] == 8
        assert one["stop_reason"] == "max_trials reached"
        assert one["best"]["score"] == max(
            t.score for t in service.get("one").trials() if t.score is not None
        )
        await service.get(other.json()["id"]).wait_over()
        listed = (await client.get("/studies")).json()["studies"]
        assert {s["id"] for s in listed} == {"one", other.json()["id"]}
        assert all(s["state"] == "finished" for s in listed)

    # On disk: the request and the journal, readable by aiotune itself.
    meta = orjson.loads((tmp_path / "one" / "study.json").read_bytes())
    assert at.Space.from_dict(meta["request"]["space"]) == SPACE
    assert meta["request"]["objective"] == "sphere"
    assert sorted(t.number for t in at.load(tmp_path / "one" / "trials.jsonl").trials) == list(
        range(8)
    )
    outcome = orjson.loads((tmp_path / "one" / "outcome.json").read_bytes())
    assert outcome["state"] == "finished"


BAD_REQUESTS = [
    pytest.param(b"{not json", "RequestError", "malformed JSON", id="malformed-json"),
    pytest.param([1, 2], "RequestError", "JSON object", id="not-an-object"),
    pytest.param(request(space={"x": 1}), "SpaceError", "space description", id="space-shape"),
    pytest.param(
        request(space={"params": {"x": {"type": "float", "low": 2, "high": 1}}}),
        "SpaceError",
        "'x'",
        id="space-bounds",
    ),
    pytest.param(
        request(space={"params": {"x": {"type": "complex"}}}),
        "SpaceError",
        "unknown domain type",
        id="space-type",
    ),
    pytest.param(request(objective="os.system"), "ConfigurationError", "unknown objective",
                 id="objective"),
    pytest.param(request(strategy="cmaes"), "ConfigurationError", "unknown strategy",
                 id="strategy"),
    pytest.param(request(max_trials=0), "ConfigurationError", "max_trials", id="max-trials-0"),
    pytest.param(request(max_trials="ten"), "ConfigurationError", "max_trials",
                 id="max-trials-str"),
    pytest.param(request(max_trials=None), "ConfigurationError", "max_trials: is required",
                 id="max-trials-missing"),
    pytest.param(request(concurrency=0), "ConfigurationError", "concurrency", id="concurrency"),
    pytest.param(request(seed=-1), "ConfigurationError", "seed", id="seed"),
    pytest.param(request(id="../etc"), "ConfigurationError", "id", id="id"),
    pytest.param(request(code="import os"), "RequestError", "unknown field", id="unknown-field"),
    pytest.param(request(strategy="grid"), "SpaceError", "resolution", id="grid-needs-resolution"),
]  # fmt: skip


async def test_bad_input_is_a_4xx_with_the_error_message_and_no_study(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, service, _):
        for case in BAD_REQUESTS:
            body, error, words = case.values
            if isinstance(body, bytes):
                response = await client.post("/studies", content=body)
            else:
                response = await client.post("/studies", json=body)
            assert response.status_code == 400, (case.id, response.text)
            assert response.json()["error"] == error, case.id
            assert words in response.json()["message"], (case.id, response.json())
        assert service.runs == {}
        assert (await client.get("/studies")).json() == {"studies": []}

        missing = await client.get("/studies/nope")
        assert missing.status_code == 404
        assert missing.json() == {"error": "StudyNotFound", "message": "no study 'nope'"}
        assert (await client.get("/studies/nope/events")).status_code == 404
        assert (await client.post("/studies/nope/stop")).status_code == 404

        assert (await client.post("/studies", json=request(id="twice"))).status_code == 201
        again = await client.post("/studies", json=request(id="twice"))
        assert again.status_code == 409
        assert "already exists" in again.json()["message"]
        await service.get("twice").wait_over()
        late = await client.post("/studies/twice/cancel")
        assert late.status_code == 409
        assert late.json()["error"] == "StudyConflict"
        assert (await client.get("/studies/twice")).json()["state"] == "finished"


async def test_stop_lets_trials_in_flight_finish(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, service, _):
        body = request(id="s", objective="sleepy_sphere", max_trials=200)
        assert (await client.post("/studies", json=body)).status_code == 201
        run = service.get("s")
        await wait_for_trials(run, 2)
        stopped = await client.post("/studies/s/stop")
        assert stopped.status_code == 202
        assert stopped.json()["state"] == "stopping"
        await run.wait_over()
        summary = (await client.get("/studies/s")).json()
    assert summary["state"] == "finished"
    assert summary["stop_reason"] == "stopped by request"
    assert 2 <= summary["counts"]["complete"] < 200
    assert summary["counts"]["cancelled"] == 0


async def test_cancel_ends_the_study_for_good(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, service, _):
        body = request(id="c", objective="sleepy_sphere", max_trials=200)
        assert (await client.post("/studies", json=body)).status_code == 201
        run = service.get("c")
        await wait_for_trials(run, 1)
        assert (await client.post("/studies/c/cancel")).status_code == 202
        await run.wait_over()
        summary = (await client.get("/studies/c")).json()
        assert summary["state"] == "cancelled"
        assert summary["counts"]["complete"] < 200
        # The pool kills the cancelled trial's worker from its own thread: soon, not at once.
        with anyio.fail_after(DEADLINE):
            while service.pool.statistics().busy:  # noqa: ASYNC110 - a thread's state: no event
                await anyio.sleep(0.02)
    finished = len(journal_trials(tmp_path / "c" / "trials.jsonl"))
    async with serving(tmp_path) as (client, service, _):  # a restart does not bring it back
        again = (await client.get("/studies/c")).json()
        assert again["state"] == "cancelled"
        assert again["counts"]["complete"] == finished
    assert len(journal_trials(tmp_path / "c" / "trials.jsonl")) == finished


async def test_a_client_that_disconnects_mid_stream_costs_nothing(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, service, app):
        body = request(id="d", objective="sleepy_sphere", max_trials=8)
        assert (await client.post("/studies", json=body)).status_code == 201
        run = service.get("d")

        # Speak ASGI to the app directly: read the first event, then hang up.
        first_event = anyio.Event()
        chunks: list[bytes] = []
        asked = False

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await first_event.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                chunks.append(message["body"])
                first_event.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/studies/d/events",
            "raw_path": b"/studies/d/events",
            "query_string": b"",
            "root_path": "",
            "headers": [],
            "server": ("service", 80),
            "client": ("127.0.0.1", 50000),
        }
        with anyio.fail_after(DEADLINE):
            await app(scope, receive, send)  # returns once it noticed
        assert chunks[0].startswith(b"event: trial")
        assert run.subscribers == 0
        await run.wait_over()  # the study went on without it
        assert (await client.get("/studies/d")).json()["counts"]["complete"] == 8


async def test_a_study_whose_journal_cannot_be_written_fails_alone(tmp_path: Path) -> None:
    (tmp_path / "broken" / "trials.jsonl").mkdir(parents=True)  # a directory where the file goes
    async with serving(tmp_path) as (client, service, _):
        fine = await client.post("/studies", json=request(id="fine", max_trials=10))
        broken = await client.post("/studies", json=request(id="broken"))
        assert fine.status_code == 201
        assert broken.status_code == 201  # the request was good: the study fails, not the call
        await service.get("broken").wait_over()
        await service.get("fine").wait_over()
        failed = (await client.get("/studies/broken")).json()
        assert failed["state"] == "failed"
        assert failed["error"].startswith("JournalError")
        assert "trials.jsonl" in failed["error"]
        ok = (await client.get("/studies/fine")).json()
        assert ok["state"] == "finished"
        assert ok["counts"]["complete"] == 10
        late = await client.post("/studies", json=request(id="late"))  # the service still serves
        assert late.status_code == 201
        await service.get("late").wait_over()
        assert service.get("late").state == "finished"


async def test_a_service_stopped_mid_study_resumes_it_on_the_next_start(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, service, _):
        body = request(id="r", objective="sleepy_sphere", max_trials=12)
        assert (await client.post("/studies", json=body)).status_code == 201
        run = service.get("r")
        await wait_for_trials(run, 3)
        pool = service.pool
    assert run.state == "interrupted"
    assert pool.statistics().workers_alive == 0  # the shared pool is closed with the app
    assert not (tmp_path / "r" / "outcome.json").exists()
    before = {t["number"]: t for t in journal_trials(tmp_path / "r" / "trials.jsonl")}
    assert 3 <= len(before) < 12
    async with serving(tmp_path) as (client, service, _):
        await service.get("r").wait_over()
        assert (await client.get("/studies/r")).json()["counts"]["complete"] == 12
    after = journal_trials(tmp_path / "r" / "trials.jsonl")
    assert sorted(t["number"] for t in after) == list(range(12))
    assert all(before[t["number"]] == t for t in after if t["number"] in before)


# -- a real server, killed ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class Server:
    """``python -m examples.service`` (the documented command) in its own process group."""

    def __init__(self, data: Path, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "examples.service", "--data", str(data)]
        command += ["--port", str(self.port), "--workers", "2"]
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pgid = self.process.pid
        deadline = time.monotonic() + DEADLINE
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                httpx.get(f"{self.base}/studies", timeout=5).raise_for_status()
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.2)

    def get(self, path: str) -> Any:
        response = httpx.get(self.base + path, timeout=30)
        response.raise_for_status()
        return response.json()

    def wait_for(self, check: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + DEADLINE
        while True:
            studies_now: list[dict[str, Any]] = self.get("/studies")["studies"]
            if check(studies_now):
                return studies_now
            assert time.monotonic() < deadline, (studies_now, self.log.read_text()[-3000:])
            time.sleep(0.1)

    def wait_group_gone(self, seconds: float) -> list[int]:
        deadline = time.monotonic() + seconds
        while (left := group_members(self.pgid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def kill_group(self) -> None:
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=60)


@pytest.mark.slow
def test_a_killed_service_loses_no_finished_trial_and_reruns_none(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "service.log"
    trials = 20
    server = Server(data, log)
    try:
        for seed, name in enumerate("abc"):
            body = request(id=name, objective="sleepy_sphere", max_trials=trials, seed=seed)
            response = httpx.post(f"{server.base}/studies", json=body, timeout=30)
            assert response.status_code == 201, response.text
        server.wait_for(lambda s: sum(study["counts"]["complete"] for study in s) >= 6)

        server.process.send_signal(signal.SIGKILL)  # the service alone: its workers orphaned
        server.process.wait(timeout=60)
        left = server.wait_group_gone(60)  # workers notice their parent is gone and exit
        server.kill_group()
        assert left == [], "worker processes outlived the killed service"

        before = {name: journal_trials(data / name / "trials.jsonl") for name in "abc"}
        assert sum(len(lines) for lines in before.values()) < 3 * trials, "killed too late"
        for name, lines in before.items():  # nothing written twice before the kill either
            assert len({t["number"] for t in lines}) == len(lines), name

        server = Server(data, log)  # same data directory: every unfinished study resumes
        server.wait_for(lambda s: len(s) == 3 and all(x["state"] == "finished" for x in s))
        for study in server.get("/studies")["studies"]:
            assert study["counts"]["complete"] == trials, study

        server.process.send_signal(signal.SIGTERM)  # a clean stop this time
        # uvicorn ends by re-raising the signal it handled: -SIGTERM is its clean exit
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
        assert log.read_text().rstrip().endswith(f"Finished server process [{server.pgid}]")
        assert server.wait_group_gone(60) == []
    finally:
        server.kill_group()

    for name in "abc":
        after = journal_trials(data / name / "trials.jsonl")
        numbers = [t["number"] for t in after]
        assert sorted(numbers) == list(range(trials)), (name, numbers)  # each once, none lost
        kept = {t["number"]: t for t in after}
        for trial in before[name]:  # finished before the kill: kept as it was, not run again
            assert kept[trial["number"]] == trial


async def test_a_study_whose_journal_is_corrupt_fails_alone_on_restart(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, service, _):
        for name in ("good", "bad"):
            body = request(id=name, objective="sleepy_sphere", max_trials=10)
            assert (await client.post("/studies", json=body)).status_code == 201
        await wait_for_trials(service.get("good"), 1)
        await wait_for_trials(service.get("bad"), 1)
    with (tmp_path / "bad" / "trials.jsonl").open("ab") as journal:
        journal.write(b"not json\n{}\n")  # not a torn tail: a corrupt line in the middle
    async with serving(tmp_path) as (client, service, _):
        await service.get("bad").wait_over()
        await service.get("good").wait_over()
        bad = (await client.get("/studies/bad")).json()
        good = (await client.get("/studies/good")).json()
    assert bad["state"] == "failed"
    assert bad["error"].startswith("JournalError")
    assert "line" in bad["error"]
    assert good["state"] == "finished"
    assert good["counts"]["complete"] == 10
