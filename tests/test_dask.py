"""Studies on a real Dask cluster: worker processes on loopback, no mocks.

One ``LocalCluster`` (2 worker processes, 1 thread each) serves the whole
module. Its worker processes are children of this process and outlive each
test (a killed one is restarted by its nanny), so this module narrows the
conftest's leak check: it spares the cluster's current workers, and the
module fixture checks they are all gone once the cluster is closed.

Objectives defined here are imported by name on the workers (``tests/`` is
on their ``sys.path``, as on the test process's).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

distributed = pytest.importorskip("distributed")

import aiotune as at  # noqa: E402
import aiotune.strategies  # noqa: E402
import objectives  # noqa: E402
from aiotune.execution.call import TrialCall  # noqa: E402
from aiotune.execution.executors import executor_traits  # noqa: E402
from aiotune.execution.inbox import ReportInbox  # noqa: E402
from aiotune.integrations._dask_private import (  # noqa: E402
    client_of_client_executor,
    queue_created,
)
from aiotune.integrations.dask import (  # noqa: E402
    DaskExecutor,
    DaskReportRelay,
    WorkerLost,
    is_dask_executor,
)
from conftest import children, wait_no_children  # noqa: E402

WORKERS = 2
EXAMPLES = Path(__file__).parent.parent / "examples"

_client: Any = None  # the module's client, while its cluster runs


# -- objectives (run on the Dask workers) -----------------------------------------------


def pid_file_then_sleep(params: dict[str, Any]) -> float:
    """Add this process's pid to ``<dir>/<x>.runs``; sleep ``seconds``, then mark ``<x>.ended``.

    Only the first run sleeps: a later one (a retry) returns at once.
    """
    folder, x = Path(params["dir"]), params["x"]
    runs = folder / f"{x}.runs"
    first = not runs.exists()
    with runs.open("a") as record:
        record.write(f"{os.getpid()}\n")
    if not first:
        return float(x)
    try:
        time.sleep(params["seconds"])
    finally:
        (folder / f"{x}.ended").write_text("ended")
    return float(x)


def report_steps(params: dict[str, Any], trial: Any) -> float:
    """Report ``steps`` values (step k: x * k), then return x."""
    for step in range(params["steps"]):
        trial.report(params["x"] * step, step)
    return float(params["x"])


def report_until_stopped(params: dict[str, Any], trial: Any) -> float:
    """Report every 50 ms for up to ``seconds``; mark ``<dir>/<x>.ended`` however it ends."""
    try:
        deadline = time.monotonic() + params["seconds"]
        step = 0
        while time.monotonic() < deadline:
            trial.report(float(step), step)
            step += 1
            time.sleep(0.05)
        return float(step)
    finally:
        (Path(params["dir"]) / f"{params['x']}.ended").write_text("ended")


# -- the cluster ------------------------------------------------------------------------


def cluster_pids(client: Any) -> set[int]:
    """Pids of the cluster's worker processes, once all of them are up."""
    client.wait_for_workers(WORKERS, timeout=300)  # a loaded machine starts processes slowly
    return set(client.run(os.getpid).values())


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A Client on a 2-process LocalCluster on loopback, for the whole module."""
    global _client
    cluster = distributed.LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: never collide with another cluster
        host="127.0.0.1",
    )
    client = distributed.Client(cluster, set_as_default=False)
    # Warm the workers: a cold one imports this module (and aiotune) while running its
    # first trial, which trial_timeout would count from submission.
    client.run(importlib.import_module, __name__)
    _client = client
    try:
        yield client
    finally:
        _client = None
        pids = cluster_pids(client)
        client.close()
        cluster.close()
        deadline = time.monotonic() + 30
        while (left := pids & children()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"Dask workers outlived their cluster: {sorted(left)}"


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """The conftest's check, sparing the module cluster's (possibly restarted) workers."""
    before = children()
    yield
    spared = cluster_pids(_client) if _client is not None else set()
    left = wait_no_children(before | spared)
    assert not left, f"child processes outlived the test: {sorted(left)}"


def runs(path: Path) -> list[int]:
    """The pids that ran a trial of ``pid_file_then_sleep``, in order."""
    return [int(line) for line in path.read_text().split()]


def _wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


async def wait_for_file(path: Path, within: float = 30.0) -> None:
    """Wait for a worker process to write ``path`` (in a thread: the loop stays free)."""
    await anyio.to_thread.run_sync(_wait_for_file, path, within, abandon_on_cancel=True)


# -- the extra --------------------------------------------------------------------------


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(at.MissingExtraError, match=r"aiotune\[dask\]") as raised:
        DaskExecutor("tcp://127.0.0.1:1")
    assert raised.value.extra == "dask"
    with pytest.raises(at.MissingExtraError):
        DaskReportRelay.for_executor(object(), object())  # type: ignore[arg-type]


def test_dask_executors_are_recognised(dask_client: Any) -> None:
    assert is_dask_executor(dask_client.get_executor())
    assert not is_dask_executor(None)
    with pytest.raises(at.ConfigurationError, match="not a Dask executor"):
        DaskReportRelay.for_executor(object(), object())  # type: ignore[arg-type]


def test_the_private_parts_of_distributed_aiotune_uses_are_there(dask_client: Any) -> None:
    """Fails when a Dask release changes what integrations/_dask_private.py relies on."""
    executor = dask_client.get_executor()
    assert "_client" in vars(executor), "distributed's ClientExecutor no longer has _client"
    assert client_of_client_executor(executor) is dask_client

    async def probe() -> None:
        queue = distributed.Queue(f"aiotune-probe-{os.getpid()}", client=dask_client)
        started = getattr(queue, "_started", None)
        assert isinstance(started, asyncio.Future), "distributed.Queue no longer has _started"
        await queue_created(queue)
        await queue.put(1)
        assert await queue.get() == 1
        queue.close()

    dask_client.sync(probe)


class _PlainExecutor(Executor):
    """An executor aiotune knows nothing about."""


def test_the_executor_seam_gives_dask_a_relay_and_other_executors_none(dask_client: Any) -> None:
    dask = executor_traits(dask_client.get_executor())
    assert dask.open_relay is not None
    assert dask.starts_reported
    assert dask.reports_live
    with ThreadPoolExecutor(1) as threads:
        local = executor_traits(threads)
    assert local.open_relay is None
    assert local.starts_reported
    assert local.reports_live
    plain = executor_traits(_PlainExecutor())
    assert (plain.open_relay, plain.starts_reported, plain.reports_live) == (None, False, False)


# -- studies ----------------------------------------------------------------------------


async def test_a_grid_study_runs_on_the_workers_and_the_journal_is_written_here(
    dask_client: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "trials.jsonl"
    space = at.Space(x=at.Int(0, 2), y=at.Categorical([10, 20]))
    result = await at.tune(
        objectives.pid,
        space,
        strategy=at.Grid(),
        concurrency=WORKERS,
        executor=dask_client.get_executor(),
        observers=[at.JsonlWriter(journal)],
    )
    assert [t.status for t in result.trials] == [at.TrialStatus.COMPLETE] * 6
    assert {int(t.score or 0) for t in result.trials} <= cluster_pids(dask_client)
    lines = [orjson.loads(line) for line in journal.read_bytes().splitlines()]
    assert lines[0]["kind"] == "header"
    assert sorted(line["number"] for line in lines[1:]) == list(range(6))
    assert len(at.load(journal).trials) == 6


async def test_a_random_study_suggests_what_it_would_suggest_locally(dask_client: Any) -> None:
    space = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))
    options: dict[str, Any] = {"strategy": at.Random(seed=3), "max_trials": 8, "concurrency": 2}
    remote = await at.tune(objectives.sum_xy, space, executor=dask_client.get_executor(), **options)
    options["strategy"] = at.Random(seed=3)
    local = await at.tune(objectives.sum_xy, space, executor="thread", **options)
    assert [t.params for t in remote.trials] == [t.params for t in local.trials]
    assert [t.score for t in remote.trials] == [t.score for t in local.trials]


async def test_a_bayesian_study_runs_on_the_workers(dask_client: Any) -> None:
    space = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))
    result = await at.tune(
        objectives.paraboloid,
        space,
        strategy=at.Bayesian(seed=0),
        max_trials=12,
        concurrency=WORKERS,
        executor=dask_client.get_executor(),
    )
    assert [t.status for t in result.trials] == [at.TrialStatus.COMPLETE] * 12


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"pure": False}, id="pure=False"),
        pytest.param({}, id="default"),
    ],
)
async def test_retries_run_the_trial_again_on_dask(
    dask_client: Any, tmp_path: Path, options: dict[str, Any]
) -> None:
    # client.get_executor() submits with pure=True: two attempts of one trial must
    # still be two Dask tasks, never the first one's cached result.
    space = at.Space(x=at.Int(0, 1), dir=at.Categorical([str(tmp_path)]))
    result = await at.tune(
        objectives.fail_first_attempt,
        space,
        strategy=at.Grid(),
        retries=1,
        concurrency=WORKERS,
        executor=dask_client.get_executor(**options),
    )
    assert [t.status for t in result.trials] == [at.TrialStatus.COMPLETE] * 2
    assert [t.attempts for t in result.trials] == [2, 2]


async def test_daskexecutor_owns_its_client(dask_client: Any) -> None:
    address = dask_client.scheduler.address
    executor = await anyio.to_thread.run_sync(DaskExecutor, address)
    try:
        assert executor.dask_client.status == "running"
        result = await at.tune(
            objectives.sum_xy,
            at.Space(x=at.Int(0, 3), y=at.Int(0, 1)),
            strategy=at.Grid(),
            concurrency=WORKERS,
            executor=executor,
        )
        assert [t.score for t in result.trials] == [0, 1, 1, 2, 2, 3, 3, 4]
        assert executor.dask_client.status == "running"  # aiotune never shuts down your executor
    finally:
        await anyio.to_thread.run_sync(executor.shutdown)
    assert executor.dask_client.status == "closed"
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(int, 1)
    executor.shutdown()  # a second shutdown is a no-op


async def test_a_trial_over_its_timeout_is_recorded_and_its_task_abandoned(
    dask_client: Any, tmp_path: Path
) -> None:
    async def strategy(space: at.Space, history: at.History) -> Any:
        yield {"x": 0, "seconds": 3.0, "dir": str(tmp_path)}
        yield {"x": 1, "seconds": 0.05, "dir": str(tmp_path)}

    result = await at.tune(
        pid_file_then_sleep,
        at.Space(
            x=at.Int(0, 1),
            seconds=at.Categorical([3.0, 0.05]),
            dir=at.Categorical([str(tmp_path)]),
        ),
        strategy=strategy,
        concurrency=WORKERS,
        trial_timeout=1.5,
        executor=dask_client.get_executor(),
    )
    slow, quick = result.trials
    assert slow.status is at.TrialStatus.TIMEOUT
    assert slow.error is not None
    assert "trial_timeout=1.5" in slow.error.message
    assert quick.status is at.TrialStatus.COMPLETE
    # Dask cannot stop a running task: the abandoned one sleeps on, and ends on its own.
    assert not (tmp_path / "0.ended").exists()
    await wait_for_file(tmp_path / "0.ended")


# -- the relay, driven as the orchestrator drives it -----------------------------------


def trial_call(relay: DaskReportRelay, objective: Any, params: dict[str, Any], number: int) -> Any:
    """The call the runner makes for trial ``number`` with ``relay`` wired in."""
    return TrialCall(
        objective,
        params,
        number,
        takes_context=objective is not pid_file_then_sleep,
        announce_start=True,
        remote_channel=relay.channel,
    )


async def run_call(
    executor: Any, relay: DaskReportRelay, objective: Any, params: dict[str, Any], number: int
) -> Any:
    call = trial_call(relay, objective, params, number)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


async def test_reports_and_prune_decisions_travel_through_the_scheduler(
    dask_client: Any,
) -> None:
    loop = asyncio.get_running_loop()
    reports: list[tuple[int, int, float]] = []
    started = anyio.Event()
    inbox = ReportInbox(
        loop,
        decide=lambda number, step, value: number == 1 and step >= 3,
        on_report=lambda *report: reports.append(report),
    )
    executor = dask_client.get_executor(pure=False)
    async with DaskReportRelay.for_executor(executor, inbox) as relay:
        inbox.watch(0, started.set)
        inbox.watch(1)
        kept, pruned = await asyncio.gather(
            run_call(executor, relay, report_steps, {"x": 2.0, "steps": 5}, 0),
            run_call(executor, relay, report_steps, {"x": 1.0, "steps": 10}, 1),
        )
        assert started.is_set()
        started_at, worker, intermediate = inbox.forget(0)
        assert started_at is not None
        assert worker == kept.worker
        assert intermediate == {k: 2.0 * k for k in range(5)}
        assert inbox.forget(1)[2] == {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0}
    assert (kept.score, kept.pruned) == (2.0, False)
    assert (pruned.score, pruned.pruned) == (3.0, True)
    assert dict(pruned.intermediate) == {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0}
    await anyio.wait_all_tasks_blocked()
    assert sorted(reports) == sorted(
        [(0, k, 2.0 * k) for k in range(5)] + [(1, k, float(k)) for k in range(4)]
    )
    stats = relay.statistics()
    assert (stats.starts, stats.reports, stats.reruns_refused) == (2, 9, 0)


async def test_a_rerun_after_a_lost_worker_is_refused(dask_client: Any, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    inbox = ReportInbox(loop)
    executor = dask_client.get_executor(pure=False)
    params = {"x": 0, "seconds": 60.0, "dir": str(tmp_path)}
    async with DaskReportRelay.for_executor(executor, inbox) as relay:
        inbox.watch(0)
        async with anyio.create_task_group() as group:
            outcome: list[Any] = []

            async def run() -> None:
                try:
                    await run_call(executor, relay, pid_file_then_sleep, params, 0)
                except WorkerLost as exc:
                    outcome.append(exc)

            group.start_soon(run)
            await wait_for_file(tmp_path / "0.runs")
            os.kill(runs(tmp_path / "0.runs")[0], signal.SIGKILL)
        assert relay.statistics().reruns_refused == 1
    (lost,) = outcome
    assert "was lost" in str(lost)
    assert len(runs(tmp_path / "0.runs")) == 1  # the objective never ran a second time


async def test_trials_still_running_when_the_study_ends_stop_at_their_next_report(
    dask_client: Any, tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    reporting = asyncio.Event()
    inbox = ReportInbox(loop, on_report=lambda *report: reporting.set())
    executor = dask_client.get_executor(pure=False)
    params = {"x": 0, "seconds": 60.0, "dir": str(tmp_path)}
    async with DaskReportRelay.for_executor(executor, inbox) as relay:
        inbox.watch(0)
        future = loop.run_in_executor(executor, trial_call(relay, report_until_stopped, params, 0))
        with anyio.fail_after(30):
            await reporting.wait()
    began = time.monotonic()  # the study is over, as far as the trial can tell
    with anyio.fail_after(30):
        outcome = await future
    assert outcome.pruned
    assert time.monotonic() - began < 10
    assert (tmp_path / "0.ended").exists()


# -- wired into the tuner -----------------------------------------------------------------


async def test_a_study_loses_one_trial_with_its_worker_and_goes_on(
    dask_client: Any, tmp_path: Path
) -> None:
    folder = str(tmp_path)
    space = at.Space(
        x=at.Int(0, 3), seconds=at.Categorical([60.0, 0.1]), dir=at.Categorical([folder])
    )

    async def strategy(space: at.Space, history: at.History) -> Any:
        yield {"x": 0, "seconds": 60.0, "dir": folder}
        for x in (1, 2, 3):
            yield {"x": x, "seconds": 0.1, "dir": folder}

    async def kill_the_first() -> None:
        await wait_for_file(tmp_path / "0.runs")
        os.kill(runs(tmp_path / "0.runs")[0], signal.SIGKILL)

    async with anyio.create_task_group() as group:
        group.start_soon(kill_the_first)
        result = await at.tune(
            pid_file_then_sleep,
            space,
            strategy=strategy,
            concurrency=WORKERS,
            executor=dask_client.get_executor(),
        )
    lost, *others = result.trials
    assert lost.status is at.TrialStatus.FAILED
    assert lost.error is not None
    assert lost.error.type == "WorkerLost"
    assert "was lost" in lost.error.message
    assert len(runs(tmp_path / "0.runs")) == 1  # Dask's re-run was refused
    assert [t.status for t in others] == [at.TrialStatus.COMPLETE] * 3


@pytest.mark.slow
async def test_a_trial_lost_with_its_worker_is_retried(dask_client: Any, tmp_path: Path) -> None:
    folder = str(tmp_path)

    async def strategy(space: at.Space, history: at.History) -> Any:
        yield {"x": 0, "seconds": 60.0, "dir": folder}

    async def kill_it() -> None:
        await wait_for_file(tmp_path / "0.runs")
        os.kill(runs(tmp_path / "0.runs")[0], signal.SIGKILL)

    async with anyio.create_task_group() as group:
        group.start_soon(kill_it)
        result = await at.tune(
            pid_file_then_sleep,
            at.Space(
                x=at.Categorical([0]), seconds=at.Categorical([60.0]), dir=at.Categorical([folder])
            ),
            strategy=strategy,
            retries=1,
            executor=dask_client.get_executor(),
        )
    (trial,) = result.trials
    assert trial.status is at.TrialStatus.COMPLETE
    assert trial.attempts == 2
    assert [e.type for e in trial.previous_errors] == ["WorkerLost"]
    assert len(runs(tmp_path / "0.runs")) == 2  # the first attempt, then the retry


@pytest.mark.slow
async def test_a_trial_that_kills_its_worker_fails_once_not_on_every_worker(
    dask_client: Any,
) -> None:
    # Unwired, Dask runs it on 4 workers in turn (allowed-failures=3), killing each,
    # and then raises KilledWorker.
    before = cluster_pids(dask_client)
    result = await at.tune(
        objectives.chaos,
        at.Space(mode=at.Categorical(["exit", "ok"]), x=at.Categorical([1.0])),
        strategy=at.Grid(),
        concurrency=WORKERS,
        executor=dask_client.get_executor(),
    )
    crashed, fine = result.trials
    assert crashed.status is at.TrialStatus.FAILED
    assert crashed.error is not None
    assert crashed.error.type == "WorkerLost"
    assert fine.status is at.TrialStatus.COMPLETE
    assert len(before - cluster_pids(dask_client)) == 1  # one worker lost, one restarted


async def test_the_timeout_clock_starts_when_a_dask_worker_begins(
    dask_client: Any, tmp_path: Path
) -> None:
    # Three 1 s trials on two workers: the third waits ~1 s in Dask's queue and must
    # not be charged for it.
    folder = str(tmp_path)
    result = await at.tune(
        pid_file_then_sleep,
        at.Space(x=at.Int(0, 2), seconds=at.Categorical([1.0]), dir=at.Categorical([folder])),
        strategy=at.Grid(),
        concurrency=3,
        trial_timeout=1.7,
        executor=dask_client.get_executor(),
    )
    assert [t.status for t in result.trials] == [at.TrialStatus.COMPLETE] * 3


async def test_reports_reach_the_observers_and_a_timed_out_trial_stops_at_its_next_report(
    dask_client: Any, tmp_path: Path
) -> None:
    reported: list[tuple[int, int, float]] = []

    class Reports:
        async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
            pass

        async def on_report(self, number: int, step: int, value: float) -> None:
            reported.append((number, step, value))

    folder = str(tmp_path)
    result = await at.tune(
        report_until_stopped,
        at.Space(
            x=at.Categorical([0]), seconds=at.Categorical([60.0]), dir=at.Categorical([folder])
        ),
        strategy=at.Grid(),
        trial_timeout=1.0,
        executor=dask_client.get_executor(),
        observers=[Reports()],
    )
    (trial,) = result.trials
    assert trial.status is at.TrialStatus.TIMEOUT
    assert trial.intermediate  # kept by the inbox although the trial never returned
    assert reported[:3] == [(0, 0, 0.0), (0, 1, 1.0), (0, 2, 2.0)]
    await wait_for_file(tmp_path / "0.ended", within=10)  # pruned, not 60 s later


async def test_a_pruner_stops_trials_on_the_dask_workers(dask_client: Any) -> None:
    async def strategy(space: at.Space, history: at.History) -> Any:
        for x in (1.0, 0.9, 0.1, 0.05):
            yield {"x": x, "steps": 6}

    result = await at.tune(
        report_steps,
        at.Space(x=at.Float(0.0, 1.0), steps=at.Categorical([6])),
        strategy=strategy,
        concurrency=1,
        pruner=at.MedianPruner(warmup_steps=1, min_trials=2),
        executor=dask_client.get_executor(),
    )
    complete, pruned = at.TrialStatus.COMPLETE, at.TrialStatus.PRUNED
    assert [t.status for t in result.trials] == [complete, complete, pruned, pruned]
    assert [dict(t.intermediate) for t in result.trials[2:]] == [
        {0: 0.0, 1: 0.1},
        {0: 0.0, 1: 0.05},
    ]


async def test_cancelling_a_study_on_dask_stops_its_trials_at_their_next_report(
    dask_client: Any, tmp_path: Path
) -> None:
    folder = str(tmp_path)
    with anyio.move_on_after(2.0) as scope:
        await at.tune(
            report_until_stopped,
            at.Space(x=at.Int(0, 1), seconds=at.Categorical([60.0]), dir=at.Categorical([folder])),
            strategy=at.Grid(),
            concurrency=WORKERS,
            executor=dask_client.get_executor(),
        )
    assert scope.cancelled_caught  # the cancellation reached us, not swallowed
    for x in (0, 1):  # told the study is over, each stops at its next report, not in 60 s
        await wait_for_file(tmp_path / f"{x}.ended", within=10)


async def test_an_asynchronous_client_on_the_studys_own_loop(dask_client: Any) -> None:
    reported: list[tuple[int, int, float]] = []

    class Reports:
        async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
            pass

        async def on_report(self, number: int, step: int, value: float) -> None:
            reported.append((number, step, value))

    address = dask_client.scheduler.address
    async with distributed.Client(address, asynchronous=True, set_as_default=False) as client:
        result = await at.tune(
            report_steps,
            at.Space(x=at.Categorical([1.0, 2.0]), steps=at.Categorical([3])),
            strategy=at.Grid(),
            concurrency=WORKERS,
            executor=client.get_executor(),
            observers=[Reports()],
        )
    assert [t.score for t in result.trials] == [1.0, 2.0]
    assert [dict(t.intermediate) for t in result.trials] == [
        {0: 0.0, 1: 1.0, 2: 2.0},
        {0: 0.0, 1: 2.0, 2: 4.0},
    ]
    assert len(reported) == 6  # the reports reached the orchestrator over the relay


# -- the example --------------------------------------------------------------------------


@pytest.mark.slow
def test_the_example_starts_its_own_cluster_and_tunes(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "dask_cluster.py"), "--trials", "8", "--workers", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "8 trials" in done.stdout
    assert len(at.load(tmp_path / "trials.jsonl").trials) == 8
