"""The studies of the service, with no HTTP in sight.

:class:`Service` owns one shared :class:`aiotune.WorkerPool` and a task group
in which every study runs; each :class:`StudyRun` is an ``aiotune.Tuner``
on that pool, writing its journal under ``DATA/<id>/``::

    DATA/<id>/study.json     the creation request (written once, before the study starts)
    DATA/<id>/trials.jsonl   the study's journal (aiotune.JsonlWriter)
    DATA/<id>/outcome.json   how it ended: finished, cancelled or failed

A study without ``outcome.json`` did not end (the service was stopped or
killed): the next start resumes it from its journal, so no finished trial
is lost and none is run twice. A study that fails (its journal cannot be
written, say) fails alone; the others go on.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import orjson
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import aiotune as at

# Import aiotune's heavy parts (numpy, scipy) now, not on the loop in the first request.
from aiotune import Bayesian, Grid, JsonlWriter, Random, Tuner

from .objectives import OBJECTIVES

logger = logging.getLogger("aiotune.service")

STRATEGIES = ("random", "bayesian", "grid")
MAX_TRIALS = 100_000
MAX_CONCURRENCY = 64
SUBSCRIBER_BUFFER = 1_000
"""Trials a stream client may fall behind by before the service drops it."""
POOL_SHUTDOWN_DEADLINE = 10.0
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class RequestError(at.TuningError):
    """A request the service cannot accept (answered 400 with this message)."""


class StudyNotFound(at.TuningError):
    """No study has this id (answered 404)."""

    def __init__(self, study_id: str) -> None:
        self.study_id = study_id
        super().__init__(f"no study {study_id!r}")


class StudyConflict(at.TuningError):
    """The request clashes with a study's state (answered 409)."""


class StorageError(at.TuningError):
    """The data directory cannot be written (answered 503): not the request's fault."""


# -- the creation request ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StudySpec:
    """A checked creation request; :meth:`to_json` is what ``study.json`` keeps."""

    id: str
    space: at.Space
    objective: str
    strategy: str
    seed: int
    resolution: int | None
    max_trials: int
    concurrency: int

    def to_json(self) -> dict[str, Any]:
        """The request as JSON, space included (``Space.to_dict()``)."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        return {**fields, "space": self.space.to_dict()}


_FIELDS = {"id", "space", "objective", "strategy", "seed", "resolution"}
_FIELDS |= {"max_trials", "concurrency"}


def _int(body: Mapping[str, Any], name: str, default: int | None, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        raise at.ConfigurationError(name, "is required")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise at.ConfigurationError(name, f"must be an int from {low} to {high}, got {value!r}")
    return value


def parse_request(body: object) -> StudySpec:
    """Check a creation request; raise a :class:`aiotune.TuningError` naming what is wrong."""
    if not isinstance(body, dict):
        raise RequestError(f"a study request must be a JSON object, got {type(body).__name__}")
    if unknown := sorted(set(body) - _FIELDS):
        raise RequestError(f"unknown field(s) {unknown}; known: {sorted(_FIELDS)}")
    study_id = body.get("id")
    if study_id is None:
        study_id = uuid.uuid4().hex[:12]
    elif not isinstance(study_id, str) or not _ID.fullmatch(study_id):
        raise at.ConfigurationError("id", f"must match {_ID.pattern}, got {study_id!r}")
    if "space" not in body:
        raise at.ConfigurationError("space", "is required (Space.to_dict() as JSON)")
    space = at.Space.from_dict(body["space"])
    objective = body.get("objective")
    if objective not in OBJECTIVES:
        raise at.ConfigurationError(
            "objective", f"unknown objective {objective!r}; known: {sorted(OBJECTIVES)}"
        )
    strategy = body.get("strategy", "random")
    if strategy not in STRATEGIES:
        raise at.ConfigurationError(
            "strategy", f"unknown strategy {strategy!r}; known: {list(STRATEGIES)}"
        )
    resolution = None
    if body.get("resolution") is not None:
        resolution = _int(body, "resolution", None, 1, 10_000)
    if strategy == "grid":
        space.grid_size(resolution)  # a space the grid cannot cover is refused now, not later
    return StudySpec(
        id=study_id,
        space=space,
        objective=objective,
        strategy=strategy,
        seed=_int(body, "seed", 0, 0, 2**63 - 1),
        resolution=resolution,
        max_trials=_int(body, "max_trials", None, 1, MAX_TRIALS),
        concurrency=_int(body, "concurrency", 1, 1, MAX_CONCURRENCY),
    )


def make_strategy(spec: StudySpec) -> at.Strategy:
    """The strategy a spec names, seeded."""
    if spec.strategy == "bayesian":
        return Bayesian(seed=spec.seed)
    if spec.strategy == "grid":
        return Grid(resolution=spec.resolution)
    return Random(seed=spec.seed)


# -- records sent to clients -------------------------------------------------------------


def trial_record(trial: at.Trial) -> dict[str, Any]:
    """What clients see of a trial."""
    return {
        "number": trial.number,
        "status": trial.status.value,
        "params": trial.params,
        "score": trial.score,
        "duration": trial.duration,
        "error": None if trial.error is None else str(trial.error),
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a study ended; ``outcome.json`` holds it."""

    state: str  # "finished", "cancelled" or "failed"
    stop_reason: str | None = None
    error: str | None = None
    ended_at: float = field(default_factory=time.time)


