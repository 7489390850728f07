"""WorkerPool with real worker processes: results, crashes, kills, reports, clean exits."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import aiotune as at
from aiotune.errors import ConfigurationError
from aiotune.execution.pool import (
    RemoteError,
    RemoteTraceback,
    WorkerDied,
    WorkerPool,
    WorkerStartError,
)
from aiotune.execution.pool import _manager as manager_module

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:  # workers import the helpers by name through the inherited sys.path
    sys.path.insert(0, TESTS)

import _pool_helpers as helpers  # noqa: E402

DEADLINE = 10.0  # a failure bound, never a performance expectation


def eventually(predicate: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


async def eventually_async(predicate: Callable[[], bool], within: float = DEADLINE) -> bool:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited and been reaped."""
    return not os.path.exists(f"/proc/{pid}")


async def read_pid(path: Path) -> int:
    text = ""

    def written() -> bool:
        nonlocal text
        text = path.read_text() if path.exists() else ""
        return text != ""

    assert await eventually_async(written)
    return int(text)


@contextlib.contextmanager
def watching_workers(pool: WorkerPool) -> Iterator[Callable[[], int]]:
    """Sample ``pool``'s live workers every millisecond meanwhile; yield a function that
    returns the most seen."""
    most = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal most
        while not done.wait(0.001):
            most = max(most, pool.statistics().workers_alive)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield lambda: most
    finally:
        done.set()
        watcher.join()


@pytest.fixture
def make_pool() -> Iterator[Callable[..., WorkerPool]]:
    pools: list[WorkerPool] = []

    def make(max_workers: int = 1, **kwargs: Any) -> WorkerPool:
        pools.append(WorkerPool(max_workers, **kwargs))
        return pools[-1]

    yield make
    for pool in pools:
        pool.terminate()
        pool.shutdown(wait=True)


def test_lazy_start_and_result_from_another_process(make_pool: Callable[..., WorkerPool]) -> None:
    pool = make_pool(2)
    stats = pool.statistics()
    assert (stats.workers_alive, stats.processes_started) == (0, 0)
    assert multiprocessing.active_children() == []

    worker_pid = pool.submit(helpers.pid).result(timeout=DEADLINE)

    assert worker_pid != os.getpid()
    stats = pool.statistics()
    assert stats.processes_started == 1  # one job needs one worker
    assert (stats.max_workers, stats.workers_alive, stats.busy, stats.queued) == (2, 1, 0, 0)


async def test_run_in_executor_results_and_exceptions(
    make_pool: Callable[..., WorkerPool],
) -> None:
    pool = make_pool(2)
    loop = asyncio.get_running_loop()

    results = await asyncio.gather(
        *(loop.run_in_executor(pool, helpers.identity, i) for i in range(20))
    )
    assert results == list(range(20))

    with pytest.raises(ValueError, match="boom") as caught:
        await loop.run_in_executor(pool, helpers.fail, "boom")
    cause = caught.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in fail" in cause.text
    assert "ValueError: boom" in cause.text


async def test_exceptions_and_results_that_do_not_travel(
    make_pool: Callable[..., WorkerPool],
) -> None:
    pool = make_pool(1)
    loop = asyncio.get_running_loop()

    with pytest.raises(RemoteError) as caught:
        await loop.run_in_executor(pool, helpers.fail_unpicklable)
    assert caught.value.type_name == "_pool_helpers.TwoArgumentError"
    assert caught.value.message == "first and second"
    assert isinstance(caught.value.__cause__, RemoteTraceback)

    with pytest.raises(RemoteError, match="SystemExit: 4"):  # never a SystemExit on the loop
        await loop.run_in_executor(pool, helpers.exit_system)

    with pytest.raises(pickle.PicklingError, match="return value does not pickle"):
        await loop.run_in_executor(pool, helpers.return_unpicklable)

    with pytest.raises((pickle.PicklingError, AttributeError)):  # pickled in the parent
        await loop.run_in_executor(pool, helpers.identity, lambda: None)

    assert await loop.run_in_executor(pool, helpers.identity, "still fine") == "still fine"
    assert pool.statistics().processes_started == 1


