"""Immutable records of a study: :class:`Trial`, its status and error, :class:`TuningResult`."""

from __future__ import annotations

import dataclasses
import importlib
import math
import numbers
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from aiotune.errors import MissingExtraError, NoCompleteTrialError, TuningError

Direction = Literal["maximize", "minimize"]
StudyDirection = Direction | tuple[Direction, ...]
"""A study's direction: one ``Direction``, or a tuple of them for a multi-objective study."""
Params = dict[str, Any]
ConstraintsFunction = Callable[[Params, Any], Sequence[float]]
"""``fn(params, score) -> constraint values``; a trial is feasible when every value is <= 0."""


class TrialStatus(StrEnum):
    """How a trial ended."""

    COMPLETE = "complete"
    FAILED = "failed"
    PRUNED = "pruned"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a trial did not complete: exception type name, message and traceback text."""

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """The record of ``exc``: its type name, message and formatted traceback."""
        text = "".join(traceback.format_exception(exc))
        return cls(type=type(exc).__name__, message=str(exc), traceback=text)

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True, slots=True, init=False)
class Trial:
    """One finished evaluation of the objective.

    ``score`` is a finite float for ``complete`` trials; a ``pruned`` trial
    carries the last value it reported (if any), every other status ``None``.
    ``intermediate`` maps step to the value reported at that step.
    ``error`` is the last attempt's error; ``previous_errors`` those of earlier
    attempts when ``retries`` ran the trial more than once. Times are seconds
    since the epoch; ``duration`` is in seconds.

    ``scores`` is always a tuple: one element per objective (empty when the
    trial has no score). For a single objective ``score`` is that element; for
    a multi-objective trial ``score`` is ``None``. ``constraints`` holds the
    constraint values (``None`` when the study has none); the trial is
    :attr:`feasible` when every one is ``<= 0``.
    """

    number: int
    params: Params
    status: TrialStatus
    score: float | None = None
    intermediate: Mapping[int, float] = field(default_factory=dict)
    error: ErrorInfo | None = None
    previous_errors: tuple[ErrorInfo, ...] = ()
    attempts: int = 1
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    worker: str | None = None
    scores: tuple[float, ...] = ()
    constraints: tuple[float, ...] | None = None

    def __init__(
        self,
        number: int,
        params: Params,
        status: TrialStatus,
        score: float | None = None,
        intermediate: Mapping[int, float] | None = None,
        error: ErrorInfo | None = None,
        previous_errors: tuple[ErrorInfo, ...] = (),
        attempts: int = 1,
        started_at: float | None = None,
        finished_at: float | None = None,
        duration: float | None = None,
        worker: str | None = None,
        scores: tuple[float, ...] = (),
        constraints: tuple[float, ...] | None = None,
    ) -> None:
        # A single score wins over a one-element ``scores`` (``dataclasses.replace(t, score=x)``).
        if score is not None and len(scores) <= 1:
            scores = (score,)
        elif score is None and len(scores) == 1:
            score = scores[0]
        # A trial is built per result: setting each slot through its descriptor takes half
        # the time of the frozen dataclass's own __init__ (object.__setattr__ by name).
        (
            set_number,
            set_params,
            set_status,
            set_score,
            set_intermediate,
            set_error,
            set_previous_errors,
            set_attempts,
            set_started_at,
            set_finished_at,
            set_duration,
            set_worker,
            set_scores,
            set_constraints,
        ) = _TRIAL_SLOTS
        set_number(self, number)
        set_params(self, params)
        set_status(self, status)
        set_score(self, score)
        set_intermediate(self, {} if intermediate is None else intermediate)
        set_error(self, error)
        set_previous_errors(self, previous_errors)
        set_attempts(self, attempts)
        set_started_at(self, started_at)
        set_finished_at(self, finished_at)
        set_duration(self, duration)
        set_worker(self, worker)
        set_scores(self, scores)
        set_constraints(self, constraints)

    @property
    def is_complete(self) -> bool:
        """Whether the trial finished with a valid score."""
        return self.status is TrialStatus.COMPLETE

    @property
    def feasible(self) -> bool:
        """Whether every constraint value is ``<= 0`` (true when there are no constraints)."""
        return self.constraints is None or all(c <= 0 for c in self.constraints)


_TRIAL_SLOTS: tuple[Callable[[Trial, Any], None], ...] = tuple(
    getattr(Trial, each.name).__set__ for each in dataclasses.fields(Trial)
)
"""Each field's slot setter, in field order (see ``Trial.__init__``)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an objective may return instead of a bare score: the score and constraint values.

    ``score`` is a finite number, or a sequence of them for a multi-objective
    study. The trial is feasible when every value in ``constraints`` is ``<= 0``::

        return at.Outcome(accuracy, constraints=(latency_ms - 50,))
    """

    score: float | Sequence[float]
    constraints: Sequence[float] = ()


def directions_of(direction: StudyDirection) -> tuple[Direction, ...]:
    """The study's direction as a tuple, one entry per objective."""
    return (direction,) if isinstance(direction, str) else tuple(direction)


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[Direction]) -> bool:
    """Whether ``a`` Pareto-dominates ``b``: no worse in every objective, better in one."""
    better = False
    for x, y, direction in zip(a, b, directions, strict=True):
        if x == y:
            continue
        if is_better(x, y, direction):
            better = True
        else:
            return False
    return better


