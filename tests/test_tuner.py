"""The orchestrator end to end: strategies, executors, observers, stopping, failures."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest

import aiotune as at
import objectives

XY = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))


# -- the reference behaviour ------------------------------------------------------------


@pytest.mark.slow
async def test_random_search_finds_the_top_of_the_noisy_paraboloid() -> None:
    result = await at.tune(
        objectives.paraboloid, XY, strategy=at.Random(seed=0), max_trials=1000, concurrency=2
    )
    assert len(result.trials) == 1000
    assert result.best.score is not None
    assert result.best.score > 0.95


async def test_grid_evaluates_each_point_once_and_finds_the_best_point() -> None:
    space = at.Space(x=at.Float(0.0, 1.0, step=0.5), y=at.Float(0.0, 1.0, step=1.0))
    result = await at.tune(objectives.paraboloid, space, strategy=at.Grid(), concurrency=2)
    points = sorted((t.params["x"], t.params["y"]) for t in result.trials)
    assert points == [(x, y) for x in (0.0, 0.5, 1.0) for y in (0.0, 1.0)]
    assert (result.best.params["x"], result.best.params["y"]) == (0.5, 1.0)
    assert result.stop_reason == "strategy exhausted"


# -- where trials run -------------------------------------------------------------------


async def test_sync_objectives_run_in_other_processes() -> None:
    result = await at.tune(objectives.pid, XY, max_trials=6, concurrency=2)
    pids = {int(t.score) for t in result.trials if t.score is not None}
    assert len(result.trials) == 6
    assert pids
    assert os.getpid() not in pids
    assert all(t.worker is not None and str(os.getpid()) not in t.worker for t in result.trials)


async def test_async_objective_runs_on_the_loop_without_processes() -> None:
    from conftest import children

    before = children()
    result = await at.tune(objectives.async_sum, XY, max_trials=5, concurrency=3)
    assert children() == before
    assert [t.status for t in result.trials] == [at.TrialStatus.COMPLETE] * 5
    assert all(t.score == t.params["x"] + t.params["y"] for t in result.trials)


async def test_thread_executor_and_a_users_executor_which_stays_open() -> None:
    result = await at.tune(objectives.sum_xy, XY, max_trials=4, executor="thread")
    assert len(result.trials) == 4
    with ThreadPoolExecutor(2) as executor:
        result = await at.tune(objectives.sum_xy, XY, max_trials=4, executor=executor)
        assert len(result.trials) == 4
        assert executor.submit(int, "7").result() == 7  # not shut down by aiotune


async def test_objective_with_context_reports_from_a_worker_process() -> None:
    result = await at.tune(objectives.with_context, XY, max_trials=3, concurrency=2)
    for trial in result.trials:
        assert trial.score == trial.number
        assert dict(trial.intermediate) == {s: trial.params["x"] * s for s in range(3)}


async def test_lambda_objective_is_refused_before_any_trial() -> None:
    with pytest.raises(at.ObjectiveError, match=r"pickled.*executor='thread'"):
        await at.tune(lambda p: 1.0, XY, max_trials=2)
    result = await at.tune(lambda p: p["x"], XY, max_trials=2, executor="thread")
    assert len(result.trials) == 2


# -- failures ---------------------------------------------------------------------------


async def test_a_raising_objective_fails_its_trial_and_the_study_goes_on() -> None:
    space = at.Space(x=at.Categorical([-1, 1, -2, 2]))
    result = await at.tune(objectives.fail_when_negative, space, strategy=at.Grid(), concurrency=2)
    by_x = {t.params["x"]: t for t in result.trials}
    assert by_x[-1].status is at.TrialStatus.FAILED
    assert by_x[-1].error is not None
    assert by_x[-1].error.type == "ValueError"
    assert "negative x: -1" in by_x[-1].error.message
    assert "fail_when_negative" in by_x[-1].error.traceback
    assert by_x[2].status is at.TrialStatus.COMPLETE
    assert result.best.params == {"x": 2}


@pytest.mark.parametrize(
    ("kind", "message"),
    [("nan", "nan"), ("inf", "inf"), ("str", "str '0.5'"), ("none", "NoneType None")],
)
async def test_a_non_finite_or_non_numeric_result_is_a_failed_trial(
    kind: str, message: str
) -> None:
    space = at.Space(kind=at.Categorical(["ok", kind]))
    result = await at.tune(objectives.bad_return, space, strategy=at.Grid(), executor="thread")
    bad = next(t for t in result.trials if t.params["kind"] == kind)
    assert bad.status is at.TrialStatus.FAILED
    assert bad.score is None
    assert bad.error is not None
    assert message in bad.error.message
    assert "finite number" in bad.error.message
    assert result.best.params == {"kind": "ok"}


async def test_no_complete_trial_means_no_best() -> None:
    space = at.Space(x=at.Categorical([-1, -2]))
    result = await at.tune(
        objectives.fail_when_negative, space, strategy=at.Grid(), executor="thread"
    )
    with pytest.raises(at.NoCompleteTrialError, match="2 failed"):
        _ = result.best


# -- strategies -------------------------------------------------------------------------


async def test_random_gives_trial_k_the_same_params_whatever_the_concurrency() -> None:
    one = await at.tune(
        objectives.sum_xy,
        XY,
        strategy=at.Random(seed=7),
        max_trials=12,
        concurrency=1,
        executor="thread",
    )
    four = await at.tune(
        objectives.sum_xy,
        XY,
        strategy=at.Random(seed=7),
        max_trials=12,
        concurrency=4,
        executor="thread",
    )
    other = await at.tune(
        objectives.sum_xy,
        XY,
        strategy=at.Random(seed=8),
        max_trials=12,
        concurrency=1,
        executor="thread",
    )
    assert [t.params for t in one.trials] == [t.params for t in four.trials]
    assert [t.params for t in one.trials] != [t.params for t in other.trials]


async def test_a_users_async_generator_strategy_sees_the_live_history() -> None:
    seen: list[int] = []

    async def ladder(space: at.Space, history: at.History) -> AsyncIterator[dict[str, Any]]:
        for i in range(4):
            while len(history) < i:  # sequential: wait for the previous result
                await history.wait_for_change()
            seen.append(len(history))
            yield {"x": i / 4, "y": 0.0}

    result = await at.tune(objectives.sum_xy, XY, strategy=ladder, concurrency=3, executor="thread")
    assert [t.params["x"] for t in result.trials] == [0.0, 0.25, 0.5, 0.75]
    assert seen == [0, 1, 2, 3]
    assert result.stop_reason == "strategy exhausted"


async def test_a_strategy_yielding_params_outside_the_space_is_an_error() -> None:
    async def bad(space: at.Space, history: at.History) -> AsyncIterator[dict[str, Any]]:
        yield {"x": 2.0, "y": 0.0}

    with pytest.raises(at.StrategyError, match="'x'"):
        await at.tune(objectives.sum_xy, XY, strategy=bad, executor="thread")

    async def missing(space: at.Space, history: at.History) -> AsyncIterator[dict[str, Any]]:
        yield {"x": 0.5}

    with pytest.raises(at.StrategyError, match="'y'"):
        await at.tune(objectives.sum_xy, XY, strategy=missing, executor="thread")


async def test_strategy_is_closed_when_the_study_stops_early() -> None:
    closed = anyio.Event()

    async def endless(space: at.Space, history: at.History) -> AsyncIterator[dict[str, Any]]:
        try:
            while True:
                yield {"x": 0.5, "y": 0.5}
        finally:
            closed.set()

    result = await at.tune(objectives.sum_xy, XY, strategy=endless, max_trials=3, executor="thread")
    assert closed.is_set()
    assert len(result.trials) == 3
    assert result.stop_reason == "max_trials reached"


# -- observers and stopping -------------------------------------------------------------


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.trials: list[int] = []
        self.finished: at.TuningResult | None = None

    async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
        await asyncio.sleep(self.delay)
        self.trials.append(trial.number)

    async def on_finish(self, result: at.TuningResult) -> None:
        self.finished = result


class Broken:
    async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
        raise RuntimeError("tracker is down")


async def test_every_trial_reaches_every_observer_and_a_broken_one_is_detached() -> None:
    fast, slow = Recorder(), Recorder(delay=0.01)
    result = await at.tune(
        objectives.sum_xy, XY, max_trials=20, observers=[slow, Broken(), fast], executor="thread"
    )
    assert sorted(fast.trials) == sorted(slow.trials) == list(range(20))
    assert fast.finished is not None
    assert len(fast.finished.trials) == 20
    assert len(result.observer_errors) == 1
    failure = result.observer_errors[0]
    assert "Broken" in failure.observer
    assert failure.error.message == "tracker is down"


async def test_a_slow_observer_does_not_stall_trials() -> None:
    release = anyio.Event()

    class Stuck:
        async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
            await release.wait()

    async with at.Tuner(
        objectives.sum_xy, XY, max_trials=10, observers=[Stuck()], executor="thread"
    ) as tuner:
        seen = [trial.number async for trial in tuner.stream()]
        release.set()  # every trial finished while the observer was stuck on the first
    assert sorted(seen) == list(range(10))


async def test_stream_yields_each_trial_as_it_finishes() -> None:
    async with at.Tuner(objectives.sum_xy, XY, max_trials=8, concurrency=2) as tuner:
        numbers = [trial.number async for trial in tuner.stream()]
    assert sorted(numbers) == list(range(8))
    assert [t.number for t in tuner.result.trials] == list(range(8))


async def test_patience_target_and_max_failures_stop_the_study() -> None:
    space = at.Space(x=at.Int(0, 1000))
    result = await at.tune(
        objectives.sum_xy,
        at.Space(x=at.Int(0, 10), y=at.Categorical([0])),
        strategy=at.Grid(),
        concurrency=1,
        direction="minimize",
        observers=[at.Patience(3)],
        executor="thread",
    )
    assert result.stop_reason == "patience: 3 trials without improvement"
    # x=0 is best; three more without improvement. Observers run beside the launch loop,
    # so a trial or two more may start before the stop lands.
    assert [t.params["x"] for t in result.trials[:4]] == [0, 1, 2, 3]
    assert 4 <= len(result.trials) <= 6

    result = await at.tune(
        objectives.fail_when_negative,
        space,
        strategy=at.Grid(),
        concurrency=1,
        observers=[at.Target(5)],
        executor="thread",
    )
    assert result.stop_reason == "target: trial 5 scored 5.0 (target 5.0)"
    assert 6 <= len(result.trials) <= 8

    neg = at.Space(x=at.Int(-100, -1))
    result = await at.tune(
        objectives.fail_when_negative,
        neg,
        concurrency=1,
        observers=[at.MaxFailures(4)],
        executor="thread",
    )
    assert result.stop_reason == "max failures: 4 trials failed or timed out"
    assert 4 <= len(result.trials) <= 6


async def test_time_budget_stops_an_endless_study() -> None:
    space = at.Space(seconds=at.Float(0.01, 0.02))
    result = await at.tune(
        objectives.sleepy, space, concurrency=2, observers=[at.TimeBudget(0.5)], executor="thread"
    )
    assert result.stop_reason == "time budget of 0.5 s spent"
    assert len(result.trials) >= 2


async def test_stop_from_the_stream_consumer() -> None:
    async with at.Tuner(objectives.sum_xy, XY, concurrency=2, executor="thread") as tuner:
        async for trial in tuner.stream():
            if trial.number >= 5:
                tuner.stop("seen enough")
    assert tuner.result.stop_reason == "seen enough"
    assert len(tuner.result.trials) >= 6


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"direction": "up"}, "direction"),
        ({"max_trials": 0}, "max_trials"),
        ({"trial_timeout": -1}, "trial_timeout"),
        ({"retries": -1}, "retries"),
        ({"executor": "gpu"}, "executor"),
        ({"observers": [object()]}, "observers"),
        ({"trial_memory_limit": 10**9, "executor": "thread"}, "trial_memory_limit"),
    ],
)
def test_bad_arguments_are_refused_when_the_tuner_is_built(
    options: dict[str, Any], argument: str
) -> None:
    with pytest.raises(at.ConfigurationError) as caught:
        at.Tuner(objectives.sum_xy, XY, **options)
    assert caught.value.argument == argument


def test_run_is_the_blocking_form() -> None:
    result = at.run(objectives.sum_xy, XY, max_trials=3, concurrency=2)
    assert len(result.trials) == 3


async def test_run_refuses_a_running_loop() -> None:
    with pytest.raises(at.ConfigurationError, match="running event loop"):
        at.run(objectives.sum_xy, XY, max_trials=1)


# -- cancellation -----------------------------------------------------------------------


async def test_cancelling_run_propagates_and_leaves_no_process() -> None:

    space = at.Space(seconds=at.Float(30.0, 31.0))
    tuner = at.Tuner(objectives.sleepy, space, max_trials=4, concurrency=2)
    with anyio.move_on_after(1.0) as scope:
        await tuner.run()
    assert scope.cancelled_caught
    trials = tuner.history.trials
    assert [t.status for t in trials] == [at.TrialStatus.CANCELLED] * 2


async def test_cancelling_the_task_raises_cancelled_error() -> None:
    space = at.Space(seconds=at.Float(30.0, 31.0))
    task = asyncio.create_task(at.tune(objectives.sleepy, space, max_trials=2, concurrency=2))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_errors_reach_the_caller_bare() -> None:
    class Failing:
        critical = True

        async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
            raise at.JournalError("x.jsonl", None, "disk full")

    with pytest.raises(at.JournalError, match="disk full"):
        await at.tune(
            objectives.sum_xy, XY, max_trials=50, observers=[Failing()], executor="thread"
        )


async def test_an_error_in_the_tuner_block_cancels_the_study_and_propagates_bare() -> None:
    space = at.Space(seconds=at.Float(30.0, 31.0))
    tuner = at.Tuner(objectives.sleepy, space, max_trials=4, concurrency=2)

    async def fail_inside() -> None:
        async with tuner:
            await anyio.sleep(0.5)
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        await fail_inside()
    assert [t.status for t in tuner.history.trials] == [at.TrialStatus.CANCELLED] * 2


async def test_a_tuner_runs_once() -> None:
    tuner = at.Tuner(objectives.sum_xy, XY, max_trials=1, executor="thread")
    await tuner.run()
    with pytest.raises(at.TunerStateError, match="runs once"):
        await tuner.run()


# -- errors before the first trial reach the caller bare --------------------------------


def test_a_grid_over_a_continuous_float_raises_a_bare_space_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(at.SpaceError, match="resolution") as caught:
        at.run(objectives.sum_xy, at.Space(x=at.Float(0, 1)), strategy=at.Grid())
    assert type(caught.value) is at.SpaceError
    assert "internal error" not in caplog.text


class RaisingSuggest:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def suggest(self, space: at.Space, history: at.History) -> AsyncIterator[dict[str, Any]]:
        raise self.error


async def test_a_strategy_that_cannot_start_raises_a_bare_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(at.StrategyError, match=r"could not start: ValueError\('no model'\)"):
        await at.tune(objectives.sum_xy, XY, strategy=RaisingSuggest(ValueError("no model")))
    with pytest.raises(at.SpaceError, match="too small"):
        await at.tune(
            objectives.sum_xy, XY, strategy=RaisingSuggest(at.SpaceError("x", "too small"))
        )
    assert "internal error" not in caplog.text


async def test_a_strategy_whose_close_raises_fails_the_study_bare() -> None:
    async def bad_close(space: at.Space, history: at.History) -> AsyncIterator[dict[str, Any]]:
        try:
            while True:
                yield {"x": 0.5, "y": 0.5}
        finally:
            raise RuntimeError("cannot close")

    with pytest.raises(RuntimeError, match="cannot close"):
        await at.tune(objectives.sum_xy, XY, strategy=bad_close, max_trials=2, executor="thread")


async def test_a_pruner_that_cannot_bind_is_a_configuration_error() -> None:
    class Unbindable:
        def bind(self, direction: str) -> Any:
            raise KeyError(direction)

    with pytest.raises(at.ConfigurationError, match="pruner: could not start") as caught:
        await at.tune(objectives.sum_xy, XY, pruner=Unbindable(), max_trials=1, executor="thread")
    assert caught.value.argument == "pruner"


class FailingStart:
    def __init__(self, critical: bool) -> None:
        self.critical = critical
        self.trials: list[int] = []

    async def on_start(self, tuner: Any) -> None:
        raise at.JournalError("j.jsonl", None, "cannot open")

    async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
        self.trials.append(trial.number)


async def test_observers_whose_on_start_raises() -> None:
    # An ordinary observer is detached and reported; the study runs on.
    plain = FailingStart(critical=False)
    result = await at.tune(
        objectives.sum_xy, XY, max_trials=3, observers=[plain], executor="thread"
    )
    assert len(result.trials) == 3
    assert plain.trials == []
    assert [(f.hook, f.error.type) for f in result.observer_errors] == [
        ("on_start", "JournalError")
    ]
    # A critical one (like the journal) stops the study before any trial, with its error bare.
    critical, witness = FailingStart(critical=True), Recorder()
    tuner = at.Tuner(
        objectives.sum_xy, XY, max_trials=3, observers=[critical, witness], executor="thread"
    )
    with pytest.raises(at.JournalError, match="cannot open"):
        await tuner.run()
    assert len(tuner.history) == 0
    assert witness.trials == []


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: at.Random(seed=-1), "seed"),
        (lambda: at.Bayesian(seed="7"), "seed"),
        (lambda: at.Bayesian(n_initial=0), "n_initial"),
        (lambda: at.Patience(0), "Patience(n)"),
        (lambda: at.MaxFailures(True), "MaxFailures(n)"),
        (lambda: at.Target(float("nan")), "Target(score)"),
        (lambda: at.TimeBudget(0), "TimeBudget(seconds)"),
        (lambda: at.MedianPruner(min_trials=0), "min_trials"),
        (lambda: at.ASHA(reduction_factor=1), "reduction_factor"),
        (lambda: at.MedianPruner().bind("up"), "direction"),  # type: ignore[arg-type]
        (lambda: at.JsonlWriter("j.jsonl", durability="sometimes"), "durability"),  # type: ignore[arg-type]
        (lambda: at.load("j.jsonl", on_corrupt="ignore"), "on_corrupt"),  # type: ignore[arg-type]
        (lambda: at.Tuner(objectives.sum_xy, XY, trial_timeout=float("inf")), "trial_timeout"),
        (lambda: at.Study(XY, direction="up"), "direction"),  # type: ignore[arg-type]
        (lambda: at.Tuner(objectives.sum_xy, XY, batch="many"), "batch"),  # type: ignore[arg-type]
        (lambda: at.WorkerPool(0), "workers"),
        (lambda: at.WorkerPool(1, memory_limit=-1), "memory_limit"),
        (lambda: at.Progress(interval=0), "Progress(interval)"),
    ],
)
def test_every_argument_check_says_what_it_wanted_and_what_it_got(
    build: Any, argument: str
) -> None:
    with pytest.raises(at.ConfigurationError) as caught:
        build()
    assert caught.value.argument == argument
    assert str(caught.value).startswith(f"{argument}: must be ")
    assert ", got " in str(caught.value)


async def test_user_code_errors_are_not_reported_as_internal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def breaks(space: at.Space, history: at.History) -> AsyncIterator[dict[str, Any]]:
        yield {"x": 0.5, "y": 0.5}
        raise RuntimeError("model diverged")

    with pytest.raises(RuntimeError, match="model diverged"):
        await at.tune(objectives.sum_xy, XY, strategy=breaks, executor="thread")

    class CriticalStart:
        critical = True

        async def on_start(self, tuner: Any) -> None:
            raise ValueError("no tracking server")

        async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
            pass

    with pytest.raises(ValueError, match="no tracking server"):
        await at.tune(objectives.sum_xy, XY, observers=[CriticalStart()], executor="thread")
    assert "internal error" not in caplog.text


async def test_a_finished_study_is_freed_without_the_cycle_collector(tmp_path: Any) -> None:
    """Nothing of a study refers back to its Tuner: dropping the Tuner frees it and every
    trial at once (a cycle would keep them until a full collection, which in a service
    running many studies walks all of them)."""
    import gc
    import weakref

    async def objective(params: dict[str, Any]) -> float:
        return float(params["x"])

    tuner = at.Tuner(
        objective,
        XY,
        strategy=at.Random(seed=0),
        max_trials=20,
        observers=[at.JsonlWriter(tmp_path / "trials.jsonl")],
    )
    gc.disable()
    try:
        result = await tuner.run()
        refs = [weakref.ref(tuner), weakref.ref(tuner._study), weakref.ref(tuner.history)]
        del tuner
        assert [ref() for ref in refs] == [None, None, None]
        assert len(result.trials) == 20
    finally:
        gc.enable()
