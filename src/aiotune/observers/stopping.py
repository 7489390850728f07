"""Observers that end a study early through ``tuner.stop(reason)``.

``stop`` launches no new trials; trials already in flight finish and are
recorded. The first reason given becomes ``TuningResult.stop_reason``.
"""

from __future__ import annotations

from aiotune._checks import check_finite, check_int, check_seconds
from aiotune.observers.base import StudyHandle
from aiotune.trial import Direction, Trial, TrialStatus, directions_of, dominates, is_better


class Patience:
    """Stop after ``n`` finished trials in a row without a strict improvement of the best.

    Every finished trial counts (failed ones too): a study that keeps failing
    is not improving either; so does an infeasible one, which never improves.
    In a multi-objective study a trial improves when it joins the Pareto
    front: no earlier feasible trial dominates it or has the same scores
    (that is, when it grows the front's hypervolume for a reference far enough out).
    """

    def __init__(self, n: int) -> None:
        self.n = check_int("Patience(n)", n, 1)
        self._best: float | None = None
        self._front: list[tuple[float, ...]] = []
        self._since = 0

    async def on_trial(self, trial: Trial, tuner: StudyHandle) -> None:
        """Count ``trial`` and stop the study when patience runs out."""
        score = trial.score
        direction = tuner.direction
        if not isinstance(direction, str):
            if self._joins_front(trial, directions_of(direction)):
                self._since = 0
                return
        elif (
            trial.is_complete
            and trial.feasible
            and score is not None
            and (self._best is None or is_better(score, self._best, direction))
        ):
            self._best, self._since = score, 0
            return
        self._since += 1
        if self._since >= self.n:
            tuner.stop(f"patience: {self.n} trials without improvement")

    def _joins_front(self, trial: Trial, directions: tuple[Direction, ...]) -> bool:
        scores = trial.scores
        if not (trial.is_complete and trial.feasible and len(scores) == len(directions)):
            return False
        if any(old == scores or dominates(old, scores, directions) for old in self._front):
            return False
        self._front = [old for old in self._front if not dominates(scores, old, directions)]
        self._front.append(scores)
        return True

    def __repr__(self) -> str:
        return f"Patience({self.n})"


class Target:
    """Stop as soon as a feasible trial completes with a score at least as good as ``score``.

    A multi-objective study has no single score to reach: ``Target`` refuses
    it with a :class:`~aiotune.ConfigurationError` when the study is built.
    """

    def __init__(self, score: float) -> None:
        self.score: float = check_finite("Target(score)", score)

    async def on_trial(self, trial: Trial, tuner: StudyHandle) -> None:
        """Stop the study when ``trial`` reaches the target."""
        direction = tuner.direction
        if (
            isinstance(direction, str)
            and trial.is_complete
            and trial.feasible
            and trial.score is not None
            and (trial.score == self.score or is_better(trial.score, self.score, direction))
        ):
            tuner.stop(f"target: trial {trial.number} scored {trial.score} (target {self.score})")

    def __repr__(self) -> str:
        return f"Target({self.score})"


class TimeBudget:
    """Stop launching trials ``seconds`` after the study starts (in-flight trials finish)."""

    def __init__(self, seconds: float) -> None:
        self.seconds: float = check_seconds("TimeBudget(seconds)", seconds)

    async def on_start(self, tuner: StudyHandle) -> None:
        """Arm the study's clock."""
        tuner.stop_after(self.seconds, f"time budget of {self.seconds:g} s spent")

    async def on_trial(self, trial: Trial, tuner: StudyHandle) -> None:
        """Nothing to do per trial: the clock armed at start stops the study."""

    def __repr__(self) -> str:
        return f"TimeBudget({self.seconds:g})"


class MaxFailures:
    """Stop after ``n`` trials have failed or timed out (in total, not in a row)."""

    def __init__(self, n: int) -> None:
        self.n = check_int("MaxFailures(n)", n, 1)
        self._failures = 0

    async def on_trial(self, trial: Trial, tuner: StudyHandle) -> None:
        """Count a failure and stop the study at the limit."""
        if trial.status in (TrialStatus.FAILED, TrialStatus.TIMEOUT):
            self._failures += 1
            if self._failures >= self.n:
                tuner.stop(f"max failures: {self._failures} trials failed or timed out")

    def __repr__(self) -> str:
        return f"MaxFailures({self.n})"
