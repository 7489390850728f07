"""Ask and tell: a Study driven by its caller, with the same strategies, observers and journal."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiotune as at
import objectives

XY = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))
TESTS = Path(__file__).parent


def journal_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the same study, driven either way --------------------------------------------------


async def test_ask_and_tell_reaches_the_same_best_as_tune() -> None:
    tuned = await at.tune(
        objectives.sum_xy, XY, strategy=at.Random(seed=5), max_trials=30, concurrency=3
    )
    async with at.Study(XY, strategy=at.Random(seed=5)) as study:
        for _ in range(30):
            trial = await study.ask()
            assert trial is not None
            await study.tell(trial.number, objectives.sum_xy(trial.params))
    assert study.result.best.number == tuned.best.number
    assert study.result.best.params == tuned.best.params
    assert study.result.best.score == tuned.best.score
    assert [t.params for t in study.result.trials] == [t.params for t in tuned.trials]


async def test_asks_in_a_row_from_bayesian_never_repeat_params() -> None:
    # 16 points: past the 4-point initial design, the model must avoid both the
    # points already told and those asked and still in flight.
    space = at.Space(a=at.Int(0, 3), b=at.Categorical(["p", "q", "r", "s"]))
    seen: list[tuple[int, str]] = []
    async with at.Study(space, strategy=at.Bayesian(seed=0, n_initial=4)) as study:
        for _ in range(4):
            batch = [await study.ask() for _ in range(3)]
            assert all(trial is not None for trial in batch)
            keys = [(t.params["a"], t.params["b"]) for t in batch if t is not None]
            assert len(set(keys)) == 3, keys
            assert not set(keys) & set(seen), (keys, seen)
            seen += keys
            for trial in batch:
                assert trial is not None
                await study.tell(trial.number, trial.params["a"] + ord(trial.params["b"]))
    assert len(study.result.trials) == 12


async def test_ask_returns_none_once_the_strategy_is_exhausted() -> None:
    space = at.Space(x=at.Categorical([1, 2, 3]))
    async with at.Study(space, strategy=at.Grid()) as study:
        asked = [trial async for trial in _ask_all(study)]
        assert [t.params["x"] for t in asked] == [1, 2, 3]
        for trial in asked:
            await study.tell(trial.number, trial.params["x"])
    assert study.result.stop_reason == "strategy exhausted"
    assert study.result.best.params == {"x": 3}


async def _ask_all(study: at.Study) -> AsyncIterator[at.AskedTrial]:
    while (trial := await study.ask()) is not None:
        yield trial


# -- what a tell records, and what it refuses -------------------------------------------


async def test_each_kind_of_tell_makes_its_record() -> None:
    async with at.Study(XY, strategy=at.Random(seed=1), direction="minimize") as study:
        asked = [await study.ask() for _ in range(6)]
        numbers = [t.number for t in asked if t is not None]
        assert numbers == list(range(6))
        done = await study.tell(0, 0.25)
        failed = await study.tell(1, error="the GPU fell over")
        raised = await study.tell(2, error=KeyError("lr"))
        assert study.report(3, 0.9, step=0) is False
        study.report(3, 0.8)  # the next step: 1
        pruned = await study.tell(3, pruned=True)
        nan = await study.tell(4, float("nan"))
        snapshot = study.result  # any time: trial 5 is still in flight
    assert (done.status, done.score) == (at.TrialStatus.COMPLETE, 0.25)
    assert done.started_at is not None
    assert done.duration is not None
    assert failed.status is at.TrialStatus.FAILED
    assert failed.error is not None
    assert failed.error.message == "the GPU fell over"
    assert raised.error is not None
    assert raised.error.type == "KeyError"
    assert (pruned.status, pruned.score) == (at.TrialStatus.PRUNED, 0.8)
    assert dict(pruned.intermediate) == {0: 0.9, 1: 0.8}
    assert nan.status is at.TrialStatus.FAILED
    assert nan.error is not None
    assert "finite number" in nan.error.message
    assert [t.number for t in snapshot.trials] == [0, 1, 2, 3, 4]
    assert snapshot.best.number == 0
    final = {t.number: t.status for t in study.result.trials}
    assert final[5] is at.TrialStatus.CANCELLED


async def test_telling_out_of_turn_is_a_tuner_state_error() -> None:
    study = at.Study(XY, strategy=at.Random(seed=1))
    with pytest.raises(at.TunerStateError, match="open"):
        await study.ask()
    async with study:
        trial = await study.ask()
        assert trial is not None
        with pytest.raises(at.TunerStateError, match="trial 7 was never asked"):
            await study.tell(7, 1.0)
        with pytest.raises(at.TunerStateError, match="trial 7 was never asked"):
            study.report(7, 1.0, step=0)
        with pytest.raises(at.ConfigurationError, match="tell: must get one of"):
            await study.tell(trial.number, 1.0, error="both")
        with pytest.raises(at.ConfigurationError, match="tell: must get one of"):
            await study.tell(trial.number)
        with pytest.raises(at.ConfigurationError, match="value: must be a finite number"):
            study.report(trial.number, float("inf"), step=0)
        await study.tell(trial.number, 1.0)
        with pytest.raises(at.TunerStateError, match=f"trial {trial.number} was already told"):
            await study.tell(trial.number, 2.0)
    with pytest.raises(at.TunerStateError, match="open"):
        await study.tell(trial.number, 2.0)
    with pytest.raises(at.TunerStateError, match="runs once"):
        async with study:
            pass
    assert len(study.result.trials) == 1


def test_bad_arguments_are_refused_when_the_study_is_built() -> None:
    with pytest.raises(at.ConfigurationError) as caught:
        at.Study(XY, direction="up")  # type: ignore[arg-type]
    assert caught.value.argument == "direction"
    with pytest.raises(at.ConfigurationError, match="observers"):
        at.Study(XY, observers=[object()])
    with pytest.raises(at.ConfigurationError, match="space"):
        at.Study({"x": at.Float(0, 1)})  # type: ignore[arg-type]


# -- leaving the block, and resuming ----------------------------------------------------


async def test_trials_never_told_are_cancelled_on_exit_and_run_again_on_resume(
    tmp_path: Path,
) -> None:
    path = tmp_path / "study.jsonl"
    async with at.Study(XY, strategy=at.Random(seed=3), observers=[at.JsonlWriter(path)]) as study:
        asked = [await study.ask() for _ in range(4)]
        for trial in asked[:2]:
            assert trial is not None
            await study.tell(trial.number, objectives.sum_xy(trial.params))
    statuses = [t.status for t in study.result.trials]
    assert statuses == [at.TrialStatus.COMPLETE] * 2 + [at.TrialStatus.CANCELLED] * 2
    assert [line["number"] for line in journal_lines(path)[1:]] == [0, 1]  # none cancelled

    async with at.Study(
        XY, strategy=at.Random(seed=3), resume=path, observers=[at.JsonlWriter(path)]
    ) as resumed:
        again = [await resumed.ask() for _ in range(2)]
    assert [(t.number, t.params) for t in again if t is not None] == [
        (t.number, t.params) for t in asked[2:] if t is not None
    ]


async def test_resume_after_an_unclean_exit(tmp_path: Path) -> None:
    path = tmp_path / "study.jsonl"
    script = textwrap.dedent(
        f"""
        import os, anyio, aiotune as at, objectives
        from pathlib import Path

        XY = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))
        path = Path({str(path)!r})

        async def main():
            writer = at.JsonlWriter(path)
            async with at.Study(XY, strategy=at.Random(seed=9), observers=[writer]) as study:
                asked = [await study.ask() for _ in range(5)]
                for trial in asked[:3]:
                    await study.tell(trial.number, objectives.sum_xy(trial.params))
                while len(path.read_text().splitlines()) < 4:  # header + 3 trials on disk
                    await anyio.sleep(0.01)
                os._exit(9)  # killed mid-study: trials 3 and 4 were asked, never told

        anyio.run(main)
        """
    )
    env = {"PYTHONPATH": f"{TESTS}"}
    with anyio.fail_after(60):
        done = await anyio.run_process([sys.executable, "-c", script], env=env, check=False)
    assert done.returncode == 9
    assert [line["number"] for line in journal_lines(path)[1:]] == [0, 1, 2]

    fresh = at.Study(XY, strategy=at.Random(seed=9))
    async with fresh:
        expected = [await fresh.ask() for _ in range(5)]
    writer = at.JsonlWriter(path)
    async with at.Study(XY, strategy=at.Random(seed=9), resume=path, observers=[writer]) as study:
        assert len(study.history) == 3
        while (trial := await study.ask()) is not None and trial.number < 5:
            await study.tell(trial.number, objectives.sum_xy(trial.params))
    by_number = {t.number: t.params for t in study.result.trials}
    assert [by_number[n] for n in range(5)] == [t.params for t in expected if t is not None]
    numbers = [line["number"] for line in journal_lines(path)[1:]]
    assert sorted(numbers) == [0, 1, 2, 3, 4]  # every finished trial once


# -- observers, stopping and pruning under ask and tell ---------------------------------


class Seen:
    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.trials: list[int] = []
        self.reports: list[tuple[int, int, float]] = []
        self.finished: at.TuningResult | None = None

    async def on_start(self, tuner: Any) -> None:
        self.handles.append(tuner)

    async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
        self.handles.append(tuner)
        self.trials.append(trial.number)

    async def on_report(self, number: int, step: int, value: float) -> None:
        self.reports.append((number, step, value))

    async def on_finish(self, result: at.TuningResult) -> None:
        self.finished = result


async def test_observers_see_the_study_and_an_early_stop_ends_the_asks(tmp_path: Path) -> None:
    seen, path = Seen(), tmp_path / "s.jsonl"
    space = at.Space(x=at.Int(0, 100))
    async with at.Study(
        space,
        strategy=at.Grid(),
        direction="minimize",
        observers=[seen, at.Patience(3), at.JsonlWriter(path)],
    ) as study:
        told = 0
        async for trial in _ask_all(study):
            await study.tell(trial.number, trial.params["x"])
            told += 1
            assert told < 50, "Patience never stopped the study"
    assert study.stop_reason == "patience: 3 trials without improvement"
    assert all(handle is study for handle in seen.handles)
    assert seen.trials == list(range(told))
    assert seen.finished is not None
    assert len(seen.finished.trials) == told
    assert len(at.load(path).trials) == told

    # Under a Tuner, observers get the Tuner: both are the same kind of handle.
    tuner_seen = Seen()
    tuner = at.Tuner(objectives.sum_xy, XY, max_trials=2, observers=[tuner_seen], executor="thread")
    await tuner.run()
    assert all(handle is tuner for handle in tuner_seen.handles)


async def test_stop_wakes_an_ask_waiting_on_the_strategy() -> None:
    async def waits(space: at.Space, history: at.History) -> AsyncIterator[dict[str, Any]]:
        yield {"x": 0.5, "y": 0.5}
        while True:
            await history.wait_for_change()

    async with at.Study(XY, strategy=waits) as study:
        first = await study.ask()
        assert first is not None
        async with anyio.create_task_group() as tg:
            tg.start_soon(study.ask)
            await anyio.wait_all_tasks_blocked()
            study.stop("enough")
        assert await study.ask() is None
        await study.tell(first.number, 1.0)
    assert study.result.stop_reason == "enough"


async def test_a_time_budget_stops_a_study_between_asks() -> None:
    async with at.Study(XY, strategy=at.Random(seed=0), observers=[at.TimeBudget(0.2)]) as study:
        with anyio.fail_after(30):
            async for trial in _ask_all(study):
                await anyio.sleep(0.01)
                await study.tell(trial.number, 0.0)
    assert study.result.stop_reason == "time budget of 0.2 s spent"


async def test_the_pruner_decides_on_reports_told_through_the_study() -> None:
    seen = Seen()
    pruner = at.MedianPruner(min_trials=2)
    async with at.Study(XY, strategy=at.Random(seed=2), pruner=pruner, observers=[seen]) as study:
        for _ in range(3):  # three good curves: 1.0 at every step
            trial = await study.ask()
            assert trial is not None
            assert not any(study.report(trial.number, 1.0, step) for step in range(3))
            await study.tell(trial.number, 1.0)
        poor = await study.ask()
        assert poor is not None
        assert study.report(poor.number, 0.9, step=0) is True  # below the median of 1.0
        record = await study.tell(poor.number, pruned=True)
    assert record.status is at.TrialStatus.PRUNED
    assert record.score == 0.9
    assert (poor.number, 0, 0.9) in seen.reports
    assert len(seen.reports) == 10


async def test_a_journal_that_cannot_open_fails_the_study_at_once(tmp_path: Path) -> None:
    writer = at.JsonlWriter(tmp_path / "missing" / "s.jsonl")
    study = at.Study(XY, observers=[writer])
    with pytest.raises(at.JournalError, match="does not exist"):
        async with study:
            pass


async def test_an_exception_in_the_block_propagates_bare_and_cancels_asked_trials() -> None:
    study = at.Study(XY, strategy=at.Random(seed=0))

    async def fail_inside() -> None:
        async with study:
            assert await study.ask() is not None
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        await fail_inside()
    assert [t.status for t in study.result.trials] == [at.TrialStatus.CANCELLED]


async def test_initial_points_are_asked_first_and_warm_start_informs_the_strategy() -> None:
    space = at.Space(x=at.Categorical([1, 2, 3, 4]))
    earlier = at.TuningResult(
        trials=(at.Trial(number=0, params={"x": 4}, status=at.TrialStatus.COMPLETE, score=4.0),)
    )
    async with at.Study(space, strategy=at.Grid(), initial=[{"x": 3}], warm_start=earlier) as study:
        asked = [trial async for trial in _ask_all(study)]
        for trial in asked:
            await study.tell(trial.number, trial.params["x"])
    # 3 first; then the grid, which skips 4 (done in the earlier study) and 3 (done here)
    assert [t.params["x"] for t in asked] == [3, 1, 2]
    assert len(study.result.trials) == 3


async def test_a_cancelled_study_records_its_asked_trials_and_tells_its_observers() -> None:
    seen = Seen()
    study = at.Study(XY, strategy=at.Random(seed=0), observers=[seen])
    with anyio.CancelScope() as scope:
        async with study:
            first = await study.ask()
            assert first is not None
            await study.tell(first.number, 1.0)
            assert await study.ask() is not None
            scope.cancel()
            await anyio.sleep(5)
    assert scope.cancelled_caught
    assert [t.status for t in study.result.trials] == [
        at.TrialStatus.COMPLETE,
        at.TrialStatus.CANCELLED,
    ]
    assert seen.trials == [0, 1]
    assert seen.finished is not None


async def test_a_journal_written_by_ask_and_tell_is_resumed_by_tune(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    async with at.Study(XY, strategy=at.Random(seed=4), observers=[at.JsonlWriter(path)]) as study:
        for _ in range(3):
            trial = await study.ask()
            assert trial is not None
            await study.tell(trial.number, objectives.sum_xy(trial.params))
    result = await at.tune(
        objectives.sum_xy,
        XY,
        strategy=at.Random(seed=4),
        max_trials=6,
        executor="thread",
        resume=path,
        observers=[at.JsonlWriter(path)],
    )
    assert [t.number for t in result.trials] == list(range(6))
    # two threads: trials finish, and reach the journal, in either order
    assert sorted(line["number"] for line in journal_lines(path)[1:]) == list(range(6))
    straight = await at.tune(
        objectives.sum_xy, XY, strategy=at.Random(seed=4), max_trials=6, executor="thread"
    )
    assert [t.params for t in result.trials] == [t.params for t in straight.trials]


async def test_many_tasks_ask_and_tell_one_study() -> None:
    space = at.Space(x=at.Int(0, 9), y=at.Int(0, 9))
    async with at.Study(space, strategy=at.Grid()) as study:

        async def worker() -> None:
            while (trial := await study.ask()) is not None:
                await anyio.lowlevel.checkpoint()  # evaluated elsewhere, in some order
                await study.tell(trial.number, trial.params["x"] * 10 + trial.params["y"])

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(worker)
    result = study.result
    assert [t.number for t in result.trials] == list(range(100))
    assert len({(t.params["x"], t.params["y"]) for t in result.trials}) == 100
    assert result.best.params == {"x": 9, "y": 9}
    assert result.stop_reason == "strategy exhausted"


async def test_observers_get_every_event_once_in_order_and_batches_keep_reports_around() -> None:
    """A batching observer gets the reports queued before a trial first, then every
    queued trial in one call, then the reports queued among them; a plain one gets each
    event in order. Events published after one observer failed reach only the others."""
    from aiotune.observers._fanout import Fanout
    from aiotune.trial import Trial, TrialStatus, TuningResult

    def trial(number: int) -> Trial:
        return Trial(number=number, params={"x": 0.5}, status=TrialStatus.COMPLETE, score=1.0)

    class Batching:
        def __init__(self) -> None:
            self.seen: list[Any] = []

        async def on_trials(self, trials: list[Trial], tuner: Any) -> None:
            self.seen.append(("trials", [t.number for t in trials]))

        async def on_report(self, number: int, step: int, value: float) -> None:
            self.seen.append(("report", number, step))

    class Plain:
        def __init__(self) -> None:
            self.seen: list[Any] = []

        async def on_trial(self, t: Trial, tuner: Any) -> None:
            self.seen.append(("trial", t.number))

        async def on_report(self, number: int, step: int, value: float) -> None:
            self.seen.append(("report", number, step))

    class Broken:
        async def on_trial(self, t: Trial, tuner: Any) -> None:
            raise RuntimeError("broken")

    batching, plain, failed = Batching(), Plain(), []
    fanout = Fanout([batching, plain, Broken()], None, failed.append)  # type: ignore[arg-type]
    async with anyio.create_task_group() as pumps:
        await fanout.start(pumps)
        fanout.publish_report(0, 0, 0.1)
        fanout.publish_trial(trial(0))
        fanout.publish_report(1, 0, 0.2)
        fanout.publish_trial(trial(1))
        await anyio.sleep(0.05)  # the pumps take all four at once
        fanout.publish_trial(trial(2))
        fanout.close(TuningResult(trials=()), hurry=False)
    assert batching.seen == [
        ("report", 0, 0),
        ("trials", [0, 1]),
        ("report", 1, 0),
        ("trials", [2]),
    ]
    assert plain.seen == [
        ("report", 0, 0),
        ("trial", 0),
        ("report", 1, 0),
        ("trial", 1),
        ("trial", 2),
    ]
    assert [f.hook for f in fanout.failures] == ["on_trial"]
    assert not failed
