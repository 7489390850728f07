"""One journal, one writer: a second study on the same file is refused, not interleaved."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

import aiotune as at
from aiotune.journal import read_for_resume

TESTS = Path(__file__).parent
SPACE = at.Space(x=at.Int(0, 9))
DEADLINE = 60  # seconds: generous, for loaded machines; nothing here waits that long when right


def header_count(path: Path) -> int:
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return sum(line["kind"] == "header" for line in lines)


def label_of(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds (the thing awaited happens in another process)."""
    with anyio.move_on_after(DEADLINE):
        while not condition():  # noqa: ASYNC110 - another process: no event to wait on
            await anyio.sleep(0.02)
        return
    pytest.fail(f"timed out waiting until {what}")


def trial_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(b'"kind":"trial"' in line for line in path.read_bytes().splitlines())


def waiting_objective(
    started: anyio.Event, release: anyio.Event, calls: list[int]
) -> Callable[[dict[str, Any]], Awaitable[float]]:
    """An async objective that says it started, then waits for ``release``."""

    async def objective(params: dict[str, Any]) -> float:
        calls.append(params["x"])
        started.set()
        with anyio.fail_after(DEADLINE):
            await release.wait()
        return float(params["x"])

    return objective


def assert_names_holder(error: at.JournalError, path: Path, pid: int) -> None:
    assert error.path == str(path)
    assert error.line is None
    assert f"host {socket.gethostname()}" in str(error) or pid == os.getpid()
    assert f"pid {pid}" in str(error)


# -- in one process -------------------------------------------------------------------------


async def test_two_studies_started_together_one_runs_the_other_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "shared.jsonl"
    refused = anyio.Event()
    calls: dict[str, list[int]] = {"a": [], "b": []}
    outcomes: dict[str, at.TuningResult | at.JournalError] = {}

    async def study(tag: str) -> None:
        # The winner's trials wait until the loser is refused: were both let in,
        # neither would be refused and the winner's trials would time out.
        objective = waiting_objective(anyio.Event(), refused, calls[tag])
        try:
            outcomes[tag] = await at.tune(
                objective, SPACE, strategy=at.Grid(), max_trials=4, concurrency=4,
                observers=[at.JsonlWriter(journal)],
            )  # fmt: skip
        except at.JournalError as exc:
            outcomes[tag] = exc
            refused.set()

    async with anyio.create_task_group() as studies:
        studies.start_soon(study, "a")
        studies.start_soon(study, "b")

    refusals = [tag for tag, outcome in outcomes.items() if isinstance(outcome, at.JournalError)]
    assert len(refusals) == 1, outcomes
    loser = refusals[0]
    winner = "b" if loser == "a" else "a"
    error, result = outcomes[loser], outcomes[winner]
    assert isinstance(error, at.JournalError)
    assert isinstance(result, at.TuningResult)
    assert calls[loser] == []  # refused before running a trial
    assert_names_holder(error, journal, os.getpid())
    assert "this process" in str(error)
    assert sorted(calls[winner]) == [0, 1, 2, 3]
    assert at.load(journal).trials == result.trials  # only the winner's trials
    assert header_count(journal) == 1
    assert not label_of(journal).exists()  # removed with the lock at the end


async def test_resuming_a_journal_another_study_writes_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    started, release = anyio.Event(), anyio.Event()
    first: list[int] = []
    async with anyio.create_task_group() as studies:
        studies.start_soon(
            lambda: at.tune(
                waiting_objective(started, release, first), SPACE, strategy=at.Grid(),
                max_trials=2, concurrency=2, observers=[at.JsonlWriter(journal)],
            )
        )  # fmt: skip
        with anyio.fail_after(DEADLINE):
            await started.wait()  # the journal is locked before any trial starts
        second: list[int] = []
        for observers in ([], [at.JsonlWriter(tmp_path / "other.jsonl")]):
            with pytest.raises(at.JournalError, match="cannot resume") as refused:
                await at.tune(
                    waiting_objective(anyio.Event(), release, second), SPACE, strategy=at.Grid(),
                    max_trials=4, resume=journal, observers=observers,
                )  # fmt: skip
            assert_names_holder(refused.value, journal, os.getpid())
        assert second == []
        assert at.load(journal).trials == ()  # reading needs no lock
        release.set()
    assert [t.number for t in at.load(journal).trials] == [0, 1]


