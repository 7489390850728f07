"""Immutable records of a study: :class:`Trial`, its status and error, :class:`TuningResult`."""

from __future__ import annotations

import importlib
import math
import numbers
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from aiotune.errors import MissingExtraError, NoCompleteTrialError

Direction = Literal["maximize", "minimize"]
Params = dict[str, Any]


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


@dataclass(frozen=True, slots=True)
class Trial:
    """One finished evaluation of the objective.

    ``score`` is a finite float for ``complete`` trials; a ``pruned`` trial
    carries the last value it reported (if any), every other status ``None``.
    ``intermediate`` maps step to the value reported at that step.
    ``error`` is the last attempt's error; ``previous_errors`` those of earlier
    attempts when ``retries`` ran the trial more than once. Times are seconds
    since the epoch; ``duration`` is in seconds.
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

    @property
    def is_complete(self) -> bool:
        """Whether the trial finished with a valid score."""
        return self.status is TrialStatus.COMPLETE


def is_better(a: float, b: float, direction: Direction) -> bool:
    """Whether score ``a`` is strictly better than ``b`` in ``direction``."""
    return a > b if direction == "maximize" else a < b


def best_of(trials: Iterator[Trial] | tuple[Trial, ...], direction: Direction) -> Trial | None:
    """The best complete trial (lowest number among ties), or ``None``."""
    best: Trial | None = None
    for trial in trials:
        if trial.status is TrialStatus.COMPLETE and trial.score is not None:
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
    direction: Direction = "maximize"
    stop_reason: str | None = None
    observer_errors: tuple[ObserverFailure, ...] = ()

    @property
    def best(self) -> Trial:
        """The best complete trial; raises :class:`NoCompleteTrialError` when there is none."""
        best = best_of(self.trials, self.direction)
        if best is None:
            counts = ", ".join(f"{n} {s}" for s, n in self.status_counts().items() if n)
            raise NoCompleteTrialError(
                f"no trial completed ({counts or 'no trials'}); the study has no best"
            )
        return best

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per trial, for analysis: params appear as ``params.<name>``."""
        return [
            {
                "number": t.number,
                "status": t.status.value,
                "score": t.score,
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
