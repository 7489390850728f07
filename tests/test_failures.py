"""Trials that fail, hang, crash or get cancelled: nothing lost, nothing leaked.

Real worker processes throughout; the autouse fixture in conftest.py fails any
test that leaves a child process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

import aiotune as at
import objectives

TESTS = Path(__file__).parent


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# -- timeouts ---------------------------------------------------------------------------


async def test_a_trial_over_its_timeout_is_recorded_and_its_process_killed() -> None:
    space = at.Space(seconds=at.Categorical([60.0, 0.2]))
    result = await at.tune(
        objectives.pid_then_sleep, space, strategy=at.Grid(), concurrency=2, trial_timeout=1.5
    )
    slow, quick = result.trials
    assert slow.status is at.TrialStatus.TIMEOUT
    assert slow.error is not None
    assert "trial_timeout=1.5" in slow.error.message
    assert quick.status is at.TrialStatus.COMPLETE
    assert quick.score == 0.2
    assert wait_gone(int(slow.intermediate[0]))  # the worker that ran it is gone
    assert slow.duration is not None
    assert slow.duration >= 1.5


async def test_the_timeout_clock_starts_when_the_worker_begins() -> None:
    # One worker, two trials of 1 s each with a 1.8 s timeout: the second waits
    # for the worker (and its start-up) but must not be charged for that wait.
    space = at.Space(seconds=at.Categorical([1.0, 1.01]))
    result = await at.tune(
        objectives.pid_then_sleep, space, strategy=at.Grid(), concurrency=1, trial_timeout=1.8
    )
    assert [t.status for t in result.trials] == [at.TrialStatus.COMPLETE] * 2


async def test_timeouts_on_threads_and_async_objectives() -> None:
    async def hangs(params: dict[str, Any]) -> float:
        await anyio.sleep(60 if params["x"] else 0)
        return 1.0

    space = at.Space(x=at.Bool())
    result = await at.tune(hangs, space, strategy=at.Grid(), trial_timeout=0.5)
    assert {t.params["x"]: t.status for t in result.trials} == {
        True: at.TrialStatus.TIMEOUT,
        False: at.TrialStatus.COMPLETE,
    }


# -- dying workers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "how"),
    [
        ("exit", "exited with code 7"),
        ("sigkill", "killed by signal 9 (SIGKILL)"),
        ("segfault", "killed by signal 11 (SIGSEGV)"),
    ],
)
async def test_a_dying_worker_fails_only_its_trial(mode: str, how: str) -> None:
    space = at.Space(mode=at.Categorical(["return", mode]), x=at.Float(0, 1))

    async def strategy(space: at.Space, history: at.History) -> Any:
        for m in ["return", mode, "return", "return", "return", "return"]:
            yield {"mode": m, "x": 0.5}

    result = await at.tune(objectives.chaos, space, strategy=strategy, concurrency=2)
    statuses = [t.status for t in result.trials]
    assert statuses.count(at.TrialStatus.FAILED) == 1
    assert statuses.count(at.TrialStatus.COMPLETE) == 5
    dead = next(t for t in result.trials if t.status is at.TrialStatus.FAILED)
    assert dead.error is not None
    assert dead.error.type == "WorkerDied"
    assert "worker process" in dead.error.message
    assert how in dead.error.message


async def test_a_worker_killed_from_outside_is_replaced() -> None:
    reported = anyio.Event()
    pids: dict[int, int] = {}

    class PidWatcher:  # trials report their pid at step 0; learn it live through on_report
        async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
            pass

        async def on_report(self, number: int, step: int, value: float) -> None:
            pids[number] = int(value)
            if number == 0:
                reported.set()

    space = at.Space(seconds=at.Categorical([30.0, 0.1, 0.11, 0.12]))
    async with at.Tuner(
        objectives.pid_then_sleep,
        space,
        strategy=at.Grid(),
        concurrency=2,
        observers=[PidWatcher()],
    ) as tuner:
        await reported.wait()
        os.kill(pids[0], signal.SIGKILL)
    by_number = {trial.number: trial for trial in tuner.result.trials}
    assert by_number[0].status is at.TrialStatus.FAILED
    assert by_number[0].error is not None
    assert "SIGKILL" in by_number[0].error.message
    assert [by_number[n].status for n in (1, 2, 3)] == [at.TrialStatus.COMPLETE] * 3


# -- memory limit -----------------------------------------------------------------------


async def test_a_trial_over_the_memory_limit_fails_and_the_worker_is_replaced() -> None:
    space = at.Space(mb=at.Categorical([2048, 8, 9]))
    result = await at.tune(
        objectives.allocate,
        space,
        strategy=at.Grid(),
        concurrency=1,
        trial_memory_limit=1024 * 1024 * 1024,
    )
    big, small, small2 = result.trials
    assert big.status is at.TrialStatus.FAILED
    assert big.error is not None
    assert "trial_memory_limit" in big.error.message
    assert small.status is small2.status is at.TrialStatus.COMPLETE
    assert big.worker != small.worker  # a fresh process after the MemoryError


# -- retries ----------------------------------------------------------------------------


async def test_retries_rerun_a_failed_trial_under_the_same_number(tmp_path: Path) -> None:
    space = at.Space(x=at.Int(0, 2), dir=at.Categorical([str(tmp_path)]))
    journal = tmp_path / "trials.jsonl"
    result = await at.tune(
        objectives.fail_first_attempt,
        space,
        strategy=at.Grid(),
        concurrency=2,
        retries=1,
        observers=[at.JsonlWriter(journal)],
    )
    assert [t.status for t in result.trials] == [at.TrialStatus.COMPLETE] * 3
    for trial in result.trials:
        assert trial.attempts == 2
        assert [e.message for e in trial.previous_errors] == [
            f"first attempt of x={trial.params['x']} fails"
        ]
    lines = journal.read_bytes().splitlines()[1:]
    assert sorted(orjson.loads(line)["number"] for line in lines) == [0, 1, 2]
    assert at.load(journal).trials == result.trials


async def test_without_retries_a_failure_is_final(tmp_path: Path) -> None:
    space = at.Space(x=at.Int(0, 1), dir=at.Categorical([str(tmp_path)]))
    result = await at.tune(objectives.fail_first_attempt, space, strategy=at.Grid())
    assert [t.attempts for t in result.trials] == [1, 1]
    assert all(t.status is at.TrialStatus.FAILED for t in result.trials)


# -- the journal cannot be lost ----------------------------------------------------------


async def test_a_journal_that_cannot_be_written_stops_the_study() -> None:
    with pytest.raises(at.JournalError, match="cannot write"):
        await at.tune(
            objectives.sum_xy,
            at.Space(x=at.Float(0, 1), y=at.Float(0, 1)),
            max_trials=5,
            observers=[at.JsonlWriter("/dev/full")],
        )


# -- cancellation -----------------------------------------------------------------------


async def test_cancel_keeps_finished_trials_in_the_journal(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    space = at.Space(seconds=at.Categorical([0.05, 0.06, 0.07, 60.0]))
    tuner = at.Tuner(
        objectives.pid_then_sleep,
        space,
        strategy=at.Grid(),
        concurrency=2,
        observers=[at.JsonlWriter(journal)],
    )
    with anyio.move_on_after(5):
        async with tuner:
            async for trial in tuner.stream():
                if trial.number == 2:
                    break
            await anyio.sleep_forever()  # cancelled by the deadline with trial 3 in flight
    statuses = {t.number: t.status for t in tuner.history.trials}
    assert statuses == {
        0: at.TrialStatus.COMPLETE,
        1: at.TrialStatus.COMPLETE,
        2: at.TrialStatus.COMPLETE,
        3: at.TrialStatus.CANCELLED,
    }
    recorded = at.load(journal)
    assert [t.number for t in recorded.trials] == [0, 1, 2]  # cancelled ones are not written


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import faulthandler, signal, sys, threading, time, os
    sys.path.insert(0, {tests!r})
    import aiotune as at, objectives
    from conftest import children, wait_no_children

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks when stuck

    def interrupt_from_another_thread():
        # The OS may deliver Ctrl-C's SIGINT to any thread: here, surely not the main one.
        while not os.path.exists({journal!r}) or len(open({journal!r}, "rb").readlines()) < 3:
            time.sleep(0.05)
        time.sleep(0.5)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    if __name__ == "__main__":
        if {from_a_thread!r}:
            threading.Thread(target=interrupt_from_another_thread, daemon=True).start()
        space = at.Space(seconds=at.Categorical([0.01, 0.02, 60.0, 61.0]))
        try:
            at.run(objectives.sleepy, space, strategy=at.Grid(), concurrency=2,
                   observers=[at.JsonlWriter({journal!r})])
        except KeyboardInterrupt:
            began = time.monotonic()
            left = wait_no_children(set(), timeout=10)
            print("interrupted", sorted(left), round(time.monotonic() - began, 3), flush=True)
        else:
            print("not interrupted", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("sent_to", ["the process", "a thread other than the main one"])
def test_ctrl_c_in_run_cancels_kills_workers_and_raises_keyboard_interrupt(
    tmp_path: Path, sent_to: str
) -> None:
    # A SIGINT that lands on another thread used to wait for the loop's next event
    # (here the 60 s trials' end): asyncio.run's handler runs on the main thread only.
    from_a_thread = sent_to != "the process"
    journal = tmp_path / "trials.jsonl"
    script = tmp_path / "study.py"
    script.write_text(
        CTRL_C_SCRIPT.format(tests=str(TESTS), journal=str(journal), from_a_thread=from_a_thread)
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if not from_a_thread:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # both quick trials recorded, the slow ones running
            if journal.exists() and len(journal.read_bytes().splitlines()) >= 3:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=45)
    except subprocess.TimeoutExpired:  # say where it is stuck: every thread's stack
        process.send_signal(signal.SIGUSR1)
        time.sleep(1)
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"no exit 45 s after SIGINT; stdout {out!r}; stderr:\n{err}")
    assert out.startswith("interrupted []"), (out, err)
    assert [t.number for t in at.load(journal).trials] == [0, 1]


# -- chaos ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_chaos_every_trial_recorded_once_with_the_right_status(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    modes = ["return"] * 12 + ["raise"] * 3 + ["hang"] + ["exit", "segfault", "sigkill"]
    space = at.Space(mode=at.Categorical(list(dict.fromkeys(modes))), x=at.Float(0, 1))
    weights = Counter(modes)

    async def weighted(space: at.Space, history: at.History) -> Any:
        import random

        rng = random.Random(0)
        while True:
            mode = rng.choices(list(weights), weights=list(weights.values()))[0]
            yield {"mode": mode, "x": rng.random()}

    result = await at.tune(
        objectives.chaos,
        space,
        strategy=weighted,
        max_trials=300,
        concurrency=2,
        trial_timeout=0.5,
        observers=[at.JsonlWriter(journal)],
    )
    expected = {
        "return": at.TrialStatus.COMPLETE,
        "raise": at.TrialStatus.FAILED,
        "hang": at.TrialStatus.TIMEOUT,
        "exit": at.TrialStatus.FAILED,
        "segfault": at.TrialStatus.FAILED,
        "sigkill": at.TrialStatus.FAILED,
    }
    assert len(result.trials) == 300
    for trial in result.trials:
        assert trial.status is expected[trial.params["mode"]], trial
    numbers = [orjson.loads(line)["number"] for line in journal.read_bytes().splitlines()[1:]]
    assert sorted(numbers) == list(range(300))
    assert at.load(journal).trials == result.trials
    seen = Counter(t.params["mode"] for t in result.trials)
    assert all(seen[mode] > 0 for mode in expected)  # every kind of trouble happened
