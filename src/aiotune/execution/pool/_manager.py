"""The management thread of a :class:`~aiotune.execution.pool.WorkerPool`.

It owns every worker process of one pool: it starts them lazily, sends queued
jobs, waits (one epoll selector) on the pipes of the workers whose messages it
reads, every process sentinel and a wake-up pipe, forwards trials' ``started``/``report``
messages to their inboxes, settles futures, and kills, reaps and replaces
workers. Other threads queue requests and wake it, with one shortcut: a
``submit`` that finds the queue empty and a worker idle sends the job to that
worker itself (under the lock), so the common case of a study keeping its
workers busy costs no thread hop on the way out. The job is pickled in the
submitting thread either way.

A job submitted from an event loop (``WorkerPool.submit_async``) that takes
that shortcut is *lent* to the loop with its worker: the loop reads the
worker's pipe itself (``loop.add_reader``) until the job ends, and no thread
hop is left at all. The worker then stays lent, *parked* on the loop, until
the loop's next turn, so the job the awaiting coroutine submits at once
reuses the pipe as it is; a worker is never parked while jobs are queued.
Exactly one reader owns a pipe at a time, decided under the lock: while a
worker is lent, this thread neither reads nor closes its pipe. When a lent
worker's process exits, this thread asks the loop for the pipe back (or
takes it, once the loop is closed) before it settles the job, so nothing the
worker said before dying is lost.

Futures use only the public :class:`concurrent.futures.Future` API. A job's
future stays *pending* while the job runs (``running()`` is never true), so
``cancel()`` works on a running job too: the management thread then kills
its worker. Each future gets exactly one ``set_result``/``set_exception`` or,
once cancelled, one ``set_running_or_notify_cancel()`` (which tells
``wait()``/``as_completed()`` waiters), from whichever side took the job
from its worker under the lock (this thread, or the loop the job was lent
to). A job from ``submit_async`` settles an asyncio future of its loop
instead (:class:`_LoopFuture`).

Jobs wait in one queue per *group* (the job's inbox: one per study), served
in turn, so a study with a long queue cannot starve another.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import json
import logging
import multiprocessing.connection  # imports multiprocessing.util: its atexit hook runs after ours
import os
import selectors
import signal
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Future, InvalidStateError
from multiprocessing import spawn
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from aiotune.errors import PoolClosedError
from aiotune.execution.channel import ReportChannel
from aiotune.execution.pool import _fork_setup, _worker
from aiotune.execution.pool import _protocol as wire
from aiotune.execution.pool._errors import WorkerDied, WorkerStartError, describe_exit

_T = TypeVar("_T")

_logger = logging.getLogger("aiotune")

READY_TIMEOUT = 60.0  # seconds a new worker has to report ready
EXIT_GRACE = 2.0  # seconds an idle worker told to exit has before it is killed
REAP_TIMEOUT = 5.0  # seconds to wait for killed workers when the pool closes
DIRECT_MAX = 32 * 1024  # bytes: a submit sends a job this small to an idle worker itself
LENT_CHECK = 1.0  # seconds between checks that the loops reading lent pipes are not closed


class _PoolFuture(Future[_T]):
    """A future whose ``cancel()`` also works while its job runs: the job's worker is killed."""

    def __init__(self, on_cancel: Callable[[], None]) -> None:
        super().__init__()
        self._on_cancel = on_cancel

    def cancel(self) -> bool:
        if super().cancel():
            self._on_cancel()
            return True
        return False


class _LoopFuture:
    """What a job submitted from an event loop settles: an asyncio future of that loop.

    The few methods of a ``concurrent.futures.Future`` a job uses, without its
    condition variable and callbacks: a job lent to the loop is settled on the
    loop's own thread, at once; from another thread (the management thread,
    for a job it sent) the result goes through ``call_soon_threadsafe``.
    Cancelling the asyncio future cancels the job (see
    :meth:`Manager.submit_async`).
    """

    __slots__ = ("loop", "thread", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[Any]) -> None:
        self.loop = loop
        self.thread = threading.get_ident()
        self.waiter = waiter

    def cancelled(self) -> bool:
        return self.waiter.cancelled()

    def cancel(self) -> bool:
        """From any thread (``shutdown(cancel_futures=True)``)."""
        if threading.get_ident() == self.thread:
            return self.waiter.cancel()
        try:
            self.loop.call_soon_threadsafe(self.waiter.cancel)
        except RuntimeError:  # the loop is closed: nobody waits
            return False
        return True

    def set_result(self, value: Any) -> None:
        self._settle(True, value)

    def set_exception(self, error: BaseException) -> None:
        self._settle(False, error)

    def set_running_or_notify_cancel(self) -> bool:
        return False  # nobody waits on a condition

    def _settle(self, ok: bool, value: Any) -> None:
        if threading.get_ident() == self.thread:
            self._settle_here(ok, value)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self.loop.call_soon_threadsafe(self._settle_here, ok, value)

    def _settle_here(self, ok: bool, value: Any) -> None:
        if self.waiter.done():  # cancelled meanwhile
            return
        if ok:
            self.waiter.set_result(value)
        else:
            self.waiter.set_exception(value)