def test_submits_from_many_threads_with_small_and_large_jobs(
    make_pool: Callable[..., WorkerPool],
) -> None:
    """A submit that finds a worker idle sends a small job itself; large ones are queued.
    Both paths, from several threads at once, with some jobs cancelled: every job gets
    its own result, and never more than ``workers`` processes run."""
    pool = make_pool(2)
    large = "x" * (manager_module.DIRECT_MAX + 1)

    def client(k: int) -> list[tuple[int, int, int]]:
        seen = []
        for i in range(60):
            payload = large if i % 7 == 0 else "y"
            future = pool.submit(helpers.identity, (k, i, payload))
            if i % 11 == 5:
                future.cancel()  # queued or running: either way, no result
                continue
            k2, i2, back = future.result(timeout=DEADLINE)
            seen.append((k2, i2, len(back)))
        return seen

    with watching_workers(pool) as most_alive:
        with concurrent.futures.ThreadPoolExecutor(4) as clients:
            results = list(clients.map(client, range(4)))
    for k, seen in enumerate(results):
        expected = [(k, i, len(large) if i % 7 == 0 else 1) for i in range(60) if i % 11 != 5]
        assert seen == expected
    assert 1 <= most_alive() <= 2


def test_worker_sees_sys_path_added_at_runtime(
    make_pool: Callable[..., WorkerPool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "aiotune_runtime_module.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "aiotune_runtime_module", raising=False)
    import aiotune_runtime_module  # type: ignore[import-not-found]

    pool = make_pool(1)
    assert pool.submit(aiotune_runtime_module.triple, 14).result(timeout=DEADLINE) == 42


async def test_cancelling_the_task_kills_its_worker_only(
    make_pool: Callable[..., WorkerPool], tmp_path: Path
) -> None:
    pool = make_pool(2)
    loop = asyncio.get_running_loop()
    hung_pid, other_pid, go = tmp_path / "hung", tmp_path / "other", tmp_path / "go"
    hung = asyncio.ensure_future(
        loop.run_in_executor(pool, helpers.write_pid_and_wait, str(hung_pid), None)
    )
    other = asyncio.ensure_future(
        loop.run_in_executor(pool, helpers.write_pid_and_wait, str(other_pid), str(go))
    )
    victim = await read_pid(hung_pid)
    survivor = await read_pid(other_pid)
    assert victim != survivor

    hung.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hung

    assert await eventually_async(lambda: gone(victim))
    go.touch()
    assert await other == survivor
    stats = pool.statistics()
    assert stats.workers_died == 0  # killed on purpose, not died
    assert await loop.run_in_executor(pool, helpers.identity, 1) == 1


def test_cancel_queued_running_and_finished_jobs(
    make_pool: Callable[..., WorkerPool], tmp_path: Path
) -> None:
    pool = make_pool(1)
    go = tmp_path / "go"
    first = pool.submit(helpers.write_pid_and_wait, str(tmp_path / "pid"), str(go))
    queued = pool.submit(helpers.identity, "never")
    assert eventually(lambda: (tmp_path / "pid").exists())  # running
    assert not first.running()  # a pool future stays pending while its job runs
    assert pool.statistics().queued == 1

    assert queued.cancel()
    assert queued.cancelled()
    assert pool.statistics().queued == 0
    go.touch()
    first.result(timeout=DEADLINE)
    assert not first.cancel()  # finished stays finished
    assert not first.cancelled()

    running = pool.submit(helpers.write_pid_and_wait, str(tmp_path / "pid2"), None)
    assert eventually(lambda: (tmp_path / "pid2").exists())
    assert running.cancel()
    done, _ = concurrent.futures.wait([running], timeout=DEADLINE)
    assert done == {running}
    assert running.cancelled()
    assert pool.submit(helpers.identity, 5).result(timeout=DEADLINE) == 5


@pytest.mark.parametrize(
    ("job", "args", "exitcode", "words"),
    [
        (helpers.exit_with, (3,), 3, "exited with code 3"),
        (helpers.kill_self, (), -9, "killed by signal 9 (SIGKILL)"),
        (helpers.segfault, (), -11, "killed by signal 11 (SIGSEGV)"),
    ],
    ids=["os._exit", "SIGKILL", "segfault"],
)
def test_dead_worker_fails_its_job_and_is_replaced(
    make_pool: Callable[..., WorkerPool],
    job: Callable[..., Any],
    args: tuple[Any, ...],
    exitcode: int,
    words: str,
) -> None:
    pool = make_pool(1)
    first_pid = pool.submit(helpers.pid).result(timeout=DEADLINE)

    with pytest.raises(WorkerDied) as caught:
        pool.submit(job, *args).result(timeout=DEADLINE)

    assert caught.value.pid == first_pid
    assert caught.value.exitcode == exitcode
    assert str(caught.value) == f"worker process {first_pid} died: {words}"
    assert pickle.loads(pickle.dumps(caught.value)).exitcode == exitcode
    assert pool.submit(helpers.pid).result(timeout=DEADLINE) not in (first_pid, os.getpid())
    stats = pool.statistics()
    assert (stats.workers_died, stats.processes_started, stats.workers_alive) == (1, 2, 1)


def test_memory_limit_gives_memory_error(make_pool: Callable[..., WorkerPool]) -> None:
    pool = make_pool(1, memory_limit=1 << 30)
    with pytest.raises(MemoryError):
        pool.submit(helpers.allocate, 2 << 30).result(timeout=DEADLINE)
    assert pool.submit(helpers.allocate, 1 << 20).result(timeout=DEADLINE) == 1 << 20


class Inbox:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.lock = threading.Lock()
        self.started_calls: list[tuple[int, str]] = []
        self.reports: list[tuple[int, int, float]] = []

    def started(self, number: int, worker: str) -> None:
        with self.lock:
            self.started_calls.append((number, worker))

    def report(self, number: int, step: int, value: float) -> bool:
        if self.fail:
            raise RuntimeError("inbox broke")
        with self.lock:
            self.reports.append((number, step, value))
        return step >= 2


async def test_reports_reach_the_inbox_and_decisions_come_back(
    make_pool: Callable[..., WorkerPool], caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(1)
    loop = asyncio.get_running_loop()
    inbox = Inbox()

    decisions = await loop.run_in_executor(pool, helpers.ReportingJob(inbox), 7, 4)

    assert decisions == [False, False, True, True]
    worker_pid = await loop.run_in_executor(pool, helpers.pid)
    assert inbox.started_calls == [(7, f"pid-{worker_pid}")]
    assert inbox.reports == [(7, 0, 0.0), (7, 1, 0.1), (7, 2, 0.2), (7, 3, 0.3)]

    # No inbox: every report is answered "go on".
    assert await loop.run_in_executor(pool, helpers.report_steps, 8, 3) == [False] * 3

    # An inbox that raises: logged, and answered "go on".
    with caplog.at_level(logging.ERROR, logger="aiotune"):
        decisions = await loop.run_in_executor(pool, helpers.ReportingJob(Inbox(True)), 9, 2)
    assert decisions == [False, False]
    assert "inbox broke" in caplog.text


def test_worker_retires_on_request(make_pool: Callable[..., WorkerPool]) -> None:
    pool = make_pool(1)
    retired = pool.submit(helpers.retire).result(timeout=DEADLINE)
    assert eventually(lambda: gone(retired))
    assert pool.submit(helpers.pid).result(timeout=DEADLINE) != retired
    stats = pool.statistics()
    assert (stats.processes_started, stats.workers_died) == (2, 0)


def test_shutdown_finishes_jobs_and_leaves_no_process(tmp_path: Path) -> None:
    pool = WorkerPool(2)
    futures = [pool.submit(helpers.pid) for _ in range(6)]
    pids = {future.result(timeout=DEADLINE) for future in futures}
    more = [pool.submit(helpers.identity, i) for i in range(4)]

    pool.shutdown(wait=True)

    assert [future.result(timeout=0) for future in more] == list(range(4))
    assert multiprocessing.active_children() == []
    assert all(gone(pid) for pid in pids)
    assert pool.statistics().workers_alive == 0
    with pytest.raises(at.PoolClosedError, match="after shutdown"):
        pool.submit(helpers.pid)
    pool.shutdown()  # again: a no-op
    pool.terminate()  # after a clean shutdown: a no-op


def test_shutdown_cancel_futures(tmp_path: Path) -> None:
    pool = WorkerPool(1)
    go = tmp_path / "go"
    running = pool.submit(helpers.write_pid_and_wait, str(tmp_path / "pid"), str(go))
    queued = [pool.submit(helpers.identity, i) for i in range(3)]
    assert eventually(lambda: (tmp_path / "pid").exists())

    pool.shutdown(wait=False, cancel_futures=True)

    assert all(future.cancelled() for future in queued)
    go.touch()
    assert running.result(timeout=DEADLINE) > 0
    pool.shutdown(wait=True)
    assert multiprocessing.active_children() == []


def test_terminate_kills_a_hung_job(tmp_path: Path) -> None:
    pool = WorkerPool(1)
    hung = pool.submit(helpers.write_pid_and_wait, str(tmp_path / "pid"), None)
    queued = pool.submit(helpers.identity, 1)
    assert eventually(lambda: (tmp_path / "pid").exists())
    worker_pid = int((tmp_path / "pid").read_text())

    pool.terminate()  # returns at once

    # Both fail with the typed error, promptly: nobody waiting on them hangs.
    with pytest.raises(at.PoolClosedError):
        hung.result(timeout=DEADLINE)
    with pytest.raises(at.PoolClosedError):
        queued.result(timeout=DEADLINE)
    assert eventually(lambda: gone(worker_pid))
    pool.shutdown(wait=True)  # joins the management thread
    assert multiprocessing.active_children() == []
    with pytest.raises(at.PoolClosedError):
        pool.submit(helpers.pid)


def test_worker_not_ready_in_time_fails_its_job(
    make_pool: Callable[..., WorkerPool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager_module, "READY_TIMEOUT", 0.0)
    pool = make_pool(1)
    with pytest.raises(WorkerStartError, match="not ready within 0 s"):
        pool.submit(helpers.pid).result(timeout=DEADLINE)
    assert pool.statistics().workers_died == 1


def test_worker_dying_before_ready_fails_its_job(make_pool: Callable[..., WorkerPool]) -> None:
    pool = make_pool(1)
    pool._manager.target = helpers.exit_before_ready  # instead of the real worker loop
    with pytest.raises(WorkerStartError, match="exited with code 7 before it was ready") as caught:
        pool.submit(helpers.pid).result(timeout=DEADLINE)
    assert caught.value.exitcode == 7


def test_management_thread_failure_fails_every_job(
    make_pool: Callable[..., WorkerPool],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = make_pool(1)

    def broken(*args: Any) -> None:
        raise RuntimeError("bookkeeping bug")

    monkeypatch.setattr(pool._manager, "_send_job", broken)
    with caplog.at_level(logging.ERROR, logger="aiotune"):
        future = pool.submit(helpers.pid)
        with pytest.raises(concurrent.futures.BrokenExecutor, match="bookkeeping bug"):
            future.result(timeout=DEADLINE)
    assert "management thread failed" in caplog.text
    with pytest.raises(concurrent.futures.BrokenExecutor):
        pool.submit(helpers.pid)


def test_abandoned_pool_is_cleaned_up_when_collected() -> None:
    pool = WorkerPool(1)
    worker_pid = pool.submit(helpers.pid).result(timeout=DEADLINE)
    del pool
    gc.collect()
    assert eventually(lambda: gone(worker_pid))


def test_abandoned_pool_leaves_no_process_at_interpreter_exit(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {TESTS!r})
        import _pool_helpers
        from aiotune.execution.pool import WorkerPool

        if __name__ == "__main__":
            pool = WorkerPool(1)
            pool.submit(_pool_helpers.write_pid_and_wait, {str(pid_file)!r}, None)
            assert _pool_helpers.wait_for_file({str(pid_file)!r})
            time.sleep(0.1)
            # exit with the job still running and no shutdown()
        """
    )
    (tmp_path / "abandon.py").write_text(script)
    subprocess.run(
        [sys.executable, str(tmp_path / "abandon.py")], check=True, timeout=60, cwd=tmp_path
    )
    assert eventually(lambda: gone(int(pid_file.read_text())))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"workers": 0}, "workers"),
        ({"workers": 1.5}, "workers"),
        ({"workers": 1, "memory_limit": 0}, "memory_limit"),
        ({"workers": 1, "mp_context": "teleport"}, "mp_context"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        WorkerPool(**kwargs)
    assert caught.value.argument == argument


@pytest.mark.slow
def test_forkserver_workers_start_preloaded_and_die_with_the_pool(tmp_path: Path) -> None:
    # In a child interpreter: the fork server outlives any one pool (it is per process).
    script = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {TESTS!r})
        import _pool_helpers
        from aiotune.execution.pool import WorkerPool

        if __name__ == "__main__":
            with WorkerPool(2, mp_context="forkserver") as pool:
                pids = {{pool.submit(_pool_helpers.pid).result(timeout=60) for _ in range(4)}}
                assert os.getpid() not in pids
                # The first job's module was imported by the fork server, not the worker.
                importer, worker = pool.submit(_pool_helpers.imported_by).result(timeout=60)
                assert importer != worker and importer != os.getpid()
                hung = pool.submit(_pool_helpers.write_pid_and_wait, {str(tmp_path / "pid")!r})
                assert _pool_helpers.wait_for_file({str(tmp_path / "pid")!r})
                assert hung.cancel()  # kills that worker only
                assert pool.submit(_pool_helpers.identity, 3).result(timeout=60) == 3
            print(len(pids))
        """
    )
    (tmp_path / "forkserver.py").write_text(script)
    out = subprocess.run(
        [sys.executable, str(tmp_path / "forkserver.py")],
        check=True,
        timeout=120,
        # Not the tests' directory: the fork server gets the script's sys.path, to which
        # the script added it (on Python 3.11 only through aiotune's _fork_setup).
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert int(out.stdout.strip()) >= 1
    assert eventually(lambda: gone(int((tmp_path / "pid").read_text())))


@pytest.mark.slow
def test_forkserver_runs_the_main_script_once_not_once_per_worker(tmp_path: Path) -> None:
    # Spawn semantics: a worker needs the script's top level (its functions unpickle
    # from there). The fork server runs it once; the workers forked from it reuse that.
    runs, place = tmp_path / "runs", tmp_path / "place"
    script = textwrap.dedent(
        f"""
        import os, time
        from aiotune.execution.pool import WorkerPool

        with open({str(runs)!r}, "a") as log:
            log.write(f"{{os.getpid()}}\\n")

        def meet(place):  # returns once three jobs run at once: on three workers
            open(os.path.join(place, str(os.getpid())), "w").close()
            deadline = time.monotonic() + 60
            while len(os.listdir(place)) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            return os.getpid()

        if __name__ == "__main__":
            os.mkdir({str(place)!r})
            with WorkerPool(3, mp_context="forkserver") as pool:
                done = [pool.submit(meet, {str(place)!r}) for _ in range(3)]
                print(len({{future.result(timeout=90) for future in done}}))
        """
    )
    (tmp_path / "main_once.py").write_text(script)
    out = subprocess.run(
        [sys.executable, str(tmp_path / "main_once.py")],
        check=True,
        timeout=120,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert int(out.stdout.strip()) == 3
    # The script itself, and the fork server: not each of the three workers.
    assert len(runs.read_text().split()) == 2
