"""WorkerPool.submit_async: a job lent to the event loop, which reads its worker's pipe.

Every way a lent job can end is checked with real worker processes: a result,
an exception, reports, a cancellation, a worker dying (seen first by the loop
or by the pool's thread), the loop closing under the job, ``shutdown(wait=True)``
called on the loop's own thread, and ``terminate()``; and a worker parked on its
loop after its job until the loop's next turn (reused, dying, wanted by a thread,
stranded by a loop that stops and closes).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiotune.errors import PoolClosedError
from aiotune.execution.pool import WorkerDied, WorkerPool
from aiotune.execution.pool import _manager as manager_module

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:  # workers import the helpers by name through the inherited sys.path
    sys.path.insert(0, TESTS)

import _pool_helpers as helpers  # noqa: E402
from test_pool import (  # noqa: E402
    DEADLINE,
    Inbox,
    eventually,
    eventually_async,
    gone,
    read_pid,
    watching_workers,
)


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    pool = WorkerPool(1)
    yield pool
    pool.terminate()
    pool.shutdown(wait=True)


def reader_of(pool: WorkerPool) -> list[asyncio.AbstractEventLoop | None]:
    """Which loop reads each worker's pipe (None: the pool's thread)."""
    return [worker.reader for worker in list(pool._manager.workers)]


async def warm(pool: WorkerPool) -> None:
    """Start the worker (the first job is queued: no worker is idle yet)."""
    assert await pool.submit_async(helpers.identity, 0) == 0


async def test_a_job_sent_to_an_idle_worker_is_read_by_the_loop(
    pool: WorkerPool, tmp_path: Path
) -> None:
    await warm(pool)
    loop = asyncio.get_running_loop()
    job = pool.submit_async(helpers.write_pid_and_wait, str(tmp_path / "pid"), str(tmp_path / "go"))
    worker = await read_pid(tmp_path / "pid")
    assert reader_of(pool) == [loop]
    (tmp_path / "go").touch()
    assert await asyncio.wait_for(job, DEADLINE) == worker
    assert reader_of(pool) == [None]  # the pool's thread reads it again
    # ... and it does: a job from another thread, sent to the idle worker at once
    assert await asyncio.to_thread(lambda: pool.submit(helpers.pid).result(DEADLINE)) == worker
    with pytest.raises(ValueError, match="lent"):
        await pool.submit_async(helpers.fail, "lent")
    assert pool.statistics().processes_started == 1


async def test_reports_of_a_lent_job_are_answered_on_the_loop(pool: WorkerPool) -> None:
    await warm(pool)
    inbox = Inbox()
    assert await pool.submit_async(helpers.ReportingJob(inbox), 7, 4) == [
        False,
        False,
        True,
        True,
    ]
    assert inbox.reports == [(7, 0, 0.0), (7, 1, 0.1), (7, 2, 0.2), (7, 3, 0.3)]
    assert [number for number, _ in inbox.started_calls] == [7]


async def test_cancelling_a_lent_job_kills_its_worker(pool: WorkerPool, tmp_path: Path) -> None:
    await warm(pool)
    job = pool.submit_async(helpers.write_pid_and_wait, str(tmp_path / "pid"), None)
    victim = await read_pid(tmp_path / "pid")
    job.cancel()
    assert await eventually_async(lambda: gone(victim))
    assert await pool.submit_async(helpers.identity, 3) == 3
    stats = pool.statistics()
    assert (stats.processes_started, stats.workers_died) == (2, 0)


@pytest.mark.parametrize("loop_busy", [False, True], ids=["loop-sees-it", "thread-sees-it"])
async def test_a_worker_dying_under_a_lent_job_fails_only_that_job(
    pool: WorkerPool, tmp_path: Path, loop_busy: bool
) -> None:
    await warm(pool)
    job = pool.submit_async(helpers.write_pid_and_wait, str(tmp_path / "pid"), None)
    victim = await read_pid(tmp_path / "pid")
    os.kill(victim, signal.SIGKILL)
    if loop_busy:
        # The loop cannot read meanwhile: the pool's thread sees the exit first and
        # must ask the loop for the pipe before it reaps the worker and settles the job.
        exited = lambda: any(w.exited for w in list(pool._manager.workers))  # noqa: E731
        assert eventually(exited)  # blocks the loop on purpose
        assert not job.done()
    with pytest.raises(WorkerDied):
        await asyncio.wait_for(job, DEADLINE)
    assert await pool.submit_async(helpers.identity, 5) == 5
    assert pool.statistics().workers_died == 1


def test_a_loop_closed_under_a_lent_job_does_not_strand_the_worker(
    pool: WorkerPool, tmp_path: Path
) -> None:
    loop = asyncio.new_event_loop()

    async def start() -> asyncio.Future[int]:
        await warm(pool)
        return pool.submit_async(
            helpers.write_pid_and_wait, str(tmp_path / "pid"), str(tmp_path / "go")
        )

    abandoned = loop.run_until_complete(start())
    assert eventually(lambda: (tmp_path / "pid").exists())
    loop.close()  # the job's future is never awaited, nor cancelled
    (tmp_path / "go").touch()
    # The pool takes the pipe back and reads the result: the worker is free again.
    assert pool.submit(helpers.identity, 1).result(timeout=DEADLINE) == 1
    assert eventually(lambda: pool.statistics().busy == 0)
    assert not abandoned.done()  # its loop is closed: nothing settles it there


async def test_shutdown_on_the_loop_thread_does_not_wait_forever(tmp_path: Path) -> None:
    pool = WorkerPool(1)
    try:
        await warm(pool)
        job = pool.submit_async(
            helpers.write_pid_and_wait, str(tmp_path / "pid"), str(tmp_path / "go")
        )
        worker = await read_pid(tmp_path / "pid")
        threading.Timer(0.3, (tmp_path / "go").touch).start()
        pool.shutdown(wait=True)  # blocks this loop until the job is done
        assert await asyncio.wait_for(job, DEADLINE) == worker
        assert gone(worker)
    finally:
        pool.terminate()


async def test_terminate_fails_a_lent_job_and_leaves_no_process(tmp_path: Path) -> None:
    pool = WorkerPool(1)
    await warm(pool)
    job = pool.submit_async(helpers.write_pid_and_wait, str(tmp_path / "pid"), None)
    worker = await read_pid(tmp_path / "pid")
    pool.terminate()
    with pytest.raises(PoolClosedError):
        await asyncio.wait_for(job, DEADLINE)
    await asyncio.to_thread(pool.shutdown, True)
    assert gone(worker)


async def test_shutdown_from_another_thread_cancels_queued_async_jobs(
    pool: WorkerPool, tmp_path: Path
) -> None:
    await warm(pool)
    running = pool.submit_async(
        helpers.write_pid_and_wait, str(tmp_path / "pid"), str(tmp_path / "go")
    )
    worker = await read_pid(tmp_path / "pid")
    queued = [pool.submit_async(helpers.identity, i) for i in range(2)]  # no idle worker
    await asyncio.to_thread(pool.shutdown, False, cancel_futures=True)
    for job in queued:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(job, DEADLINE)
    (tmp_path / "go").touch()
    assert await asyncio.wait_for(running, DEADLINE) == worker
    with pytest.raises(PoolClosedError):
        pool.submit_async(helpers.identity, 3)


def test_loops_in_two_threads_share_one_pool() -> None:
    pool = WorkerPool(2)
    results: dict[int, list[Any]] = {}

    def run(label: int) -> None:
        async def many() -> list[Any]:
            return [await pool.submit_async(helpers.identity, (label, i)) for i in range(200)]

        results[label] = asyncio.run(many())

    try:
        threads = [threading.Thread(target=run, args=(label,)) for label in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for label in range(3):
            assert results[label] == [(label, i) for i in range(200)]
        assert pool.statistics().processes_started == 2
    finally:
        pool.shutdown(wait=True)
    assert pool.statistics().workers_alive == 0


@pytest.mark.slow
def test_lent_and_thread_jobs_mixed_with_cancels_and_deaths() -> None:
    """Two loops lending jobs and two threads submitting plainly, on one pool of 2, at
    once; some jobs cancelled, a few killing their worker: every job gets its own
    outcome, never more than 2 processes run, and none is left behind."""
    pool = WorkerPool(2)
    large = "x" * (manager_module.DIRECT_MAX + 1)  # queued: read by the pool's thread
    outcomes: dict[str, list[Any]] = {}

    def expected(label: str, i: int) -> Any:
        if i % 9 == 4:
            return "cancelled"
        if i % 23 == 11:
            return "died"
        return (label, i, len(large) if i % 7 == 0 else 1)

    def job(label: str, i: int) -> tuple[Any, ...]:
        """What job ``i`` runs: one in 23 kills its worker, one in 7 carries a large payload."""
        if i % 23 == 11:
            return (helpers.kill_self,)
        return (helpers.identity, (label, i, large if i % 7 == 0 else "y"))

    def lender(label: str) -> None:
        async def run() -> list[Any]:
            seen: list[Any] = []
            for i in range(50):
                waiter = pool.submit_async(*job(label, i))
                if i % 9 == 4:
                    await asyncio.sleep(0.001 * (i % 3))  # queued, lent or finished
                    waiter.cancel()
                    seen.append("cancelled")
                    continue
                try:
                    got = await asyncio.wait_for(waiter, DEADLINE)
                except WorkerDied:
                    seen.append("died")
                    continue
                seen.append((got[0], got[1], len(got[2])))
            return seen

        outcomes[label] = asyncio.run(run())

    def submitter(label: str) -> None:
        seen: list[Any] = []
        for i in range(50):
            future = pool.submit(*job(label, i))
            if i % 9 == 4:
                future.cancel()
                seen.append("cancelled")
                continue
            try:
                got = future.result(timeout=DEADLINE)
            except WorkerDied:
                seen.append("died")
                continue
            seen.append((got[0], got[1], len(got[2])))
        outcomes[label] = seen

    threads = [threading.Thread(target=lender, args=(f"loop{k}",)) for k in range(2)]
    threads += [threading.Thread(target=submitter, args=(f"thread{k}",)) for k in range(2)]
    try:
        with watching_workers(pool) as most_alive:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
    finally:
        pool.shutdown(wait=True)
    for label, seen in outcomes.items():
        assert seen == [expected(label, i) for i in range(50)], label
    assert len(outcomes) == 4
    assert 1 <= most_alive() <= 2
    assert pool.statistics().workers_alive == 0


# -- a worker parked on its loop until the loop's next turn ----------------------------


async def test_a_loops_next_job_reuses_the_pipe_it_just_read(pool: WorkerPool) -> None:
    """A worker whose lent job just ended stays lent until the loop's next turn, so the
    job its coroutine submits at once goes to it without touching the loop's selector."""
    await warm(pool)
    loop = asyncio.get_running_loop()
    lent: list[int] = []
    add_reader = loop.add_reader

    def counting(fd: int, callback: Any, *args: Any) -> None:
        lent.append(fd)
        add_reader(fd, callback, *args)

    loop.add_reader = counting  # type: ignore[method-assign]
    try:
        assert [await pool.submit_async(helpers.identity, i) for i in range(50)] == [*range(50)]
    finally:
        del loop.add_reader
    assert len(lent) == 1  # lent once, then parked and reused 49 times
    assert await eventually_async(lambda: reader_of(pool) == [None])  # a turn later
    assert pool.statistics().processes_started == 1