# -- one study ---------------------------------------------------------------------------


class StudyRun:
    """One study: its spec, its directory, its tuner while it runs, and its stream clients.

    ``state`` is ``running``, ``stopping``, ``finished``, ``cancelled``,
    ``failed`` or ``interrupted`` (the service stopped under it: it resumes
    on the next start). The run is also an observer of its own tuner, and
    broadcasts each finished trial to every subscribed stream client.
    """

    def __init__(self, spec: StudySpec, directory: Path) -> None:
        self.spec = spec
        self.directory = directory
        self.state = "running"
        self.stop_reason: str | None = None
        self.error: str | None = None
        self.tuner: Tuner | None = None
        self._trials: Sequence[at.Trial] = ()  # once it is over (or loaded over)
        self._scope = anyio.CancelScope()
        self._subscribers: dict[
            MemoryObjectReceiveStream[at.Trial], MemoryObjectSendStream[at.Trial]
        ] = {}
        self._over = anyio.Event()

    @property
    def journal(self) -> Path:
        """The study's journal file."""
        return self.directory / "trials.jsonl"

    @property
    def is_over(self) -> bool:
        """Whether the study has ended (finished, cancelled or failed)."""
        return self.state in ("finished", "cancelled", "failed")

    @property
    def subscribers(self) -> int:
        """Stream clients connected now."""
        return len(self._subscribers)

    def trials(self) -> Sequence[at.Trial]:
        """The study's finished trials so far (resumed ones included)."""
        if self.tuner is not None and not self.is_over:
            return self.tuner.history.trials
        return self._trials

    def summary(self) -> dict[str, Any]:
        """State, counts by status, best trial, stop reason, error, and the request."""
        trials = self.trials()
        counts = dict.fromkeys((status.value for status in at.TrialStatus), 0)
        for trial in trials:
            counts[trial.status.value] += 1
        running = 0
        if self.tuner is not None and not self.is_over:
            running = len(self.tuner.history.pending)
        best = None
        complete = [t for t in trials if t.status is at.TrialStatus.COMPLETE]
        if complete:
            best = trial_record(max(complete, key=lambda t: t.score or -math.inf))
        return {
            "id": self.spec.id,
            "state": self.state,
            "counts": counts,
            "running": running,
            "best": best,
            "stop_reason": self.stop_reason,
            "error": self.error,
            "request": self.spec.to_json(),
        }

    # -- control ---------------------------------------------------------------------

    def stop(self) -> None:
        """Launch no new trial; those in flight finish, then the study is ``finished``."""
        if self.is_over:
            raise StudyConflict(f"study {self.spec.id!r} is already {self.state}")
        self.state = "stopping"
        if self.tuner is not None:
            self.tuner.stop("stopped by request")

    def cancel(self) -> None:
        """End the study now: trials in flight are cancelled (and rerun by nobody)."""
        if self.is_over:
            raise StudyConflict(f"study {self.spec.id!r} is already {self.state}")
        self._scope.cancel()

    # -- stream clients --------------------------------------------------------------

    def subscribe(self) -> tuple[list[at.Trial], MemoryObjectReceiveStream[at.Trial] | None]:
        """The trials so far, and a stream of those to come (``None`` once it is over).

        Both are taken at once (no await between), so a client misses nothing; it
        may see a trial in both, and skips the repeat by its number.
        """
        snapshot = list(self.trials())
        if self.is_over:
            return snapshot, None
        send, receive = anyio.create_memory_object_stream[at.Trial](SUBSCRIBER_BUFFER)
        self._subscribers[receive] = send
        return snapshot, receive

    def unsubscribe(self, receive: MemoryObjectReceiveStream[at.Trial]) -> None:
        """Forget a stream client (it disconnected or its stream ended)."""
        send = self._subscribers.pop(receive, None)
        if send is not None:
            send.close()
        receive.close()

    async def on_trial(self, trial: at.Trial, tuner: object) -> None:
        """Observer hook: hand the trial to every stream client; drop those gone or stuck."""
        for receive, send in list(self._subscribers.items()):
            try:
                send.send_nowait(trial)
            except anyio.WouldBlock:  # too far behind: end its stream, it may reconnect
                logger.warning(
                    "study %s: dropping a stream client %d trials behind",
                    self.spec.id,
                    SUBSCRIBER_BUFFER,
                )
                send.close()
                del self._subscribers[receive]

    def _close_subscribers(self) -> None:
        for send in self._subscribers.values():
            send.close()
        self._subscribers.clear()

    async def wait_over(self) -> None:
        """Wait until the study has ended."""
        await self._over.wait()

    # -- running ---------------------------------------------------------------------

    def build(self, pool: at.WorkerPool, *, resume: bool) -> None:
        """Build the study's tuner on ``pool`` (raises ``TuningError`` for a bad spec)."""
        spec = self.spec
        self.tuner = Tuner(
            OBJECTIVES[spec.objective],
            spec.space,
            strategy=make_strategy(spec),
            max_trials=spec.max_trials,
            concurrency=spec.concurrency,
            executor=pool,
            observers=[JsonlWriter(self.journal), self],
            resume=self.journal if resume else None,
        )

    async def run(self) -> None:
        """Run the study to its end, then record how it ended. Fails alone."""
        tuner = self.tuner
        assert tuner is not None
        outcome: Outcome | None = None
        try:
            with self._scope:
                async with tuner:
                    pass
            if self._scope.cancelled_caught:
                outcome = Outcome("cancelled", "cancelled by request")
            else:
                outcome = Outcome("finished", tuner.result.stop_reason)
        except Exception as exc:  # its journal cannot be written, say: this study alone fails
            logger.error("study %s failed: %s: %s", self.spec.id, type(exc).__name__, exc)
            outcome = Outcome("failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            if outcome is None:  # the service is stopping: resume on the next start
                self.state = "interrupted"
                self._close_subscribers()
        try:  # recorded before anyone is told, and even while the service shuts down
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_write_outcome, self.directory, outcome)
        except OSError as exc:
            logger.error("study %s: cannot record how it ended (%s)", self.spec.id, exc)
        self._end(outcome, list(tuner.history.trials))

    def _end(self, outcome: Outcome, trials: Sequence[at.Trial]) -> None:
        self._trials = sorted(trials, key=lambda trial: trial.number)
        self.state, self.stop_reason, self.error = outcome.state, outcome.stop_reason, outcome.error
        self._close_subscribers()
        self._over.set()

    @classmethod
    def ended(
        cls, spec: StudySpec, directory: Path, outcome: Outcome, trials: Sequence[at.Trial]
    ) -> StudyRun:
        """A study that ended before this start of the service."""
        run = cls(spec, directory)
        run._end(outcome, trials)
        return run