def _usable(trial: Trial) -> bool:
    return trial.status is TrialStatus.COMPLETE and bool(trial.scores) and trial.feasible


def pareto_front(trials: Iterable[Trial], direction: StudyDirection) -> tuple[Trial, ...]:
    """The feasible complete trials no other one dominates, in number order.

    Trials with equal scores do not dominate each other, so ties are all kept;
    for one objective this is every trial with the best score.
    """
    directions = directions_of(direction)
    candidates = sorted(
        (t for t in trials if _usable(t) and len(t.scores) == len(directions)),
        key=lambda t: t.number,
    )
    return tuple(
        t
        for t in candidates
        if not any(dominates(o.scores, t.scores, directions) for o in candidates if o is not t)
    )


def hypervolume(
    points: Iterable[Sequence[float]], reference: Sequence[float], direction: StudyDirection
) -> float:
    """The volume dominated by ``points`` and bounded by ``reference``, in objective space.

    Exact for any number of objectives (slicing on the last objective down to
    a sweep over two), fast for two and three objectives and a few hundred
    points. Points that do not strictly beat ``reference`` in every objective
    add nothing.
    """
    directions = directions_of(direction)
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    ref = [float(r) * s for r, s in zip(reference, signs, strict=True)]
    flipped = []
    for point in points:
        p = [float(v) * s for v, s in zip(point, signs, strict=True)]
        if all(v < r for v, r in zip(p, ref, strict=True)):
            flipped.append(p)
    return _hv(flipped, ref)


def _hv(points: list[list[float]], ref: list[float]) -> float:
    """Hypervolume of minimisation ``points`` that all strictly beat ``ref``."""
    if not points:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in points)
    if len(ref) == 2:
        volume, best_y = 0.0, ref[1]
        for x, y in sorted(points):
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return volume
    points = sorted(points, key=lambda p: p[-1])
    volume = 0.0
    for i, point in enumerate(points):
        top = points[i + 1][-1] if i + 1 < len(points) else ref[-1]
        if top > point[-1]:
            volume += _hv([p[:-1] for p in points[: i + 1]], ref[:-1]) * (top - point[-1])
    return volume


def is_better(a: float, b: float, direction: Direction) -> bool:
    """Whether score ``a`` is strictly better than ``b`` in ``direction``."""
    return a > b if direction == "maximize" else a < b


def best_of(trials: Iterator[Trial] | tuple[Trial, ...], direction: Direction) -> Trial | None:
    """The best feasible complete trial (lowest number among ties), or ``None``."""
    best: Trial | None = None
    for trial in trials:
        if trial.status is TrialStatus.COMPLETE and trial.score is not None and trial.feasible:
            if best is None or is_better(trial.score, best.score, direction):  # type: ignore[arg-type]
                best = trial
    return best


