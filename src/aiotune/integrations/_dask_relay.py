"""Reports from trials on a Dask cluster: :class:`DaskReportRelay` and :class:`DaskReportChannel`.

A study scales out by running its trials on Dask workers::

    client = distributed.Client("tcp://scheduler:8786")
    result = await at.tune(objective, space, executor=client.get_executor())

or with ``executor=DaskExecutor("tcp://scheduler:8786")``, which owns its
client. aiotune drives either through ``loop.run_in_executor``, like any
``concurrent.futures.Executor``, and never shuts down an executor it did not
build.

Trials on a Dask worker share no pipe with the orchestrator, so their
``started`` and ``report`` messages travel through the Dask scheduler.
:class:`DaskReportRelay` is the orchestrator's side (the relay that
:mod:`aiotune.integrations.dask` registers for Dask executors): it runs a
pump on the Dask client's event loop and delivers to the study's inbox. The
worker side, :class:`DaskReportChannel`, is the picklable remote channel
that travels with each trial. Both use ``distributed.Queue``
(queues on the scheduler): the study has one, which workers put messages
in, and each worker thread one, where its answers come back. A report costs
one round trip through the scheduler: a few milliseconds. Each worker
thread's answer queue stays on the scheduler for the life of the thread; an
answer that never comes (the orchestrator is gone) makes the scheduler log
an error for the ``queue_get`` that timed out.

What Dask does, and what aiotune makes of it:

* **A worker lost mid-trial.** Dask reschedules the task on another worker
  (up to ``distributed.scheduler.allowed-failures`` times, default 3, then
  the future raises ``KilledWorker``), so the objective would silently run
  again, or, when the trial itself kills its worker, kill four workers in
  turn. Over the channel, the re-run announces its start with the same
  Dask task key; the orchestrator refuses it, and the trial is ``failed``
  with :class:`WorkerLost` ("the Dask worker running trial N was lost").
  ``retries=`` then runs it again as a new attempt. Trials that had not
  started yet are re-run transparently and recorded once.
* **trial_timeout.** The clock starts when the trial announces its start
  (time queued in Dask is not counted). When it runs out, the trial is
  recorded ``timeout`` and its Dask future cancelled. Cancelling does *not*
  stop a running task: the worker thread runs the objective on and stays
  busy meanwhile (later trials wait for it). An objective that reports is
  stopped at its next report (the answer is "prune"); one that never
  reports runs to its end, unless its worker is restarted
  (``client.restart_workers([address])``).
* **The study ends** (finished, failed or cancelled): the pump tells every
  worker thread that talked to it, so trials still running on the cluster
  are pruned at their next report.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import itertools
import logging
import threading
import time
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio

from aiotune.errors import ConfigurationError, MissingExtraError
from aiotune.execution.channel import ReportChannel
from aiotune.integrations._dask_private import client_of_client_executor, queue_created

logger = logging.getLogger("aiotune")

START_DEADLINE = 30.0
"""Seconds the orchestrator side waits for its channel to open on the scheduler."""

STOP_DEADLINE = 10.0
"""Seconds the orchestrator side gets to close its channel before its pump is cancelled."""


def import_distributed() -> Any:
    """The ``distributed`` package, imported on first use; MissingExtraError names the extra."""
    try:
        return importlib.import_module("distributed")
    except ImportError as exc:
        raise MissingExtraError("running trials on Dask", "dask") from exc


def dask_client_of(executor: object) -> Any | None:
    """The ``distributed.Client`` that ``executor`` runs its calls on; None if not on Dask.

    Recognises ``Client.get_executor()`` and any executor with a ``dask_client``
    attribute (such as :class:`DaskExecutor`). Never imports Dask itself.
    """
    client = client_of_client_executor(executor)
    return client if client is not None else getattr(executor, "dask_client", None)


def is_dask_executor(executor: object) -> bool:
    """Whether ``executor`` runs its calls on Dask (never imports Dask itself)."""
    return dask_client_of(executor) is not None


class WorkerLost(Exception):
    """The Dask worker running a trial was lost (process killed, machine gone).

    Dask re-runs such a task on another worker; aiotune refuses the re-run,
    so the trial is recorded ``failed`` with this error (and retried as a
    new attempt under ``retries=``).
    """


# -- the worker side ----------------------------------------------------------------------

_state_lock = threading.Lock()
_up_queues: dict[str, Any] = {}  # study -> its distributed.Queue (one reference per process)
_closed_studies: set[str] = set()  # studies this process knows to be over
_local = threading.local()  # per worker thread: its _Endpoint


def _current_key() -> str | None:
    """The Dask key of the task running in this thread, if any."""
    try:
        return str(import_distributed().get_worker().get_current_task())
    except (ValueError, KeyError):  # not in a Dask task
        return None


def _current_address() -> str | None:
    try:
        return str(import_distributed().get_worker().address)
    except ValueError:
        return None


class _Endpoint:
    """One worker thread's line to orchestrators: its own reply queue on the scheduler."""

    def __init__(self) -> None:
        distributed = import_distributed()
        self.client = distributed.get_client()
        self.name = f"aiotune-reply-{uuid.uuid4().hex}"
        self.replies = distributed.Queue(self.name, client=self.client)
        self.sequence = itertools.count()

    @classmethod
    def current(cls) -> _Endpoint:
        endpoint: _Endpoint | None = getattr(_local, "endpoint", None)
        if endpoint is None:
            endpoint = _local.endpoint = cls()
        return endpoint

    def ask(self, study: str, message: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send ``message`` to ``study``'s orchestrator; its answer, or None (over, timed out)."""
        if study in _closed_studies:
            return None
        message = {**message, "id": next(self.sequence), "reply": self.name}
        closed: list[str] = []
        try:
            up = _up_queue(study, self.client)
            answer: dict[str, Any] | None = self.client.sync(
                self._exchange, up, study, message, time.monotonic() + timeout, closed
            )
        except Exception:  # the scheduler or this worker's client is in trouble
            logger.warning("aiotune study %s unreachable; carrying on", study, exc_info=True)
            answer = None
        for over in closed:  # here, not on the loop: _up_queue holds the lock across a sync()
            _forget_study(over)
        if answer is None and study not in closed:
            logger.warning("no answer from the aiotune study %s in time; carrying on", study)
        return answer

    async def _exchange(
        self, up: Any, study: str, message: dict[str, Any], deadline: float, closed: list[str]
    ) -> dict[str, Any] | None:
        """On the worker's event loop: put the message, then read answers until ours comes.

        ``deadline`` is a ``time.monotonic()`` time; notices that studies are over
        (ours or others') are collected in ``closed``.
        """
        await up.put(message)
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                answer: dict[str, Any] = await self.replies.get(timeout=remaining)
            except TimeoutError:
                break
            over = answer.get("closed")
            if over is not None:
                closed.append(over)
                if over == study:
                    break
            elif answer.get("study") == study and answer.get("id") == message["id"]:
                return answer
            # else: the late answer to a request that timed out; drop it
        return None


def _up_queue(study: str, client: Any) -> Any:
    with _state_lock:
        queue = _up_queues.get(study)
        if queue is None:
            queue = _up_queues[study] = import_distributed().Queue(study, client=client)
        return queue


def _forget_study(study: str) -> None:
    with _state_lock:
        _closed_studies.add(study)
        queue = _up_queues.pop(study, None)
    if queue is not None:
        queue.close()  # drop this process's reference: the scheduler frees the queue


@dataclass(frozen=True, slots=True)
class DaskReportChannel:
    """The worker side of a :class:`DaskReportRelay`: picklable, it travels with each trial.

    ``started`` asks the orchestrator whether this run may go ahead (a Dask
    re-run after a lost worker may not: it raises :class:`WorkerLost`);
    ``report`` returns the pruner's decision. When the study is over, reports
    answer "prune"; when no answer comes within ``reply_timeout`` seconds, a
    warning is logged and the trial goes on.
    """

    study: str
    reply_timeout: float = 60.0

    def started(self, number: int, worker: str) -> None:
        """Announce that trial ``number`` began on ``worker``; raise WorkerLost for a re-run."""
        message = {
            "op": "started",
            "number": number,
            "worker": worker,
            "key": _current_key(),
            "address": _current_address(),
        }
        answer = _Endpoint.current().ask(self.study, message, self.reply_timeout)
        if answer is not None and not answer.get("go", True):
            raise WorkerLost(
                answer.get("message", f"the Dask worker running trial {number} was lost")
            )

    def report(self, number: int, step: int, value: float) -> bool:
        """Send one intermediate value; return whether the trial should stop."""
        message = {"op": "report", "number": number, "step": step, "value": value}
        message["key"] = _current_key()
        answer = _Endpoint.current().ask(self.study, message, self.reply_timeout)
        if answer is None:
            return self.study in _closed_studies
        return bool(answer.get("prune", False))


# -- the orchestrator side ----------------------------------------------------------------


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark ``future``'s exception as seen (asyncio logs unseen ones)."""
    if not future.cancelled():
        future.exception()


async def _open_queue(name: str, client: Any) -> Any:
    """The ``distributed.Queue`` ``name``, created on the scheduler (on the client's loop).

    Built on the loop, a Queue starts creating itself: wait for that creation
    (see :func:`~aiotune.integrations._dask_private.queue_created`).
    """
    queue = import_distributed().Queue(name, client=client)
    await queue_created(queue)
    return queue


@dataclass(frozen=True, slots=True)
class DaskRelayStatistics:
    """A snapshot of a :class:`DaskReportRelay`.

    ``starts`` and ``reports`` count the messages answered, ``reruns_refused``
    the Dask re-runs of trials whose worker was lost, and ``stale_reports``
    reports from runs the study no longer waits for.
    """

    starts: int
    reports: int
    reruns_refused: int
    stale_reports: int


class DaskReportRelay:
    """The orchestrator's side of the report channel to trials on Dask workers.

    Build it with :meth:`for_executor`; hand :attr:`channel` to the trials
    (``TrialPlan.remote_channel``); enter it (``async with``) around the
    trials. While entered, a pump on the Dask client's event loop delivers
    each trial's ``started`` and ``report`` to ``inbox`` (any thread-safe
    :class:`~aiotune.execution.channel.ReportChannel`, the study's
    ``ReportInbox``) and sends the answers back. The caller's event loop is
    never blocked, and nothing is left running on exit. It runs once.
    """

    def __init__(self, client: Any, inbox: ReportChannel, *, reply_timeout: float = 60.0) -> None:
        self._client = client
        self._inbox = inbox
        self._study = f"aiotune-study-{uuid.uuid4().hex}"
        self._channel = DaskReportChannel(self._study, reply_timeout)
        self._starts: dict[int, tuple[str | None, str, str | None]] = {}
        self._counts = {"starts": 0, "reports": 0, "reruns_refused": 0, "stale_reports": 0}
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._entered = False
        self._pump: concurrent.futures.Future[None] | None = None
        self._done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._up: Any = None  # the study's queue, once the pump opened it (Dask loop only)

    @classmethod
    def for_executor(
        cls, executor: Executor, inbox: ReportChannel, *, reply_timeout: float = 60.0
    ) -> DaskReportRelay:
        """The relay for trials run by ``executor`` (``Client.get_executor()`` or DaskExecutor).

        Raises ``ConfigurationError`` for any other executor, and
        ``MissingExtraError`` when Dask is not installed.
        """
        import_distributed()
        client = dask_client_of(executor)
        if client is None:
            raise ConfigurationError(
                "executor",
                f"{executor!r} is not a Dask executor (Client.get_executor() or DaskExecutor)",
            )
        return cls(client, inbox, reply_timeout=reply_timeout)

    @property
    def channel(self) -> DaskReportChannel:
        """The picklable worker side, to send along with every trial."""
        return self._channel

    def statistics(self) -> DaskRelayStatistics:
        """Counts of the messages handled so far."""
        return DaskRelayStatistics(**self._counts)

    async def __aenter__(self) -> DaskReportRelay:
        if self._entered:
            raise RuntimeError("a DaskReportRelay runs once; build a new one")
        self._entered = True
        status = getattr(self._client, "status", "running")
        if status in ("closing", "closed"):
            raise ConfigurationError("executor", f"its Dask client is {status}")
        ready = asyncio.wrap_future(self._ready)
        try:
            loop = self._client.loop.asyncio_loop
            self._pump = asyncio.run_coroutine_threadsafe(self._run_pump(), loop)
            with anyio.fail_after(START_DEADLINE):
                await asyncio.shield(ready)
        except BaseException as exc:
            ready.add_done_callback(_retrieve)  # its outcome no longer matters
            await self._stop()
            if isinstance(exc, Exception) and not isinstance(exc, ConfigurationError):
                raise ConfigurationError(
                    "executor",
                    f"cannot open aiotune's report channel on the Dask scheduler: {exc!r}",
                ) from exc
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        """Close the channel and wait for the pump to end: shielded, with a deadline."""
        pump = self._pump
        if pump is None or self._done.done():
            return
        loop = self._client.loop.asyncio_loop
        with anyio.CancelScope(shield=True):
            try:
                if self._up is not None:  # the close message drains what came before it
                    asyncio.run_coroutine_threadsafe(self._send_close(), loop)
                else:
                    pump.cancel()
            except RuntimeError:  # the Dask client's loop is closed: so is the pump
                return
            with anyio.move_on_after(STOP_DEADLINE) as waited:
                await asyncio.shield(asyncio.wrap_future(self._done))
            if waited.cancelled_caught:
                logger.warning("aiotune's Dask channel did not close in %s s", STOP_DEADLINE)
                pump.cancel()

    async def _send_close(self) -> None:
        try:
            await self._up.put({"op": "close", "study": self._study})
        except Exception:
            logger.warning("could not close aiotune's Dask channel cleanly", exc_info=True)
            if self._pump is not None:
                self._pump.cancel()

    async def _run_pump(self) -> None:
        """On the Dask client's loop: answer each message until the close message comes."""
        try:
            await self._pump_messages()
        except Exception:
            logger.exception("aiotune's Dask channel failed: reports from Dask workers are lost")
        finally:
            self._done.set_result(None)

    async def _pump_messages(self) -> None:
        try:
            self._up = await _open_queue(self._study, self._client)
        except Exception as exc:
            self._ready.set_exception(exc)
            return
        except BaseException:  # cancelled: the Dask client is closing
            self._ready.set_exception(RuntimeError("the Dask client closed"))
            raise
        self._ready.set_result(None)
        replies: dict[str, asyncio.Task[Any]] = {}  # reply queue name -> opening it
        sending: set[asyncio.Task[None]] = set()
        try:
            while True:
                message = await self._up.get()
                if message.get("op") == "close" and message.get("study") == self._study:
                    break
                answer = self._answer(message)
                name = message.get("reply")
                if not isinstance(name, str):
                    continue
                if name not in replies:
                    replies[name] = asyncio.ensure_future(_open_queue(name, self._client))
                answer.update(study=self._study, id=message.get("id"))
                # answered without waiting: the next message may come from another trial
                task = asyncio.ensure_future(self._send(replies[name], answer))
                sending.add(task)
                task.add_done_callback(sending.discard)
        finally:
            if sending:
                await asyncio.gather(*sending, return_exceptions=True)
            await self._close_queues(replies)

    @staticmethod
    async def _send(opening: asyncio.Task[Any], answer: dict[str, Any]) -> None:
        try:
            reply = await opening
            await reply.put(answer)
        except Exception:
            logger.warning("could not answer a trial on Dask", exc_info=True)

    async def _close_queues(self, replies: dict[str, asyncio.Task[Any]]) -> None:
        """Tell every worker thread that talked to this study that it is over; drop our queues."""
        for opening in replies.values():
            try:
                reply = await opening
                await reply.put({"closed": self._study})
                reply.close()
            except Exception:  # the scheduler is gone: nothing left to tell
                logger.debug("could not tell a worker the study is over", exc_info=True)
        if self._up is not None:
            try:
                self._up.close()
            except Exception:
                logger.debug("could not release the study's queue", exc_info=True)

    def _answer(self, message: dict[str, Any]) -> dict[str, Any]:
        """Answer one worker message (on the Dask client's loop; the inbox is thread-safe)."""
        op = message.get("op")
        try:
            number = int(message["number"])
            if op == "started":
                return self._on_started(number, message)
            if op == "report":
                return self._on_report(number, message)
        except Exception:
            logger.exception("bad message on aiotune's Dask channel: %r", message)
        return {}

    def _on_started(self, number: int, message: dict[str, Any]) -> dict[str, Any]:
        key, worker, address = message.get("key"), str(message["worker"]), message.get("address")
        previous = self._starts.get(number)
        if key is not None and previous is not None and previous[0] == key:
            self._counts["reruns_refused"] += 1
            lost = f"{previous[2]}, {previous[1]}" if previous[2] else previous[1]
            text = (
                f"the Dask worker running trial {number} was lost ({lost}); Dask re-ran the "
                f"task on {address or worker}, and aiotune refused: an attempt runs once "
                f"(retries= runs the trial again)"
            )
            logger.warning("%s", text)
            return {"go": False, "message": text}
        self._starts[number] = (key, worker, address)
        self._counts["starts"] += 1
        self._inbox.started(number, worker)
        return {"go": True}

    def _on_report(self, number: int, message: dict[str, Any]) -> dict[str, Any]:
        started = self._starts.get(number)
        key = message.get("key")
        if started is not None and key is not None and started[0] != key:
            self._counts["stale_reports"] += 1  # an abandoned run of this trial: stop it
            return {"prune": True}
        self._counts["reports"] += 1
        prune = self._inbox.report(number, int(message["step"]), float(message["value"]))
        return {"prune": prune}

    def __repr__(self) -> str:
        return f"<aiotune.DaskReportRelay {self._study}>"


__all__ = [
    "DaskRelayStatistics",
    "DaskReportChannel",
    "DaskReportRelay",
    "WorkerLost",
    "dask_client_of",
    "import_distributed",
    "is_dask_executor",
]