def _write_outcome(directory: Path, outcome: Outcome) -> None:
    """Write ``outcome.json`` atomically (a temporary file renamed over it)."""
    temporary = directory / "outcome.json.tmp"
    temporary.write_bytes(orjson.dumps(asdict(outcome)))
    os.replace(temporary, directory / "outcome.json")


# -- the service -------------------------------------------------------------------------


@dataclass(slots=True)
class _Found:
    directory: Path
    spec: StudySpec | None = None
    outcome: Outcome | None = None
    trials: Sequence[at.Trial] = ()
    resume: bool = False
    problem: str | None = None


def _scan(data: Path) -> list[_Found]:
    """Read every study under ``data`` (in a thread: this is file I/O)."""
    data.mkdir(parents=True, exist_ok=True)
    found = []
    for directory in sorted(data.iterdir()):
        meta = directory / "study.json"
        if not meta.is_file():
            continue
        entry = _Found(directory)
        found.append(entry)
        journal = directory / "trials.jsonl"
        try:
            entry.spec = parse_request(orjson.loads(meta.read_bytes())["request"])
            entry.resume = journal.is_file() and journal.stat().st_size > 0
            outcome_file = directory / "outcome.json"
            if outcome_file.is_file():
                entry.outcome = Outcome(**orjson.loads(outcome_file.read_bytes()))
                if entry.resume:
                    entry.trials = at.load(journal, on_corrupt="skip").trials
        except (at.TuningError, OSError, ValueError, KeyError, TypeError) as exc:
            entry.problem = f"cannot load study {directory.name}: {type(exc).__name__}: {exc}"
    return found