class _Job:
    __slots__ = (
        "future",
        "group",
        "inbox",
        "job_id",
        "message",
        "on_item",
        "preload",
        "settled",
        "unpicklable",
    )

    def __init__(self, fn: Callable[..., Any], job_id: bytes, message: bytes | None) -> None:
        self.future: _PoolFuture[Any] | _LoopFuture | None = None
        self.job_id = job_id
        self.message = message  # the pickled job; None once sent (or if it did not pickle)
        self.inbox: ReportChannel | None = getattr(fn, "inbox", None)
        self.on_item: Callable[[int, Any], None] | None = getattr(fn, "on_item", None)
        self.preload: str | None = getattr(fn, "preload", None) or getattr(fn, "__module__", None)
        # One group per inbox (per study); jobs without one share a group. By id: an inbox
        # need not be hashable, and the job keeps it alive while it waits.
        self.group = id(self.inbox)
        self.settled = False
        self.unpicklable: Exception | None = None  # why it did not pickle

    def settle(self, ok: bool, value: Any) -> None:
        """Give the job's future its outcome (or tell waiters it was cancelled), once."""
        if self.settled:
            return
        self.settled = True
        assert self.future is not None
        try:
            if ok:
                self.future.set_result(value)
            else:
                self.future.set_exception(value)
        except InvalidStateError:  # cancelled meanwhile
            self.future.set_running_or_notify_cancel()

    def drop(self) -> None:
        """The job's future was cancelled: tell waiters, once."""
        if not self.settled:
            self.settled = True
            assert self.future is not None
            self.future.set_running_or_notify_cancel()


class FairQueue:
    """Jobs waiting for a worker: one FIFO per group, groups served in turn."""

    def __init__(self) -> None:
        self._queues: dict[int, deque[_Job]] = {}

    def append(self, job: _Job) -> None:
        queue = self._queues.get(job.group)
        if queue is None:
            queue = self._queues[job.group] = deque()
        queue.append(job)

    def popleft(self) -> _Job:
        """The next job of the group whose turn it is; that group then goes to the back."""
        group = next(iter(self._queues))
        queue = self._queues.pop(group)
        job = queue.popleft()
        if queue:
            self._queues[group] = queue  # re-inserted: last in turn
        return job

    def remove_cancelled(self) -> list[_Job]:
        """Take the cancelled jobs out; return them."""
        dropped: list[_Job] = []
        for group in list(self._queues):
            queue = self._queues[group]
            kept = deque(job for job in queue if not _cancelled(job))
            dropped.extend(job for job in queue if _cancelled(job))
            if kept:
                self._queues[group] = kept
            else:
                del self._queues[group]
        return dropped

    def clear(self) -> list[_Job]:
        """Take every job out; return them."""
        jobs = [job for queue in self._queues.values() for job in queue]
        self._queues.clear()
        return jobs

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def __bool__(self) -> bool:
        return bool(self._queues)

    def __iter__(self) -> Iterator[_Job]:
        return (job for queue in self._queues.values() for job in queue)


def _cancelled(job: _Job) -> bool:
    return job.future is not None and job.future.cancelled()


class State(enum.Enum):
    STARTING = enum.auto()
    IDLE = enum.auto()
    BUSY = enum.auto()
    EXITING = enum.auto()  # told to exit, retiring, or killed: waiting to be reaped


class _Worker:
    __slots__ = (
        "conn",
        "deadline",
        "exited",
        "gone",
        "job",
        "job_id",
        "killed",
        "process",
        "reader",
        "state",
    )

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn: Connection | None = conn
        self.state = State.STARTING
        self.deadline: float | None = time.monotonic() + READY_TIMEOUT
        self.job: _Job | None = None
        self.job_id = b""
        self.killed = False
        self.gone = False  # its exit was seen: never idle again
        # The event loop reading its pipe while it runs a job lent to that loop;
        # None: the management thread reads it.
        self.reader: asyncio.AbstractEventLoop | None = None
        self.exited = False  # its exit was seen while lent: waiting for the pipe back


live_managers: set[Manager] = set()


