"""One WorkerPool shared by many concurrent studies (issue 10, part 1): real processes, no mocks."""

from __future__ import annotations

import concurrent.futures
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiotune as at
import objectives
from conftest import children

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:  # workers import the helpers by name through the inherited sys.path
    sys.path.insert(0, TESTS)

import _pool_helpers as helpers  # noqa: E402

DEADLINE = 60.0
SECONDS = at.Space(seconds=at.Categorical([0.05]))


class ChildCounter:
    """Samples this process's children from a thread; keeps the most seen at once."""

    def __init__(self) -> None:
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.most = max(self.most, len(children()))

    def __enter__(self) -> ChildCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def pool() -> Iterator[at.WorkerPool]:
    with at.WorkerPool(2) as shared:
        yield shared


@pytest.mark.slow
async def test_five_studies_share_two_workers_and_a_timeout_touches_only_its_trial(
    pool: at.WorkerPool,
) -> None:
    assert children() == set()
    with ChildCounter() as counter, anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as group:
            results: dict[str, at.TuningResult] = {}

            def study(name: str, objective: Any, space: at.Space, **options: Any) -> Any:
                async def run() -> None:
                    results[name] = await at.tune(
                        objective, space, strategy=at.Random(seed=0), executor=pool, **options
                    )

                return run

            # A trial that hangs until its timeout kills its worker, beside a long one of
            # another study that must run on undisturbed.
            hang = at.Space(mode=at.Categorical(["hang"]), x=at.Float(0, 1))
            group.start_soon(study("hang", objectives.chaos, hang, max_trials=1, trial_timeout=1.0))
            long = at.Space(seconds=at.Categorical([2.0]))
            group.start_soon(study("long", objectives.pid_then_sleep, long, max_trials=1))
            await until(lambda: pool.statistics().busy == 2)
            for name in ("a", "b", "c"):
                group.start_soon(
                    study(name, objectives.sleepy, SECONDS, max_trials=4, concurrency=2)
                )

    assert counter.most <= 2  # never more processes than the pool's workers
    (hung,) = results["hang"].trials
    assert hung.status is at.TrialStatus.TIMEOUT
    (long_trial,) = results["long"].trials
    assert long_trial.status is at.TrialStatus.COMPLETE  # its worker was not the one killed
    assert long_trial.score == 2.0
    for name in ("a", "b", "c"):
        assert [t.status for t in results[name].trials] == [at.TrialStatus.COMPLETE] * 4
        assert sorted(t.number for t in results[name].trials) == [0, 1, 2, 3]
    stats = pool.statistics()
    assert stats.processes_started == 3  # the killed worker was replaced, once, for everyone
    # aiotune never shuts down a pool it was given: it still takes work.
    assert pool.submit(helpers.identity, 7).result(timeout=DEADLINE) == 7


def test_studies_waiting_for_a_worker_are_served_in_turn(tmp_path: Path) -> None:
    with at.WorkerPool(1) as pool:
        go = tmp_path / "go"
        first = pool.submit(helpers.write_pid_and_wait, str(tmp_path / "pid"), str(go))
        assert helpers_eventually(lambda: (tmp_path / "pid").exists())
        a, b = object(), object()  # two studies' inboxes
        done: list[str] = []
        lock = threading.Lock()

        def record(future: concurrent.futures.Future[str]) -> None:
            with lock:
                done.append(future.result())

        futures = [pool.submit(helpers.GroupedJob(a, f"a{i}")) for i in range(6)]
        futures += [pool.submit(helpers.GroupedJob(b, f"b{i}")) for i in range(2)]
        for future in futures:
            future.add_done_callback(record)
        go.touch()
        first.result(timeout=DEADLINE)
        concurrent.futures.wait(futures, timeout=DEADLINE)
    # One queue per study, taken in turn: b is not stuck behind a's long queue.
    assert done == ["a0", "b0", "a1", "b1", "a2", "a3", "a4", "a5"]


async def test_a_small_study_is_not_starved_by_a_big_one_on_a_shared_pool() -> None:
    async with at.WorkerPool(1) as pool:
        async with anyio.create_task_group() as group:
            results: dict[str, at.TuningResult] = {}

            async def study(name: str, trials: int, concurrency: int) -> None:
                results[name] = await at.tune(
                    objectives.sleepy,
                    SECONDS,
                    strategy=at.Random(seed=0),
                    max_trials=trials,
                    concurrency=concurrency,
                    executor=pool,
                )

            group.start_soon(study, "big", 12, 6)
            await until(lambda: pool.statistics().queued >= 5)
            group.start_soon(study, "small", 2, 2)
    big_end = max(t.finished_at or 0.0 for t in results["big"].trials)
    small_end = max(t.finished_at or 0.0 for t in results["small"].trials)
    assert small_end < big_end
    small_started = sorted(t.started_at or 0.0 for t in results["small"].trials)
    big_started = sorted(t.started_at or 0.0 for t in results["big"].trials)
    assert small_started[-1] < big_started[6]  # both its trials ran before half of big's


async def test_closing_a_shared_pool_fails_the_studies_using_it_with_a_typed_error() -> None:
    pool = at.WorkerPool(2)
    space = at.Space(seconds=at.Categorical([0.3]))
    tuners = [
        at.Tuner(objectives.sleepy, space, strategy=at.Random(seed=0), executor=pool)
        for _ in range(2)
    ]
    errors: list[BaseException] = []

    async def run(tuner: at.Tuner) -> None:
        try:
            await tuner.run()
        except at.PoolClosedError as exc:
            errors.append(exc)

    with anyio.fail_after(DEADLINE):  # no study hangs
        async with anyio.create_task_group() as group:
            for tuner in tuners:
                group.start_soon(run, tuner)
            await until(lambda: pool.statistics().busy == 2)
            pool.terminate()
    assert len(errors) == 2
    for tuner in tuners:
        failed = [t for t in tuner.history.trials if t.status is at.TrialStatus.FAILED]
        assert failed  # the trial in flight when the pool closed
        assert all(t.error is not None and t.error.type == "PoolClosedError" for t in failed)
    pool.shutdown()


async def test_the_pool_is_an_async_context_manager_that_waits_for_its_jobs() -> None:
    async with at.WorkerPool(1) as pool:
        result = await at.tune(
            objectives.sum_xy,
            at.Space(x=at.Float(0, 1), y=at.Float(0, 1)),
            strategy=at.Random(seed=0),
            max_trials=3,
            executor=pool,
        )
        assert len(result.trials) == 3
        assert pool.workers == 1
    with pytest.raises(at.PoolClosedError):
        pool.submit(helpers.identity, 1)


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (on pool statistics: there is no event to wait on) until it holds."""
    with anyio.fail_after(DEADLINE):
        while True:
            if condition():
                return
            await anyio.sleep(0.02)


def helpers_eventually(condition: Any, timeout: float = DEADLINE) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())
