"""The median stopping rule: stop a trial that is worse than the median at the same step."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiotune._checks import check_direction, check_int
from aiotune.pruning.base import Ranked, check_value
from aiotune.trial import TrialStatus

if TYPE_CHECKING:
    from aiotune.trial import Direction, Trial

logger = logging.getLogger("aiotune")


class MedianPruner:
    """Prune a trial whose value at a step is worse than the median of other trials' at that step.

    The median stopping rule of Google Vizier (Golovin et al. 2017, "Google
    Vizier: A Service for Black-Box Optimization", KDD), in the simple form
    Optuna's ``MedianPruner`` also uses: when trial *t* reports value *v* at
    step *s*, it is pruned if

    * ``s >= warmup_steps`` (no trial is pruned before then), and
    * at least ``min_trials`` *other* trials have reported step *s*, and
    * *v* is strictly worse than the median of those trials' values at *s*
      (lower when maximizing, higher when minimizing; a tie is not pruned).

    The median is over every trial that reported step *s*: completed, pruned,
    failed, timed out, or still running. A value reported at step *s* is a
    measurement of that configuration at *s* whatever became of the trial
    later, and using all of them keeps the rule sound in an asynchronous
    study:

    * counting running trials lets the rule act while the first trials are
      still in flight (with ``concurrency=k``, waiting for completed trials
      alone would let about ``k + min_trials`` trials run unchecked, and keep
      the median behind the trials that report first);
    * counting pruned trials at the steps they did reach avoids survivorship
      bias: without them the median at a step would climb as poor trials are
      pruned and forgotten, and the rule would grow harsher with time.

    Only ``cancelled`` trials are forgotten (a resumed study never loads them).

    Arguments: ``warmup_steps`` (an int >= 0) and ``min_trials`` (an int >= 1);
    anything else raises :class:`aiotune.ConfigurationError`.
    """

    __slots__ = ("min_trials", "warmup_steps")

    def __init__(self, warmup_steps: int = 0, min_trials: int = 5) -> None:
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0)
        self.min_trials = check_int("min_trials", min_trials, 1)

    def bind(self, direction: Direction) -> MedianState:
        """A fresh state for one study that goes in ``direction``."""
        return MedianState(check_direction(direction), self.warmup_steps, self.min_trials)

    def __repr__(self) -> str:
        return f"MedianPruner(warmup_steps={self.warmup_steps}, min_trials={self.min_trials})"


class MedianState:
    """One study's state of :class:`MedianPruner`: every trial's value at every step.

    Per step, the values are kept sorted, so a decision costs a binary search
    and recording a value one list insertion.
    """

    __slots__ = ("_by_step", "_sign", "_steps", "direction", "min_trials", "warmup_steps")

    def __init__(self, direction: Direction, warmup_steps: int, min_trials: int) -> None:
        self.direction: Direction = direction
        self.warmup_steps = warmup_steps
        self.min_trials = min_trials
        self._sign = 1.0 if direction == "maximize" else -1.0
        self._by_step: dict[int, Ranked[int]] = {}  # step -> trial number -> oriented value
        self._steps: dict[int, set[int]] = {}  # trial number -> the steps it has values at

    def report(self, number: int, step: int, value: float) -> bool:
        """Record ``value`` for trial ``number`` at ``step``; return whether to prune it."""
        check_value(number, step, value)
        at_step = self._record(number, step, value)
        if step < self.warmup_steps or len(at_step) - 1 < self.min_trials:
            return False
        median = at_step.median_of_others(number)
        if self._sign * value >= median:
            return False
        logger.debug(
            "MedianPruner: pruning trial %d at step %d: %g is worse than the median %g of %d",
            number,
            step,
            value,
            self._sign * median,
            len(at_step) - 1,
        )
        return True

    def finish(self, trial: Trial) -> None:
        """Make ``trial.intermediate`` the trial's evidence, or drop it if it was cancelled."""
        for step in self._steps.pop(trial.number, ()):
            self._by_step[step].discard(trial.number)
        if trial.status is not TrialStatus.CANCELLED:
            for step, value in trial.intermediate.items():
                self._record(trial.number, step, value)

    def values_at(self, step: int) -> dict[int, float]:
        """The values recorded at ``step``, by trial number (for inspection and tests)."""
        at_step = self._by_step.get(step)
        if at_step is None:
            return {}
        return {number: self._sign * value for number, value in at_step.items()}

    def _record(self, number: int, step: int, value: float) -> Ranked[int]:
        at_step = self._by_step.get(step)
        if at_step is None:
            at_step = self._by_step[step] = Ranked()
        at_step.set(number, self._sign * value)
        self._steps.setdefault(number, set()).add(step)
        return at_step