class Manager:
    """The state of one pool, owned by its management thread.

    Other threads only touch what ``lock`` guards: the job queue, the idle
    workers (and the job, state, pipe and reader of a worker taken from them),
    the cancellation requests, the workers given back after their exit, the
    flags, the wake-up pipe and the selector's registrations.
    """

    def __init__(self, max_workers: int, memory_limit: int | None, context: BaseContext) -> None:
        self.max_workers = max_workers
        self.memory_limit = memory_limit
        self.context = context
        self.target: Callable[[Connection, int | None], None] = _worker.main
        self.lock = threading.Lock()
        # guarded by lock
        self.pending = FairQueue()
        self.cancelled: list[_Job] = []
        self.returned: list[_Worker] = []  # lent workers given back after their exit
        self.shutting_down = False
        self.terminating = False
        self.broken: BaseException | None = None
        self.thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._selector: selectors.BaseSelector  # made with the thread
        self._woken = False
        self._closed = False
        self.idle: list[_Worker] = []
        # Idle workers whose pipe the loop that ran their last job still reads, until
        # that loop's next turn: the job it submits then reuses the pipe as it is.
        self.parked: list[_Worker] = []
        self._job_ids = itertools.count()  # next() is atomic under the GIL
        # management thread only (read by statistics() as a snapshot)
        self.workers: list[_Worker] = []
        self.processes_started = 0
        self.workers_died = 0

    # -- called from any thread ------------------------------------------------

    def submit(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> _PoolFuture[Any]:
        """Queue a job (or send it to an idle worker); return its future."""
        job = self._job(fn, args, kwargs)
        future: _PoolFuture[Any] = _PoolFuture(lambda: self.cancel_requested(job))
        job.future = future
        self._enqueue(job, None)
        return future

    def submit_async(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> asyncio.Future[Any]:
        """From a coroutine: as :meth:`submit`, returning a future of the running loop.

        A job sent to an idle worker at once is lent to that loop, which reads
        its result. Cancelling the returned future cancels the job.
        """
        loop = asyncio.get_running_loop()
        job = self._job(fn, args, kwargs)
        waiter: asyncio.Future[Any] = loop.create_future()
        job.future = _LoopFuture(loop, waiter)

        def abandoned(waiter: asyncio.Future[Any]) -> None:
            if waiter.cancelled():
                self.cancel_requested(job)

        waiter.add_done_callback(abandoned)
        self._enqueue(job, loop)
        return waiter

    def _job(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> _Job:
        """A job for ``fn(*args, **kwargs)``, pickled here (in the submitting thread)."""
        job_id = wire.job_id(next(self._job_ids))
        try:
            return _Job(fn, job_id, wire.job_message(job_id, fn, args, kwargs))
        except Exception as exc:
            job = _Job(fn, job_id, None)
            job.unpicklable = exc
            return job

    def _enqueue(self, job: _Job, loop: asyncio.AbstractEventLoop | None) -> None:
        """Send ``job`` to an idle worker now (lent to ``loop``, if given) or queue it."""
        with self.lock:
            if self.broken is not None:
                raise BrokenExecutor(f"the worker pool is broken: {self.broken!r}")
            if self.shutting_down:
                raise PoolClosedError("the worker pool is closed: no new jobs after shutdown")
            if job.unpicklable is not None:
                job.settle(False, job.unpicklable)  # no callbacks yet: safe under the lock
            elif (
                loop is not None
                and not self.pending
                and len(job.message or b"") <= DIRECT_MAX
                and (worker := self._parked_on(loop)) is not None
            ):
                self._send_job(worker, self._assign(worker, job))  # already lent to loop
            elif self.idle and not self.pending and len(job.message or b"") <= DIRECT_MAX:
                # The shortcut: no hop, no wake-up. Under the lock, so the management
                # thread cannot close the pipe meanwhile; small, so the write cannot block.
                worker = self.idle.pop()
                message = self._assign(worker, job)
                if loop is not None:
                    self._lend(worker, loop)
                if worker.reader is None:
                    self._watch_pipe(worker)
                self._send_job(worker, message)
            else:
                self.pending.append(job)
                if self.thread is None:
                    self._start_thread(job)
                self._wake()

    def cancel_requested(self, job: _Job) -> None:
        with self.lock:
            self.cancelled.append(job)
            self._wake()

    def shutdown(self, wait: bool, *, cancel_futures: bool = False) -> None:
        with self.lock:
            if wait:
                self._take_back_from_this_thread()
            self.shutting_down = True
            queued = [job.future for job in self.pending] if cancel_futures else []
            thread = self.thread
            self._wake()
        for future in queued:
            if future is not None:
                future.cancel()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    def terminate(self) -> None:
        with self.lock:
            self.shutting_down = self.terminating = True
            self._wake()

    # -- lending a worker's pipe to an event loop --------------------------------

    def _watch_pipe(self, worker: _Worker) -> None:
        """With lock held: make sure this thread's selector watches ``worker``'s pipe
        (a submit about to send it a job; an idle worker's pipe may not be watched)."""
        assert worker.conn is not None
        fd, data = worker.conn.fileno(), ("message", worker)
        key = self._selector.get_map().get(fd)
        if key is None or key.data != data:
            if key is not None:
                self._selector.unregister(fd)
            self._selector.register(fd, selectors.EVENT_READ, data)

    def _lend(self, worker: _Worker, loop: asyncio.AbstractEventLoop) -> None:
        """Let ``loop`` read the pipe of ``worker`` (just given a job) until the job ends.

        With lock held, on ``loop``'s thread. A loop that cannot watch a pipe
        (no ``add_reader``) leaves it to this thread.
        """
        assert worker.conn is not None
        fd = worker.conn.fileno()
        try:
            loop.add_reader(fd, self._read_lent, worker)
        except NotImplementedError:
            return
        worker.reader = loop
        if not self._closed and self._selector.get_map().get(fd) is not None:
            self._selector.unregister(fd)

    def _read_lent(self, worker: _Worker) -> None:
        """On the loop a worker is lent to: read one message from its pipe and handle it."""
        conn = worker.conn
        if conn is None or worker.reader is None:
            return
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):  # the worker is dying: the manager's sentinel says how
            with self.lock:
                self._unlend(worker)
            return
        self._handle(worker, data)

    def _unlend(self, worker: _Worker) -> None:
        """With lock held, on the loop ``worker`` is lent to: the management thread reads
        its pipe again (or closes it, if the worker is on its way out)."""
        loop, worker.reader = worker.reader, None
        if loop is None:
            return
        if worker in self.parked:  # it died, or the pool is closing, while parked
            self.parked.remove(worker)
        conn = worker.conn
        if conn is not None:
            loop.remove_reader(conn.fileno())
            if worker.exited:
                pass  # the management thread reads what it said before dying
            elif worker.state is State.EXITING or self._closed:
                self._close_conn(worker)
            # else: an idle worker's pipe needs no watching (its sentinel tells of its
            # death); whoever sends it a job next makes sure it is watched
        if worker.exited:
            self.returned.append(worker)
            self._wake()
        elif self.pending or self.shutting_down or self._closed:
            self._wake()

    def _unlend_on_request(self, worker: _Worker) -> None:
        """On the loop ``worker`` is lent to, when the management thread asks for its pipe."""
        with self.lock:
            self._unlend(worker)

    def _ask_back(self, worker: _Worker, loop: asyncio.AbstractEventLoop) -> bool:
        """From the management thread: ask ``loop`` for ``worker``'s pipe; True if asked.

        False when the loop is closed: it reads nothing any more, and the pipe
        is this thread's again.
        """
        try:
            loop.call_soon_threadsafe(self._unlend_on_request, worker)
        except RuntimeError:  # the loop is closed
            with self.lock:
                worker.reader = None
            return False
        return True

    def _park(self, worker: _Worker) -> None:
        """With lock held, on the loop whose job on ``worker`` just ended: keep the pipe
        lent, the worker idle, until the loop's next turn (:meth:`_unpark`, scheduled
        once the job's future is settled, so that the task awaiting it runs first and
        can submit its next job to the same worker: :meth:`_parked_on`)."""
        worker.state = State.IDLE
        self.parked.append(worker)

    def _parked_on(self, loop: asyncio.AbstractEventLoop) -> _Worker | None:
        """With lock held: take an idle worker still lent to ``loop``, if there is one.

        The common case of a study: its slot submits its next trial in the same turn
        of the loop in which the last one's result arrived, and the worker's pipe
        stays registered with the loop (no ``remove_reader``, no ``add_reader``).
        """
        for worker in self.parked:  # the longest parked first: its unpark comes soonest
            if worker.reader is loop and worker.state is State.IDLE and not worker.gone:
                self.parked.remove(worker)
                return worker
        return None

    def _unpark(self, worker: _Worker) -> None:
        """On the loop ``worker`` is parked on, one turn later: nothing reused it, so the
        pipe goes back to the management thread and the worker joins the idle ones."""
        with self.lock:
            self._unpark_locked(worker)

    def _unpark_locked(self, worker: _Worker) -> None:  # with lock held
        if worker not in self.parked:
            return  # reused, or taken back already
        self.parked.remove(worker)
        idle = worker.state is State.IDLE and not worker.gone
        self._unlend(worker)  # wakes the management thread if jobs are queued
        if idle:
            self._make_idle(worker)

    def _take_back_from_this_thread(self) -> None:
        """With lock held: take back the pipes lent to this thread's running loop, which
        is about to block (``shutdown(wait=True)`` on the loop would wait forever)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for worker in list(self.workers):
            if worker.reader is loop:
                if worker in self.parked:
                    self._unpark_locked(worker)
                else:
                    self._unlend(worker)

    def _start_thread(self, job: _Job) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()
        self.thread = threading.Thread(target=self._run, name="aiotune-worker-pool", daemon=True)
        live_managers.add(self)
        try:
            self.thread.start()
        except BaseException:
            live_managers.discard(self)
            self.thread = None
            self.pending.clear()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._selector.close()
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
                returned, self.returned = self.returned, []
                shutting_down, terminating = self.shutting_down, self.terminating
                queued = self.pending.clear() if terminating else []
            if cancelled:
                self._handle_cancellations(cancelled)
            for worker in returned:
                worker.exited = False
                self._worker_exited(worker)
            for job in queued:
                self._close_job(job)
            if terminating:
                self._kill_everything()
                return
            self._dispatch(shutting_down)
            if shutting_down and not self.workers:
                with self.lock:
                    if not self.pending:
                        return
            self._wait()

    def _dispatch(self, shutting_down: bool) -> None:
        dropped: list[_Job] = []
        sends: list[tuple[_Worker, bytes]] = []
        with self.lock:
            while self.idle and self.pending:
                job = self.pending.popleft()
                if _cancelled(job):
                    dropped.append(job)
                    continue
                worker = self.idle.pop()
                sends.append((worker, self._assign(worker, job)))
            waiting = len(self.pending)
            idle = list(self.idle)
        for job in dropped:
            job.drop()
        for worker, message in sends:  # outside the lock: a large job may take a while
            self._send_job(worker, message)
        if waiting:
            starting = sum(w.state is State.STARTING for w in self.workers)
            while waiting > starting and len(self.workers) < self.max_workers:
                if not self._start_worker():
                    break
                starting += 1
        elif shutting_down:
            for worker in idle:
                self._tell_to_exit(worker)
            for worker in self.workers:
                if worker.state is State.STARTING:
                    self._kill(worker)  # started for a job that no longer needs it

    @staticmethod
    def _assign(worker: _Worker, job: _Job) -> bytes:  # with lock held
        """Make ``job`` the job of ``worker`` (taken from the idle ones); return its message."""
        message, job.message = job.message, None
        assert message is not None
        worker.job, worker.job_id, worker.state = job, job.job_id, State.BUSY
        return message

    @staticmethod
    def _send_job(worker: _Worker, message: bytes) -> None:
        """Send ``worker`` the job just assigned to it."""
        assert worker.conn is not None
        try:
            worker.conn.send_bytes(message)
        except OSError:
            pass  # the worker died: its sentinel reports it and the job gets WorkerDied

    def _start_worker(self) -> bool:
        preloading = False
        if self.context.get_start_method() == "forkserver":
            with self.lock:
                first = next(iter(self.pending), None)
            preloading = _preload_fork_server(first.preload if first is not None else None)
        parent_conn, child_conn = self.context.Pipe(duplex=True)
        process = self.context.Process(  # type: ignore[attr-defined]
            target=self.target,
            args=(child_conn, self.memory_limit),
            name=f"aiotune-worker-{self.processes_started}",
            daemon=False,  # a worker may start processes of its own
        )
        try:
            with _fork_server_setup() if preloading else contextlib.nullcontext():
                process.start()  # starts the fork server, the first time
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
        """Wait for a message, a worker's exit, a wake-up or a deadline, and handle them.

        The selector persists across waits (one ``epoll_wait`` per wait, not a
        new selector with every file registered again): :meth:`_watch` keeps
        its registrations in step with the workers.
        """
        timeout: float | None = None
        now = time.monotonic()
        for worker in self.workers:
            if worker.deadline is not None:
                left = max(0.0, worker.deadline - now)
                timeout = left if timeout is None else min(timeout, left)
            elif worker.reader is not None:
                timeout = LENT_CHECK if timeout is None else min(timeout, LENT_CHECK)
        self._watch()
        ready = [key.data for key, _ in self._selector.select(timeout)]
        for kind, worker in ready:  # messages first: a job may end just before its worker dies
            if kind == "message" and worker.conn is not None and worker.reader is None:
                self._receive(worker)
        for kind, worker in ready:
            if kind == "exit" and worker in self.workers and not worker.exited:
                self._worker_exited(worker)
        if timeout is not None:
            self._check_deadlines()
            self._check_lenders()

    def _watch(self) -> None:
        """Register each worker's pipe and exit sentinel, and only those, with the selector."""
        wanted: dict[int, tuple[str, _Worker | None]] = {self._wake_r: ("wake", None)}
        with self.lock:  # a submit may lend a worker's pipe to a loop meanwhile
            for worker in self.workers:
                if worker.conn is not None and worker.reader is None:
                    wanted[worker.conn.fileno()] = ("message", worker)
                if not worker.exited:
                    wanted[worker.process.sentinel] = ("exit", worker)
            registered = self._selector.get_map()
            for key in list(registered.values()):
                if wanted.get(key.fd) != key.data:  # gone, or its number reused by another file
                    self._selector.unregister(key.fd)
            for fd, data in wanted.items():
                if fd not in registered:
                    self._selector.register(fd, selectors.EVENT_READ, data)

    def _receive(self, worker: _Worker) -> None:
        assert worker.conn is not None
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):  # the worker is dying: its sentinel will say how
            with self.lock:
                if worker in self.idle:
                    self.idle.remove(worker)
                self._close_conn(worker)
            return
        self._handle(worker, data)

    def _handle(self, worker: _Worker, data: bytes) -> None:
        """Act on one message from ``worker``, read by whichever side owns its pipe."""
        if worker.killed:
            return  # its job was settled when it was killed
        kind = wire.kind(data)
        if kind == wire.REPORT:
            self._forward_report(worker, data)
        elif kind == wire.STARTED:
            self._forward_started(worker, data)
        elif kind == wire.ITEM and worker.job is not None:
            self._forward_item(worker, data)
        elif kind in (wire.DONE, wire.DONE_EXIT):
            job_id, ok, value = wire.read_done(data)
            parked_on: asyncio.AbstractEventLoop | None = None
            with self.lock:
                if worker.state is State.EXITING:
                    return  # its job was taken from it (cancelled, or the pool terminated)
                job, worker.job = worker.job, None
                if job is None or job_id != worker.job_id:
                    worker.job = job
                    job = None
                else:
                    if kind == wire.DONE_EXIT:
                        worker.state = State.EXITING
                        worker.deadline = time.monotonic() + EXIT_GRACE
                    parking = (
                        kind == wire.DONE
                        and worker.reader is not None
                        and not worker.gone
                        and not (self.pending or self.shutting_down or self._closed)
                    )
                    if parking:
                        parked_on = worker.reader
                        self._park(worker)  # the job is over, the pipe stays lent
                    else:
                        self._unlend(worker)  # if lent to a loop: the job is over
                    if kind == wire.DONE_EXIT:
                        self._close_conn(worker)
                    elif not parking:
                        self._make_idle(worker)
            if job is None:
                self._protocol_error(worker, kind)
                return
            try:
                job.settle(ok, value)  # outside the lock: the future's callbacks may submit
            finally:
                if parked_on is not None:
                    parked_on.call_soon(self._unpark, worker)
        elif kind == wire.READY and worker.state is State.STARTING:
            with self.lock:
                worker.deadline = None
                self._make_idle(worker)
        else:
            self._protocol_error(worker, kind)

    def _make_idle(self, worker: _Worker) -> None:  # with lock held
        worker.state = State.IDLE
        if not worker.gone:
            self.idle.append(worker)

    def _forward_started(self, worker: _Worker, data: bytes) -> None:
        number, name = wire.read_started(data)
        inbox = worker.job.inbox if worker.job is not None else None
        if inbox is not None:
            try:
                inbox.started(number, name)
            except Exception:
                _logger.exception("aiotune worker pool: a job's inbox: started() raised")

    def _forward_report(self, worker: _Worker, data: bytes) -> None:
        assert worker.conn is not None
        number, step, value = wire.read_report(data)
        inbox = worker.job.inbox if worker.job is not None else None
        decision = False
        if inbox is not None:
            try:
                decision = bool(inbox.report(number, step, value))
            except Exception:
                _logger.exception("aiotune worker pool: a job's inbox: report() raised")
        try:
            worker.conn.send_bytes(wire.answer_message(decision))
        except OSError:
            pass  # the worker died: its sentinel reports it

    def _forward_item(self, worker: _Worker, data: bytes) -> None:
        assert worker.job is not None
        try:
            job_id, items = wire.read_items(data)
        except Exception:
            _logger.exception("aiotune worker pool: batch items could not be unpickled")
            return
        on_item = worker.job.on_item
        if job_id != worker.job_id or on_item is None:
            self._protocol_error(worker, wire.ITEM)
            return
        for index, value in items:
            try:
                on_item(index, value)
            except Exception:
                _logger.exception("aiotune worker pool: a job's on_item() raised")

    def _protocol_error(self, worker: _Worker, kind: bytes) -> None:
        _logger.error(
            "aiotune worker pool: unexpected message %r from worker %s; killing it",
            kind,
            worker.process.pid,
        )
        with self.lock:
            job, worker.job = worker.job, None
        self._kill(worker)
        if job is not None:
            job.settle(False, WorkerDied(worker.process.pid, None))

    def _worker_exited(self, worker: _Worker) -> None:
        if worker not in self.workers:
            return
        with self.lock:  # from now on no submit can pick it
            worker.gone = True
            if worker in self.idle:
                self.idle.remove(worker)
            loop = worker.reader
            worker.exited = loop is not None
        if loop is not None and self._ask_back(worker, loop):
            return  # handled again when the loop gives the pipe back
        worker.exited = False
        while worker.conn is not None and worker.conn.poll():  # read what it said before dying
            self._receive(worker)
        exitcode = _reap(worker.process)
        pid = worker.process.pid
        self.workers.remove(worker)
        with self.lock:
            self._close_conn(worker)
            job, worker.job = worker.job, None
        if worker.state is State.STARTING:
            self.workers_died += 1
            problem = f"{describe_exit(exitcode)} before it was ready"
            self._fail_first_queued(WorkerStartError(pid, exitcode, problem))
        elif job is not None:
            self.workers_died += 1
            job.settle(False, WorkerDied(pid, exitcode))
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

    def _check_lenders(self) -> None:
        """Take back the pipes lent to loops that were closed with the job still running
        (a closed loop reads nothing, and nothing would ever settle the job)."""
        for worker in list(self.workers):
            loop = worker.reader
            if loop is not None and loop.is_closed():
                with self.lock:
                    if worker.reader is loop:
                        worker.reader = None  # _watch registers its pipe here again
                        if worker in self.parked:  # its loop closed before its next turn
                            self.parked.remove(worker)
                            if worker.state is State.IDLE and not worker.gone:
                                self._make_idle(worker)

    def _handle_cancellations(self, jobs: list[_Job]) -> None:
        queued = False
        for job in jobs:
            with self.lock:  # a submit may have just handed it to a worker
                worker = next((w for w in self.workers if w.job is job), None)
                if worker is not None:
                    # EXITING at once: a message a loop reads meanwhile is ignored
                    worker.job, worker.state = None, State.EXITING
            if worker is None:
                queued = True  # queued, or finished before it could be killed
                continue
            self._kill(worker)  # only this job's worker: every other job runs on
            job.drop()
        if queued:
            with self.lock:
                dropped = self.pending.remove_cancelled()
            for job in dropped:
                job.drop()

    def _fail_first_queued(self, error: BaseException) -> None:
        """Fail the next queued job: the one a failed worker was started for."""
        while True:
            with self.lock:
                if not self.pending:
                    return
                job = self.pending.popleft()
            if _cancelled(job):
                job.drop()
                continue
            job.settle(False, error)
            return

    def _tell_to_exit(self, worker: _Worker) -> None:
        with self.lock:
            if worker not in self.idle:  # a submit took it meanwhile
                return
            self.idle.remove(worker)
            assert worker.conn is not None
            with contextlib.suppress(OSError):
                worker.conn.send_bytes(wire.QUIT)
            self._close_conn(worker)
            worker.state, worker.deadline = State.EXITING, time.monotonic() + EXIT_GRACE

    def _kill(self, worker: _Worker) -> None:
        if not worker.killed:
            worker.process.kill()  # not reaped yet, so the pid is still this worker's
            worker.killed = True
        with self.lock:
            if worker in self.idle:
                self.idle.remove(worker)
            self._close_conn(worker)
            worker.state, worker.deadline = State.EXITING, None

    @staticmethod
    def _close_conn(worker: _Worker) -> None:  # with lock held
        """Close the worker's pipe, unless a loop reads it (that loop closes it when done)."""
        if worker.conn is not None and worker.reader is None:
            worker.conn.close()
            worker.conn = None

    @staticmethod
    def _close_job(job: _Job) -> None:
        """The pool closed before ``job`` finished: fail it with PoolClosedError."""
        if _cancelled(job):
            job.drop()
        else:
            job.settle(False, PoolClosedError("the worker pool was closed before the job finished"))

    def _kill_everything(self) -> None:
        for worker in self.workers:
            with self.lock:
                job, worker.job = worker.job, None
                worker.state = State.EXITING  # see _handle_cancellations
            if job is not None:
                self._close_job(job)
            self._kill(worker)

    def _fail_everything(self, exc: BaseException) -> None:
        error = BrokenExecutor(f"the worker pool's management thread failed: {exc!r}")
        error.__cause__ = exc
        with self.lock:
            self.broken = exc
            self.shutting_down = True
            jobs = self.pending.clear()
            busy = [worker.job for worker in self.workers if worker.job is not None]
            for worker in self.workers:
                worker.job = None
        for job in busy:
            job.settle(False, error)
        for job in jobs:
            if _cancelled(job):
                job.drop()
            else:
                job.settle(False, error)

    def _close(self) -> None:
        """End of the thread: no process left behind, no job left waiting."""
        lent: list[_Worker] = []
        try:
            for worker in self.workers:
                with self.lock:
                    job, worker.job = worker.job, None
                if job is not None:
                    self._close_job(job)
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
            lent = [worker for worker in self.workers if worker.reader is not None]
            self.workers.clear()
            with self.lock:
                self.idle.clear()
        finally:
            with self.lock:
                self._closed = True
                self.shutting_down = True
                jobs = self.pending.clear()
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._selector.close()
            for worker in lent:  # their loops close the pipes (or, closed, cannot)
                loop = worker.reader
                if loop is not None and not self._ask_back(worker, loop):
                    with self.lock:
                        self._close_conn(worker)
            for job in jobs:
                self._close_job(job)
            live_managers.discard(self)


_fork_server_preloaded = False


def _preload_fork_server(module: str | None) -> bool:
    """Before the first forkserver worker of this process: have the fork server run the
    main script, and import aiotune's worker loop, trial calls and spaces, ``module``
    (the first job's) and the modules the main script imported, so every worker forked
    from it starts with them loaded. Only the first call counts (it returns True), as for
    :func:`multiprocessing.set_forkserver_preload` itself (a fork server already
    running keeps what it has). The fork server imports them with this process's
    ``sys.path`` (see :mod:`._fork_setup` and :func:`_fork_server_setup`).

    Why the main script: each worker runs it again (as under spawn, so that
    functions defined there unpickle), and on Python 3.11 the fork server is not
    told the script's path, so it cannot preload ``__main__`` itself;
    :mod:`._fork_setup` runs it once in the fork server instead. Its modules are
    listed too for a main module that has no path (``python -m``, where each worker
    still runs it).
    """
    global _fork_server_preloaded
    if _fork_server_preloaded:
        return False
    _fork_server_preloaded = True
    # aiotune.space too: scripts build their space at the top (it loads numpy).
    modules = [
        _fork_setup.__name__,  # first: path and main script, before the other imports
        "__main__",
        _worker.__name__,
        "aiotune.execution.call",
        "aiotune.space",
    ]
    for name in (module, *_imported_by_main()):
        if name and name not in modules and name != "builtins":
            modules.append(name)
    multiprocessing.set_forkserver_preload(modules)
    return True


@contextlib.contextmanager
def _fork_server_setup() -> Iterator[None]:
    """While the fork server starts: this process's ``sys.path`` and main script's path
    in its environment, for :mod:`._fork_setup` (the variable is gone from this process's
    after)."""
    # The path a worker is given (spawn's own preparation data), so the worker finds it
    # is the script the fork server ran.
    main_path = spawn.get_preparation_data("aiotune").get("init_main_from_path")
    setup = {"sys_path": sys.path, "main_path": main_path}
    os.environ[_fork_setup.VARIABLE] = json.dumps(setup)
    try:
        yield
    finally:
        os.environ.pop(_fork_setup.VARIABLE, None)


def _imported_by_main() -> list[str]:
    """The modules the main script's globals come from (``import x``, ``from x import
    y``, ``SPACE = at.Space(...)``), in order: what a worker imports anyway when it
    runs the script again."""
    main = sys.modules.get("__main__")
    names: list[str] = []
    for value in list(vars(main).values()) if main is not None else ():
        name: object
        if isinstance(value, types.ModuleType):
            name = value.__name__
        elif callable(value):
            name = getattr(value, "__module__", None)
        else:
            name = type(value).__module__
        if isinstance(name, str) and name not in ("__main__", "__mp_main__"):
            names.append(name)
    return list(dict.fromkeys(names))


@contextlib.contextmanager
def _logged(doing: str) -> Iterator[None]:
    """Log, rather than lose, an error of the management thread's last steps."""
    try:
        yield
    except BaseException:
        _logger.exception("aiotune worker pool: error while %s", doing)


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