# A service starts workers again and again (after every timeout or cancelled trial):
# a fork server, with aiotune and the objectives preloaded, starts them in milliseconds
# where spawn re-imports everything in each new process.
_START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class Service:
    """Every study of a data directory, on one shared worker pool.

    ``async with Service(data, workers=2) as service:`` starts the pool (its
    processes start lazily), resumes every unfinished study found under
    ``data``, and runs new ones in its own task group. Leaving the block
    cancels the studies still running (they resume on the next start) and
    shuts the pool down: no task or process outlives it.
    """

    def __init__(self, data: str | os.PathLike[str], *, workers: int | None = None) -> None:
        self.data = Path(data)
        self.workers = workers or os.cpu_count() or 1
        self.pool: at.WorkerPool | None = None
        self._runs: dict[str, StudyRun] = {}
        self._group: TaskGroup | None = None

    @property
    def runs(self) -> Mapping[str, StudyRun]:
        """Every study by id, in creation (or directory) order."""
        return self._runs

    def get(self, study_id: str) -> StudyRun:
        """The study ``study_id``, or :class:`StudyNotFound`."""
        try:
            return self._runs[study_id]
        except KeyError:
            raise StudyNotFound(study_id) from None

    async def __aenter__(self) -> Service:
        self.pool = at.WorkerPool(self.workers, mp_context=_START_METHOD)
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        try:
            await self._resume_all()
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._group is not None
        assert self.pool is not None
        self._group.cancel_scope.cancel()  # running studies stop here and resume next time
        try:
            return await self._group.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:  # the block's own error, not wrapped
            if exc is not None and group.exceptions == (exc,):
                raise exc from None
            raise
        finally:
            pool = self.pool
            with anyio.CancelScope(shield=True), anyio.move_on_after(POOL_SHUTDOWN_DEADLINE):
                await anyio.to_thread.run_sync(_shutdown, pool, abandon_on_cancel=True)
            pool.terminate()  # a no-op after a clean shutdown

    async def _resume_all(self) -> None:
        assert self._group is not None
        assert self.pool is not None
        for entry in await anyio.to_thread.run_sync(_scan, self.data):
            if entry.spec is None:
                logger.error("%s", entry.problem)
                continue
            outcome = entry.outcome
            if entry.problem is not None:  # listed as failed, with the reason; not resumed
                outcome = Outcome("failed", error=entry.problem)
            if outcome is not None:
                self._runs[entry.spec.id] = StudyRun.ended(
                    entry.spec, entry.directory, outcome, entry.trials
                )
                continue
            run = StudyRun(entry.spec, entry.directory)
            try:
                run.build(self.pool, resume=entry.resume)
            except at.TuningError as exc:  # this study cannot run: it alone is failed
                failed = Outcome("failed", error=f"{type(exc).__name__}: {exc}")
                run = StudyRun.ended(entry.spec, entry.directory, failed, ())
                self._runs[entry.spec.id] = run
                continue
            self._runs[entry.spec.id] = run
            logger.info("resuming study %s", entry.spec.id)
            self._group.start_soon(run.run)

    async def create(self, body: object) -> StudyRun:
        """Check a creation request, record it under the data directory, start the study."""
        assert self._group is not None
        assert self.pool is not None
        spec = parse_request(body)
        if spec.id in self._runs:
            raise StudyConflict(f"a study with id {spec.id!r} already exists")
        run = StudyRun(spec, self.data / spec.id)
        run.build(self.pool, resume=False)  # a bad configuration is refused here
        self._runs[spec.id] = run  # taken now: a second request for this id conflicts
        try:
            await anyio.to_thread.run_sync(_write_request, run.directory, spec)
        except BaseException as exc:
            del self._runs[spec.id]
            if isinstance(exc, FileExistsError):
                raise StudyConflict(f"a study with id {spec.id!r} already exists") from None
            if isinstance(exc, OSError):
                raise StorageError(f"cannot record study {spec.id!r}: {exc}") from exc
            raise
        self._group.start_soon(run.run)
        return run


def _write_request(directory: Path, spec: StudySpec) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = {"request": spec.to_json(), "created_at": time.time()}
    with open(directory / "study.json", "xb") as file:  # never over another study's
        file.write(orjson.dumps(body))


def _shutdown(pool: at.WorkerPool) -> None:
    with suppress(Exception):
        pool.shutdown(wait=True, cancel_futures=True)