async def test_a_parked_worker_serves_a_thread_once_its_loop_turns(pool: WorkerPool) -> None:
    await warm(pool)
    worker = await pool.submit_async(helpers.pid)  # parked on this loop now
    assert pool._manager.parked
    queued = pool.submit(helpers.pid)  # no idle worker: queued, served after this turn
    assert await asyncio.wait_for(asyncio.wrap_future(queued), DEADLINE) == worker
    assert not pool._manager.parked
    assert pool.statistics().processes_started == 1


async def test_a_worker_dying_while_parked_is_replaced(pool: WorkerPool) -> None:
    await warm(pool)
    victim = await pool.submit_async(helpers.pid)  # parked on this loop now
    os.kill(victim, signal.SIGKILL)
    assert await eventually_async(lambda: gone(victim))
    assert await asyncio.wait_for(pool.submit_async(helpers.pid), DEADLINE) != victim
    assert pool.statistics().workers_died == 1
    assert pool.statistics().processes_started == 2


def test_a_worker_parked_on_a_loop_that_stops_and_closes_is_taken_back(
    pool: WorkerPool,
) -> None:
    """The loop reads the job's result in the turn it stops in, so the turn that would
    unpark the worker never comes; once the loop is closed the pool takes it back."""
    loop = asyncio.new_event_loop()

    async def lend_and_stop() -> asyncio.Future[int]:
        await warm(pool)
        job = pool.submit_async(helpers.identity, 7)  # lent to this loop
        assert eventually(lambda: pool._manager.workers[0].conn.poll())  # type: ignore[union-attr]
        loop.call_soon(loop.stop)  # the result is read in the same turn as the stop
        return job

    task = loop.create_task(lend_and_stop())
    loop.run_forever()
    job = task.result()
    assert job.done()
    assert job.result() == 7
    assert pool._manager.parked  # stranded: its unpark was for the next turn
    loop.close()
    assert pool.submit(helpers.identity, 1).result(timeout=DEADLINE) == 1
    assert not pool._manager.parked
    assert pool.statistics().processes_started == 1


def test_an_outcome_crosses_the_pipe_whole() -> None:
    """Outcome pickles as a plain tuple of its fields (it crosses a pipe per trial)."""
    import pickle

    from aiotune.execution.call import Outcome
    from aiotune.trial import ErrorInfo

    outcome = Outcome(
        None, ErrorInfo("E", "m"), False, ((1, 0.5),), 1.0, 2.0, "h:1", (1.0, 2.0), (0.1,)
    )
    copy = pickle.loads(pickle.dumps(outcome))
    assert copy == outcome
    assert type(copy) is Outcome
    assert [getattr(copy, name) for name in Outcome._fields] == [
        getattr(outcome, name) for name in Outcome._fields
    ]


def test_trials_name_the_thread_they_ran_on() -> None:
    """The worker name is cached per thread, and never handed to another thread."""
    import socket

    from aiotune.execution.call import _worker_name

    main = f"{socket.gethostname()}:{os.getpid()}"
    names = []
    for label in ("first", "second"):
        thread = threading.Thread(target=lambda: names.append(_worker_name()), name=label)
        thread.start()
        thread.join()
    assert names == [f"{main}:first", f"{main}:second"]
