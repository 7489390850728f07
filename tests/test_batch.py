"""Several trials per worker round trip (batch=): real worker processes, no mocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

import aiotune as at
import objectives
from aiotune.execution.batch import BatchSizer

XY = at.Space(x=at.Float(0, 1), y=at.Float(0, 1))


class Seen:
    """An observer keeping every trial it is handed, one call per trial."""

    def __init__(self) -> None:
        self.trials: list[at.Trial] = []

    async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
        self.trials.append(trial)


@pytest.fixture
def pool() -> Any:
    with at.WorkerPool(2) as shared:
        yield shared


async def test_a_batched_study_runs_the_same_trials_and_records_each_one(
    pool: at.WorkerPool, tmp_path: Path
) -> None:
    seen = Seen()
    journal = tmp_path / "batched.jsonl"
    batched = await at.tune(
        objectives.sum_xy,
        XY,
        strategy=at.Random(seed=3),
        max_trials=40,
        concurrency=2,
        executor=pool,
        batch=8,
        observers=[at.JsonlWriter(journal), seen],
    )
    plain = await at.tune(
        objectives.sum_xy, XY, strategy=at.Random(seed=3), max_trials=40, executor=pool
    )
    assert len(batched.trials) == 40
    assert [(t.number, t.params, t.score) for t in batched.trials] == [
        (t.number, t.params, t.score) for t in plain.trials
    ]
    assert len(seen.trials) == 40  # observers get trials one by one
    lines = [orjson.loads(line) for line in journal.read_bytes().splitlines()]
    assert sorted(line["number"] for line in lines[1:]) == list(range(40))


async def test_a_crash_fails_only_the_trial_it_hit_and_the_rest_run(pool: at.WorkerPool) -> None:
    space = at.Space(mode=at.Categorical(["ok", "exit", "raise"]), x=at.Float(0, 1))
    initial = [{"mode": "ok", "x": 0.1}, {"mode": "exit", "x": 0.2}, {"mode": "ok", "x": 0.3}]
    initial += [{"mode": "raise", "x": 0.4}, {"mode": "ok", "x": 0.5}, {"mode": "ok", "x": 0.6}]
    result = await at.tune(
        objectives.chaos,
        space,
        strategy=at.Random(seed=0),  # the initial points only: max_trials is their number
        initial=initial,
        max_trials=6,
        concurrency=1,
        executor=pool,
        batch=6,
    )
    by_x = {t.params["x"]: t for t in result.trials}
    assert len(by_x) == 6
    assert by_x[0.2].status is at.TrialStatus.FAILED
    assert by_x[0.2].error is not None
    assert by_x[0.2].error.type == "WorkerDied"
    assert by_x[0.4].status is at.TrialStatus.FAILED
    assert by_x[0.4].error is not None
    assert by_x[0.4].error.type == "ValueError"
    for x in (0.1, 0.3, 0.5, 0.6):
        assert by_x[x].status is at.TrialStatus.COMPLETE, by_x[x]
        assert by_x[x].score == x


@pytest.mark.slow
async def test_a_timeout_fails_only_the_trial_that_ran_over(pool: at.WorkerPool) -> None:
    space = at.Space(mode=at.Categorical(["ok", "hang"]), x=at.Float(0, 1))
    initial = [{"mode": "ok", "x": 0.1}, {"mode": "hang", "x": 0.2}, {"mode": "ok", "x": 0.3}]
    with anyio.fail_after(60):
        result = await at.tune(
            objectives.chaos,
            space,
            strategy=at.Random(seed=0),  # the initial points only
            initial=initial,
            max_trials=3,
            concurrency=1,
            executor=pool,
            trial_timeout=1.0,
            batch=3,
        )
    by_x = {t.params["x"]: t for t in result.trials}
    assert by_x[0.2].status is at.TrialStatus.TIMEOUT
    assert by_x[0.1].status is at.TrialStatus.COMPLETE
    assert by_x[0.3].status is at.TrialStatus.COMPLETE  # ran in a new batch, on a new worker
    assert by_x[0.3].worker != by_x[0.1].worker


async def test_retries_and_reports_work_in_batches(pool: at.WorkerPool, tmp_path: Path) -> None:
    space = at.Space(x=at.Categorical([1, 2, 3]), dir=at.Categorical([str(tmp_path)]))
    result = await at.tune(
        objectives.fail_first_attempt,
        space,
        strategy=at.Grid(),
        concurrency=1,
        executor=pool,
        retries=1,
        batch=3,
    )
    assert [t.status for t in result.trials] == [at.TrialStatus.COMPLETE] * 3
    assert all(t.attempts == 2 for t in result.trials)
    assert all([e.type for e in t.previous_errors] == ["RuntimeError"] for t in result.trials)

    reported = await at.tune(
        objectives.with_context,
        at.Space(x=at.Float(0, 1)),
        strategy=at.Random(seed=0),
        max_trials=6,
        executor=pool,
        batch="auto",
    )
    assert all(len(t.intermediate) == 3 for t in reported.trials)
    assert sorted(t.score for t in reported.trials) == [float(n) for n in range(6)]


async def test_batches_on_threads_and_a_cancelled_study_records_cancelled() -> None:
    result = await at.tune(
        objectives.sum_xy,
        XY,
        strategy=at.Random(seed=0),
        max_trials=20,
        executor="thread",
        batch=5,
    )
    assert [t.status for t in result.trials] == [at.TrialStatus.COMPLETE] * 20

    space = at.Space(seconds=at.Categorical([30.0]))
    async with at.WorkerPool(1) as own:
        tuner = at.Tuner(
            objectives.sleepy,
            space,
            strategy=at.Random(seed=0),
            max_trials=4,
            executor=own,
            batch=4,
        )
        with anyio.move_on_after(1.0):
            await tuner.run()
        statuses = [t.status for t in tuner.history.trials]
        assert statuses == [at.TrialStatus.CANCELLED] * 4


def test_auto_sizes_batches_from_trial_durations() -> None:
    sizer = BatchSizer("auto")
    assert sizer.size() == 1  # nothing known yet
    quick = at.Trial(number=0, params={}, status=at.TrialStatus.COMPLETE, score=1.0, duration=1e-5)
    for _ in range(5):
        sizer.observe(quick)
    assert sizer.size() == BatchSizer.LIMIT
    assert sizer.size(remaining=7) == 7
    slow = at.Trial(number=1, params={}, status=at.TrialStatus.COMPLETE, score=1.0, duration=2.0)
    for _ in range(100):
        sizer.observe(slow)
    assert sizer.size() == 1
    assert BatchSizer(16).size() == 16


@pytest.mark.parametrize("bad", [0, -3, 2.5, "big", True])
def test_bad_batch_is_a_configuration_error(bad: Any) -> None:
    with pytest.raises(at.ConfigurationError) as caught:
        at.Tuner(objectives.sum_xy, XY, batch=bad)
    assert caught.value.argument == "batch"
    with pytest.raises(at.ConfigurationError):
        at.Tuner(objectives.async_sum, XY, batch=4)
