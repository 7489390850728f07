"""Resuming a study from its journal, including after a SIGKILL mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import aiotune as at
import objectives

TESTS = Path(__file__).parent
GRID_SPACE = at.Space(
    x=at.Int(0, 9), y=at.Categorical([0.25, 0.75]), seconds=at.Categorical([0.05])
)
XY = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))

KILLED_STUDY = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import aiotune as at, objectives
    from test_resume import GRID_SPACE

    if __name__ == "__main__":
        at.run(objectives.sleepy, GRID_SPACE, strategy=at.Grid(), concurrency=2,
               observers=[at.JsonlWriter({journal!r})])
    """
)


def journal_numbers(path: Path) -> list[int]:
    """The trial numbers the journal holds, sorted: lines are in the order trials finish,
    and two trials in two threads finish in either order."""
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return sorted(line["number"] for line in lines if line["kind"] == "trial")


def start_and_kill(tmp_path: Path, journal: Path, after_lines: int) -> None:
    """Run a study in a subprocess and SIGKILL it once ``after_lines`` trials are recorded."""
    script = tmp_path / "study.py"
    script.write_text(KILLED_STUDY.format(tests=str(TESTS), journal=str(journal)))
    process = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if journal.exists() and len(journal_numbers(journal)) >= after_lines:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the study never wrote enough lines")
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the study and its workers, mid-run
        process.wait()


@pytest.mark.slow
async def test_a_study_killed_mid_run_resumes_to_every_grid_point_once(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    start_and_kill(tmp_path, journal, after_lines=6)
    done_before = at.load(journal).trials
    assert 6 <= len(done_before) < 20

    result = await at.tune(
        objectives.sleepy,
        GRID_SPACE,
        strategy=at.Grid(),
        concurrency=2,
        resume=journal,
        observers=[at.JsonlWriter(journal)],
    )
    numbers = journal_numbers(journal)
    assert sorted(numbers) == list(range(20))  # exactly once each, gaps filled
    points = sorted((t.params["x"], t.params["y"]) for t in at.load(journal).trials)
    assert points == [(x, y) for x in range(10) for y in (0.25, 0.75)]
    assert [t.number for t in result.trials] == list(range(20))
    for old in done_before:  # finished trials were kept, not rerun
        assert result.trials[old.number] == old


async def test_resumed_random_search_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    whole = await at.tune(
        objectives.sum_xy, XY, strategy=at.Random(seed=3), max_trials=12, executor="thread"
    )
    journal = tmp_path / "trials.jsonl"
    await at.tune(
        objectives.sum_xy,
        XY,
        strategy=at.Random(seed=3),
        max_trials=5,
        executor="thread",
        observers=[at.JsonlWriter(journal)],
    )
    resumed = await at.tune(
        objectives.sum_xy,
        XY,
        strategy=at.Random(seed=3),
        max_trials=12,  # counts the 5 resumed trials
        executor="thread",
        resume=journal,
        observers=[at.JsonlWriter(journal)],
    )
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]
    assert journal_numbers(journal) == list(range(12))


async def test_two_resumes_in_a_row(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    for total in (3, 7, 10):
        result = await at.tune(
            objectives.sum_xy,
            XY,
            strategy=at.Random(seed=1),
            max_trials=total,
            executor="thread",
            resume=journal if journal.exists() else None,
            observers=[at.JsonlWriter(journal)],
        )
        assert len(result.trials) == total
    assert journal_numbers(journal) == list(range(10))
    assert len([line for line in journal.read_bytes().splitlines() if b'"header"' in line]) == 1


async def test_resume_after_the_budget_is_spent_runs_nothing(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    kwargs = {"strategy": at.Random(seed=1), "max_trials": 4, "executor": "thread"}
    await at.tune(objectives.sum_xy, XY, observers=[at.JsonlWriter(journal)], **kwargs)
    again = await at.tune(objectives.sum_xy, XY, resume=journal, **kwargs)
    assert len(again.trials) == 4
    assert again.stop_reason == "max_trials reached"


async def test_resuming_a_different_space_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    await at.tune(
        objectives.sum_xy, XY, max_trials=2, executor="thread", observers=[at.JsonlWriter(journal)]
    )
    other = at.Space(x=at.Float(0.0, 2.0), y=at.Float(0.0, 1.0))
    with pytest.raises(at.JournalError, match="'x'"):
        await at.tune(objectives.sum_xy, other, max_trials=4, executor="thread", resume=journal)


async def test_resuming_a_missing_journal_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(at.JournalError, match="no such file"):
        await at.tune(objectives.sum_xy, XY, max_trials=1, resume=tmp_path / "nope.jsonl")


def test_records_and_dataframe() -> None:
    result = at.run(objectives.sum_xy, XY, strategy=at.Random(seed=0), max_trials=3, concurrency=1)
    records = result.to_records()
    assert [r["number"] for r in records] == [0, 1, 2]
    assert records[0]["params.x"] == result.trials[0].params["x"]
    assert records[0]["status"] == "complete"
    assert records[0]["score"] == result.trials[0].score
    pandas = pytest.importorskip("pandas")
    frame = result.to_dataframe()
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame["number"]) == [0, 1, 2]


def test_dataframe_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    result = at.TuningResult(trials=())
    with pytest.raises(at.MissingExtraError, match=r"pip install 'aiotune\[pandas\]'"):
        result.to_dataframe()


TREE = at.Space(
    kind=at.Categorical(["line", "square"]),
    x=at.Float(0.0, 1.0),
    y=at.Float(0.0, 1.0, when={"kind": "square"}),
)


async def tree_score(params: dict[str, float]) -> float:
    return params["x"] + params.get("y", 0.5)


async def test_a_conditional_study_resumes_from_its_journal(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"strategy": at.Random(seed=5)}
    whole = await at.tune(tree_score, TREE, max_trials=10, **kwargs)
    journal = tmp_path / "trials.jsonl"
    await at.tune(tree_score, TREE, max_trials=4, observers=[at.JsonlWriter(journal)], **kwargs)
    header = orjson.loads(journal.read_bytes().splitlines()[0])
    assert header["space"]["params"]["y"]["when"] == {"kind": ["square"]}
    resumed = await at.tune(
        tree_score,
        TREE,
        max_trials=10,
        resume=journal,
        observers=[at.JsonlWriter(journal)],
        **kwargs,
    )
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]
    assert {"y"} <= {k for t in resumed.trials for k in t.params}
    assert any("y" not in t.params for t in resumed.trials)  # inactive: absent, also on disk
    assert journal_numbers(journal) == list(range(10))
    other = at.Space(
        kind=at.Categorical(["line", "square"]),
        x=at.Float(0.0, 1.0),
        y=at.Float(0.0, 1.0, when={"kind": "line"}),
    )
    with pytest.raises(at.JournalError, match="when="):
        await at.tune(tree_score, other, max_trials=12, resume=journal, **kwargs)


async def test_a_journal_from_before_the_space_version_still_resumes(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    await at.tune(
        objectives.sum_xy, XY, max_trials=3, executor="thread", observers=[at.JsonlWriter(journal)]
    )
    lines = journal.read_bytes().splitlines()
    header = orjson.loads(lines[0])
    del header["space"]["version"]  # the header as the first releases wrote it
    journal.write_bytes(b"\n".join([orjson.dumps(header), *lines[1:]]) + b"\n")
    result = await at.tune(
        objectives.sum_xy,
        XY,
        max_trials=5,
        executor="thread",
        resume=journal,
        observers=[at.JsonlWriter(journal)],
    )
    assert len(result.trials) == 5
    assert journal_numbers(journal) == list(range(5))