async def test_one_writer_given_to_two_running_studies_refuses_the_second(tmp_path: Path) -> None:
    writer = at.JsonlWriter(tmp_path / "trials.jsonl")
    started, release = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as studies:
        studies.start_soon(
            lambda: at.tune(
                waiting_objective(started, release, []), SPACE, strategy=at.Grid(),
                max_trials=2, observers=[writer],
            )
        )  # fmt: skip
        with anyio.fail_after(DEADLINE):
            await started.wait()
        calls: list[int] = []
        with pytest.raises(at.JournalError, match="already writing another study"):
            await at.tune(
                waiting_objective(anyio.Event(), release, calls), SPACE, strategy=at.Grid(),
                max_trials=2, observers=[writer],
            )  # fmt: skip
        assert calls == []
        release.set()
    assert [t.number for t in at.load(writer.path).trials] == [0, 1]


async def test_a_lock_held_without_a_label_is_refused_as_held_by_someone_unknown(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "trials.jsonl"
    held = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        calls: list[int] = []
        with pytest.raises(at.JournalError, match="holder unknown"):
            await at.tune(
                waiting_objective(anyio.Event(), anyio.Event(), calls), SPACE,
                max_trials=2, observers=[at.JsonlWriter(journal)],
            )  # fmt: skip
        assert calls == []
    finally:
        os.close(held)
    assert journal.read_bytes() == b""  # the refused writer wrote nothing, not even a header


async def test_a_journal_written_between_reading_it_and_writing_it_is_refused(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "trials.jsonl"
    sum_x = _sum_x
    await at.tune(
        sum_x, SPACE, strategy=at.Grid(), max_trials=2, observers=[at.JsonlWriter(journal)]
    )
    late = at.Tuner(sum_x, SPACE, strategy=at.Grid(), resume=journal)  # a study, not run
    journal_read = await read_for_resume(journal, late)
    assert len(journal_read.trials) == 2
    # Another study resumes and appends before the late one's writer starts...
    await at.tune(
        sum_x, SPACE, strategy=at.Grid(), max_trials=4, resume=journal,
        observers=[at.JsonlWriter(journal)],
    )  # fmt: skip
    # ...so the late one's records would clash with it (trials 2 and 3 again).
    with pytest.raises(at.JournalError, match="after this one read it to resume"):
        await at.JsonlWriter(journal).on_start(late)
    assert [t.number for t in at.load(journal).trials] == [0, 1, 2, 3]
    assert not label_of(journal).exists()
    # Read afresh, it resumes.
    fresh = at.Tuner(sum_x, SPACE, strategy=at.Grid(), resume=journal)
    assert len((await read_for_resume(journal, fresh)).trials) == 4
    writer = at.JsonlWriter(journal)
    await writer.on_start(fresh)
    await writer.on_finish(at.TuningResult(trials=(), direction="maximize", stop_reason=None))


async def test_a_cancelled_study_releases_the_lock(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    started = anyio.Event()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as studies:
            studies.start_soon(
                lambda: at.tune(
                    waiting_objective(started, anyio.Event(), []), SPACE, strategy=at.Grid(),
                    observers=[at.JsonlWriter(journal)],
                )
            )  # fmt: skip
            with anyio.fail_after(DEADLINE):
                await started.wait()
            assert label_of(journal).exists()
            scope.cancel()
    assert not label_of(journal).exists()
    result = await at.tune(
        _sum_x, SPACE, strategy=at.Grid(), max_trials=3, resume=journal,
        observers=[at.JsonlWriter(journal)],
    )  # fmt: skip
    assert [t.number for t in result.trials] == [0, 1, 2]
    assert [t.number for t in at.load(journal).trials] == [0, 1, 2]


class _SlowToStart:
    """An observer whose ``on_start`` waits until cancelled, after saying it began."""

    def __init__(self, began: anyio.Event) -> None:
        self.began = began

    async def on_start(self, tuner: object) -> None:
        self.began.set()
        await anyio.sleep_forever()

    async def on_trial(self, trial: at.Trial, tuner: object) -> None:
        pass


async def test_a_study_cancelled_while_another_observer_starts_releases_the_lock(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "trials.jsonl"
    began = anyio.Event()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as studies:
            studies.start_soon(
                lambda: at.tune(
                    _sum_x, SPACE, strategy=at.Grid(),
                    observers=[at.JsonlWriter(journal), _SlowToStart(began)],
                )
            )  # fmt: skip
            with anyio.fail_after(DEADLINE):
                await began.wait()
            await wait_for(lambda: label_of(journal).exists(), "the journal is locked")
            scope.cancel()
    assert not label_of(journal).exists()
    result = await at.tune(
        _sum_x, SPACE, strategy=at.Grid(), max_trials=2, observers=[at.JsonlWriter(journal)]
    )
    assert [t.number for t in result.trials] == [0, 1]


async def test_a_reader_sees_a_prefix_of_the_trials_while_a_study_writes(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    space = at.Space(x=at.Int(0, 39))
    first_started, seen_part, done = anyio.Event(), anyio.Event(), anyio.Event()
    seen: list[int] = []

    async def objective(params: dict[str, Any]) -> float:
        first_started.set()
        if params["x"] == 20:  # hold the study half-way until a reader has seen part of it
            with anyio.fail_after(DEADLINE):
                await seen_part.wait()
        return float(params["x"])

    async def read_along() -> None:
        with anyio.fail_after(DEADLINE):
            await first_started.wait()  # the header is written before the first trial
        while True:
            finished = done.is_set()
            numbers = [t.number for t in (await anyio.to_thread.run_sync(at.load, journal)).trials]
            assert numbers == list(range(len(numbers)))  # a prefix, never an error
            seen.append(len(numbers))
            if 0 < len(numbers) < 40:
                seen_part.set()
            if finished:
                return

    async with anyio.create_task_group() as group:
        group.start_soon(read_along)
        await at.tune(
            objective, space, strategy=at.Grid(), concurrency=1,
            observers=[at.JsonlWriter(journal)],
        )  # fmt: skip
        done.set()
    assert seen[-1] == 40
    assert any(0 < n < 40 for n in seen)


async def _sum_x(params: dict[str, Any]) -> float:
    return float(params["x"])


# -- across processes -----------------------------------------------------------------------

SECOND_STUDY = textwrap.dedent(
    """
    import sys
    import aiotune as at

    def objective(params):
        open({marker!r}, "a").write("ran")
        return 1.0

    if __name__ == "__main__":
        try:
            at.run(objective, at.Space(x=at.Int(0, 9)), strategy=at.Grid(), max_trials=2,
                   executor="thread", observers=[at.JsonlWriter({journal!r})])
        except at.JournalError as exc:
            print("refused:", exc, flush=True)
        else:
            print("ran", flush=True)
    """
)


@pytest.mark.slow
async def test_a_second_study_in_another_process_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "shared.jsonl"
    marker = tmp_path / "second-ran"
    script = tmp_path / "second.py"
    script.write_text(SECOND_STUDY.format(journal=str(journal), marker=str(marker)))
    started, release = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as studies:
        studies.start_soon(
            lambda: at.tune(
                waiting_objective(started, release, []), SPACE, strategy=at.Grid(),
                max_trials=2, concurrency=2, observers=[at.JsonlWriter(journal)],
            )
        )  # fmt: skip
        with anyio.fail_after(DEADLINE):
            await started.wait()
            done = await anyio.run_process([sys.executable, str(script)], check=False)
        release.set()
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert out.startswith(f"refused: {journal}: another study is writing this journal"), out
    assert f"host {socket.gethostname()}, pid {os.getpid()}" in out
    assert not marker.exists()  # no trial ran there
    assert [t.number for t in at.load(journal).trials] == [0, 1]
    assert header_count(journal) == 1


HOLDING_STUDY = textwrap.dedent(
    """
    import time
    import aiotune as at

    def objective(params):
        if params["x"] >= 2:
            time.sleep(600)  # holds the journal until it is killed
        return float(params["x"])

    if __name__ == "__main__":
        at.run(objective, at.Space(x=at.Int(0, 9)), strategy=at.Grid(), concurrency=1,
               executor="thread", observers=[at.JsonlWriter({journal!r})])
    """
)


@pytest.mark.slow
async def test_a_study_killed_holding_the_lock_leaves_the_journal_free_at_once(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "trials.jsonl"
    script = tmp_path / "holder.py"
    script.write_text(HOLDING_STUDY.format(journal=str(journal)))
    process = await anyio.open_process([sys.executable, str(script)], start_new_session=True)
    try:
        await wait_for(lambda: trial_lines(journal) >= 2, "the holder records two trials")
        await wait_for(label_of(journal).exists, "the holder labels its lock")
        calls: list[int] = []
        objective = waiting_objective(anyio.Event(), anyio.Event(), calls)
        with pytest.raises(at.JournalError, match="another study is writing") as refused:
            await at.tune(objective, SPACE, max_trials=2, observers=[at.JsonlWriter(journal)])
        assert_names_holder(refused.value, journal, process.pid)
        with pytest.raises(at.JournalError, match="cannot resume") as refused:
            await at.tune(
                objective, SPACE, max_trials=4, resume=journal, observers=[at.JsonlWriter(journal)]
            )
        assert_names_holder(refused.value, journal, process.pid)
        assert calls == []
        assert [t.number for t in at.load(journal).trials] == [0, 1]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        await process.aclose()
    assert label_of(journal).exists()  # left behind by the killed holder: it must not block

    result = await at.tune(
        _sum_x, SPACE, strategy=at.Grid(), resume=journal, observers=[at.JsonlWriter(journal)]
    )
    assert [t.number for t in result.trials] == list(range(10))
    assert [t.number for t in at.load(journal).trials] == list(range(10))  # each once
    assert not label_of(journal).exists()