def coerce_score(value: object) -> float | str:
    """Turn an objective's return value into a finite float, or say why it is not one.

    Returns the float, or a message (a ``str``) explaining why ``value`` cannot be a score.
    ``bool`` is refused: ``True`` is almost always a bug, not a score of 1.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"objective returned {type(value).__name__} {value!r:.80}, expected a finite number"
    score = float(value)
    if not math.isfinite(score):
        return f"objective returned {score}, expected a finite number"
    return score


def _floats(value: object, what: str) -> tuple[float, ...] | str:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        return f"{what} {type(value).__name__} {value!r:.80}, expected finite numbers"
    result = []
    for item in value:
        number = coerce_score(item)
        if isinstance(number, str):
            return f"{what} {item!r:.80} in {type(value).__name__}, expected a finite number"
        result.append(number)
    return tuple(result)


def coerce_result(value: object) -> tuple[tuple[float, ...], tuple[float, ...] | None] | str:
    """An objective's return value as ``(scores, constraints)``, or a message saying why not.

    ``value`` is a number, a sequence of numbers (several objectives) or an
    :class:`Outcome`; every number must be finite. ``constraints`` is ``None``
    unless an ``Outcome`` carried them.
    """
    if type(value) is float and math.isfinite(value):  # the common case, without ABC checks
        return (value,), None
    constraints: tuple[float, ...] | None = None
    if isinstance(value, Outcome):
        checked = _floats(value.constraints, "objective returned constraint")
        if isinstance(checked, str):
            return checked
        constraints = checked or None
        value = value.score
    if isinstance(value, numbers.Real):
        score = coerce_score(value)
        return score if isinstance(score, str) else ((score,), constraints)
    scores = _floats(value, "objective returned")
    if isinstance(scores, str):
        return scores
    if not scores:
        return "objective returned an empty sequence, expected one finite number per objective"
    return scores, constraints


def settle(
    trial: Trial, direction: StudyDirection, constraints: ConstraintsFunction | None
) -> Trial:
    """A complete trial checked against the study: one score per objective, constraints run.

    A wrong number of scores, or a ``constraints`` function that raises or
    returns anything but finite numbers, makes the trial ``failed`` with a
    message saying why. The function's values follow any the objective
    returned in an :class:`Outcome`. Other statuses are returned unchanged.
    """
    if trial.status is not TrialStatus.COMPLETE:
        return trial
    count = len(directions_of(direction))
    if len(trial.scores) != count:
        shape = "one number" if count == 1 else f"a sequence of {count} numbers"
        message = (
            f"objective returned {len(trial.scores)} score(s) {trial.scores!r:.80}, "
            f"expected {shape} (one per direction)"
        )
        return _failed(trial, ErrorInfo("InvalidScore", message))
    if constraints is None:
        return trial
    try:
        values = constraints(trial.params, trial.scores[0] if count == 1 else trial.scores)
    except Exception as exc:
        error = ErrorInfo.from_exception(exc)
        return _failed(trial, ErrorInfo(error.type, f"constraints: {error}", error.traceback))
    checked = _floats(values, "constraints returned")
    if isinstance(checked, str):
        return _failed(trial, ErrorInfo("InvalidConstraint", checked))
    combined = (trial.constraints or ()) + checked
    return dataclasses.replace(trial, constraints=combined or None)


def _failed(trial: Trial, error: ErrorInfo) -> Trial:
    return dataclasses.replace(
        trial, status=TrialStatus.FAILED, score=None, scores=(), constraints=None, error=error
    )


@dataclass(frozen=True, slots=True)
class ObserverFailure:
    """An observer that raised and was detached: which one, in which hook, and the error."""

    observer: str
    hook: str
    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class TuningResult:
    """The outcome of a study: every trial in number order, why it stopped, what went wrong."""

    trials: tuple[Trial, ...]
    direction: StudyDirection = "maximize"
    stop_reason: str | None = None
    observer_errors: tuple[ObserverFailure, ...] = ()

    @property
    def best(self) -> Trial:
        """The best feasible complete trial.

        Raises :class:`NoCompleteTrialError` when there is none, and
        :class:`TuningError` for a multi-objective study, whose trials trade
        off against each other: read :attr:`pareto_front` there.
        """
        if not isinstance(self.direction, str):
            raise TuningError(
                f"a study with {len(self.direction)} objectives has no single best trial; "
                "read result.pareto_front (the feasible trials no other one beats)"
            )
        best = best_of(self.trials, self.direction)
        if best is None:
            counts = ", ".join(f"{n} {s}" for s, n in self.status_counts().items() if n)
            complete = self.status_counts()[TrialStatus.COMPLETE]
            if complete:
                raise NoCompleteTrialError(
                    f"no complete trial is feasible ({counts}; every one breaks a "
                    "constraint); the study has no best"
                )
            raise NoCompleteTrialError(
                f"no trial completed ({counts or 'no trials'}); the study has no best"
            )
        return best

    def recommend(
        self,
        by: Literal["observed"]
        | Callable[[tuple[Trial, ...], StudyDirection], Sequence[float]] = "observed",
    ) -> Trial:
        """The trial to use: the best observed one, or the best by a model's estimate.

        ``by="observed"`` (the default) is :attr:`best`. On a noisy objective
        the best observed score is partly luck; pass an estimator instead,
        a callable given :attr:`trials` and :attr:`direction` that returns an
        estimate of each trial's true score (``nan`` where it has none), and
        the feasible complete trial with the best estimate is returned. The
        one that ships is the Gaussian process's posterior mean::

            trial = result.recommend(by=at.Bayesian(seed=0).posterior_mean(space))

        The trial keeps its observed ``score``: the estimate only chooses.
        The result holds no model (and the bottom layer imports none), so the
        caller passes it. Raises like :attr:`best`.
        """
        if by == "observed":
            return self.best
        if not callable(by):
            raise ValueError(f"by must be 'observed' or an estimator (a callable), got {by!r}")
        best = self.best  # the same errors when there is no single best
        estimates = list(by(self.trials, self.direction))
        if len(estimates) != len(self.trials):
            raise ValueError(
                f"the estimator returned {len(estimates)} estimates for {len(self.trials)} trials"
            )
        sign = -1.0 if self.direction == "maximize" else 1.0
        chosen = min(
            (
                (sign * e, t.number, t)
                for t, e in zip(self.trials, estimates, strict=True)
                if t.is_complete and t.feasible and math.isfinite(e)
            ),
            default=None,
            key=lambda item: item[:2],
        )
        return best if chosen is None else chosen[2]

    @property
    def pareto_front(self) -> tuple[Trial, ...]:
        """The feasible complete trials no other one dominates, in number order.

        For one objective: the best trial, and any that tie with it.
        """
        return pareto_front(self.trials, self.direction)

    def hypervolume(self, reference: Sequence[float]) -> float:
        """The volume of objective space the :attr:`pareto_front` dominates, up to ``reference``.

        ``reference`` has one value per objective, worse than any point of
        interest (below it for ``maximize``, above it for ``minimize``).
        """
        count = len(directions_of(self.direction))
        if len(reference) != count:
            raise ValueError(f"reference must have {count} values, got {len(reference)}")
        return hypervolume((t.scores for t in self.pareto_front), reference, self.direction)

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per trial, for analysis: params appear as ``params.<name>``."""
        return [
            {
                "number": t.number,
                "status": t.status.value,
                "score": t.score,
                **(
                    {f"scores.{i}": v for i, v in enumerate(t.scores)}
                    if not isinstance(self.direction, str)
                    else {}
                ),
                "feasible": t.feasible,
                **{f"params.{name}": value for name, value in t.params.items()},
                "attempts": t.attempts,
                "started_at": t.started_at,
                "finished_at": t.finished_at,
                "duration": t.duration,
                "worker": t.worker,
                "error": None if t.error is None else str(t.error),
                "intermediate": dict(t.intermediate),
            }
            for t in self.trials
        ]

    def to_dataframe(self) -> Any:
        """:meth:`to_records` as a ``pandas.DataFrame`` (needs the ``pandas`` extra)."""
        try:
            pandas = importlib.import_module("pandas")
        except ImportError:
            raise MissingExtraError("TuningResult.to_dataframe()", "pandas") from None
        return pandas.DataFrame.from_records(self.to_records())

    def status_counts(self) -> dict[TrialStatus, int]:
        """How many trials ended with each status."""
        counts = dict.fromkeys(TrialStatus, 0)
        for trial in self.trials:
            counts[trial.status] += 1
        return counts
