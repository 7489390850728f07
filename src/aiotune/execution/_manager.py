"""The management thread of a :class:`~aiotune.execution.pool.WorkerPool`.

It owns every worker process of one pool: it starts them lazily, pickles and
sends jobs, waits with :func:`multiprocessing.connection.wait` on every
worker's pipe, every process sentinel and a wake-up pipe, forwards trials'
``started``/``report`` messages to their inboxes, and kills, reaps and
replaces workers. Other threads only queue requests and wake it.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import multiprocessing.connection  # imports multiprocessing.util: its atexit hook runs after ours
import os
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Future, InvalidStateError
from concurrent.futures._base import CANCELLED, RUNNING
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from aiotune.execution import _worker
from aiotune.execution.channel import ReportChannel
from aiotune.execution.pool_errors import (
    RemoteError,
    RemoteTraceback,
    WorkerDied,
    WorkerStartError,
    describe_exit,
)

_T = TypeVar("_T")

_logger = logging.getLogger("aiotune")

READY_TIMEOUT = 60.0  # seconds a new worker has to report ready
EXIT_GRACE = 2.0  # seconds an idle worker told to exit has before it is killed
REAP_TIMEOUT = 5.0  # seconds to wait for killed workers when the pool closes


class _PoolFuture(Future[_T]):
    """A future whose ``cancel()`` also works on a running job: it kills the job's worker.

    A job cancelled while running is left ``CANCELLED``; the management thread
    moves it on (``set_running_or_notify_cancel``) once the worker is killed,
    as it does for a job cancelled in the queue.
    """

    def __init__(self, on_cancel: Callable[[_PoolFuture[Any]], None]) -> None:
        super().__init__()
        self._on_cancel = on_cancel

    def cancel(self) -> bool:
        if super().cancel():  # pending (or already cancelled)
            self._on_cancel(self)
            return True
        with self._condition:
            if self._state != RUNNING:
                return False  # finished: it stays finished
            self._state = CANCELLED
            self._condition.notify_all()
        self._invoke_callbacks()  # type: ignore[attr-defined]
        self._on_cancel(self)
        return True


def _notify_cancelled(future: Future[Any]) -> None:
    """Tell ``wait()``/``as_completed()`` waiters that a cancelled job has been dropped."""
    if future._state == CANCELLED:
        future.set_running_or_notify_cancel()


def _settle(future: Future[Any], ok: bool, value: Any) -> None:
    try:
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
    except InvalidStateError:  # cancelled while it ran
        _notify_cancelled(future)


class _Job:
    __slots__ = ("args", "fn", "future", "inbox", "kwargs")

    def __init__(
        self, future: _PoolFuture[Any], fn: Callable[..., Any], args: Any, kwargs: Any
    ) -> None:
        self.future = future
        self.fn: Callable[..., Any] | None = fn
        self.args = args
        self.kwargs = kwargs
        self.inbox: ReportChannel | None = None


class State(enum.Enum):
    STARTING = enum.auto()
    IDLE = enum.auto()
    BUSY = enum.auto()
    EXITING = enum.auto()  # told to exit, retiring, or killed: waiting to be reaped


class _Worker:
    __slots__ = ("conn", "deadline", "job", "job_id", "killed", "process", "state")

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn: Connection | None = conn
        self.state = State.STARTING
        self.deadline: float | None = time.monotonic() + READY_TIMEOUT
        self.job: _Job | None = None
        self.job_id = b""
        self.killed = False


live_managers: set[Manager] = set()


class Manager:
    """The state of one pool, owned by its management thread.

    Other threads only touch what ``lock`` guards: the job queue, the
    cancellation requests, the flags, and the wake-up pipe.
    """

    def __init__(self, max_workers: int, memory_limit: int | None, context: BaseContext) -> None:
        self.max_workers = max_workers
        self.memory_limit = memory_limit
        self.context = context
        self.target: Callable[[Connection, int | None], None] = _worker.main
        self.lock = threading.Lock()
        # guarded by lock
        self.pending: deque[_Job] = deque()
        self.cancelled: list[_PoolFuture[Any]] = []
        self.shutting_down = False
        self.terminating = False
        self.broken: BaseException | None = None
        self.thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._woken = False
        self._closed = False
        # management thread only (read by statistics() as a snapshot)
        self.workers: list[_Worker] = []
        self.idle: list[_Worker] = []
        self.in_hand: _Job | None = None
        self.next_job_id = 0
        self.processes_started = 0
        self.workers_died = 0

    # -- called from any thread ------------------------------------------------

    def submit(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> _PoolFuture[Any]:
        future: _PoolFuture[Any] = _PoolFuture(self.cancel_requested)
        job = _Job(future, fn, args, kwargs)
        with self.lock:
            if self.broken is not None:
                raise BrokenExecutor(f"the worker pool is broken: {self.broken!r}")
            if self.shutting_down:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self.pending.append(job)
            if self.thread is None:
                self._start_thread()
            self._wake()
        return future

    def cancel_requested(self, future: _PoolFuture[Any]) -> None:
        with self.lock:
            self.cancelled.append(future)
            self._wake()

    def shutdown(self, wait: bool, *, cancel_futures: bool = False) -> None:
        with self.lock:
            self.shutting_down = True
            queued = [job.future for job in self.pending] if cancel_futures else []
            thread = self.thread
            self._wake()
        for future in queued:
            future.cancel()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    def terminate(self) -> None:
        with self.lock:
            self.shutting_down = self.terminating = True
            futures = [job.future for job in self.pending]
            self._wake()
        # Also cancel running jobs now, from a snapshot: the management thread
        # cancels any job it was handing to a worker at this very moment.
        jobs = [worker.job for worker in list(self.workers)]
        futures.extend(job.future for job in [*jobs, self.in_hand] if job is not None)
        for future in futures:
            future.cancel()

    def _start_thread(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.thread = threading.Thread(target=self._run, name="aiotune-worker-pool", daemon=True)
        live_managers.add(self)
        try:
            self.thread.start()
        except BaseException:
            live_managers.discard(self)
            self.thread = None
            self.pending.pop()
            os.close(self._wake_r)
            os.close(self._wake_w)
            raise

    def _wake(self) -> None:  # with lock held
        if self.thread is not None and not self._woken and not self._closed:
            self._woken = True
            os.write(self._wake_w, b"\0")

    # -- the management thread -------------------------------------------------

    def _run(self) -> None:
        # Workers inherit this thread's signal mask: they start with SIGINT blocked.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._loop()
        except BaseException as exc:
            _logger.exception("aiotune worker pool: the management thread failed")
            with _logged("failing the outstanding jobs"):
                self._fail_everything(exc)
        finally:
            with _logged("closing the pool"):
                self._close()

    def _loop(self) -> None:
        while True:
            with self.lock:
                if self._woken:
                    self._woken = False
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 64)
                cancelled, self.cancelled = self.cancelled, []
                shutting_down, terminating = self.shutting_down, self.terminating
            if terminating:
                self._kill_everything()
                return
            if cancelled:
                self._handle_cancellations(cancelled)
            self._dispatch(shutting_down)
            if shutting_down and not self.workers:
                with self.lock:
                    if not self.pending:
                        return
            self._wait()

    def _dispatch(self, shutting_down: bool) -> None:
        while self.idle:
            with self.lock:
                if not self.pending:
                    break
                job = self.pending.popleft()
            if job.future.set_running_or_notify_cancel():
                self.in_hand = job  # neither queued nor on a worker yet
                self._send_job(self.idle.pop(), job)
                self.in_hand = None
        with self.lock:
            waiting = len(self.pending)
        if waiting:
            starting = sum(w.state is State.STARTING for w in self.workers)
            while waiting > starting and len(self.workers) < self.max_workers:
                if not self._start_worker():
                    break
                starting += 1
        elif shutting_down:
            for worker in list(self.idle):
                self._tell_to_exit(worker)
            for worker in self.workers:
                if worker.state is State.STARTING:
                    self._kill(worker)  # started for a job that no longer needs it

    def _send_job(self, worker: _Worker, job: _Job) -> None:
        job.inbox = getattr(job.fn, "inbox", None)
        try:
            payload = pickle.dumps((job.fn, job.args, job.kwargs), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            self.idle.append(worker)
            _settle(job.future, False, exc)
            return
        finally:
            job.fn = job.args = job.kwargs = None
        job_id = self.next_job_id.to_bytes(_worker.ID_SIZE, "little")
        self.next_job_id += 1
        worker.job, worker.job_id, worker.state = job, job_id, State.BUSY
        assert worker.conn is not None
        try:
            worker.conn.send_bytes(b"".join((_worker.JOB, job_id, payload)))
        except OSError:
            pass  # the worker died: its sentinel reports it and the job gets WorkerDied

    def _start_worker(self) -> bool:
        parent_conn, child_conn = self.context.Pipe(duplex=True)
        process = self.context.Process(  # type: ignore[attr-defined]
            target=self.target,
            args=(child_conn, self.memory_limit),
            name=f"aiotune-worker-{self.processes_started}",
            daemon=False,  # a worker may start processes of its own
        )
        try:
            process.start()
        except Exception as exc:
            parent_conn.close()
            _logger.warning("aiotune worker pool: cannot start a worker process: %s", exc)
            error = WorkerStartError(None, None, f"cannot start a worker process: {exc!r}")
            error.__cause__ = exc
            self._fail_first_queued(error)
            return False
        finally:
            child_conn.close()
        self.workers.append(_Worker(process, parent_conn))
        self.processes_started += 1
        return True

    def _wait(self) -> None:
        objects: list[Connection | int] = [self._wake_r]
        by_conn: dict[Connection, _Worker] = {}
        by_sentinel: dict[int, _Worker] = {}
        timeout: float | None = None
        now = time.monotonic()
        for worker in self.workers:
            if worker.conn is not None:
                objects.append(worker.conn)
                by_conn[worker.conn] = worker
            objects.append(worker.process.sentinel)
            by_sentinel[worker.process.sentinel] = worker
            if worker.deadline is not None:
                left = max(0.0, worker.deadline - now)
                timeout = left if timeout is None else min(timeout, left)
        ready = multiprocessing.connection.wait(objects, timeout)
        for obj in ready:  # messages first: a job may have finished just before its worker died
            if isinstance(obj, Connection) and by_conn[obj].conn is obj:
                self._receive(by_conn[obj])
        for obj in ready:
            if isinstance(obj, int) and obj in by_sentinel:
                self._worker_exited(by_sentinel[obj])
        if timeout is not None:
            self._check_deadlines()

    def _receive(self, worker: _Worker) -> None:
        assert worker.conn is not None
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._close_conn(worker)  # the worker is dying: its sentinel will say how
            return
        kind = data[:1]
        if kind == _worker.REPORT:
            self._forward_report(worker, data)
        elif kind == _worker.STARTED:
            self._forward_started(worker, data)
        elif kind in (_worker.DONE, _worker.DONE_EXIT) and worker.job is not None:
            if data[1 : 1 + _worker.ID_SIZE] != worker.job_id:
                self._protocol_error(worker, kind)
                return
            job, worker.job = worker.job, None
            if kind == _worker.DONE_EXIT:
                self._close_conn(worker)
                worker.state, worker.deadline = State.EXITING, time.monotonic() + EXIT_GRACE
            else:
                worker.state = State.IDLE
                self.idle.append(worker)
            ok, value = _unpack_outcome(data)
            _settle(job.future, ok, value)
        elif kind == _worker.READY and worker.state is State.STARTING:
            worker.state, worker.deadline = State.IDLE, None
            self.idle.append(worker)
        else:
            self._protocol_error(worker, kind)

    def _forward_started(self, worker: _Worker, data: bytes) -> None:
        number, name = pickle.loads(memoryview(data)[1:])
        inbox = worker.job.inbox if worker.job is not None else None
        if inbox is not None:
            try:
                inbox.started(number, name)
            except Exception:
                _logger.exception("aiotune worker pool: a job's inbox: started() raised")

    def _forward_report(self, worker: _Worker, data: bytes) -> None:
        assert worker.conn is not None
        number, step, value = pickle.loads(memoryview(data)[1:])
        inbox = worker.job.inbox if worker.job is not None else None
        decision = False
        if inbox is not None:
            try:
                decision = bool(inbox.report(number, step, value))
            except Exception:
                _logger.exception("aiotune worker pool: a job's inbox: report() raised")
        try:
            worker.conn.send_bytes(_worker.YES if decision else _worker.NO)
        except OSError:
            pass  # the worker died: its sentinel reports it

    def _protocol_error(self, worker: _Worker, kind: bytes) -> None:
        _logger.error(
            "aiotune worker pool: unexpected message %r from worker %s; killing it",
            kind,
            worker.process.pid,
        )
        job, worker.job = worker.job, None
        self._kill(worker)
        if job is not None:
            _settle(job.future, False, WorkerDied(worker.process.pid, None))

    def _worker_exited(self, worker: _Worker) -> None:
        if worker not in self.workers:
            return
        while worker.conn is not None and worker.conn.poll():  # read what it said before dying
            self._receive(worker)
        exitcode = _reap(worker.process)
        pid = worker.process.pid
        self.workers.remove(worker)
        if worker in self.idle:
            self.idle.remove(worker)
        self._close_conn(worker)
        job, worker.job = worker.job, None
        if worker.state is State.STARTING:
            self.workers_died += 1
            problem = f"{describe_exit(exitcode)} before it was ready"
            self._fail_first_queued(WorkerStartError(pid, exitcode, problem))
        elif job is not None:
            self.workers_died += 1
            _settle(job.future, False, WorkerDied(pid, exitcode))
        elif worker.state is State.IDLE:
            self.workers_died += 1
            _logger.warning(
                "aiotune worker pool: idle worker process %s %s", pid, describe_exit(exitcode)
            )
        if worker.process.exitcode is not None:
            worker.process.close()

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for worker in list(self.workers):
            if worker.deadline is None or now < worker.deadline:
                continue
            if worker.state is State.STARTING:
                self.workers_died += 1
                self._kill(worker)
                problem = f"not ready within {READY_TIMEOUT:g} s (killed)"
                self._fail_first_queued(WorkerStartError(worker.process.pid, None, problem))
            else:
                self._kill(worker)  # told to exit and did not

    def _handle_cancellations(self, futures: list[_PoolFuture[Any]]) -> None:
        unmatched = False
        for future in futures:
            worker = next((w for w in self.workers if w.job and w.job.future is future), None)
            if worker is None:
                unmatched = True  # queued, or finished before it could be killed
                continue
            worker.job = None
            self._kill(worker)
            _notify_cancelled(future)
        if unmatched:
            with self.lock:
                kept: deque[_Job] = deque()
                dropped: list[_Job] = []
                for job in self.pending:
                    (dropped if job.future.cancelled() else kept).append(job)
                self.pending = kept
            for job in dropped:
                _notify_cancelled(job.future)

    def _fail_first_queued(self, error: BaseException) -> None:
        """Fail the oldest queued job: the one a failed worker was started for."""
        while True:
            with self.lock:
                if not self.pending:
                    return
                job = self.pending.popleft()
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(error)
                return

    def _tell_to_exit(self, worker: _Worker) -> None:
        self.idle.remove(worker)
        assert worker.conn is not None
        with contextlib.suppress(OSError):
            worker.conn.send_bytes(_worker.QUIT)
        self._close_conn(worker)
        worker.state, worker.deadline = State.EXITING, time.monotonic() + EXIT_GRACE

    def _kill(self, worker: _Worker) -> None:
        if not worker.killed:
            worker.process.kill()  # not reaped yet, so the pid is still this worker's
            worker.killed = True
        if worker in self.idle:
            self.idle.remove(worker)
        self._close_conn(worker)
        worker.state, worker.deadline = State.EXITING, None

    @staticmethod
    def _close_conn(worker: _Worker) -> None:
        if worker.conn is not None:
            worker.conn.close()
            worker.conn = None

    def _kill_everything(self) -> None:
        for worker in self.workers:
            job, worker.job = worker.job, None
            if job is not None:
                job.future.cancel()
                _notify_cancelled(job.future)
            self._kill(worker)

    def _fail_everything(self, exc: BaseException) -> None:
        error = BrokenExecutor(f"the worker pool's management thread failed: {exc!r}")
        error.__cause__ = exc
        with self.lock:
            self.broken = exc
            self.shutting_down = True
            jobs = list(self.pending)
            self.pending.clear()
        for worker in self.workers:
            job, worker.job = worker.job, None
            if job is not None:
                _settle(job.future, False, error)
        if self.in_hand is not None:
            _settle(self.in_hand.future, False, error)
        for job in jobs:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(error)

    def _close(self) -> None:
        """End of the thread: no process left behind, no job left waiting."""
        try:
            for worker in self.workers:
                if worker.job is not None:
                    job, worker.job = worker.job, None
                    job.future.cancel()
                    _notify_cancelled(job.future)
                with contextlib.suppress(Exception):
                    self._kill(worker)
            deadline = time.monotonic() + REAP_TIMEOUT
            left = list(self.workers)
            while left and time.monotonic() < deadline:
                sentinels = {w.process.sentinel: w for w in left}
                timeout = max(0.0, deadline - time.monotonic())
                for sentinel in multiprocessing.connection.wait(list(sentinels), timeout):
                    worker = sentinels[sentinel]  # type: ignore[index]
                    if _reap(worker.process) is not None:
                        worker.process.close()
                    left.remove(worker)
            if left:
                pids = ", ".join(str(w.process.pid) for w in left)
                _logger.error("aiotune worker pool: worker processes %s could not be reaped", pids)
            self.workers.clear()
            self.idle.clear()
        finally:
            with self.lock:
                self._closed = True
                self.shutting_down = True
                jobs = list(self.pending)
                self.pending.clear()
                os.close(self._wake_r)
                os.close(self._wake_w)
            for job in jobs:
                job.future.cancel()
                _notify_cancelled(job.future)
            live_managers.discard(self)


@contextlib.contextmanager
def _logged(doing: str) -> Iterator[None]:
    """Log, rather than lose, an error of the management thread's last steps."""
    try:
        yield
    except BaseException:
        _logger.exception("aiotune worker pool: error while %s", doing)


def _unpack_outcome(data: bytes) -> tuple[bool, Any]:
    ok = data[1 + _worker.ID_SIZE : 2 + _worker.ID_SIZE] == _worker.YES
    try:
        value = pickle.loads(memoryview(data)[2 + _worker.ID_SIZE :])
    except Exception as exc:
        failure = pickle.UnpicklingError(f"the job's outcome could not be unpickled: {exc!r}")
        failure.__cause__ = exc
        return False, failure
    if ok:
        return True, value
    error, type_name, message, tb_text = value
    if error is None:
        error = RemoteError(type_name, message)
    error.__cause__ = RemoteTraceback(tb_text)
    return False, error


def _reap(process: BaseProcess) -> int | None:
    """Collect the exit status of a process whose sentinel fired (it is exiting)."""
    for _ in range(1000):
        process.join(0)
        if process.exitcode is not None:
            return process.exitcode
        time.sleep(0.001)  # the sentinel closes a moment before the process is waitable
    process.kill()  # it closed its sentinel but lives on
    process.join(REAP_TIMEOUT)
    return process.exitcode
